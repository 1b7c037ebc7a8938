"""The simulated clock: N asynchronous workers training recorded curves, one event at a time.

Each epoch of a trial takes its recorded seconds. Epoch ends wait in one queue ordered by
simulated time (ties in the order they were queued), and each is delivered to the searcher (its
report, the pruner's verdict) only when it is the earliest event left, so a pruner judging a
report sees exactly the reports of other trials that ended before it: never one from the
simulated future. A worker whose trial ends (complete or pruned) asks for its next trial at that
same instant.

The searcher behind the workers is a :class:`Driver`: Optuna's sampler and pruner (``_optuna``)
or a peer's ask/tell optimiser (``_peers``). Epochs are counted as they end; the replay stops
once the budget of epochs is spent, which cuts the trials still running.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from optuna.trial import TrialState

from mixer_sweeps.replay._table import Curves
from mixer_sweeps.results import TrialRecord


@dataclass(eq=False)
class Job:
    """One trial to train: configuration ``config`` on ``seeds`` (indices into the recorded
    seeds), ``epochs`` epochs each; only the first seed reports (as the objective does)."""

    number: int
    config: int
    seeds: tuple[int, ...]
    epochs: int
    handle: Any = None
    """The driver's own handle (an Optuna trial, a peer's job)."""
    seed_pos: int = 0
    epoch: int = 0
    """Epochs done on the seed at ``seed_pos``."""
    reported: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Reuse:
    """A trial that took a finished twin's outcome without training (``skip_duplicates``)."""

    record: TrialRecord
    config: int


@dataclass(frozen=True)
class Wait:
    """A trial that waits for the running trial ``twin`` (same configuration) to end, then
    takes its outcome."""

    number: int
    twin: int
    config: int
    handle: Any = None


class Driver(Protocol):
    """The searcher the workers ask: what to train next, whether to stop a trial, its end."""

    def ask(self, worker: int) -> Job | Reuse | Wait | None:
        """The next trial of ``worker``; None when it has nothing more to run."""

    def report(self, job: Job, epoch: int, value: float) -> bool:
        """``job``'s first seed reached ``value`` at ``epoch``; True stops (prunes) it."""

    def finish(self, job: Job, pruned: bool, best: tuple[float, ...]) -> TrialRecord:
        """``job`` ended; ``best``: per seed trained, the best value over its epochs."""

    def take(self, wait: Wait, twin: TrialRecord) -> TrialRecord:
        """The waiting trial ends as its twin did."""


@dataclass(frozen=True)
class Finished:
    """A trial that ended, with the epochs all workers had spent by then."""

    spent: int
    time: float
    config: int
    record: TrialRecord


@dataclass
class Trace:
    """What a replay did, in simulated-time order."""

    finished: list[Finished] = field(default_factory=list)
    reports: list[tuple[float, int, int, float]] = field(default_factory=list)
    """(time, trial number, epoch, value) in the order the searcher received them."""
    spent: int = 0
    time: float = 0.0

    def end(self, time: float, config: int, record: TrialRecord) -> None:
        self.finished.append(Finished(self.spent, time, config, record))


def simulate(
    curves: Curves,
    driver: Driver,
    *,
    workers: int,
    budget: int,
    enough: Callable[[Trace], bool] | None = None,
) -> Trace:
    """Run ``workers`` simulated workers against ``driver`` until ``budget`` epochs are spent,
    no worker has anything left to run, or ``enough`` says (after an epoch and all it led to)
    that nothing the replay measures can change any more."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1 but got {workers}")
    seconds, val = curves.seconds, curves.val_acc
    queue: list[tuple[float, int, int, Job]] = []
    order = itertools.count()
    parked: dict[int, list[tuple[int, Wait]]] = {}
    trace = Trace()

    def start(job: Job, worker: int, now: float) -> None:
        s = job.seeds[job.seed_pos]
        took = float(seconds[job.config, s, job.epoch])
        heapq.heappush(queue, (now + took, next(order), worker, job))

    def begin(worker: int, now: float) -> None:
        while True:
            got = driver.ask(worker)
            if got is None:
                return
            if isinstance(got, Reuse):
                trace.end(now, got.config, got.record)
                continue
            if isinstance(got, Wait):
                parked.setdefault(got.twin, []).append((worker, got))
                return
            start(got, worker, now)
            return

    for worker in range(workers):
        begin(worker, 0.0)
    while queue and trace.spent < budget and not (enough is not None and enough(trace)):
        now, _, worker, job = heapq.heappop(queue)
        trace.spent += 1
        trace.time = now
        s = job.seeds[job.seed_pos]
        value = float(val[job.config, s, job.epoch])
        job.epoch += 1
        stop = False
        if job.seed_pos == 0:
            job.reported.append(value)
            trace.reports.append((now, job.number, job.epoch, value))
            stop = driver.report(job, job.epoch, value)
        if not stop:
            if job.epoch < job.epochs:
                start(job, worker, now)
                continue
            if job.seed_pos + 1 < len(job.seeds):
                job.seed_pos += 1
                job.epoch = 0
                start(job, worker, now)
                continue
        if stop:
            best: tuple[float, ...] = (max(job.reported),)
        else:
            best = tuple(float(np.max(val[job.config, k, : job.epochs])) for k in job.seeds)
        record = driver.finish(job, stop, best)
        trace.end(now, job.config, record)
        for waiting, wait in parked.pop(job.number, []):
            trace.end(now, wait.config, driver.take(wait, record))
            begin(waiting, now)
        begin(worker, now)
    return trace


class Settled:
    """``enough`` for :func:`simulate`: a trial has completed on one of ``targets`` and more
    than ``horizon`` epochs are spent, so the replay's metrics are all known."""

    def __init__(self, targets: set[int], horizon: float) -> None:
        self.targets = targets
        self.horizon = horizon
        self.found = False
        self._seen = 0

    def __call__(self, trace: Trace) -> bool:
        if not self.found:
            for done in trace.finished[self._seen :]:
                if done.record.state == TrialState.COMPLETE and done.config in self.targets:
                    self.found = True
                    break
            self._seen = len(trace.finished)
        return self.found and trace.spent > self.horizon
