"""What a multi-objective replay achieved: the hypervolume of its front against epochs spent.

The objectives are val accuracy (the learning metric, maximised) and costs the table records
for every configuration (``params``, from its ``num_params`` column, minimised). A trial that
completes on configuration ``c`` adds the point (seed-mean val accuracy of ``c`` over the
recorded seeds, its params): the truth about what the search found, as metric (a) of a
single-objective replay takes it, not the one noisy seed the search itself was told.

Both objectives are normalised to losses in [0, 1], 0 the table's best value and 1 its worst,
and the hypervolume is taken against the reference point (1, 1), the worst val accuracy and the
largest params of the table, with Optuna's own implementation. The table's front (every
configuration) bounds it: :attr:`FrontScale.best`.

Per replay: the hypervolume after each trial ends (a step function of epochs spent, never
falling), the final hypervolume, and the epochs spent when it first came within 1% of the
reference search's final hypervolume in the same replay (the unpruned search: same noise, see
``_run``), over the epochs that search spent in all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from optuna.trial import TrialState

from mixer_sweeps.replay._clock import Trace
from mixer_sweeps.replay._metrics import Spread, _finite
from mixer_sweeps.replay._table import Curves

WITHIN = 0.01
"""How close to the reference search's final hypervolume counts as reached: 1%."""
CURVE_POINTS = 101
LEARNING = ("val_acc", "maximize")
COSTS = {"params": "minimize", "num_params": "minimize"}
"""The costs a table records per configuration, by name (``num_params`` is its column)."""

Objectives = tuple[tuple[str, str], ...]


class ObjectivesError(ValueError):
    """``--objectives`` names a metric the table does not record, or is malformed."""


def parse_objectives(text: str, curves: Curves | None = None) -> Objectives:
    """``val_acc,params`` as ((metric, direction), ...); costs checked against ``curves``."""
    names = [n.strip() for n in text.split(",")]
    if not names or names[0] != LEARNING[0] or any(not n for n in names):
        raise ObjectivesError(
            f"--objectives {text!r}: give val_acc (the per-epoch learning metric) first, then"
            f" costs, comma-separated: e.g. val_acc,num_params"
        )
    objectives = [LEARNING]
    for name in names[1:]:
        if name not in COSTS:
            raise ObjectivesError(
                f"--objectives {text!r}: {name!r} is not a cost a table records; known:"
                f" {', '.join(COSTS)}"
            )
        metric = "params" if name == "num_params" else name
        if any(metric == m for m, _ in objectives):
            raise ObjectivesError(f"--objectives {text!r}: {name} is given twice")
        objectives.append((metric, COSTS[name]))
    if curves is not None and len(objectives) > 1:
        if not curves.num_params or None in curves.num_params:
            raise ObjectivesError(
                f"--objectives {text!r}: {curves.source} has no num_params for every configuration"
            )
        if len(set(curves.num_params)) < 2:
            raise ObjectivesError(
                f"--objectives {text!r}: every configuration of {curves.source} has"
                f" {curves.num_params[0]} params: there is no front to find"
            )
    return tuple(objectives)


@dataclass(frozen=True)
class FrontScale:
    """Each configuration's normalised losses and the table's own hypervolume."""

    losses: np.ndarray
    """``[config, objective]`` in [0, 1]: 0 is the table's best, 1 its worst."""
    best: float
    """The hypervolume of every configuration: what a search can reach at most."""

    @classmethod
    def of(cls, curves: Curves, objectives: Objectives) -> FrontScale:
        columns = [curves.mean_val]
        for metric, _ in objectives[1:]:
            assert metric == "params", metric
            columns.append(np.asarray(curves.num_params, dtype=float))
        raw = np.stack(columns, axis=1)
        signs = np.array([-1.0 if d == "maximize" else 1.0 for _, d in objectives])
        loss = raw * signs
        low, high = loss.min(axis=0), loss.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        losses = (loss - low) / span
        return cls(losses=losses, best=hypervolume(losses))


def hypervolume(losses: np.ndarray) -> float:
    """Optuna's hypervolume of normalised losses ``[point, objective]`` against (1, ..., 1)."""
    from optuna._hypervolume import compute_hypervolume

    points = np.asarray(losses, dtype=float)
    if len(points) == 0:
        return 0.0
    return float(compute_hypervolume(points, np.ones(points.shape[1])))


@dataclass(frozen=True)
class FrontOutcome:
    """The hypervolume history of one replay."""

    spent: np.ndarray
    """Epochs spent when the hypervolume changed (ascending)."""
    volume: np.ndarray
    """The hypervolume from each ``spent`` on."""
    total: int
    """Epochs the replay spent in all."""
    trials: int
    complete: int
    """Trials that completed on a configuration not completed before."""

    @property
    def final(self) -> float:
        return float(self.volume[-1]) if len(self.volume) else 0.0

    def at(self, epochs: float) -> float:
        """The hypervolume once ``epochs`` were spent."""
        i = int(np.searchsorted(self.spent, epochs + 1e-9, side="right")) - 1
        return 0.0 if i < 0 else float(self.volume[i])

    def reached(self, target: float) -> float:
        """Epochs spent when the hypervolume first reached ``target``; ``inf`` if never."""
        hits = np.flatnonzero(self.volume >= target - 1e-12)
        return float(self.spent[hits[0]]) if len(hits) else math.inf


def measure_front(scale: FrontScale, trace: Trace) -> FrontOutcome:
    """The hypervolume after each trial of ``trace`` that completed a new configuration."""
    found: list[int] = []
    seen: set[int] = set()
    spent, volume = [], []
    for done in trace.finished:
        if done.record.state != TrialState.COMPLETE or done.config in seen:
            continue
        seen.add(done.config)
        found.append(done.config)
        spent.append(done.spent)
        volume.append(hypervolume(scale.losses[found]))
    return FrontOutcome(
        spent=np.array(spent, dtype=float),
        volume=np.array(volume, dtype=float),
        total=trace.spent,
        trials=len(trace.finished),
        complete=len(found),
    )


@dataclass(frozen=True)
class FrontSummary:
    """A policy's hypervolume over its replays, with ``workers`` simulated workers."""

    name: str
    workers: int
    outcomes: tuple[FrontOutcome, ...]
    seconds: float
    description: str = ""
    grid_epochs: int = 1
    budget: float = 1.0
    """Epochs, as a fraction of ``grid_epochs``, that the replays could spend."""

    @property
    def replays(self) -> int:
        return len(self.outcomes)

    @property
    def final(self) -> Spread:
        return Spread.of([o.final for o in self.outcomes])

    @property
    def spent(self) -> Spread:
        return Spread.of([o.total / self.grid_epochs for o in self.outcomes])

    def curve_x(self) -> np.ndarray:
        return np.linspace(0.0, self.budget, CURVE_POINTS)

    def curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Median, 25th and 75th percentile of the hypervolume at :meth:`curve_x`."""
        x = self.curve_x() * self.grid_epochs
        stacked = np.array([[o.at(e) for e in x] for o in self.outcomes])
        return (
            np.median(stacked, axis=0),
            np.percentile(stacked, 25, axis=0),
            np.percentile(stacked, 75, axis=0),
        )

    def ratios(self, reference: FrontSummary) -> list[float]:
        """Per replay, epochs to within :data:`WITHIN` of ``reference``'s final hypervolume in
        that replay, over the epochs ``reference`` spent in it (``inf``: never)."""
        if reference.replays != self.replays:
            raise ValueError(f"{self.name} and {reference.name} ran different replays")
        return [
            mine.reached((1 - WITHIN) * theirs.final) / max(1, theirs.total)
            for mine, theirs in zip(self.outcomes, reference.outcomes, strict=True)
        ]

    def as_json(self, reference: FrontSummary | None, scale: FrontScale) -> dict:
        ratios = None if reference is None else self.ratios(reference)
        return {
            "name": self.name,
            "description": self.description,
            "workers": self.workers,
            "replays": self.replays,
            "hypervolume": self.final.as_json(),
            "hypervolume_share": Spread.of([o.final / scale.best for o in self.outcomes]).as_json(),
            "reference": None if reference is None else reference.name,
            "ratio": None if ratios is None else Spread.of(ratios).as_json(),
            "reached": None if ratios is None else reached_share(ratios),
            "epochs": self.spent.as_json(),
            "trials_mean": float(np.mean([o.trials for o in self.outcomes])),
            "seconds": round(self.seconds, 3),
            "curve": {
                "x": [round(float(v), 4) for v in self.curve_x()],
                "median": [_finite(float(v)) for v in self.curve()[0]],
            },
        }


def reference_of(
    summaries: Sequence[FrontSummary], unpruned: Sequence[str]
) -> dict[int, FrontSummary]:
    """Per worker count, the first of ``unpruned`` (policies without a pruner) replayed."""
    found: dict[int, FrontSummary] = {}
    for name in unpruned:
        for s in summaries:
            if s.name == name:
                found.setdefault(s.workers, s)
    return found


def reached_share(ratios: Sequence[float]) -> float:
    """The share of replays that reached the reference's hypervolume at all."""
    return float(np.mean([not math.isinf(r) for r in ratios]))
