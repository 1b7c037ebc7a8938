"""The one ranking of a study's trials and configurations, best first in the study's direction.

The winner rule that ``sweeps best``, the report and ``sweeps retrain`` share: a configuration
scores the mean over every seed its trials trained (replicates, confirming seeds, the same
params trained again), and each of its trials ranks by that score, so a lucky single seed never
outranks the mean of the seeds its own configuration trained. Trials that took a twin's outcome
without training add nothing.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from optuna.study import StudyDirection
from optuna.trial import TrialState

from mixer_sweeps.results._record import TrialRecord


def _sign(direction: StudyDirection) -> float:
    return -1.0 if direction == StudyDirection.MAXIMIZE else 1.0


def _configuration(trial: TrialRecord) -> str:
    return json.dumps(dict(trial.params), sort_keys=True, default=repr)


def _trained(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and t.duplicate_of is None
    ]


def seed_scores(trials: Iterable[TrialRecord]) -> dict[str, list[float]]:
    """Per configuration (its params as JSON), the score of every seed its COMPLETE trials
    trained: each seed's best value where the trial recorded them, else the trial's value."""
    scores: dict[str, list[float]] = {}
    for trial in _trained(trials):
        seeds = trial.best or (trial.value,)
        scores.setdefault(_configuration(trial), []).extend(float(v) for v in seeds)  # type: ignore[arg-type]
    return scores


def ranked(trials: Iterable[TrialRecord], direction: StudyDirection) -> list[TrialRecord]:
    """The COMPLETE trials, best first by their configuration's seed-mean (:func:`seed_scores`)
    in ``direction``; the lower number first among ties.

    A trial that took a twin's outcome (same configuration, not trained again) is left out:
    its twin is listed.
    """
    trials = list(trials)
    means = {key: statistics.fmean(v) for key, v in seed_scores(trials).items()}
    sign = _sign(direction)
    return sorted(_trained(trials), key=lambda t: (sign * means[_configuration(t)], t.number))


def best_trial(
    trials: Iterable[TrialRecord], direction: StudyDirection | None = None
) -> TrialRecord | None:
    """The first of :func:`ranked`; without ``direction``, the one the trials recorded (the
    highest value unless they minimise their metric)."""
    trials = list(trials)
    if direction is None:
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        minimize = any(t.direction == StudyDirection.MINIMIZE for t in complete)
        direction = StudyDirection.MINIMIZE if minimize else StudyDirection.MAXIMIZE
    order = ranked(trials, direction)
    return order[0] if order else None


def best_configurations(
    trials: Sequence[TrialRecord], *, direction: StudyDirection, top: int
) -> tuple[list[tuple[dict[str, Any], float, tuple[int, ...]]], int]:
    """The ``top`` best distinct configurations of the COMPLETE trials, best first, as
    :func:`ranked` orders them.

    Each as (params, seed-mean value, numbers of the trials that trained it); and how many
    distinct ones there were.
    """
    scores = seed_scores(trials)
    groups: dict[str, list[TrialRecord]] = {}
    for trial in ranked(trials, direction):
        groups.setdefault(_configuration(trial), []).append(trial)
    configurations = [
        (dict(g[0].params), statistics.fmean(scores[key]), tuple(sorted(t.number for t in g)))
        for key, g in groups.items()
    ]
    return configurations[:top], len(groups)
