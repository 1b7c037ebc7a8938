"""How much training the quickstart's sampler and pruner spend to find a near-best configuration.

The quickstart's search space is discretised (every range becomes a few points) and that grid is
run exhaustively without pruning: its best value is the reference, and its epochs the cost of
brute force. Then the quickstart's own sampler and pruner search the same discrete space, once
per seed, one trial at a time, until a completed trial is within ``--tolerance`` (0.005 = half a
point of accuracy) of the grid's best. The measure is the epochs spent until then, over the grid's
epochs; the target is at most 0.25.

Every trial trains with one torch thread, so a configuration gives the same value in the grid and
in the searches (on CPU), and ``--workers`` runs grid trials and searches side by side.

    python benchmarks/pruning_efficiency.py            # the full grid: tens of minutes on 2 cores
    python benchmarks/pruning_efficiency.py --quick    # 32 configurations: a couple of minutes
    python benchmarks/pruning_efficiency.py --results results/bench   # keep (and reuse) the grid
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _hardware import hardware  # benchmarks/, on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "studies" / "quickstart.yaml"
TARGET_RATIO = 0.25
SEARCH_BATCH = 4


def discretise(dim: dict[str, Any], points: int) -> list[Any]:
    """A range as ``points`` values (log-spaced when ``log``), or the first ``points`` choices."""
    if "choices" in dim:
        return list(dim["choices"])[:points]
    low, high = dim["low"], dim["high"]
    if points == 1:
        return [low]
    if dim.get("log"):
        values = [low * (high / low) ** (i / (points - 1)) for i in range(points)]
    else:
        values = [low + (high - low) * i / (points - 1) for i in range(points)]
    if isinstance(low, int) and isinstance(high, int):
        return sorted({round(v) for v in values})
    return [float(f"{v:.3g}") for v in values]


def write_studies(
    out: Path, *, points: int, range_points: int, dims: int | None = None
) -> tuple[Path, Path]:
    """The grid study and the search study (quickstart's sampler and pruner), on one space.

    With ``dims``, only the first ``dims`` dimensions vary; the others keep their first value.
    """
    from mixer_sweeps.spec import read_yaml

    document = read_yaml(QUICKSTART).data
    study = document["study"]
    study["base"] = str((QUICKSTART.parent / study["base"]).resolve())
    study["storage"] = None
    document.setdefault("fixed", {})["train.threads"] = 1
    document["space"] = {
        path: {"choices": discretise(dim, range_points if "low" in dim else points)}
        for path, dim in document["space"].items()
    }
    for path in list(document["space"])[dims:] if dims is not None else []:
        document["fixed"][path] = document["space"].pop(path)["choices"][0]
    grid = {
        **document,
        "study": {
            **study,
            "name": "grid",
            "n_trials": None,
            "timeout": None,
            "sampler": {"type": "grid", "seed": 0},
            "pruner": {"type": "none"},
        },
    }
    search = {**document, "study": {**study, "name": "search", "timeout": None}}
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "grid.yaml", out / "search.yaml"
    for path, doc in zip(paths, (grid, search), strict=True):
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return paths


def run_grid(path: Path, results: Path, workers: int) -> dict[str, Any]:
    from mixer_sweeps.spec import load_study_file
    from mixer_sweeps.study import run_study

    study_file = load_study_file(path)
    run = run_study(study_file, workers=workers, results_dir=results)
    if run.counts.finished != study_file.n_trials or run.fatal or run.errors:
        raise SystemExit(f"the grid did not finish: {run.counts}, {run.fatal}, {run.errors}")
    best = run.best_trial
    return {
        "configs": len(run.trials),
        "epochs": sum(t.epochs_trained for t in run.records),
        "best_value": best.value,
        "best_params": best.params,
        "seconds": sum(t.seconds or 0.0 for t in run.records),
    }


def run_search(
    path: Path, results: Path, seed: int, target: float, budget: int, max_trials: int
) -> dict[str, Any]:
    """Trials in order until a completed one reaches ``target`` or ``budget`` epochs are spent.

    The study runs a few trials at a time and the count stops at the first trial that reaches
    the target, so the trials run after it in the same batch are not counted.
    """
    from optuna.trial import TrialState

    from mixer_sweeps.results import TrialRecord
    from mixer_sweeps.spec import load_study_file
    from mixer_sweeps.study import run_study

    started, n_trials = time.monotonic(), 0
    name = f"search-seed{seed}"
    while n_trials < max_trials:
        n_trials = min(n_trials + SEARCH_BATCH, max_trials)
        overrides = {"study.n_trials": n_trials, "study.sampler.seed": seed, "study.name": name}
        run = run_study(load_study_file(path, overrides), results_dir=results)
        epochs = 0
        finished = sorted((t for t in run.trials if t.state.is_finished()), key=lambda t: t.number)
        for count, trial in enumerate(finished, start=1):
            epochs += TrialRecord.from_trial(trial).epochs_trained
            if trial.state == TrialState.COMPLETE and trial.value >= target:
                return _search_result(seed, count, epochs, trial, started)
            if epochs >= budget:
                return _search_result(seed, count, epochs, None, started)
    return _search_result(seed, len(finished), epochs, None, started)


def _search_result(seed, trials, epochs, trial, started) -> dict[str, Any]:
    return {
        "seed": seed,
        "trials": trials,
        "epochs": epochs,
        "reached": trial is not None,
        "value": None if trial is None else trial.value,
        "params": None if trial is None else trial.params,
        "seconds": time.monotonic() - started,
    }


def _search_job(args: tuple) -> dict[str, Any]:
    return run_search(*args)


def main() -> None:
    os.environ["WANDB_MODE"] = "disabled"  # the digits spec tracks offline; not what is measured
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 values in each of the first 5 dimensions (32 configurations), 2 seeds",
    )
    parser.add_argument("--seeds", type=int, help="searches to run [default: 5, quick: 2]")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--results", type=Path, help="keep results here [default: a temp dir]")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    points, range_points = (2, 2) if args.quick else (3, 3)
    seeds = args.seeds or (2 if args.quick else 5)
    results = args.results or Path(tempfile.mkdtemp(prefix="pruning-efficiency-"))

    grid_path, search_path = write_studies(
        results, points=points, range_points=range_points, dims=5 if args.quick else None
    )
    print(f"hardware: {hardware()}")
    print(f"results: {results}")
    grid = run_grid(grid_path, results, args.workers)
    target = grid["best_value"] - args.tolerance
    print(
        f"grid: {grid['configs']} configurations, {grid['epochs']} epochs,"
        f" {grid['seconds']:.0f} s of training, best val_acc {grid['best_value']:.4f}"
        f"  ({', '.join(f'{k}={v}' for k, v in grid['best_params'].items())})"
    )
    print(f"searches: until a completed trial has val_acc >= {target:.4f}")

    # Repeated configurations cost no epochs (skip_duplicates), so trials are capped loosely.
    jobs = [
        (search_path, results, seed, target, grid["epochs"], 10 * grid["configs"])
        for seed in range(seeds)
    ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(args.workers, seeds)) as pool:
        runs = pool.map(_search_job, jobs)
    ratios = []
    for run in runs:
        ratios.append(run["epochs"] / grid["epochs"])
        found = f"val_acc {run['value']:.4f}" if run["reached"] else "target not reached"
        print(
            f"  seed {run['seed']}: {run['trials']:>4} trials, {run['epochs']:>5} epochs,"
            f" ratio {ratios[-1]:.3f}  ({found}, {run['seconds']:.0f} s)"
        )
    missed = sum(not run["reached"] for run in runs)
    mean = statistics.fmean(ratios)
    verdict = "meets" if mean <= TARGET_RATIO and not missed else "misses"
    bound = f"; a lower bound, {missed} searches ran out of epochs" if missed else ""
    print(
        f"mean ratio {mean:.3f} over {len(runs)} searches{bound}:"
        f" {verdict} the target of {TARGET_RATIO}"
    )


if __name__ == "__main__":
    main()
