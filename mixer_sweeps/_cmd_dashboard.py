"""``sweeps dashboard``: optuna-dashboard on a study's storage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def dashboard(
    study_file: Annotated[Path, typer.Argument(help="Study YAML.", show_default=False)],
) -> None:
    """Serve optuna-dashboard for a study's storage on 127.0.0.1."""
    raise typer.Exit(1)
