"""Every trial of a study as one pandas DataFrame row (the contents of ``trials.csv``).

The columns carry the names the quantities have from the epoch loop on (see
:class:`~mixer_sweeps.study.TrialRecord`): ``best_val_acc``, ``test_acc``, ``num_params``, ...
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import yaml
from optuna.trial import TrialState

from mixer_sweeps.report._load import StudyResults
from mixer_sweeps.study import Choices, TrialRecord, choice_label, retried_numbers

OBJECTIVE = "best_val_acc"
"""The column of a trial's objective: its best val accuracy, the mean over seeds."""


def value_label(value: Any) -> str:
    """A param value as its study file writes it: ``null``, ``0.0003``, ``{num_ops: 2}``."""
    label = choice_label(value)
    if isinstance(label, str):
        return label
    return yaml.safe_dump(label, default_flow_style=True).removesuffix("\n...\n").strip()


def is_numeric(dim: Any) -> bool:
    """Whether a dimension's values are numbers (else the frame holds their labels)."""
    if not isinstance(dim, Choices):
        return True
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in dim.labels)


def trials_frame(results: StudyResults) -> pd.DataFrame:
    """One row per trial: number, state, each param, val/test accuracy, cost and replicates.

    Columns: ``number``, ``state`` (Optuna's), one per searched path (numbers, or the labels of
    other choices: ``null``, ``{num_ops: 2}``), ``best_val_acc`` (the objective: best val
    accuracy, mean over seeds; for a pruned trial the best it reached before it was stopped),
    ``test_acc`` (mean over seeds), ``epochs``, ``seconds``, ``num_params``, ``seeds``, with
    replicates ``best_val_acc_seed<s>`` and ``test_acc_seed<s>`` per seed, ``queued_again`` (a
    failed attempt whose configuration ran again) and ``reason`` (how the trial ended).
    """
    retried = retried_numbers(results.trials)
    seeds = _seeds(results.trials)
    rows = []
    for trial in results.trials:
        row: dict[str, Any] = {"number": trial.number, "state": trial.state.name}
        for dim in results.space:
            value = trial.params.get(dim.path)
            if dim.path in trial.params and not is_numeric(dim):
                value = value_label(value)
            row[dim.path] = value
        row[OBJECTIVE] = _objective(trial)
        row["test_acc"] = trial.mean_test_acc
        row["epochs"] = sum(trial.epochs) if trial.epochs else None
        row["seconds"] = trial.seconds
        row["num_params"] = trial.num_params
        row["seeds"] = " ".join(str(s) for s in trial.seeds)
        if len(seeds) > 1:
            vals = dict(zip(trial.seeds, trial.best_val_acc, strict=False))
            tests = dict(zip(trial.seeds, trial.test_acc, strict=False))
            for seed in seeds:
                row[f"{OBJECTIVE}_seed{seed}"] = vals.get(seed)
                row[f"test_acc_seed{seed}"] = tests.get(seed)
        row["queued_again"] = trial.number in retried
        row["reason"] = trial.reason
        rows.append(row)
    columns = ["number", "state", *(d.path for d in results.space), OBJECTIVE, "test_acc"]
    frame = pd.DataFrame(rows, columns=_columns(columns, seeds))
    for column in ("epochs", "num_params"):
        frame[column] = frame[column].astype("Int64")
    return frame


def seed_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(f"{OBJECTIVE}_seed")]


def _columns(head: list[str], seeds: list[int]) -> list[str]:
    per_seed = [f"{m}_seed{s}" for s in seeds for m in (OBJECTIVE, "test_acc")]
    tail = ["epochs", "seconds", "num_params", "seeds", *per_seed, "queued_again", "reason"]
    return head + (tail if len(seeds) > 1 else [c for c in tail if c not in per_seed])


def _seeds(trials: list[TrialRecord]) -> list[int]:
    return sorted({seed for trial in trials for seed in trial.seeds})


def _objective(trial: TrialRecord) -> float | None:
    if trial.state == TrialState.COMPLETE:
        return trial.value
    if trial.state == TrialState.PRUNED:
        return trial.mean_best_val_acc
    return None
