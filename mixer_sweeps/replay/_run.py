"""Many replays of one policy: different sampler seeds, and the noise of a single run.

Replay ``r`` seeds the policy's sampler with ``r`` and draws, per configuration, the order in
which its recorded seeds are trained (the first is the seed a single run would see). The draw
depends on ``r`` alone, so every policy and peer meets the same noise in replay ``r``: their
metrics are compared pair by pair, not only in distribution.

A policy with several objectives (:attr:`Policy.multi`) is measured by the hypervolume of its
front (``_front``) and runs until its budget is spent or its sampler has nothing new to ask:
its final hypervolume and the epochs it spent in all are what other policies are held to.

Replays run in parallel processes, one per core.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mixer_sweeps.replay._clock import Settled, simulate
from mixer_sweeps.replay._front import FrontOutcome, FrontScale, FrontSummary, measure_front
from mixer_sweeps.replay._metrics import BUDGETS, Outcome, Summary, WinnerRule, best_named, measure
from mixer_sweeps.replay._policies import Policy
from mixer_sweeps.replay._table import Curves

NOISE_SALT = 19
"""Mixed into each replay's draw of seeds, apart from the sampler's own seed stream."""
MAX_TRIALS_PER_CONFIG = 10
"""A replay asks at most this many trials per configuration (a study's ``n_trials``): free
repeats of finished configurations must not spin forever."""


def seed_order(curves: Curves, replay: int) -> np.ndarray:
    """``[config, k]``: the recorded seed (index) that configuration's k-th run trains."""
    rng = np.random.default_rng([NOISE_SALT, replay])
    base = np.tile(np.arange(len(curves.seeds)), (len(curves.configs), 1))
    return rng.permuted(base, axis=1)


def budget_epochs(curves: Curves, budget: float) -> int:
    return max(1, math.ceil(budget * curves.grid_epochs - 1e-9))


@dataclass(frozen=True)
class ReplayTask:
    """Replays of one policy with one number of workers (picklable for worker processes)."""

    curves: Curves
    policy: Policy
    workers: int
    budget: float
    rule: WinnerRule = best_named


def replay_once(task: ReplayTask, replay: int) -> Outcome | FrontOutcome:
    from mixer_sweeps.replay._optuna import OptunaDriver, quiet

    curves = task.curves
    multi = task.policy.multi
    with quiet():
        driver = OptunaDriver(
            curves,
            task.policy,
            seed=replay,
            seed_order=seed_order(curves, replay),
            max_trials=MAX_TRIALS_PER_CONFIG * len(curves.configs),
        )
        trace = simulate(
            curves,
            driver,
            workers=task.workers,
            budget=budget_epochs(curves, task.budget),
            enough=None if multi else settled(curves),
        )
    if multi:
        return measure_front(FrontScale.of(curves, task.policy.objectives), trace)
    return measure(curves, trace, rule=task.rule)


def settled(curves: Curves) -> Settled:
    """Stops a replay once its metrics are known: (a) reached, the last budget of (b) passed."""
    return Settled(set(curves.near_best().tolist()), max(BUDGETS) * curves.grid_epochs)


def _replay_many(
    task: ReplayTask, replays: Sequence[int]
) -> tuple[list[Outcome | FrontOutcome], float]:
    started = time.perf_counter()
    return [replay_once(task, r) for r in replays], time.perf_counter() - started


def run_replays(
    tasks: Sequence[ReplayTask],
    *,
    repeats: int,
    jobs: int | None = None,
    on_done: Callable[[Summary | FrontSummary], None] = lambda s: None,
) -> list[Summary | FrontSummary]:
    """``repeats`` replays of each task, spread over ``jobs`` processes (default: the cores).

    A summary's ``seconds`` is the time its replays took, added over the processes.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1 but got {repeats}")
    jobs = min(jobs or available_cores(), repeats * len(tasks)) or 1
    if jobs == 1:
        summaries = []
        for task in tasks:
            outcomes, seconds = _replay_many(task, range(repeats))
            summaries.append(_summary(task, outcomes, seconds))
            on_done(summaries[-1])
        return summaries
    # Every task's chunks queued at once: no core idles while a task's slowest chunk finishes.
    per_task = max(1, min(jobs, repeats))
    chunks = [list(range(i, repeats, per_task)) for i in range(per_task)]
    # Ctrl-C is the parent's alone: it ends the pool, and no worker prints a traceback.
    pool = multiprocessing.Pool(jobs, initializer=signal.signal, initargs=_IGNORE_SIGINT)
    try:
        pending = [
            [pool.apply_async(_replay_many, (task, chunk)) for chunk in chunks] for task in tasks
        ]
        summaries = []
        for task, parts in zip(tasks, pending, strict=True):
            by_replay: dict[int, Outcome | FrontOutcome] = {}
            seconds = 0.0
            for chunk, part in zip(chunks, parts, strict=True):
                outcomes, took = part.get()
                by_replay.update(zip(chunk, outcomes, strict=True))
                seconds += took
            summaries.append(_summary(task, [by_replay[r] for r in range(repeats)], seconds))
            on_done(summaries[-1])
        pool.close()
    finally:
        pool.terminate()
        pool.join()
    return summaries


_IGNORE_SIGINT = (signal.SIGINT, signal.SIG_IGN)


def _summary(
    task: ReplayTask, outcomes: list[Outcome | FrontOutcome], seconds: float
) -> Summary | FrontSummary:
    if task.policy.multi:
        return FrontSummary(
            task.policy.name,
            task.workers,
            tuple(outcomes),
            seconds=seconds,
            description=task.policy.describe(),
            grid_epochs=task.curves.grid_epochs,
            budget=task.budget,
        )
    return Summary.of(
        task.policy.name,
        task.workers,
        outcomes,
        seconds=seconds,
        description=task.policy.describe(),
    )


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
