"""What a trial is, typed: the one record that the objective writes and every reader reads.

Optuna keeps a trial's outcome as string-keyed user attrs; this module is the only place that
knows those keys. The objective stores a :class:`TrialRecord`'s :meth:`~TrialRecord.to_attrs`,
and the live display, ``sweeps run``'s summary, the report and its CSV read trials back with
:meth:`TrialRecord.from_trial`. Each quantity keeps one name from the epoch loop to the report's
column header: ``val_acc`` per epoch, ``best_val_acc`` per run (a tuple over the replicate seeds
here), ``test_acc``, ``num_params``, ``epochs``, ``seconds``. A study whose metric is another
per-epoch field (``study.metric: val_loss``) keeps its best per run as ``best_val_loss``, beside
``best_val_acc``, with ``metric`` and ``direction``.

Re-queued trials carry the ``failed_trial`` / ``retry_history`` system attrs of
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback` (the links Optuna's own tools know), and
``crash_history``: the attempts among them whose worker died, which alone count towards the retry
limit. A running trial's ``worker`` user attr and ``heartbeat`` system attr tell whether it is
still alive (``_liveness``).
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps.results._attrs import StudyAttr, TrialAttr
from mixer_sweeps.results._objectives import (
    Objective,
    as_direction,
    learning_index,
    parse_objectives,
)
from mixer_sweeps.spec import SearchSpace

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class StudyRecord:
    """What a study keeps in storage beside its trials: the study file's fingerprint, its metric
    and direction, replicates, search space and the resolved base spec. A study stored by an
    older version may lack any but the direction.

    ``direction`` is the learning metric's; ``objectives`` are all of them in Optuna's order
    (one for a single-objective study)."""

    direction: StudyDirection
    fingerprint: str | None = None
    metric: str | None = None
    replicates: int | None = None
    space: SearchSpace | None = None
    """None for a study stored by an older version, or one whose stored space is damaged (its
    ``study.yaml`` holds it too)."""
    base: dict[str, Any] | None = None
    objectives: tuple[Objective, ...] = ()

    @property
    def learning(self) -> int:
        """Where the learning metric is among the objectives (and a trial's values)."""
        return learning_index(self.objectives)

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def to_attrs(self) -> dict[str, Any]:
        """The study's user attrs (the directions are Optuna's own; ``objectives`` when set)."""
        attrs: dict[str, Any] = {
            StudyAttr.FINGERPRINT: self.fingerprint,
            StudyAttr.METRIC: self.metric,
            StudyAttr.REPLICATES: self.replicates,
            StudyAttr.SPACE: None if self.space is None else self.space.describe(),
            StudyAttr.BASE: self.base,
        }
        if self.objectives:
            attrs[StudyAttr.OBJECTIVES] = [o.as_json() for o in self.objectives]
        return attrs

    @classmethod
    def from_study(cls, study: optuna.Study) -> StudyRecord:
        attrs = study.user_attrs
        space, base = attrs.get(StudyAttr.SPACE), attrs.get(StudyAttr.BASE)
        directions = [d.name.lower() for d in study.directions]
        metric = attrs.get(StudyAttr.METRIC)
        objectives = parse_objectives(attrs.get(StudyAttr.OBJECTIVES), directions, metric)
        learning = learning_index(objectives)
        return cls(
            direction=study.directions[learning],
            objectives=objectives,
            fingerprint=attrs.get(StudyAttr.FINGERPRINT),
            metric=metric if len(objectives) == 1 else objectives[learning].metric,
            replicates=attrs.get(StudyAttr.REPLICATES),
            space=_space(space),
            base=base if isinstance(base, dict) else None,
        )


def _space(described: Any) -> SearchSpace | None:
    try:
        return SearchSpace.from_description(described)
    except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        return None


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a study: its configuration, what its runs reached, and how it ended.

    Per-seed fields (``seeds``, ``best``, ``test_acc``, ``epochs``) hold one entry per replicate
    run that finished, in seed order; a plain study has one seed. Each number is held once: in a
    ``val_acc`` study :attr:`best_val_acc` is ``best`` itself.
    """

    number: int
    state: TrialState
    params: Mapping[str, Any] = field(default_factory=dict)
    value: float | None = None
    """The objective Optuna stores: the mean of ``best`` for a complete trial (the learning
    metric's value in a multi-objective study)."""
    values: tuple[float, ...] = ()
    """Every objective's value, in the study's order: ``(value,)`` in a single-objective study."""
    costs: Mapping[str, float] = field(default_factory=dict)
    """What the trial costs, known before it trains (``params``, ``flops``, ``images_per_s``)."""
    metric: str = "val_acc"
    """The study's metric, a per-epoch history field."""
    direction: StudyDirection = StudyDirection.MAXIMIZE
    best: tuple[float, ...] = ()
    """Per seed, the best of ``metric`` over the epochs (``best_val_acc`` for val_acc)."""
    seeds: tuple[int, ...] = ()
    val_acc: tuple[float, ...] = ()
    """Per seed, the best val_acc in a study of another metric (in a val_acc study: ``()``)."""
    test_acc: tuple[float | None, ...] = ()
    """None for a run that was not tested (pruned runs never see the test split)."""
    epochs: tuple[int, ...] = ()
    num_params: int | None = None
    seconds: float | None = None
    reason: str = ""
    """How the trial ended, for people; for a failure, the exception."""
    run_dir: str | None = None
    """The trial's folder, relative to the study folder (a duplicate points at its twin's)."""
    worker: Mapping[str, Any] | None = None
    retry_of: int | None = None
    """The failed attempt whose checkpoint this trial continues."""
    first_attempt: int | None = None
    duplicate_of: int | None = None
    """The finished trial with the same configuration whose result this one reuses."""
    resumed: Mapping[str, Any] | None = None
    abandoned: bool = False
    """Stopped for a reason that is not its configuration's fault (Ctrl-C, no data)."""
    crashed: bool = False
    """Failed by another worker because this one died (or went silent) during the trial."""
    retry_history: tuple[int, ...] = ()
    heartbeat: float | None = None
    """When the worker running the trial last stamped it (``time.time()``)."""
    intermediate: Mapping[int, float] = field(default_factory=dict)
    """The pruning metric reported per epoch by the first seed."""
    started: datetime.datetime | None = None
    duration: datetime.timedelta | None = None

    @property
    def best_val_acc(self) -> tuple[float, ...]:
        """Per seed, the best val_acc over the epochs, whatever the study's metric."""
        return self.best if self.metric == "val_acc" else self.val_acc

    @property
    def mean_best_val_acc(self) -> float | None:
        return statistics.fmean(self.best_val_acc) if self.best_val_acc else None

    @property
    def mean_best(self) -> float | None:
        """The mean over seeds of the best ``metric``: the value a pruned trial had reached."""
        return statistics.fmean(self.best) if self.best else None

    @property
    def objective(self) -> str:
        """The name of the trial's value: ``best_val_acc``, ``best_val_loss``, ..."""
        return f"best_{self.metric}"

    @property
    def mean_test_acc(self) -> float | None:
        tested = [t for t in self.test_acc if t is not None]
        return statistics.fmean(tested) if tested else None

    @property
    def epochs_trained(self) -> int:
        """Epochs of all seeds together, or the epochs reported so far while running."""
        return sum(self.epochs) if self.epochs else len(self.intermediate)

    @property
    def last_epoch(self) -> tuple[int, float] | None:
        """The latest reported epoch and its value, while the trial runs."""
        if not self.intermediate:
            return None
        epoch = max(self.intermediate)
        return epoch, self.intermediate[epoch]

    def to_attrs(self) -> dict[str, Any]:
        """The outcome as Optuna user attrs (JSON values), the keys :meth:`from_trial` reads."""
        attrs: dict[str, Any] = {
            TrialAttr.SEEDS: list(self.seeds),
            TrialAttr.BEST_VAL_ACC: list(self.best_val_acc),
            TrialAttr.TEST_ACC: list(self.test_acc),
            TrialAttr.EPOCHS: list(self.epochs),
            TrialAttr.REASON: self.reason,
            TrialAttr.METRIC: self.metric,
            TrialAttr.DIRECTION: self.direction.name.lower(),
        }
        if self.objective != TrialAttr.BEST_VAL_ACC:  # val_acc's best is ``best_val_acc`` itself
            attrs[self.objective] = list(self.best)
        optional = {
            TrialAttr.NUM_PARAMS: self.num_params,
            TrialAttr.SECONDS: self.seconds,
            TrialAttr.RUN_DIR: self.run_dir,
            TrialAttr.DUPLICATE_OF: self.duplicate_of,
        }
        attrs.update({k: v for k, v in optional.items() if v is not None})
        return attrs

    @classmethod
    def from_trial(cls, trial: FrozenTrial, learning: int = 0) -> TrialRecord:
        """The record of ``trial``; ``learning``: where the learning metric is in its values."""
        attrs = trial.user_attrs
        metric = attrs.get(TrialAttr.METRIC, "val_acc")
        values = tuple(float(v) for v in trial.values or ())
        costs = attrs.get(TrialAttr.COSTS)
        return cls(
            number=trial.number,
            state=trial.state,
            params=dict(trial.params),
            value=values[learning] if len(values) > learning else None,
            values=values,
            costs=dict(costs) if isinstance(costs, dict) else {},
            seeds=tuple(attrs.get(TrialAttr.SEEDS) or ()),
            metric=metric,
            direction=as_direction(attrs.get(TrialAttr.DIRECTION, "maximize")),
            best=tuple(attrs.get(f"best_{metric}") or ()),
            val_acc=() if metric == "val_acc" else tuple(attrs.get(TrialAttr.BEST_VAL_ACC) or ()),
            test_acc=tuple(attrs.get(TrialAttr.TEST_ACC) or ()),
            epochs=tuple(attrs.get(TrialAttr.EPOCHS) or ()),
            num_params=attrs.get(TrialAttr.NUM_PARAMS),
            seconds=attrs.get(TrialAttr.SECONDS),
            reason=attrs.get(TrialAttr.REASON, ""),
            run_dir=attrs.get(TrialAttr.RUN_DIR),
            worker=attrs.get(TrialAttr.WORKER),
            retry_of=attrs.get(TrialAttr.RETRY_OF),
            first_attempt=attrs.get(TrialAttr.FIRST_ATTEMPT),
            duplicate_of=attrs.get(TrialAttr.DUPLICATE_OF),
            resumed=attrs.get(TrialAttr.RESUMED),
            abandoned=bool(attrs.get(TrialAttr.ABANDONED, False)),
            crashed=bool(attrs.get(TrialAttr.CRASHED, False)),
            retry_history=tuple(trial.system_attrs.get(TrialAttr.RETRY_HISTORY) or ()),
            heartbeat=trial.system_attrs.get(TrialAttr.HEARTBEAT),
            intermediate=dict(trial.intermediate_values),
            started=trial.datetime_start,
            duration=trial.duration,
        )


def is_surplus(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is a claim that gave way (:data:`SURPLUS`) and never trained.

    A trial that trained always counts, whatever its marks: older versions copied the mark onto
    the retries of a surplus claim (which carry ``retry_history``; a claim that gives way never
    does), and those retries trained.
    """
    return (
        bool(trial.system_attrs.get(TrialAttr.SURPLUS))
        and TrialAttr.RETRY_HISTORY not in trial.system_attrs
        and trial.state not in (TrialState.COMPLETE, TrialState.PRUNED)
        and not trial.intermediate_values
    )


def records(trials: Iterable[FrozenTrial], learning: int = 0) -> list[TrialRecord]:
    """The trials that are trials of the study; ``learning``: where the learning metric is in
    their values (:attr:`StudyRecord.learning`)."""
    return [TrialRecord.from_trial(t, learning) for t in trials if not is_surplus(t)]


def retried_numbers(trials: Iterable[TrialRecord]) -> set[int]:
    """Numbers of the failed trials whose configuration was queued again."""
    return {n for t in trials for n in t.retry_history}


@dataclass(frozen=True)
class TrialCounts:
    """A study's trials by state; failed trials that were re-queued are counted apart."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0
    retried: int = 0

    @property
    def finished(self) -> int:
        """Trials that count towards ``n_trials``: COMPLETE, PRUNED and FAIL (not re-queued)."""
        return self.complete + self.pruned + self.failed


def count_trials(trials: Iterable[TrialRecord | FrozenTrial]) -> TrialCounts:
    items = [
        t if isinstance(t, TrialRecord) else TrialRecord.from_trial(t)
        for t in trials
        if isinstance(t, TrialRecord) or not is_surplus(t)
    ]
    retried = retried_numbers(items)
    counts = {state: 0 for state in TrialState}
    for trial in items:
        # An abandoned trial (Ctrl-C, a full disk) is not its configuration's failure either.
        if not (trial.state == TrialState.FAIL and (trial.number in retried or trial.abandoned)):
            counts[trial.state] += 1
    return TrialCounts(
        complete=counts[TrialState.COMPLETE],
        pruned=counts[TrialState.PRUNED],
        failed=counts[TrialState.FAIL],
        running=counts[TrialState.RUNNING],
        waiting=counts[TrialState.WAITING],
        retried=len(retried),
    )
