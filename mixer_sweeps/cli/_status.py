"""``sweeps status`` and ``sweeps best``: watch a study and pick its winner.

Both read the study where ``sweeps report`` does (:func:`~mixer_sweeps.report.load_results`: a
study file or a results folder, ``--results``, ``--storage``) and everything they show comes
from the storage, so workers anywhere count. Without a terminal they print plain text, never cut
to a width, for logs and scripts; ``--json`` is for programs.

Status reads each study in a thread of its own and waits for it at most the storage timeout, so
one damaged file or silent database costs one line, never the view of the others.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mixer_sweeps._exit import EXIT_BAD_INPUT
from mixer_sweeps.cli._checks import check_option, fail
from mixer_sweeps.cli._options import StorageOption, no_study

if TYPE_CHECKING:
    from rich.console import RenderableType

    from mixer_sweeps.results import StudyResults, StudyStatus, Watched

MAX_INTERVAL_S = 86_400
"""Longest --interval: a day (time.sleep refuses inf; a longer wait is never meant)."""

_RESULTS_HELP = (
    "Results folder, where study files' results are (and, with no argument, every study)."
)


# ------------------------------------------------------------------------------------ status


def status(
    studies: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Study YAML files or results folders (results/<study>); none: every study"
            " under --results.",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh every --interval seconds until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between refreshes with --watch (0.1 to 86400).")
    ] = 5.0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print JSON: {"studies": [...], "unreadable": [...]}, one entry per study.',
        ),
    ] = False,
    results: Annotated[Path, typer.Option(help=_RESULTS_HELP)] = Path("results"),
    storage: StorageOption = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds to wait for a study's storage before showing it as unreadable; else"
            " $SWEEPS_STORAGE_TIMEOUT_S, else 10.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Progress of studies: trials by state, best value, live workers, elapsed time and ETA.

    Workers count wherever they run: their heartbeat is in the study's storage. A study that
    cannot be read (a damaged file, a storage that is gone or does not answer within --timeout)
    is one line saying why, and the others are shown; the exit code is 2 only when none can be
    read. --watch goes on through failed refreshes until Ctrl-C.
    """
    if watch and as_json:
        raise fail("--watch and --json do not go together: run --json again to poll")
    check_option("--interval", interval, 0.1, MAX_INTERVAL_S, "seconds, a day at most")
    wait_s = _storage_timeout(timeout)
    targets = list(studies or [])
    if not targets:
        from mixer_sweeps.results import find_studies

        targets = find_studies(results)
        if not targets:
            raise fail(no_study(results))
    from mixer_sweeps.study import optuna_quiet

    with optuna_quiet():  # for the readers' threads too: logging and warnings are global
        _show(targets, results, storage, wait_s, watch=watch, interval=interval, as_json=as_json)


def _show(
    targets: list[Path],
    results: Path,
    storage: str | None,
    wait_s: float,
    *,
    watch: bool,
    interval: float,
    as_json: bool,
) -> None:
    from mixer_sweeps._progress import output_console
    from mixer_sweeps.results import Watched, refresh

    watched = [Watched(t) for t in targets]
    refresh(watched, results, storage, wait_s)
    if not any(w.status is not None for w in watched):
        for w in watched:
            why = w.why(whole=len(watched) == 1)
            named = why if why.startswith(str(w.target)) else f"{w.target}: {why}"
            typer.echo(f"error: {named}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    if as_json:
        payload = {
            "studies": [w.status.as_json() for w in watched if w.status is not None],
            "unreadable": [
                {"study": str(w.target), "error": w.error} for w in watched if w.status is None
            ],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console = output_console()
    if not watch:
        console.print(_render_all(watched))
        return
    from mixer_sweeps._signals import graceful_interrupts

    # Ctrl-C leaves the last view on screen; the group says "interrupted" and exits 130. The
    # handler is set here, not inherited: a shell starts background jobs with SIGINT ignored
    # (`sweeps status --watch | cat &` in a script), and a pipe has no terminal to send it.
    with graceful_interrupts():
        if not console.is_terminal:  # a log: one block per refresh, stamped
            while True:
                console.print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}", markup=False)
                console.print(_render_all(watched))
                sys.stdout.flush()
                time.sleep(interval)
                refresh(watched, results, storage, wait_s)
        from rich.live import Live

        with Live(_render_all(watched), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                refresh(watched, results, storage, wait_s)
                live.update(_render_all(watched), refresh=True)


def _storage_timeout(option: float | None) -> float:
    from mixer_sweeps.study import storage_timeout_s

    try:
        return storage_timeout_s(option)
    except ValueError as exc:
        raise fail(str(exc)) from None


def _render_all(watched: list[Watched]) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    blocks: list[Any] = []
    for i, w in enumerate(watched):
        if i:
            blocks.append("")
        if w.status is not None and w.results is not None:
            blocks.append(_render(w.status, w.results))
        else:
            blocks.append(
                Text.assemble(
                    (w.target.name or str(w.target), "bold"),
                    f"  {w.target}  ",
                    (f"cannot be read: {w.why()}", "red"),
                )
            )
    return Group(*blocks)


def _render(s: StudyStatus, results: StudyResults) -> RenderableType:
    from rich.text import Text

    from mixer_sweeps.results import (
        format_count,
        format_duration,
        format_metric,
        format_params,
        short_names,
    )

    c = s.counts
    of = f"/{s.n_trials}" if s.n_trials is not None else ""
    metric, direction = s.metric, s.direction.name.lower()
    lines = [Text.assemble((s.name, "bold"), f"  {s.study_dir}  ({s.storage})")]
    trials = Text(f"  trials   {c.finished}{of} finished: ")
    trials.append(f"{c.complete} complete", style="green")
    trials.append(", ")
    trials.append(f"{c.pruned} pruned", style="yellow")
    trials.append(", ")
    trials.append(f"{c.failed} failed", style="red" if c.failed else "")
    trials.append(f"; {c.running} running, {c.waiting} waiting")
    if c.retried:
        trials.append(f" ({c.retried} failed attempts queued again)", style="dim")
    lines.append(trials)
    if s.multi:
        lines.append(_front_line(s))
    elif s.best is None:
        lines.append(Text(f"  best     none yet ({metric}, {direction})"))
    else:
        names = short_names([d.path for d in results.space])
        size = "" if s.best.num_params is None else f", {format_count(s.best.num_params)} params"
        lines.append(
            Text(
                f"  best     {metric} {format_metric(s.best.value)}"
                f" (trial {s.best.number}, {direction}{size})  "
                + format_params(s.best.params, names)
            )
        )
    workers = Text(f"  workers  {len(s.workers)} alive")
    if s.workers:
        workers.append(": " + ", ".join(s.workers), style="dim")
    if s.orphaned:
        workers.append(
            f"; {s.orphaned} running trial{'s' * (s.orphaned != 1)} without a live worker"
            " (queued again by the next sweeps run)",
            style="yellow",
        )
    lines.append(workers)
    eta = "done" if s.done else f"ETA {format_duration(s.eta_s)} ({s.eta_note})"
    lines.append(Text(f"  time     elapsed {format_duration(s.elapsed_s)}, {eta}"))
    return Text("\n").join(lines)


def _front_line(s: StudyStatus) -> RenderableType:
    """``front    3 configurations (maximize val_acc, minimize params); best val_acc 0.9000
    (trial 3), best params 1,000 (trial 0)``."""
    from rich.text import Text

    from mixer_sweeps.results import describe_best_per

    aims = ", ".join(str(o) for o in s.objectives)
    if not s.front:
        return Text(f"  front    none yet ({aims})")
    size = f"{len(s.front)} configuration{'s' * (len(s.front) != 1)}"
    return Text(f"  front    {size} ({aims}); {describe_best_per(s.best_per, s.objectives)}")


# -------------------------------------------------------------------------------------- best
