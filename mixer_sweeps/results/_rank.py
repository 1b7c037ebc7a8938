"""The one ranking of a study's trials and configurations, best first in the study's direction."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from optuna.study import StudyDirection
from optuna.trial import TrialState

from mixer_sweeps.results._record import TrialRecord


def as_direction(direction: StudyDirection | str) -> StudyDirection:
    """``direction`` as Optuna's type; a name (``"minimize"``, as trials store it) too."""
    if isinstance(direction, StudyDirection):
        return direction
    try:
        return StudyDirection[str(direction).upper()]
    except KeyError:
        raise ValueError(f"direction must be maximize or minimize but got {direction!r}") from None


def _sign(direction: StudyDirection | str) -> float:
    return -1.0 if as_direction(direction) == StudyDirection.MAXIMIZE else 1.0


def ranked(trials: Iterable[TrialRecord], direction: StudyDirection | str) -> list[TrialRecord]:
    """The COMPLETE trials, best first by ``direction`` (the lower number first among ties).

    A trial that took a twin's outcome (same configuration, not trained again) is left out:
    its twin is listed.
    """
    complete = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and t.duplicate_of is None
    ]
    sign = _sign(direction)
    return sorted(complete, key=lambda t: (sign * t.value, t.number))  # type: ignore[operator]


def best_trial(
    trials: Iterable[TrialRecord], direction: StudyDirection | str | None = None
) -> TrialRecord | None:
    """The first of :func:`ranked`; without ``direction``, the one the trials recorded (the
    highest value unless they minimise their metric)."""
    trials = list(trials)
    if direction is None:
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        minimize = any(t.direction == "minimize" for t in complete)
        direction = StudyDirection.MINIMIZE if minimize else StudyDirection.MAXIMIZE
    order = ranked(trials, direction)
    return order[0] if order else None


def best_configurations(
    trials: Sequence[TrialRecord], *, direction: StudyDirection | str, top: int
) -> tuple[list[tuple[dict[str, Any], float, tuple[int, ...]]], int]:
    """The ``top`` best distinct configurations of the COMPLETE trials, best first.

    Each as (params, mean value, trial numbers); and how many distinct ones there were. Ties go
    to the configuration first tried.
    """
    groups: dict[str, list[TrialRecord]] = {}
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            key = json.dumps(dict(trial.params), sort_keys=True, default=repr)
            groups.setdefault(key, []).append(trial)
    sign = _sign(direction)
    configurations = sorted(
        (
            (dict(g[0].params), statistics.fmean(t.value for t in g), tuple(t.number for t in g))
            for g in groups.values()
        ),
        key=lambda c: (sign * c[1], min(c[2])),
    )
    return configurations[:top], len(groups)
