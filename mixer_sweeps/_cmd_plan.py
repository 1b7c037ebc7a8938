"""``sweeps plan``: a study's dry run before any training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def plan(
    study_file: Annotated[Path, typer.Argument(help="Study YAML.", show_default=False)],
) -> None:
    """Show what a study will run and roughly how long it takes, before training anything."""
    raise typer.Exit(1)
