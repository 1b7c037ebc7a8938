"""What every ``sweeps`` command does before it writes anything, and with bad input.

Bad input gets one line naming the key, file or value, exit code 2, and nothing written.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mixer_sweeps._exit import EXIT_BAD_INPUT

MAX_LOCAL_WORKERS = 1024
"""Far beyond the cores of any one machine; a typo (an extra zero or five) is refused at once."""
MAX_JOBS = 100_000
"""SLURM's largest job array (MaxArraySize) is 4,000,001, and sites set it far lower."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def check_option(option: str, value: float, low: float, high: float, why: str = "") -> None:
    """Exit 2 unless ``low <= value <= high`` (NaN is refused too): for a number that a command
    allocates or waits by, so that a typo never becomes a MemoryError or an endless sleep."""
    if not low <= value <= high:
        because = f" ({why})" if why else ""
        raise fail(f"{option} must be between {low:,} and {high:,}{because} but got {value}")


def check_machine(specs, workers: int | None = None, option: str = "--workers") -> None:
    """Exit 2, before anything is written, when the machine lacks a run's device or memory.

    ``specs``: (source, RunSpec) pairs. ``workers``: new worker processes that each run one of
    them at a time (a study's); None when the run is in this process. ``option``: what a user
    changes for fewer workers.
    """
    from mixer_sweeps.spec import SpecError, check_memory, format_bytes, workers_that_fit
    from mixer_sweeps.training import DeviceUnavailable, resolve_device

    for source, spec in specs:
        try:
            # The CPU is always there, and asking torch would cost seconds of importing it.
            device = "cpu" if spec.train.device == "cpu" else resolve_device(spec.train.device)
            check_memory(spec, device, source=source)
        except DeviceUnavailable as exc:
            raise fail(f"{source}: {exc}") from None
        except SpecError as exc:
            raise fail(str(exc)) from None
        if workers is None:
            continue
        room = workers_that_fit(spec, device)
        if room.fit is None or workers <= room.fit:
            continue
        parts = [
            f"{format_bytes(b)} {what}"
            for b, what in (
                (room.process_bytes, "for its Python process with torch"),
                (room.run_bytes, "for its run"),
            )
            if b
        ]
        fit = f"about {room.fit:,} fit" if room.fit else "not even one fits"
        raise fail(
            f"{option} {workers}: {workers:,} worker processes need"
            f" {format_bytes(room.each * workers)} but there is only {format_bytes(room.free)}"
            f" of {room.where} (each needs {' and '.join(parts)}); {fit}"
        )


def check_study(study_file, results: Path, workers: int | None, option: str = "--workers") -> None:
    """What ``sweeps run`` and ``sweeps launch --executor local`` check before they write or
    start anything: the device and memory of the study's runs on ``workers`` worker processes
    (see :func:`check_machine`), and that its results folder takes files."""
    check_machine(study_file.variants(), workers=workers, option=option)
    check_writable(results / study_file.name, "results folder")


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
