"""The front of a multi-objective study: the complete trials no other beats on every objective,
the best trial per objective, and the hypervolume the front covers as the trials finish.

A trial's objective values are its Optuna ``values``, in the study's order. A pruned trial has
none: where a plot shows it, it stands at its costs (user attr ``costs``) and the best it reached
of the learning metric (:func:`objective_values`).

The hypervolume is Optuna's (``optuna._hypervolume``: its only public one is a plot of a whole
study, which cannot normalise): each objective is turned to a loss (``sign * value``) and scaled
so that the best value among the complete trials is 0 and the reference point 1, so the volume
is the share of that box the front dominates, whatever the units (accuracy, parameters).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.study import StudyDirection
from optuna.trial import TrialState

from mixer_sweeps.results._numbers import format_count, format_metric
from mixer_sweeps.results._objectives import Objective, learning_index
from mixer_sweeps.results._rank import _configuration, _trained, seed_scores
from mixer_sweeps.results._record import TrialRecord

WHOLE = ("params", "flops")
"""Costs that are counts."""
REFERENCE_MARGIN = 0.1
"""The default reference point lies this share of each objective's range past its worst value,
so that the worst trials still add to the volume."""


def _scored(trials: Iterable[TrialRecord], objectives: Sequence[Objective]) -> list[TrialRecord]:
    """The COMPLETE trials with a finite value for every objective, by number."""
    return sorted(
        (
            t
            for t in trials
            if t.state == TrialState.COMPLETE
            and len(t.values) == len(objectives)
            and all(math.isfinite(v) for v in t.values)
        ),
        key=lambda t: t.number,
    )


def _losses(trial: TrialRecord, objectives: Sequence[Objective]) -> tuple[float, ...]:
    return tuple(o.sign * v for o, v in zip(objectives, trial.values, strict=True))


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether losses ``a`` are no worse than ``b`` everywhere and better somewhere."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def pareto_front(
    trials: Iterable[TrialRecord], objectives: Sequence[Objective]
) -> list[TrialRecord]:
    """The COMPLETE trials that no other complete trial dominates, one per configuration (its
    first trial; a trial that took a twin's outcome is left out), cheapest first: ordered by
    the cost objectives, then by the learning metric, each best first."""
    scored = [t for t in _scored(trials, objectives) if t.duplicate_of is None]
    losses = {t.number: _losses(t, objectives) for t in scored}
    seen: set[str] = set()
    front = []
    for trial in scored:
        if any(dominates(losses[o.number], losses[trial.number]) for o in scored):
            continue
        key = _configuration(trial)
        if key not in seen:
            seen.add(key)
            front.append(trial)
    order = [i for i, o in enumerate(objectives) if o.is_cost]
    order += [i for i in range(len(objectives)) if i not in order]
    return sorted(front, key=lambda t: (*(losses[t.number][i] for i in order), t.number))


def front_configurations(
    trials: Iterable[TrialRecord], objectives: Sequence[Objective]
) -> tuple[list[tuple[dict[str, Any], float, tuple[int, ...]]], int]:
    """The front's configurations as :func:`best_configurations` gives the best ones, cheapest
    first: params, the seed-mean of the learning metric over every seed the configuration
    trained, and the numbers of its trials; and how many distinct complete ones there were."""
    trials = list(trials)
    scores = seed_scores(trials)
    numbers: dict[str, list[int]] = {}
    for trial in _trained(trials):
        numbers.setdefault(_configuration(trial), []).append(trial.number)
    found = []
    for trial in pareto_front(trials, objectives):
        key = _configuration(trial)
        found.append(
            (dict(trial.params), statistics.fmean(scores[key]), tuple(sorted(numbers[key])))
        )
    return found, len(scores)


def best_per_objective(
    trials: Iterable[TrialRecord], objectives: Sequence[Objective]
) -> list[tuple[Objective, TrialRecord | None]]:
    """Each objective with the complete trial best on it (the lower number among ties)."""
    scored = _scored(trials, objectives)
    best = []
    for i, objective in enumerate(objectives):
        ranked = sorted(scored, key=lambda t, i=i: (objective.sign * t.values[i], t.number))
        best.append((objective, ranked[0] if ranked else None))
    return best


def objective_values(
    trial: TrialRecord, objectives: Sequence[Objective]
) -> tuple[float | None, ...]:
    """A trial's value per objective: a complete trial's values; else its costs and the best it
    reached of the learning metric (the mean over seeds, else the best epoch it reported)."""
    if trial.state == TrialState.COMPLETE and len(trial.values) == len(objectives):
        return trial.values
    learning = learning_index(objectives)
    reached = trial.mean_best
    if reached is None and trial.intermediate:
        pick = max if objectives[learning].direction == StudyDirection.MAXIMIZE else min
        reached = pick(trial.intermediate.values())
    values: list[float | None] = []
    for i, objective in enumerate(objectives):
        if i == learning:
            values.append(reached)
        else:
            cost = trial.costs.get(objective.metric)
            if cost is None and objective.metric == "params":
                cost = trial.num_params
            values.append(None if cost is None else float(cost))
    return tuple(values)


@dataclass(frozen=True)
class Box:
    """What the hypervolume is normalised by: per objective, the best value among the complete
    trials (0) and the reference point (1), in the objectives' own units."""

    ideal: tuple[float, ...]
    reference: tuple[float, ...]


def hypervolume_box(
    trials: Iterable[TrialRecord],
    objectives: Sequence[Objective],
    reference: Sequence[float] | None = None,
) -> Box | None:
    """The box of :func:`hypervolume_history`; None without a complete trial. Without
    ``reference``, it lies :data:`REFERENCE_MARGIN` of each objective's range past the worst
    complete trial (past the worst value by that share of it when all are equal)."""
    scored = _scored(trials, objectives)
    if not scored:
        return None
    losses = [_losses(t, objectives) for t in scored]
    ideal, nadir = (tuple(f(col) for col in zip(*losses, strict=True)) for f in (min, max))
    if reference is None:
        ref_loss = []
        for low, high in zip(ideal, nadir, strict=True):
            pad = REFERENCE_MARGIN * (high - low) or REFERENCE_MARGIN * abs(high) or 1.0
            ref_loss.append(high + pad)
    else:
        if len(reference) != len(objectives):
            raise ValueError(
                f"the reference point has {len(reference)} values for {len(objectives)} objectives"
            )
        ref_loss = [o.sign * float(r) for o, r in zip(objectives, reference, strict=True)]
    return Box(
        ideal=tuple(o.sign * v for o, v in zip(objectives, ideal, strict=True)),
        reference=tuple(o.sign * v for o, v in zip(objectives, ref_loss, strict=True)),
    )


def hypervolume_history(
    trials: Iterable[TrialRecord],
    objectives: Sequence[Objective],
    reference: Sequence[float] | None = None,
) -> list[tuple[int, float]]:
    """After each complete trial (by number), the normalised hypervolume of the front of the
    complete trials so far: a share of the box :func:`hypervolume_box` gives, never falling.

    A trial past the reference point on some objective adds nothing.
    """
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    trials = list(trials)
    box = hypervolume_box(trials, objectives, reference)
    if box is None:
        return []
    signs = np.array([o.sign for o in objectives])
    ideal, ref = signs * np.array(box.ideal), signs * np.array(box.reference)
    scale = np.where(ref > ideal, ref - ideal, 1.0)
    unit = np.ones(len(objectives))
    front = np.empty((0, len(objectives)))
    history = []
    volume = 0.0
    for trial in _scored(trials, objectives):
        point = (signs * np.array(trial.values) - ideal) / scale
        dominated = (front <= point).all(axis=1).any()
        if (point < unit).all() and not dominated:
            front = np.vstack([front[~(point <= front).all(axis=1)], point])
            volume = float(compute_hypervolume(front, unit, assume_pareto=True))
        history.append((trial.number, volume))
    return history


def format_objective(metric: str, value: Any) -> str:
    """A cost as a count (``138,506`` params), a learning metric as the report writes it."""
    if metric in ("params", "flops", "images_per_s"):
        return format_count(value)
    return format_metric(value)


def objectives_summary(
    trial: TrialRecord, objectives: Sequence[Objective]
) -> dict[str, float | None]:
    """A trial's objectives by name, as ``sweeps best --json`` and the front table show them."""
    values = objective_values(trial, objectives)
    return {
        o.metric: int(v) if o.metric in WHOLE and v is not None and v.is_integer() else v
        for o, v in zip(objectives, values, strict=True)
    }


def describe_best_per(
    best: Sequence[tuple[Objective, TrialRecord | None]], objectives: Sequence[Objective]
) -> str:
    """``best val_acc 0.9000 (trial 3), best params 1,000 (trial 0)``: what
    :func:`best_per_objective` found, as status, the report and ``sweeps run`` write it."""
    parts = []
    for objective, trial in best:
        if trial is not None:
            value = objectives_summary(trial, objectives)[objective.metric]
            parts.append(
                f"best {objective.metric} {format_objective(objective.metric, value)}"
                f" (trial {trial.number})"
            )
    return ", ".join(parts)
