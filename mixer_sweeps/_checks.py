"""What every ``sweeps`` command does before it writes anything, and with bad input.

Bad input gets one line naming the key, file or value, exit code 2, and nothing written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
MAX_LOCAL_WORKERS = 1024
"""Far beyond the cores of any one machine; a typo (an extra zero or five) is refused at once."""
MAX_JOBS = 100_000
"""SLURM's largest job array (MaxArraySize) is 4,000,001, and sites set it far lower."""

STORAGE_HELP = (
    "Optuna storage URL; else $SWEEPS_STORAGE, else study.storage, else the journal file in the"
    " results."
)
StorageOption = Annotated[str | None, typer.Option(help=STORAGE_HELP, show_default=False)]
"""``--storage`` of the commands that find a study, as ``sweeps run`` keeps it."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def check_machine(specs, processes: int = 1) -> None:
    """Exit 2, before anything is written, when the machine lacks a run's device or memory.

    ``specs``: (source, RunSpec) pairs; ``processes``: runs at once (a study's workers).
    """
    from mixer_sweeps.spec import SpecError, available_memory, check_memory, format_bytes
    from mixer_sweeps.training import DeviceUnavailable, resolve_device

    for source, spec in specs:
        try:
            # The CPU is always there, and asking torch would cost seconds of importing it.
            device = "cpu" if spec.train.device == "cpu" else resolve_device(spec.train.device)
            estimate = check_memory(spec, device, source=source)
        except DeviceUnavailable as exc:
            raise fail(f"{source}: {exc}") from None
        except SpecError as exc:
            raise fail(str(exc)) from None
        try:
            check_memory(spec, device, source=source, processes=processes)
        except SpecError:  # one run fits, so it is the number of runs at once that does not
            free, where = available_memory(device)
            fit = max(1, (free or 0) // max(1, estimate.total))
            raise fail(
                f"--workers {processes}: {processes} runs at once need"
                f" {format_bytes(estimate.total * processes)} but there is only"
                f" {format_bytes(free or 0)} of {where}; about {fit} fit"
            ) from None


def check_writable(folder: Path, what: str) -> None:
    """Exit 2 unless files can be created in ``folder`` (or, if it does not exist yet, in the
    nearest folder above it that does). Creates nothing but a uniquely named probe file that it
    removes, so that several processes may check one folder at once."""
    import tempfile

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise fail(f"cannot write to the {what} {folder}: {existing} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise fail(f"cannot write to the {what} {folder}: {exc.strerror or exc}") from None
