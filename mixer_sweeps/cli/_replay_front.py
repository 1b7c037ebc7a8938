"""``sweeps replay --objectives val_acc,num_params``: the hypervolume tables, figure and JSON."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mixer_sweeps.cli._checks import fail

if TYPE_CHECKING:
    from mixer_sweeps.replay import Curves, FrontScale, FrontSummary

FRONT_PLOT_FILE = "hypervolume.png"


def write_front(
    curves: Curves,
    summaries: Sequence[FrontSummary],
    folder: Path,
    *,
    title: str,
    summary_file: str,
    objectives: tuple[tuple[str, str], ...],
    unpruned: Sequence[str],
    repeats: int,
    budget: float,
    as_json: bool,
) -> None:
    """Write the figure and ``summary_file`` to ``folder``; print the table or the JSON."""
    from mixer_sweeps.replay import FrontScale, plot_hypervolume, reference_of
    from mixer_sweeps.training import atomic_write_text

    scale = FrontScale.of(curves, objectives)
    references = reference_of(summaries, unpruned)
    payload = _payload(curves, summaries, scale, references, objectives, repeats, budget)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        plot = plot_hypervolume(summaries, folder / FRONT_PLOT_FILE, title=title, best=scale.best)
        atomic_write_text(folder / summary_file, json.dumps(payload, indent=2) + "\n")
    except OSError as exc:
        raise fail(f"cannot write to {folder}: {exc.strerror or exc}") from None
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    _print_table(summaries, scale, references, title)
    typer.echo(f"wrote {plot} and {folder / summary_file}")


def _payload(
    curves: Curves,
    summaries: Sequence[FrontSummary],
    scale: FrontScale,
    references: dict[int, FrontSummary],
    objectives: tuple[tuple[str, str], ...],
    repeats: int,
    budget: float,
) -> dict:
    from mixer_sweeps.replay import PEERS, WITHIN, peer_versions, table_fields

    return {
        **table_fields(curves, repeats=repeats, budget=budget),
        "objectives": [{"metric": m, "direction": d} for m, d in objectives],
        "reference_point": "the table's worst val_acc and largest params (normalised: 1, 1)",
        "hypervolume_table": scale.best,
        "within": WITHIN,
        "peers": peer_versions() if any(s.name in PEERS for s in summaries) else None,
        "policies": [s.as_json(references.get(s.workers), scale) for s in summaries],
    }


def _spread(spread, digits: int = 3) -> str:
    def text(value: float) -> str:
        return "not reached" if math.isinf(value) else f"{value:.{digits}f}"

    return f"{text(spread.median)} [{text(spread.q25)}, {text(spread.q75)}]"


def _print_table(
    summaries: Sequence[FrontSummary],
    scale: FrontScale,
    references: dict[int, FrontSummary],
    title: str,
) -> None:
    from rich.table import Table

    from mixer_sweeps._progress import output_console
    from mixer_sweeps.replay import WITHIN, Spread, reached_share

    console = output_console()
    console.print(
        f"{title}; hypervolume of every configuration: {scale.best:.4f}",
        markup=False,
    )
    table = Table(title="the front's hypervolume (median [IQR] over replays)", title_justify="left")
    table.add_column("policy", no_wrap=True)
    table.add_column("workers", justify="right")
    table.add_column("final hypervolume", justify="right")
    table.add_column("epochs spent / grid", justify="right")
    table.add_column(
        f"epochs to within {WITHIN:.0%} of the reference / its epochs", justify="right"
    )
    table.add_column("reached", justify="right")
    table.add_column("trials", justify="right")
    table.add_column("seconds", justify="right")
    for s in summaries:
        reference = references.get(s.workers)
        ratios = None if reference is None else s.ratios(reference)
        table.add_row(
            s.name,
            str(s.workers),
            _spread(s.final, 4),
            _spread(s.spent),
            "no unpruned policy" if ratios is None else _spread(Spread.of(ratios)),
            "" if ratios is None else f"{reached_share(ratios):.0%}",
            f"{sum(o.trials for o in s.outcomes) / s.replays:.0f}",
            f"{s.seconds:.1f}",
        )
    console.print(table)
    named = ", ".join(f"{n} workers: {r.name}" for n, r in sorted(references.items()))
    if named:
        console.print(f"reference (unpruned search, same replays): {named}", markup=False)
