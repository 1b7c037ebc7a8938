"""Record full learning curves of every configuration of a grid: the table ``sweeps replay`` reads.

A grid study (``sampler: {type: grid}``, ``pruner: {type: none}``, no early stopping, one torch
thread per trial, ``replicates:`` seeds per configuration) runs to the end with the project's own
workers and storage, so running this again after a crash trains only what is missing. Then every
run's ``history.csv`` and ``metrics.json`` are read back into one CSV, one row per configuration,
seed and epoch, under a header that records the hardware, torch, the resolved spec and the date
(the format is in the module docstring of :func:`write_table`).

With one thread on CPU a configuration's curve is deterministic, so a trial pruned at epoch ``e``
reports exactly the table's first ``e`` epochs of its configuration and seed
(tests/test_record_curves.py checks it on a real pruned trial). The ``seconds`` column is what each
epoch took on this machine, with whatever else it was running.

    python benchmarks/record_curves.py benchmarks/curves/quickstart_grid.yaml --workers 2
    python benchmarks/record_curves.py benchmarks/curves/training_grid.yaml
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _hardware import hardware  # benchmarks/, on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
FORMAT_LINE = "# mixer-sweeps recorded curves v1"
HEADER_PREFIX = "# header: "
CURVE_COLUMNS = ("val_acc", "val_loss", "seconds")
EXTRA_COLUMNS = ("images_per_s",)
"""Optional columns of the format, per epoch."""
# Settings that would make runs of one configuration differ in length or in their curve.
_UNSEARCHABLE = (
    "seed",
    "optim.epochs",
    "optim.early_stopping_patience",
    "train.threads",
    "train.device",
)


class RecordError(ValueError):
    """The study cannot give a table of full curves, or its runs do not make one (yet)."""


@dataclass(frozen=True)
class Curves:
    """A recorded table: its header and its rows (one per configuration, seed and epoch)."""

    header: dict[str, Any]
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]


def check_study(study_file: Any) -> None:
    """Refuse a study whose trials would not all train every epoch, deterministically.

    Raises:
        RecordError: naming the setting that is wrong and its value.
    """
    s = study_file.settings
    spec = study_file.base_spec
    problems = []
    if s.sampler.type != "grid":
        problems.append(f"study.sampler.type must be grid but got {s.sampler.type!r}")
    if s.pruner.type != "none":
        problems.append(f"study.pruner.type must be none but got {s.pruner.type!r}")
    if spec.optim.early_stopping_patience is not None:
        problems.append(
            "optim.early_stopping_patience must be null (every run trains every epoch) but got"
            f" {spec.optim.early_stopping_patience}"
        )
    if spec.train.threads != 1:
        problems.append(
            f"train.threads must be 1 (deterministic curves) but got {spec.train.threads}"
        )
    if spec.train.device != "cpu":
        problems.append(
            f"train.device must be cpu (bit-exact curves) but got {spec.train.device!r}"
        )
    searched = [d.path for d in study_file.space if d.path in _UNSEARCHABLE]
    for path in searched:
        problems.append(f"space.{path} cannot be searched: every run must be alike in it")
    grid = study_file.space.grid_size()
    if s.n_trials is not None and s.n_trials != grid:
        problems.append(
            f"study.n_trials must be null (the whole grid of {grid}) but got {s.n_trials}"
        )
    if problems:
        raise RecordError(f"{study_file.source}: " + "; ".join(problems))


def record(
    study_file: Any, *, workers: int = 2, results_dir: str | Path, console: Any = None
) -> Any:
    """Run the grid study to the end (or resume it); returns its :class:`StudyRun`."""
    from mixer_sweeps.study import run_study

    check_study(study_file)
    return run_study(
        study_file, workers=workers, results_dir=results_dir, console=console, retry_failed=True
    )


def read_curves(study_file: Any, study_dir: Path, trials: Sequence[Any], *, study: str) -> Curves:
    """The table of a finished grid study: every configuration's runs read back from its folder.

    ``trials`` are the study's Optuna trials; ``study`` the study file's path for the header.

    Raises:
        RecordError: configurations without a completed trial, or runs that are not whole.
    """
    from optuna.trial import TrialState

    from mixer_sweeps.results import records

    check_study(study_file)
    space = study_file.space
    paths = [d.path for d in space]
    points = space.grid_points()
    index = {_key(p, paths): i for i, p in enumerate(points)}
    done: dict[int, Any] = {}
    for trial in records(trials):
        if trial.state == TrialState.COMPLETE:
            config = index.get(_key(trial.params, paths))
            if config is None:
                raise RecordError(f"trial {trial.number} has params off the grid: {trial.params}")
            done.setdefault(config, trial)
    missing = len(points) - len(done)
    if missing:
        raise RecordError(
            f"{missing} of {len(points)} configurations have no completed trial yet;"
            " run again to train them (finished trials are kept)"
        )

    seeds = study_file.seeds
    replicated = len(seeds) > 1
    epochs = study_file.base_spec.optim.epochs
    metric = study_file.settings.metric
    rows: list[dict[str, Any]] = []
    for config, params in enumerate(points):
        trial = done[config]
        values = space.overrides(params)
        for seed in seeds:
            run_dir = study_dir / trial.run_dir
            if replicated:
                run_dir = run_dir / f"seed-{seed}"
            history = _read_history(run_dir, epochs)
            if seed == seeds[0]:
                _check_reported(trial, history, metric, run_dir)
            metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
            for epoch in history:
                row = {"config": config, "seed": seed, "epoch": epoch["epoch"]}
                row.update({path: values[path] for path in paths})
                row.update({c: epoch[c] for c in CURVE_COLUMNS})
                row["test_acc"] = metrics["test_acc"]
                row["num_params"] = metrics["num_params"]
                row.update({c: epoch[c] for c in EXTRA_COLUMNS})
                _check_finite(row, run_dir)
                rows.append(row)

    header = {
        "name": study_file.name,
        "date": datetime.date.today().isoformat(),
        "hardware": hardware(),
        "torch": _torch_version(),
        "python": platform.python_version(),
        "threads": study_file.base_spec.train.threads,
        "study": study,
        "spec": study_file.base_spec.model_dump(mode="json"),
        "params": paths,
        "seeds": seeds,
        "epochs": epochs,
        "metric": metric,
        "direction": study_file.settings.direction,
    }
    columns = ("config", "seed", "epoch", *paths, *CURVE_COLUMNS, "test_acc", "num_params")
    return Curves(header, (*columns, *EXTRA_COLUMNS), rows)


def write_table(path: Path, curves: Curves, *, note: str = "") -> int:
    """Write ``curves`` as CSV under its header (``pandas.read_csv(path, comment="#")`` reads
    it); returns the bytes written. Floats are written with ``repr``: they read back exactly."""
    from mixer_sweeps.training import atomic_write_text

    buffer = io.StringIO()
    buffer.write(FORMAT_LINE + "\n")
    buffer.write(HEADER_PREFIX + json.dumps(curves.header, separators=(", ", ": ")) + "\n")
    if note:
        buffer.write(f"# note: {note}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(curves.columns)
    for row in curves.rows:
        writer.writerow([_cell(row[c]) for c in curves.columns])
    text = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return len(text.encode("utf-8"))


def _key(params: dict[str, Any], paths: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    # The type too: 1, 1.0 and True are one dict key in Python but three choices in a study.
    return tuple((type(params[p]).__name__, params[p]) for p in paths)


def _read_history(run_dir: Path, epochs: int) -> list[dict[str, Any]]:
    """The run's ``history.csv`` (floats parsed exactly); it must hold epochs 1..``epochs``."""
    path = run_dir / "history.csv"
    if not path.is_file():
        raise RecordError(f"{path} is missing")
    with path.open(newline="", encoding="utf-8") as f:
        history = [
            {k: int(v) if k == "epoch" else float(v) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]
    found = [row["epoch"] for row in history]
    if found != list(range(1, epochs + 1)):
        raise RecordError(f"{path} has epochs {found} but the study trains 1..{epochs}")
    return history


def _check_reported(trial: Any, history: list[dict[str, Any]], metric: str, run_dir: Path) -> None:
    """The first seed's history is what the trial reported to Optuna, to the bit."""
    reported = dict(trial.intermediate)
    written = {row["epoch"]: row[metric] for row in history}
    if reported != written:
        raise RecordError(
            f"{run_dir}/history.csv differs from the {metric} trial {trial.number} reported"
            f" to the study ({written} vs {reported})"
        )


def _check_finite(row: dict[str, Any], run_dir: Path) -> None:
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise RecordError(f"{run_dir}: {key} is {value} in epoch {row['epoch']}")
    if row["test_acc"] is None:
        raise RecordError(f"{run_dir}/metrics.json has no test_acc")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bool | int | str):
        return str(value)
    from mixer_sweeps.spec import choice_label

    return str(choice_label(value))  # None and YAML mappings, as the study's labels write them


def _torch_version() -> str:
    import torch

    return torch.__version__


def _study_path(study: Path, table: Path) -> str:
    """``study`` relative to the table's folder (so a reader finds it from anywhere) when both
    are in the repository, else absolute."""
    study, folder = study.resolve(), table.resolve().parent
    if study.is_relative_to(REPO) and folder.is_relative_to(REPO):
        return os.path.relpath(study, folder)
    return str(study)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, help="A grid study file (see benchmarks/curves/).")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes [2].")
    parser.add_argument(
        "--results",
        type=Path,
        default=REPO / "results" / "curves",
        help="Where the study's runs go [results/curves]; a re-run resumes from there.",
    )
    parser.add_argument("--out", type=Path, help="The table [benchmarks/curves/<study name>.csv].")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1 but got {args.workers}")

    from mixer_sweeps._progress import output_console
    from mixer_sweeps.spec import SpecError, load_study_file

    try:
        study_file = load_study_file(args.study)
        check_study(study_file)
    except (SpecError, RecordError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or REPO / "benchmarks" / "curves" / f"{study_file.name}.csv"
    grid = study_file.space.grid_size()
    seeds = study_file.seeds
    epochs = study_file.base_spec.optim.epochs
    print(f"hardware: {hardware()}")
    print(
        f"recording {study_file.name}: {grid} configurations x {len(seeds)} seeds x {epochs}"
        f" epochs, {args.workers} workers, runs in {args.results / study_file.name}",
        flush=True,
    )
    started = time.monotonic()
    run = record(
        study_file, workers=args.workers, results_dir=args.results, console=output_console()
    )
    seconds = time.monotonic() - started
    print(f"study ran {seconds:.0f} s this time", flush=True)
    if run.interrupted:
        print("interrupted: run the same command again to go on", file=sys.stderr)
        return 130
    if run.fatal is not None:
        print(f"error: {run.fatal}", file=sys.stderr)
        return 1
    try:
        curves = read_curves(
            study_file, run.study_dir, run.trials, study=_study_path(args.study, out)
        )
    except RecordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    note = (
        f"seconds: wall time per epoch with {args.workers} workers of one thread each on a"
        " shared machine (other jobs ran beside them)"
    )
    size = write_table(out, curves, note=note)
    print(f"wrote {out}: {len(curves.rows)} rows, {size:,} bytes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
