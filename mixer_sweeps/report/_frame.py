"""Every trial of a study as one pandas DataFrame row (the contents of ``trials.csv``)."""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd
import yaml
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps.report._load import StudyResults
from mixer_sweeps.study import Choices, choice_label
from mixer_sweeps.study._recovery import REASON_ATTR, retried_numbers


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
    other choices: ``null``, ``{num_ops: 2}``), ``val_acc`` (the objective: best val accuracy,
    mean over seeds; for a pruned trial the best it reached before it was stopped), ``test_acc``
    (mean over seeds), ``epochs``, ``seconds``, ``num_params``, ``seeds``, with replicates
    ``val_acc_seed<s>`` and ``test_acc_seed<s>`` per seed, ``queued_again`` (a failed attempt
    whose configuration ran again) and ``reason`` (how the trial ended).
    """
    retried = retried_numbers(results.trials)
    seeds = _seeds(results)
    rows = []
    for trial in results.trials:
        attrs = trial.user_attrs
        row: dict[str, Any] = {"number": trial.number, "state": trial.state.name}
        for dim in results.space:
            value = trial.params.get(dim.path)
            if dim.path in trial.params and not is_numeric(dim):
                value = value_label(value)
            row[dim.path] = value
        vals = attrs.get("best_val_accs") or []
        tests = [t for t in attrs.get("test_accs") or [] if t is not None]
        row["val_acc"] = _val_acc(trial, vals)
        row["test_acc"] = statistics.fmean(tests) if tests else None
        epochs = attrs.get("epochs")
        row["epochs"] = sum(epochs) if epochs else None
        row["seconds"] = attrs.get("seconds")
        row["num_params"] = attrs.get("num_params")
        row["seeds"] = " ".join(str(s) for s in attrs.get("seeds") or [])
        if len(seeds) > 1:
            own = attrs.get("seeds") or []
            by_seed = dict(zip(own, vals, strict=False))
            tests_by_seed = dict(zip(own, attrs.get("test_accs") or [], strict=False))
            for seed in seeds:
                row[f"val_acc_seed{seed}"] = by_seed.get(seed)
                row[f"test_acc_seed{seed}"] = tests_by_seed.get(seed)
        row["queued_again"] = trial.number in retried
        row["reason"] = attrs.get(REASON_ATTR, "")
        rows.append(row)
    columns = ["number", "state", *(d.path for d in results.space), "val_acc", "test_acc"]
    frame = pd.DataFrame(rows, columns=_columns(columns, seeds))
    for column in ("epochs", "num_params"):
        frame[column] = frame[column].astype("Int64")
    return frame


def seed_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("val_acc_seed")]


def _columns(head: list[str], seeds: list[int]) -> list[str]:
    per_seed = [f"{m}_seed{s}" for s in seeds for m in ("val_acc", "test_acc")]
    tail = ["epochs", "seconds", "num_params", "seeds", *per_seed, "queued_again", "reason"]
    return head + (tail if len(seeds) > 1 else [c for c in tail if c not in per_seed])


def _seeds(results: StudyResults) -> list[int]:
    seen: dict[int, None] = {}
    for trial in results.trials:
        for seed in trial.user_attrs.get("seeds") or []:
            seen[seed] = None
    return sorted(seen)


def _val_acc(trial: FrozenTrial, vals: list[float]) -> float | None:
    if trial.state == TrialState.COMPLETE:
        return trial.value
    if trial.state == TrialState.PRUNED and vals:
        return statistics.fmean(vals)
    return None
