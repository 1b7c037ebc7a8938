"""A finished study as recorded curves: its storage, and each trial's ``history.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mixer_sweeps.replay._table import Curves, TableError, read_table


def read_study(target: str | Path, *, storage: str | None = None) -> Curves:
    """The curves of a finished study (``results/<study>``) whose trials all ran to the end.

    Each configuration's curves come from its trials' ``history.csv`` (one per seed with
    replicates); without them, from the values reported to the storage.

    Raises:
        TableError: a trial was pruned or stopped early, a point of the space is missing, ...
    """
    from optuna.trial import TrialState

    from mixer_sweeps.results import ReportError, load_results
    from mixer_sweeps.spec import SpecError

    try:
        found = load_results(target, storage=storage)
    except (ReportError, SpecError) as exc:
        raise TableError(str(exc).strip()) from None
    if not found.space.is_grid():
        raise TableError(
            f"{target}: the study's space has ranges without a step; a replay needs a grid"
        )
    trials = [t for t in found.trials if t.duplicate_of is None and t.state != TrialState.FAIL]
    unfinished = [t for t in trials if t.state != TrialState.COMPLETE]
    if unfinished:
        t = unfinished[0]
        raise TableError(
            f"{target}: trial {t.number} is {t.state.name}; a replay needs every trial trained"
            " to the end (a grid study with pruner type none)"
        )
    by_config: dict[tuple, Any] = {}
    for trial in trials:
        by_config.setdefault(tuple(sorted(trial.params.items(), key=lambda kv: kv[0])), trial)
    points = found.space.grid_points()
    keyed = [tuple(sorted(p.items(), key=lambda kv: kv[0])) for p in points]
    missing = [p for p, k in zip(points, keyed, strict=True) if k not in by_config]
    if missing:
        raise TableError(
            f"{target}: {len(missing)} of the grid's {len(points)} configurations have no"
            f" complete trial (e.g. {missing[0]}); run the study to the end first"
        )
    ordered = [by_config[k] for k in keyed]
    runs = [_trial_curves(found, t) for t in ordered]
    epochs = {v.shape[1] for v, _ in runs}
    if len(epochs) != 1:
        raise TableError(
            f"{target}: trials ran {sorted(epochs)} epochs; a replay needs every curve of one"
            " length (no early stopping)"
        )
    seeds = tuple(ordered[0].seeds) or (0,)
    val = np.stack([v for v, _ in runs])
    seconds = np.stack([s for _, s in runs])
    test = np.array(
        [[np.nan if a is None else a for a in (t.test_acc or (None,))] for t in ordered],
        dtype=float,
    )
    if not np.isfinite(test).all():
        raise TableError(f"{target}: some trials have no test accuracy")
    return Curves(
        name=found.name,
        source=str(target),
        space=found.space,
        configs=tuple(dict(t.params) for t in ordered),
        seeds=seeds,
        val_acc=val,
        seconds=seconds,
        test_acc=test,
        num_params=tuple(t.num_params for t in ordered),
        header={"study": str(found.layout.study_file), "sampler": "grid", "pruner": "none"},
    )


def _trial_curves(found: Any, trial: Any) -> tuple[np.ndarray, np.ndarray]:
    """``[seed, epoch]`` val accuracy and seconds of one trial."""
    import pandas as pd

    from mixer_sweeps.training import HISTORY_FILE

    seeds = list(trial.seeds) or [None]
    root = found.trial_dir(trial)
    vals, secs = [], []
    for seed in seeds:
        run_dir = root if len(seeds) == 1 else root / f"seed-{seed}"
        history = run_dir / HISTORY_FILE
        if history.is_file():
            frame = pd.read_csv(history)
            vals.append(frame["val_acc"].to_numpy(dtype=float))
            secs.append(frame["seconds"].to_numpy(dtype=float))
        elif len(seeds) == 1 and trial.intermediate:
            steps = sorted(trial.intermediate)
            vals.append(np.array([trial.intermediate[s] for s in steps], dtype=float))
            per_epoch = (trial.seconds or 0.0) / len(steps)
            secs.append(np.full(len(steps), per_epoch))
        else:
            raise TableError(f"trial {trial.number}: no {history} to read its curve from")
    lengths = {len(v) for v in vals}
    if len(lengths) != 1:
        raise TableError(f"trial {trial.number}: its seeds ran {sorted(lengths)} epochs")
    return np.stack(vals), np.stack(secs)


def load_source(source: str | Path, *, storage: str | None = None) -> Curves:
    """A table file, or a study's results folder (or study file) as :func:`read_study` reads."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() not in (".yaml", ".yml"):
        return read_table(path)
    if path.is_dir() or path.is_file():
        return read_study(path, storage=storage)
    raise TableError(f"{source} is neither a recorded table nor a study's results folder")
