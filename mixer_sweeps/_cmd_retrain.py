"""``sweeps retrain``: the best configurations trained again with fresh seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def retrain(
    study_file: Annotated[Path, typer.Argument(help="Study YAML.", show_default=False)],
) -> None:
    """Train the best configurations again with fresh seeds; test accuracy as mean ± 95% CI."""
    raise typer.Exit(1)
