"""Search efficiency: every policy and peer replayed on both recorded tables, as Markdown.

Runs ``sweeps replay`` on each table in ``benchmarks/curves/`` (every named policy, every
installed peer, and the single-objective study-file policies in ``benchmarks/policies/``) with 1
and 4 simulated workers, writes each replay's ``summary.json`` and ``regret.png`` to
``docs/replay/<table>/`` and prints the tables of ``docs/benchmarks.md``, then the default's (a)
as a ratio to the best peer's in the same run. ``--from-json`` prints the tables of the
summaries written before.

    python benchmarks/search_efficiency.py                 # ~20-40 min on 2 cores
    python benchmarks/search_efficiency.py --repeats 10    # a quick look
    python benchmarks/search_efficiency.py --from-json     # the tables of the last run
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
OUT = HERE.parent / "docs" / "replay"
TABLES = ("quickstart_grid", "training_grid")
POLICIES = (
    "default",
    "random",
    "tpe",
    "tpe-median",
    "tpe-hyperband",
    "random-asha",
    "random-hyperband",
    "syne-asha",
    "syne-bohb",
    "dehb",
)
STUDY_POLICIES = ("median-from-5.yaml", "confirm.yaml")
"""The single-objective study-file policies of ``benchmarks/policies/`` (the others are fronts')."""


def replay(table: str, repeats: int) -> dict:
    command = [
        sys.executable,
        "-m",
        "mixer_sweeps",
        "replay",
        str(HERE / "curves" / f"{table}.csv"),
    ]
    command += [arg for policy in POLICIES for arg in ("--policy", policy)]
    command += [
        arg for name in STUDY_POLICIES for arg in ("--policy", str(HERE / "policies" / name))
    ]
    command += ["--workers", "1", "--workers", "4", "--repeats", str(repeats)]
    command += ["--out", str(OUT / table), "--force", "--json"]  # replaces the last run's files
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout)


def _ratio(value: float | None) -> str:
    return "n.r." if value is None or math.isinf(value) else f"{value:.3f}"


def markdown(summary: dict) -> str:
    rows = []
    for policy in summary["policies"]:
        regret = policy["regret"]
        rows.append(
            {
                "policy": policy["name"],
                "workers": policy["workers"],
                "(a)": f"{_ratio(policy['ratio_median'])} [{_ratio(policy['ratio_q25'])},"
                f" {_ratio(policy['ratio_q75'])}]",
                "reached": f"{policy['reached']:.0%}",
                "(b) at 0.05 / 0.1 / 0.25": " / ".join(
                    f"{100 * regret[str(b)]['median']:.2f}" for b in summary["budgets"]
                ),
                "trials": f"{policy['trials_mean']:.0f}",
            }
        )
    title = (
        f"`{summary['name']}.csv`: {summary['configs']} configurations x {summary['seeds']} seeds"
        f" x {summary['epochs']} epochs ({summary['grid_epochs']} grid epochs),"
        f" {summary['repeats']} replays; peers: {summary['peers']}"
    )
    return title + "\n\n" + pd.DataFrame(rows).to_markdown(index=False) + "\n"


def versus_peers(summary: dict) -> str:
    """The default's (a) over the best peer's, per number of workers (below 1: the default
    spends less)."""
    lines = []
    for workers in (1, 4):
        rows = [p for p in summary["policies"] if p["workers"] == workers]
        default = next(p for p in rows if p["name"] == "default")["ratio_median"]
        peers = [p["ratio_median"] for p in rows if p["name"] in ("syne-asha", "syne-bohb", "dehb")]
        best = min((math.inf if p is None else p for p in peers), default=math.inf)
        mine = math.inf if default is None else default
        ratio = mine / best if math.isfinite(best) else math.nan
        lines.append(
            f"{summary['name']}, {workers} worker(s): default (a) {_ratio(default)} vs best peer"
            f" {_ratio(best)}: ratio {ratio:.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--from-json", action="store_true")
    args = parser.parse_args()
    for table in TABLES:
        if args.from_json:
            summary = json.loads(
                (HERE.parent / "docs" / "replay" / table / "summary.json").read_text()
            )
        else:
            summary = replay(table, args.repeats)
        print(markdown(summary))
        print(versus_peers(summary) + "\n")


if __name__ == "__main__":
    main()
