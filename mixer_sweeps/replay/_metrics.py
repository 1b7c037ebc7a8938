"""What a replay achieved: epochs to a near-best configuration, and the regret of its winner.

(a) ``ratio``: the epochs all workers had spent when a trial first completed on a configuration
within half a point of the best one (both by the mean over the recorded seeds of a run's best
val accuracy), over the grid's epochs for one seed. Never reached within the budget: ``inf``.

(b) ``regret`` at a budget (a fraction of the grid's epochs): the best seed-mean test accuracy in
the table less the seed-mean test accuracy of the configuration the policy names as its winner
from the trials finished by then. Before any winner is named, the regret is the table's worst
(best test accuracy less the lowest).

The winner is named by a :data:`WinnerRule` over the finished trials' records, by default the
one ``sweeps best`` uses (:func:`best_named`); a noise-aware rule plugs in the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from optuna.study import StudyDirection

from mixer_sweeps.replay._clock import Trace
from mixer_sweeps.replay._table import NEAR_BEST, Curves
from mixer_sweeps.results import TrialRecord, ranked

BUDGETS = (0.05, 0.1, 0.25)
"""The budgets of metric (b), as fractions of the grid's epochs for one seed."""
CURVE_POINTS = 101

WinnerRule = Callable[[Sequence[TrialRecord]], TrialRecord | None]
"""Names a study's winner from its finished trials (None: no winner yet)."""


def best_named(trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """``sweeps best``'s winner: the complete trial with the best value (lowest number on ties)."""
    order = ranked(trials, StudyDirection.MAXIMIZE)
    return order[0] if order else None


@dataclass(frozen=True)
class Outcome:
    """The metrics of one replay."""

    ratio: float
    regrets: tuple[float, ...]
    """Metric (b) at each of :data:`BUDGETS`."""
    named: tuple[bool, ...]
    """Whether a winner had been named by each of :data:`BUDGETS`."""
    curve: np.ndarray
    """Regret at :func:`curve_x` (fractions of the grid's epochs, up to the budget)."""
    trials: int
    spent: int


def curve_x() -> np.ndarray:
    """Where the regret curve is measured: fractions of the grid's epochs up to the largest of
    :data:`BUDGETS` (a replay may stop once past it and (a) is reached)."""
    return np.linspace(0.0, max(BUDGETS), CURVE_POINTS)


def measure(
    curves: Curves,
    trace: Trace,
    *,
    rule: WinnerRule = best_named,
    tolerance: float = NEAR_BEST,
) -> Outcome:
    """The metrics of ``trace``."""
    grid = curves.grid_epochs
    targets = set(curves.near_best(tolerance).tolist())
    mean_test = curves.mean_test
    best_test, worst = float(mean_test.max()), float(mean_test.max() - mean_test.min())
    ratio = math.inf
    records: list[TrialRecord] = []
    config_of: dict[int, int] = {}
    steps: list[tuple[int, float]] = []
    for done in trace.finished:
        records.append(done.record)
        config_of[done.record.number] = done.config
        if (
            math.isinf(ratio)
            and done.record.state.name == "COMPLETE"
            and done.record.duplicate_of is None
            and done.config in targets
        ):
            ratio = done.spent / grid
        winner = rule(records)
        if winner is not None:
            steps.append((done.spent, best_test - float(mean_test[config_of[winner.number]])))
    spent_at = np.array([s for s, _ in steps], dtype=float)

    def regret_at(fraction: float) -> tuple[float, bool]:
        i = int(np.searchsorted(spent_at, fraction * grid + 1e-9, side="right")) - 1
        return (worst, False) if i < 0 else (steps[i][1], True)

    at_budgets = [regret_at(b) for b in BUDGETS]
    return Outcome(
        ratio=ratio,
        regrets=tuple(r for r, _ in at_budgets),
        named=tuple(n for _, n in at_budgets),
        curve=np.array([regret_at(x)[0] for x in curve_x()]),
        trials=len(trace.finished),
        spent=trace.spent,
    )


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile, interpolated between neighbours; ``inf`` where an infinite neighbour
    weighs in (a censored value has no finite position)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    a, b = ordered[low], ordered[high]
    if math.isinf(a) or (math.isinf(b) and position > low):
        return math.inf
    return a + (b - a) * (position - low) if high != low else a


@dataclass(frozen=True)
class Spread:
    """Median and interquartile range."""

    median: float
    q25: float
    q75: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(quantile(values, 0.5), quantile(values, 0.25), quantile(values, 0.75))

    def as_json(self) -> dict[str, float | None]:
        return {
            k: _finite(v)
            for k, v in (("median", self.median), ("q25", self.q25), ("q75", self.q75))
        }


def _finite(value: float) -> float | None:
    return None if math.isinf(value) or math.isnan(value) else value


@dataclass(frozen=True)
class Summary:
    """A policy's metrics over its replays, with ``workers`` simulated workers."""

    name: str
    workers: int
    replays: int
    ratio: Spread
    reached: float
    """Share of the replays that reached (a) within the budget."""
    regrets: tuple[Spread, ...]
    named: tuple[float, ...]
    """Per budget of (b), the share of replays that had named a winner."""
    curve: tuple[np.ndarray, np.ndarray, np.ndarray]
    """Median, 25th and 75th percentile of the regret at :func:`curve_x`."""
    trials: float
    """Mean trials per replay (twins included)."""
    seconds: float
    """Wall seconds the replays took."""
    description: str = ""

    @classmethod
    def of(
        cls,
        name: str,
        workers: int,
        outcomes: Sequence[Outcome],
        *,
        seconds: float,
        description: str = "",
    ) -> Summary:
        stacked = np.stack([o.curve for o in outcomes])
        return cls(
            name=name,
            workers=workers,
            replays=len(outcomes),
            ratio=Spread.of([o.ratio for o in outcomes]),
            reached=float(np.mean([not math.isinf(o.ratio) for o in outcomes])),
            regrets=tuple(Spread.of([o.regrets[i] for o in outcomes]) for i in range(len(BUDGETS))),
            named=tuple(
                float(np.mean([o.named[i] for o in outcomes])) for i in range(len(BUDGETS))
            ),
            curve=(
                np.median(stacked, axis=0),
                np.percentile(stacked, 25, axis=0),
                np.percentile(stacked, 75, axis=0),
            ),
            trials=float(np.mean([o.trials for o in outcomes])),
            seconds=seconds,
            description=description,
        )

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "workers": self.workers,
            "replays": self.replays,
            "ratio_median": _finite(self.ratio.median),
            "ratio_q25": _finite(self.ratio.q25),
            "ratio_q75": _finite(self.ratio.q75),
            "reached": self.reached,
            "regret": {
                f"{b:g}": {**spread.as_json(), "named": named}
                for b, spread, named in zip(BUDGETS, self.regrets, self.named, strict=True)
            },
            "trials_mean": self.trials,
            "seconds": round(self.seconds, 3),
        }
