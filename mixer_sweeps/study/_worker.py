"""A worker: claim a trial, train it, repeat, until the study has its trials or must stop.

Exactly ``n_trials`` trials in total. Before each trial a worker takes the study's claim lock (an
``flock`` on ``<study dir>/claim.lock``), recovers the trials of workers that died, counts the
trials that are finished or running, and asks Optuna for a new trial only while that count is
below ``n_trials``; it lets go of the lock once the new trial is RUNNING with its params stored.
The count is read from the storage, so it holds across the workers of one run, across separate
``sweeps run`` processes on one machine and across runs.

While a trial runs, the worker's heartbeat stamps it (``_liveness``). A worker whose trial another
worker ended (it took this one for dead) prints one warning line and goes on with the next trial.
Each worker process draws from a sampler stream of its own, picked at its first trial
(:func:`~mixer_sweeps.study._algorithms.stream_sampler`).

The claim lock covers the workers of one results folder; a trial that a worker in another
folder claimed in the same instant past ``n_trials`` gives way (:func:`_beyond_budget`).

Queued (WAITING) trials are claimed before the sampler is asked: the study file's ``enqueue:``
configurations (:func:`enqueue_configurations`), crashed or interrupted attempts, and with
``sweeps run --retry-failed`` the failed ones (:func:`requeue_failed`). A failed trial whose
configuration is queued again no longer counts towards ``n_trials``, so the retry takes its
place in the budget instead of adding to it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps._signals import Interrupt
from mixer_sweeps.results import (
    StudyLayout,
    TrialAttr,
    TrialRecord,
    count_trials,
    records,
    retried_numbers,
)
from mixer_sweeps.spec import StudyFile
from mixer_sweeps.study._algorithms import make_pruner, make_sampler, stream_sampler
from mixer_sweeps.study._faults import machine_fault
from mixer_sweeps.study._liveness import WorkerPresence
from mixer_sweeps.study._locks import FileLock
from mixer_sweeps.study._objective import DataCache, Objective, TrialAbandoned
from mixer_sweeps.study._placement import Placement
from mixer_sweeps.study._quiet import optuna_quiet
from mixer_sweeps.study._recovery import recover_abandoned_trials, requeue_trial
from mixer_sweeps.study._storage import open_storage
from mixer_sweeps.training import Callback

# Test-only: seconds a worker waits between counting the trials and claiming one (widens the race
# the claim lock closes), and lingers over a trial it abandons on Ctrl-C before recording it (so
# a second Ctrl-C lands while workers clean up).
CLAIM_DELAY_ENV = "SWEEPS_TEST_CLAIM_DELAY_S"
ABANDON_DELAY_ENV = "SWEEPS_TEST_ABANDON_DELAY_S"

ENQUEUED = "enqueued"
"""User attr of a trial queued from the study file's ``enqueue:``."""


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs to know; plain data, so a spawned process can receive it."""

    study_file: StudyFile
    storage_url: str | None
    layout: StudyLayout
    index: int
    n_trials: int | None
    deadline: float | None
    """``time.time()`` after which no trial starts."""
    placement: Placement | None
    """Its GPU and cores when it runs in a process of its own; None in the ``sweeps`` process."""


def work(
    config: WorkerConfig,
    interrupt: Interrupt,
    *,
    stop: Any = None,
    callbacks: Sequence[Callback] = (),
    after_trial: Callable[[], None] = lambda: None,
) -> str | None:
    """A worker's loop: claim a trial, run it, repeat. Returns why it could not run, if so."""
    study_file = config.study_file
    layout = config.layout
    storage = open_storage(config.storage_url, study_dir=layout.root)
    settings = study_file.settings
    learning_direction = settings.direction if settings.multi_objective else None
    study = optuna.load_study(
        study_name=study_file.name,
        storage=storage,
        # The study's seed until the worker's first trial picks its stream (stream_sampler).
        sampler=make_sampler(
            study_file.settings.sampler,
            study_file.space,
            seed=study_file.settings.sampler.seed,
            learning_direction=learning_direction,
        ),
        pruner=make_pruner(
            study_file.settings.pruner,
            max_epochs=study_file.max_epochs,
            study=study_file.settings,
        ),
    )
    claim = FileLock(layout.claim_lock)
    claim_delay = float(os.environ.get(CLAIM_DELAY_ENV) or 0)
    abandon_delay = float(os.environ.get(ABANDON_DELAY_ENV) or 0)
    try:
        with WorkerPresence(storage) as worker:
            objective = Objective(
                study_file,
                layout=layout,
                data=DataCache(),
                worker={**worker.info, **_where()},
                interrupt=interrupt,
                on_suggested=claim.release,
                callbacks=callbacks,
            )

            first_trial = True
            surplus = False

            def run_trial(trial: optuna.Trial) -> float | tuple[float, ...]:
                nonlocal first_trial, surplus
                if config.n_trials is not None and _beyond_budget(study, trial, config.n_trials):
                    surplus = True
                    study._storage.set_trial_system_attr(trial._trial_id, TrialAttr.SURPLUS, True)
                    raise TrialSurplus(f"trial {trial.number} is past n_trials={config.n_trials}")
                if first_trial:
                    first_trial = False
                    sampler = stream_sampler(
                        settings.sampler,
                        study_file.space,
                        first_trial=trial.number,
                        learning_direction=learning_direction,
                    )
                    study.sampler = sampler or study.sampler
                with worker.running(trial._trial_id):
                    try:
                        return objective(trial)
                    except TrialAbandoned:
                        if interrupt.requested:
                            time.sleep(abandon_delay)
                        raise

            while not (interrupt.requested or objective.fatal or (stop and stop.is_set())):
                if config.deadline is not None and time.time() >= config.deadline:
                    break
                with claim:
                    if stop and stop.is_set():  # while this worker waited for the lock
                        break
                    # Counted as running, the trials of dead workers would stop a study that
                    # has no other trial left to run.
                    recover_abandoned_trials(study, storage)
                    _requeue_missed(study)
                    if config.n_trials is not None:
                        counts = count_trials(study.get_trials(deepcopy=False))
                        if counts.finished + counts.running >= config.n_trials:
                            break
                    time.sleep(claim_delay)
                    try:
                        study.optimize(
                            run_trial,
                            n_trials=1,
                            catch=(Exception,),
                            callbacks=[worker.told, _requeue_abandoned],
                        )
                    except Exception:
                        # Another worker took this one for dead and ended its trial first, so
                        # Optuna could not record how it ended here: say so and go on.
                        taken = worker.taken()
                        if taken is None:
                            raise
                        _warn_taken(taken)
                if surplus:
                    break
                after_trial()
    except Exception as exc:
        # The machine failed under the trial's bookkeeping too (its storage on a full disk):
        # stop with one message; the next run recovers the trial as a dead worker's.
        fault = machine_fault(exc)
        if fault is None:
            raise
        return fault
    finally:
        claim.close()
    return objective.fatal


def enqueue_configurations(study: optuna.Study, study_file: StudyFile) -> int:
    """Queue the study file's ``enqueue:`` configurations that the study does not hold yet.

    Run under the claim lock: a configuration queued once (by any run or worker; waiting, run or
    finished) is never queued again, so re-runs add only configurations added to the file.
    Returns how many were queued.
    """
    before = len(study.get_trials(deepcopy=False))
    for params in study_file.enqueue:
        study.enqueue_trial(params, user_attrs={ENQUEUED: True}, skip_if_exists=True)
    return len(study.get_trials(deepcopy=False)) - before


def requeue_failed(study: optuna.Study) -> list[int]:
    """Queue again every failed trial that counts as failed (see
    :func:`~mixer_sweeps.results._record.count_trials`); returns the numbers of those queued.

    Run under the claim lock. The retries are not counted as crashes, so they never use up a
    configuration's :data:`~mixer_sweeps.study._recovery.MAX_RETRIES`. A claim that gave way
    (surplus) is no failure: :func:`~mixer_sweeps.study._recovery.requeue_trial` leaves it.
    """
    trials = study.get_trials(deepcopy=False)
    queued = retried_numbers(records(trials))
    failed = [
        t
        for t in trials
        if t.state == TrialState.FAIL
        and t.number not in queued
        and not TrialRecord.from_trial(t).abandoned
    ]
    return [t.number for t in failed if requeue_trial(study, t, crashed=False)]


class TrialSurplus(Exception):
    """A trial claimed past ``n_trials``; see :attr:`~mixer_sweeps.results.TrialAttr.SURPLUS`."""


def _beyond_budget(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Whether the trials numbered before ``trial`` already fill ``n_trials``.

    The claim lock keeps the count exact among workers of one results folder. Workers in other
    folders (other machines) share only the storage, so two of them may count the same trials
    and both claim the last one; the later-numbered claim then gives way. A queued configuration
    (enqueued or retried) never does: it was counted when it was queued.
    """
    if trial.number < n_trials:
        return False
    frozen = study._storage.get_trial(trial._trial_id)
    if "fixed_params" in frozen.system_attrs or TrialAttr.RETRY_HISTORY in frozen.system_attrs:
        return False
    trials = records(study.get_trials(deepcopy=False))
    retried = retried_numbers(trials)  # from every trial: a retry's number is above its attempt
    counted = [
        t
        for t in trials
        if t.number < trial.number
        and not (t.state == TrialState.FAIL and (t.number in retried or t.abandoned))
    ]
    return len(counted) >= n_trials


def _requeue_abandoned(study: optuna.Study, trial: FrozenTrial) -> None:
    if trial.state == TrialState.FAIL and TrialRecord.from_trial(trial).abandoned:
        requeue_trial(study, trial, crashed=False)


def _requeue_missed(study: optuna.Study) -> None:
    """Queue again the failed attempts whose re-queueing never reached the storage: it failed on
    a full disk along with the trial, or the worker that recovered a dead one died in between."""
    trials = study.get_trials(deepcopy=False)
    queued = retried_numbers(records(trials))
    for trial in trials:
        if trial.state != TrialState.FAIL or trial.number in queued:
            continue
        if TrialRecord.from_trial(trial).crashed:
            requeue_trial(study, trial, crashed=True)
        else:
            _requeue_abandoned(study, trial)


def _warn_taken(trial: FrozenTrial) -> None:
    reason = TrialRecord.from_trial(trial).reason or trial.state.name
    sys.stderr.write(
        f"warning: trial {trial.number} was ended by another worker, which took this one for"
        f" dead ({reason}); going on with the next trial\n"
    )
    sys.stderr.flush()


def _where() -> dict[str, Any]:
    """Where this worker really runs, read from its own process (for ``sweeps run``'s header and
    for people reading a trial): its GPU, torch threads and CPU cores."""
    import torch

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "threads": torch.get_num_threads(),
        "cores": cores,
    }


class _Orphaned:
    """``stop``, or the parent gone: set once the ``sweeps run`` process that spawned this worker
    has died (``kill -9``: it could not pass a stop on), so the worker finishes its trial and
    claims no other. Nobody would show its progress, write the report or hear a Ctrl-C."""

    def __init__(self, stop: Any, parent: int, index: int) -> None:
        self.stop = stop
        self.parent = parent
        self.index = index
        self.noticed = False

    def is_set(self) -> bool:
        if os.getppid() != self.parent and not self.noticed:
            self.noticed = True
            with contextlib.suppress(OSError, ValueError):  # the parent's terminal may be gone
                sys.stderr.write(
                    f"warning: worker {self.index} stops: its sweeps run (pid {self.parent}) is"
                    " gone; run the study again to finish it and write its report\n"
                )
                sys.stderr.flush()
        return self.noticed or self.stop.is_set()


def worker_main(config: WorkerConfig, stop: Any, messages: Any, parent: int) -> None:
    """The entry point of a spawned worker process; it reports to its parent (pid ``parent``) on
    ``messages``, and stops after its trial once that parent is gone."""
    stop = _Orphaned(stop, parent, config.index)
    interrupt = Interrupt()
    with interrupt.installed(), optuna_quiet():
        import torch

        placement = config.placement
        if placement is not None:
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, placement.cores)
            torch.set_num_threads(placement.threads)
        try:
            fatal = work(config, interrupt, stop=stop)
        except Exception:
            messages.put(("error", f"worker {config.index} crashed:\n{traceback.format_exc()}"))
            raise SystemExit(1) from None
        if fatal is not None:
            messages.put(("fatal", fatal))
