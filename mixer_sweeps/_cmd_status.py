"""``sweeps status`` and ``sweeps best``: watch a study and pick its winner."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def status(
    studies: Annotated[
        list[Path] | None, typer.Argument(help="Study YAML or results folders.")
    ] = None,
) -> None:
    """Progress of studies: trial counts, best value, live workers, elapsed time and ETA."""
    raise typer.Exit(1)


def best(
    study_file: Annotated[Path, typer.Argument(help="Study YAML.", show_default=False)],
) -> None:
    """The best trial of a study: its value, params and full run spec."""
    raise typer.Exit(1)
