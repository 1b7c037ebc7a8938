"""What commands share: the ``--results``, ``--storage`` and ``--json`` options, a study loaded
from what the user named (or the only study under ``--results``) or one clear error, and the
command class that shows flags as flags in ``--help``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

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
ONLY_STUDY = "; none: the only study under --results"
"""The end of a study argument's help where the argument may be left out."""


class FlagsShown:
    """On/off options shown as flags in ``--help`` (``--force``), not as options taking a value
    (Typer 0.29 writes ``--force <bool>``, ``--help <bool>``). A mixin of Typer's command and
    group classes."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(FlagsShown, TyperCommand):
    """Every ``sweeps`` command's class."""


def no_study(results: Path) -> str:
    """What a command that looks for studies under ``results`` says when it finds none."""
    return (
        f"no study under {results}/ (no {results}/<name>/study.yaml): run one, or give a study"
        " file or results folder"
    )


def the_study(target: Path | None, results: Path) -> Path:
    """``target``, else the only study folder under ``results`` (as ``sweeps status`` finds
    them); with none or several there, exit 2 listing them."""
    if target is not None:
        return target
    from mixer_sweeps.results import find_studies

    found = find_studies(results)
    if len(found) == 1:
        return found[0]
    if not found:
        raise fail(no_study(results))
    names = ", ".join(p.name for p in found)
    raise fail(f"{len(found)} studies under {results}/ ({names}): name one, e.g. {found[0]}")


def load_or_fail(target: Path, results: Path, storage: str | None) -> StudyResults:
    """The study ``target`` names (a study file or a results folder), read back; else exit 2."""
    from mixer_sweeps.results import load_results

    try:
        return load_results(target, results_dir=results, storage=storage)
    except ValueError as exc:  # ReportError, SpecError, a bad storage URL
        raise fail(str(exc).strip()) from None
