"""``sweeps replay``: search policies and peer libraries replayed on recorded curves."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from mixer_sweeps.cli._checks import check_option, check_writable, fail
from mixer_sweeps.cli._options import StorageOption
from mixer_sweeps.cli._replay_front import FRONT_PLOT_FILE

if TYPE_CHECKING:
    from mixer_sweeps.replay import Curves, Summary

MAX_REPEATS = 10_000
MAX_WORKERS = 1024
MAX_BUDGET = 100.0
"""In grids' epochs: a hundred grids is far past any search worth replaying."""
PLOT_FILE = "regret.png"
SUMMARY_FILE = "summary.json"


def replay(
    source: Annotated[
        Path,
        typer.Argument(
            help="A recorded-curves table (benchmarks/curves/NAME.csv) or a finished grid"
            " study's results folder (results/STUDY).",
            show_default=False,
        ),
    ],
    policies: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="A named policy (default, random, tpe, tpe-median, tpe-hyperband, random-asha,"
            " random-hyperband; with several --objectives: mo-tpe, mo-tpe-front, mo-random,"
            " mo-nsgaii), a peer (syne-asha, syne-bohb, dehb; syne-moasha with several"
            " objectives) or a study file whose sampler and pruner are replayed; repeat for"
            " several. Default: every named policy and installed peer for the objectives.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        list[int] | None,
        typer.Option(
            "--workers",
            help="Simulated asynchronous workers; repeat for several [default: 1 and 4].",
            show_default=False,
        ),
    ] = None,
    repeats: Annotated[
        int, typer.Option(help="Replays per policy: sampler seeds, and seeds drawn per config.")
    ] = 50,
    budget: Annotated[
        float,
        typer.Option(
            help="Most epochs a replay spends, as a fraction of the grid's epochs for one seed"
            " (a replay stops sooner once its metrics are known, or when its sampler asks only"
            " for configurations it has tried, the grid's size times in a row)."
        ),
    ] = 1.0,
    objectives: Annotated[
        str,
        typer.Option(
            "--objectives",
            help="val_acc, then costs the table records per configuration (num_params),"
            " comma-separated: with a cost, the search is for the front of val accuracy"
            " against it, measured by its hypervolume against epochs spent.",
        ),
    ] = "val_acc",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as one JSON object.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help=f"Folder for {PLOT_FILE} ({FRONT_PLOT_FILE} with several objectives) and"
            f" {SUMMARY_FILE} [default: results/replay-NAME]. New, empty, or holding only an"
            " earlier replay's files, which only --force replaces.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an earlier replay's files in the folder.")
    ] = False,
    storage: StorageOption = None,
) -> None:
    """Replay search policies and peer libraries on recorded curves, many times, in seconds.

    Each replay drives the real sampler and pruner that `sweeps run` builds (or a peer's own
    scheduler) with simulated workers whose epochs take their recorded seconds. Reported per
    policy, as median and interquartile range over the replays: (a) epochs spent until a trial
    completes within 0.5 points of the best configuration (seed-mean val accuracy), over the
    grid's epochs; (b) at 0.05, 0.1 and 0.25 of the grid's epochs, the regret of the winner that
    `sweeps best` would name (best seed-mean test accuracy less the winner's).
    """
    check_option("--repeats", repeats, 1, MAX_REPEATS)
    chosen_workers = workers or [1, 4]
    for n in chosen_workers:
        check_option("--workers", n, 1, MAX_WORKERS)
    if not (0 < budget <= MAX_BUDGET):  # NaN too
        raise fail(f"--budget must be above 0 and at most {MAX_BUDGET:g} but got {budget}")

    from mixer_sweeps.replay import (
        FRONT_POLICIES,
        PEERS,
        POLICIES,
        ObjectivesError,
        PolicyError,
        TableError,
        installed_peers,
        load_source,
        named_policy,
        parse_objectives,
    )

    try:
        chosen_objectives = parse_objectives(objectives)
    except ObjectivesError as exc:
        raise fail(str(exc)) from None
    multi = len(chosen_objectives) > 1
    peers = [n for n in installed_peers() if PEERS[n].front == multi]
    names = list(dict.fromkeys(policies or [*(FRONT_POLICIES if multi else POLICIES), *peers]))
    chosen_policies, chosen_peers = [], []
    for name in names:
        if name in PEERS:
            if name not in installed_peers():
                raise fail(
                    f"--policy {name}: the peer is not installed; run scripts/setup-peers"
                    " (it makes .venv-peers in about two minutes)"
                )
            if PEERS[name].front != multi:
                raise fail(
                    f"--policy {name}: the peer searches for"
                    f" {'several objectives' if PEERS[name].front else 'one objective'} but"
                    f" --objectives {objectives} gives {len(chosen_objectives)}"
                )
            chosen_peers.append(name)
            continue
        try:
            chosen_policies.append(named_policy(name, chosen_objectives))
        except PolicyError as exc:
            raise fail(str(exc).strip()) from None
    try:
        curves = load_source(source, storage=storage)
        parse_objectives(objectives, curves)
    except (TableError, ObjectivesError) as exc:
        raise fail(str(exc).strip()) from None
    for policy in chosen_policies:
        if policy.replicates > len(curves.seeds):
            raise fail(
                f"--policy {policy.name}: {policy.replicates} replicates but {source} recorded"
                f" {len(curves.seeds)} seeds per configuration"
            )
    folder = out if out is not None else Path("results") / f"replay-{curves.name}"
    from mixer_sweeps.cli._write import check_folder_or_fail

    check_folder_or_fail(
        folder,
        owns=_replay_file,
        what="a replay's files",
        option="--out" if out is not None else "",
        force=force,
    )
    check_writable(folder, "output folder")

    summaries = _run(
        curves, chosen_policies, chosen_peers, chosen_workers, repeats, budget, chosen_objectives
    )
    if multi:
        from mixer_sweeps.cli._replay_front import write_front

        write_front(
            curves,
            summaries,
            folder,
            title=_title(curves, repeats),
            summary_file=SUMMARY_FILE,
            objectives=chosen_objectives,
            unpruned=[p.name for p in chosen_policies if p.pruner.type == "none"],
            repeats=repeats,
            budget=budget,
            as_json=as_json,
        )
        return
    from mixer_sweeps.replay import plot_regret
    from mixer_sweeps.training import atomic_write_text

    try:
        folder.mkdir(parents=True, exist_ok=True)
        plot = plot_regret(summaries, folder / PLOT_FILE, title=_title(curves, repeats))
        payload = _payload(curves, summaries, repeats=repeats, budget=budget)
        atomic_write_text(folder / SUMMARY_FILE, json.dumps(payload, indent=2) + "\n")
    except OSError as exc:
        raise fail(f"cannot write to {folder}: {exc.strerror or exc}") from None
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    _print_tables(curves, summaries, repeats=repeats)
    typer.echo(f"wrote {plot} and {folder / SUMMARY_FILE}")


def _replay_file(name: str) -> Literal["file"] | None:
    """``"file"`` when a replay writes a file named ``name``, else None."""
    return "file" if name in (PLOT_FILE, FRONT_PLOT_FILE, SUMMARY_FILE) else None


def _run(
    curves: Curves,
    policies: list,
    peers: list[str],
    workers: list[int],
    repeats: int,
    budget: float,
    objectives: tuple[tuple[str, str], ...],
) -> list[Summary]:
    from mixer_sweeps.replay import (
        PeerError,
        ReplayTask,
        budget_epochs,
        run_peer,
        run_replays,
        seed_order,
    )

    def done(s: Summary) -> None:
        typer.echo(
            f"replayed {s.name} with {s.workers} worker{'s' if s.workers != 1 else ''}:"
            f" {s.replays} replays in {s.seconds:.1f} s",
            err=True,
        )

    tasks = [ReplayTask(curves, p, n, budget) for p in policies for n in workers]
    summaries = run_replays(tasks, repeats=repeats, on_done=done)
    for name in peers:
        try:
            summaries += run_peer(
                curves,
                name,
                workers=workers,
                repeats=repeats,
                budget=budget_epochs(curves, budget),
                seed_orders=lambda r: seed_order(curves, r),
                objectives=objectives,
                on_done=done,
            )
        except PeerError as exc:
            raise fail(str(exc), code=1) from None
    return summaries


def _title(curves: Curves, repeats: int) -> str:
    return (
        f"{curves.name}: {len(curves.configs)} configurations x {len(curves.seeds)} seeds x"
        f" {curves.epochs} epochs, {repeats} replays"
    )


def _payload(curves: Curves, summaries: list[Summary], *, repeats: int, budget: float) -> dict:
    from mixer_sweeps.replay import BUDGETS, peer_versions, table_fields

    return {
        **table_fields(curves, repeats=repeats, budget=budget),
        "budgets": list(BUDGETS),
        "peers": peer_versions() if any(s.name in _peer_names() for s in summaries) else None,
        "policies": [s.as_json() for s in summaries],
    }


def _peer_names() -> set[str]:
    from mixer_sweeps.replay import PEERS

    return set(PEERS)


def _spread(spread, *, scale: float = 1.0, digits: int = 3) -> str:
    def text(value: float) -> str:
        return "not reached" if math.isinf(value) else f"{value * scale:.{digits}f}"

    return f"{text(spread.median)} [{text(spread.q25)}, {text(spread.q75)}]"


def _print_tables(curves: Curves, summaries: list[Summary], *, repeats: int) -> None:
    from rich.table import Table

    from mixer_sweeps._progress import output_console
    from mixer_sweeps.replay import BUDGETS

    console = output_console()
    console.print(_title(curves, repeats), markup=False)
    for name in dict.fromkeys(s.name for s in summaries):
        rows = [s for s in summaries if s.name == name]
        table = Table(title=f"{name}: {rows[0].description}", title_justify="left")
        table.add_column("workers", justify="right")
        table.add_column("(a) epochs to near-best / grid", justify="right")
        table.add_column("reached", justify="right")
        for b in BUDGETS:
            table.add_column(f"(b) regret at {b:g}, points", justify="right")
        table.add_column("trials", justify="right")
        table.add_column("seconds", justify="right")
        for s in rows:
            table.add_row(
                str(s.workers),
                _spread(s.ratio),
                f"{s.reached:.0%}",
                *(_spread(r, scale=100, digits=2) for r in s.regrets),
                f"{s.trials:.0f}",
                f"{s.seconds:.1f}",
            )
        console.print(table)
