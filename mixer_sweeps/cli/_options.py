"""What commands share: the ``--results``, ``--storage`` and ``--json`` options, and a study
loaded from what the user named or one clear error."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mixer_sweeps.cli._checks import fail

if TYPE_CHECKING:
    from mixer_sweeps.results import StudyResults

STORAGE_HELP = (
    "Optuna storage URL; else $SWEEPS_STORAGE, else study.storage, else the journal file in the"
    " results."
)
StorageOption = Annotated[str | None, typer.Option(help=STORAGE_HELP, show_default=False)]
"""``--storage`` of the commands that find a study, as ``sweeps run`` keeps it."""
ResultsOption = Annotated[
    Path, typer.Option(help="Results folder, where study files' results are.")
]
"""``--results`` of the commands that read a study back."""
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def load_or_fail(target: Path, results: Path, storage: str | None) -> StudyResults:
    """The study ``target`` names (a study file or a results folder), read back; else exit 2."""
    from mixer_sweeps.results import load_results

    try:
        return load_results(target, results_dir=results, storage=storage)
    except ValueError as exc:  # ReportError, SpecError, a bad storage URL
        raise fail(str(exc).strip()) from None
