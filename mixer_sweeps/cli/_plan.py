"""``sweeps plan``: a study's dry run before any training."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mixer_sweeps.cli._checks import MAX_LOCAL_WORKERS, check_option, fail


def plan(
    study_file: Annotated[Path, typer.Argument(help="Study YAML.", show_default=False)],
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate/--no-calibrate",
            help="Time a few training steps of the smallest and largest model for the time"
            " estimate; --no-calibrate trains nothing.",
        ),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            help="Workers of `sweeps run --workers` (1 to 1024): the threads timed, the time"
            " divided."
        ),
    ] = 1,
    n_trials: Annotated[
        int | None, typer.Option(min=1, help="Override study.n_trials.", show_default=False)
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan as one JSON object.")
    ] = False,
) -> None:
    """Show what a study will run and roughly how long it takes, before training anything.

    The space, the grid's size and configurations, the smallest, median and largest model
    (parameters, FLOPs), the epoch budget with and without pruning, and a time estimate from a
    few timed training steps on this machine. Exits 2 on a study that `validate` refuses.
    """
    check_option("--workers", workers, 1, MAX_LOCAL_WORKERS, "as `sweeps run` takes")
    from mixer_sweeps.plan import plan_study
    from mixer_sweeps.spec import SpecError, load_study_file

    overrides = {} if n_trials is None else {"study.n_trials": n_trials}
    try:
        loaded = load_study_file(study_file, overrides)
    except SpecError as exc:
        raise fail(str(exc)) from None

    from mixer_sweeps.data import DatasetUnavailable
    from mixer_sweeps.training import DeviceUnavailable

    try:
        result = plan_study(loaded, calibrate=calibrate, workers=workers)
    except (ValueError, DatasetUnavailable, DeviceUnavailable) as exc:  # SpecError: no memory
        raise fail(str(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return

    from rich.measure import Measurement
    from rich.table import Table

    from mixer_sweeps._progress import output_console

    console = output_console()
    items = list(result.renderables())
    if not console.is_terminal:
        # As wide as the widest table needs: a file or a pipe gets rows, never wrapped cells.
        wide = console.options.update_width(10_000)
        widths = [Measurement.get(console, wide, i).maximum for i in items if isinstance(i, Table)]
        console.width = max([console.width, *widths])
    for item in items:
        console.print(item)
