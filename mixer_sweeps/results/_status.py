"""Where a study stands, read from its storage alone: what ``sweeps status`` shows.

Everything comes from the trials in the storage, so workers in other folders or on other hosts
count as much as local ones. A worker is alive while one of its RUNNING trials passes
:func:`~mixer_sweeps.study._liveness.why_abandoned` (a fresh heartbeat, a live process); a RUNNING
trial whose worker is gone stays RUNNING in the storage (the next ``sweeps run`` fails and queues
it again) and is counted apart as ``orphaned``.

The ETA is the work left over the live workers: the trials still to start (``n_trials`` less the
finished and the running ones) times the mean duration of a finished trial, plus what the running
trials have left of that mean. With a ``timeout`` it is at most the time left of it, counted from
the first trial's start (a study run again restarts its timeout, which the storage does not
record). It is unknown before a trial has finished, with no live worker, or with neither budget.
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.study import StudyDirection
from optuna.trial import TrialState

from mixer_sweeps.results._front import best_per_objective, objectives_summary, pareto_front
from mixer_sweeps.results._layout import StudyLayout
from mixer_sweeps.results._objectives import Objective
from mixer_sweeps.results._rank import ranked
from mixer_sweeps.results._record import TrialCounts, TrialRecord, count_trials
from mixer_sweeps.study import WorkerIdentity, why_abandoned


@dataclass(frozen=True)
class StudyStatus:
    """A study's progress at one moment."""

    name: str
    counts: TrialCounts
    n_trials: int | None
    timeout: float | None
    direction: StudyDirection
    best: TrialRecord | None
    workers: tuple[str, ...]
    """The live workers (``host:pid``) running this study's trials now."""
    orphaned: int
    """RUNNING trials whose worker is gone (queued again by the next ``sweeps run``)."""
    elapsed_s: float | None
    """From the first trial's start to now (to the last trial's end once nothing runs)."""
    eta_s: float | None
    eta_note: str
    """How the ETA was found, or why it is unknown."""
    trial_s: float | None = None
    """Mean duration of a finished trial."""
    study_dir: str = ""
    """The study's folder, as the results folder was given."""
    storage: str = ""
    """Where its storage is, for people (a journal file, a database URL without password)."""
    metric: str = "val_acc"
    """The study's metric (the learning metric of a multi-objective study)."""
    replicates: int = 1
    objectives: tuple[Objective, ...] = ()
    """With several objectives, the study's: then :attr:`front` and :attr:`best_per` are set."""
    front: tuple[TrialRecord, ...] = ()
    best_per: tuple[tuple[Objective, TrialRecord | None], ...] = ()
    """Each objective and the complete trial best on it."""

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def front_json(self) -> dict[str, Any]:
        """The front and the best per objective, as ``sweeps status --json`` shows them."""
        return {
            "objectives": [o.as_json() for o in self.objectives],
            "front": [
                {
                    "trial": t.number,
                    "objectives": objectives_summary(t, self.objectives),
                    "params": dict(t.params),
                }
                for t in self.front
            ],
            "best_per_objective": {
                o.metric: None
                if t is None
                else {"trial": t.number, "value": objectives_summary(t, self.objectives)[o.metric]}
                for o, t in self.best_per
            },
        }

    @property
    def done(self) -> bool:
        return self.eta_s == 0.0 and not self.counts.running

    def as_json(self) -> dict[str, Any]:
        c = self.counts
        best = self.best
        return {
            "name": self.name,
            "study_dir": self.study_dir,
            "storage": self.storage,
            "metric": self.metric,
            "replicates": self.replicates,
            "n_trials": self.n_trials,
            "timeout": self.timeout,
            "direction": self.direction.name.lower(),
            "counts": {
                "complete": c.complete,
                "pruned": c.pruned,
                "failed": c.failed,
                "running": c.running,
                "waiting": c.waiting,
                "finished": c.finished,
                "retried": c.retried,
            },
            "best": None
            if best is None
            else {"trial": best.number, "value": best.value, "params": dict(best.params)},
            **(self.front_json() if self.multi else {}),
            "workers_alive": len(self.workers),
            "workers": list(self.workers),
            "orphaned": self.orphaned,
            "elapsed_s": _round(self.elapsed_s),
            "eta_s": _round(self.eta_s),
            "eta_note": self.eta_note,
            "trial_s": _round(self.trial_s),
            "done": self.done,
        }


def study_status(
    name: str,
    trials: Sequence[TrialRecord],
    *,
    direction: StudyDirection,
    n_trials: int | None,
    timeout: float | None,
    now: datetime.datetime | None = None,
    objectives: tuple[Objective, ...] = (),
    study_dir: str = "",
    storage: str = "",
    metric: str = "val_acc",
    replicates: int = 1,
) -> StudyStatus:
    """The status of study ``name`` from its ``trials`` (``now`` defaults to the local time,
    which is what Optuna stamps trials with); with several ``objectives``, its front too. The
    rest is carried to :class:`StudyStatus` as it is."""
    now = now or datetime.datetime.now()
    counts = count_trials(trials)
    running = [t for t in trials if t.state == TrialState.RUNNING]
    alive = [t for t in running if why_abandoned(t, now=now.timestamp()) is None]
    workers = sorted({_worker_name(t) for t in alive})
    finished = [t for t in trials if t.state.is_finished() and t.duration is not None]
    trial_s = (
        statistics.fmean(t.duration.total_seconds() for t in finished)  # type: ignore[union-attr]
        if finished
        else None
    )
    starts = [t.started for t in trials if t.started is not None]
    elapsed = None
    if starts:
        end = now
        if not running and not counts.waiting and finished:
            end = max(t.started + t.duration for t in finished if t.started is not None)  # type: ignore[operator]
        elapsed = max((end - min(starts)).total_seconds(), 0.0)
    best = ranked(trials, direction)
    eta, note = _eta(counts, n_trials, timeout, trial_s, alive, len(workers), elapsed, now)
    return StudyStatus(
        name=name,
        counts=counts,
        n_trials=n_trials,
        timeout=timeout,
        direction=direction,
        best=best[0] if best else None,
        workers=tuple(workers),
        orphaned=len(running) - len(alive),
        elapsed_s=elapsed,
        eta_s=eta,
        eta_note=note,
        trial_s=trial_s,
        study_dir=study_dir,
        storage=storage,
        metric=metric,
        replicates=replicates,
        objectives=tuple(objectives),
        front=tuple(pareto_front(trials, objectives)) if len(objectives) > 1 else (),
        best_per=tuple(best_per_objective(trials, objectives)) if len(objectives) > 1 else (),
    )


def find_studies(results_dir: str | Path) -> list[Path]:
    """The study folders right under ``results_dir``: those holding a resolved ``study.yaml``."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and StudyLayout(p).study_file.is_file())


def format_duration(seconds: float | None) -> str:
    """``1:02:03`` (``3 d 1:02:03`` past a day); ``unknown`` for None."""
    if seconds is None:
        return "unknown"
    days, rest = divmod(int(round(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days} d {text}" if days else text


def _eta(
    counts: TrialCounts,
    n_trials: int | None,
    timeout: float | None,
    trial_s: float | None,
    alive: list[TrialRecord],
    workers: int,
    elapsed: float | None,
    now: datetime.datetime,
) -> tuple[float | None, str]:
    left = None if n_trials is None else max(n_trials - counts.finished, 0)
    if left == 0 and not counts.running:
        return 0.0, "done"
    if timeout is not None and elapsed is not None and elapsed >= timeout and not counts.running:
        return 0.0, "done (timeout)"
    if not workers:
        return None, "no live worker"
    if trial_s is None:
        return None, "no finished trial yet"
    by_timeout = None if timeout is None or elapsed is None else max(timeout - elapsed, 0.0)
    if left is None:
        if by_timeout is None:
            return None, "no n_trials or timeout"
        return by_timeout, f"timeout {timeout:g} s"
    # The running trials finish what they have left; the rest start afresh.
    to_start = max(left - len(alive), 0)
    running_left = sum(
        max(trial_s - (now - t.started).total_seconds(), 0.0) if t.started else trial_s
        for t in alive
    )
    by_trials = (to_start * trial_s + running_left) / workers
    note = (
        f"{left} trial{'s' * (left != 1)} left, {trial_s:.0f} s per trial,"
        f" {workers} worker{'s' * (workers != 1)}"
    )
    if by_timeout is not None and by_timeout < by_trials:
        return by_timeout, f"timeout {timeout:g} s ({note})"
    return by_trials, note


def _worker_name(trial: TrialRecord) -> str:
    identity = WorkerIdentity.from_attr(trial.worker)
    return identity.name if identity is not None else f"unknown (trial {trial.number})"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
