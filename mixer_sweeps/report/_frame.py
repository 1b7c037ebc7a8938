"""Every trial of a study as one pandas DataFrame row (the contents of ``trials.csv``).

The columns carry the names the quantities have from the epoch loop on (see
:class:`~mixer_sweeps.study.TrialRecord`): ``best_val_acc``, ``test_acc``, ``num_params``, ...
"""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd
import yaml
from optuna.trial import TrialState

from mixer_sweeps.results import StudyResults, TrialRecord, retried_numbers
from mixer_sweeps.spec import Choices, choice_label

OBJECTIVE = "best_val_acc"
"""The column of a trial's best val accuracy, the mean over seeds: the objective of a study of
val_acc. A study of another metric has its objective in a column of its own (``best_val_loss``,
see :func:`objective_column`) before this one; the tables and plots stay on val accuracy."""


def objective_column(results: StudyResults) -> str:
    """The column of the study's objective: ``best_<metric>``."""
    return f"best_{results.settings.metric}"


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
    other choices: ``null``, ``{num_ops: 2}``), ``best_<metric>`` (the objective: the best of
    the study's metric, mean over seeds; for a pruned trial the best it reached before it was
    stopped), ``best_val_acc`` when the metric is another,
    ``test_acc`` (mean over seeds), ``epochs`` (per run: mean over seeds), ``seconds``,
    ``num_params``, ``seeds``, with replicates ``best_val_acc_seed<s>`` and ``test_acc_seed<s>``
    per seed, ``queued_again`` (a failed attempt whose configuration ran again) and ``reason``
    (how the trial ended).
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
        objective = objective_column(results)
        row[objective] = _objective(trial)
        if objective != OBJECTIVE:
            row[OBJECTIVE] = trial.mean_best_val_acc
        row["test_acc"] = trial.mean_test_acc
        row["epochs"] = statistics.fmean(trial.epochs) if trial.epochs else None  # per run
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
    objectives = dict.fromkeys([objective_column(results), OBJECTIVE])
    columns = ["number", "state", *(d.path for d in results.space), *objectives, "test_acc"]
    frame = pd.DataFrame(rows, columns=_columns(columns, seeds))
    epochs = frame["epochs"].astype("Float64")
    whole = (epochs.dropna() % 1 == 0).all()  # seeds that stopped apart give a fraction
    frame["epochs"] = epochs.astype("Int64") if whole else epochs.round(1)
    frame["num_params"] = frame["num_params"].astype("Int64")
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
        return trial.mean_best
    return None
