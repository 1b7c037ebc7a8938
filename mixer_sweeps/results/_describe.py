"""A study told in words: the sentences that the runner, the live display, ``sweeps run``'s
summary, ``sweeps validate`` and the report share, so each is written once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.trial import TrialState

from mixer_sweeps.results._numbers import format_count, format_metric, format_value
from mixer_sweeps.results._record import TrialCounts, TrialRecord, count_trials, retried_numbers


def describe_counts(counts: TrialCounts) -> str:
    """``11 complete, 5 pruned, 0 failed``."""
    return f"{counts.complete} complete, {counts.pruned} pruned, {counts.failed} failed"


def short_names(paths: Sequence[str]) -> dict[str, str]:
    """Dotted paths by their last part where that is unambiguous (``optim.lr`` -> ``lr``)."""
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return {p: (s if last.count(s) == 1 else p) for p, s in zip(paths, last, strict=True)}


def format_params(params: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    names = names or {}
    return "  ".join(f"{names.get(k, k)}={format_value(v)}" for k, v in params.items())


def describe_best(trial: TrialRecord | None) -> str:
    """``trial 7, val_acc 0.9512, 138,506 params``: a best trial in one line, its numbers written
    as the report writes them; ``none yet`` without one."""
    if trial is None:
        return "none yet"
    parts = [f"trial {trial.number}", f"{trial.metric} {format_metric(trial.value)}"]
    if trial.num_params is not None:
        parts.append(f"{format_count(trial.num_params)} params")
    return ", ".join(parts)


def format_outcome(trial: TrialRecord) -> str:
    """How a finished trial ended: ``0.9512   12 ep   34.5 s``, its failure, or its twin."""
    value = "-" if trial.value is None else format_metric(trial.value)
    if trial.state.name == "FAIL":
        if trial.abandoned:  # Ctrl-C or a fault of the machine: `sweeps run` ends with it once
            return "stopped: not its configuration's fault (see below)"
        return trial.reason or "failed"
    if trial.duplicate_of is not None:
        return f"{value}  as trial {trial.duplicate_of} (same configuration, not trained again)"
    took = f"{trial.seconds:6.1f} s" if isinstance(trial.seconds, int | float) else ""
    return f"{value}  {format_epochs(trial):>3} ep {took}"


def format_epochs(trial: TrialRecord) -> str:
    """Epochs of one run (``2``; with replicates the mean over the seeds), not their sum."""
    if len(trial.epochs) < 2:
        return str(trial.epochs_trained)
    return format_value(round(sum(trial.epochs) / len(trial.epochs), 1))


def all_failed(trials: list[TrialRecord]) -> str | None:
    """One line when every trial of the study failed (re-queued attempts aside), else None."""
    counts = count_trials(trials)
    if not counts.finished or counts.failed < counts.finished:
        return None
    retried = retried_numbers(trials)
    last = [t for t in trials if t.state == TrialState.FAIL and t.number not in retried][-1]
    reason = (last.reason or "no reason recorded").strip().splitlines()[0]
    return (
        f"all {counts.failed} trials failed; trial {last.number}: {reason[:300]}"
        " (every trial's reason is in the report's trials.csv)"
    )
