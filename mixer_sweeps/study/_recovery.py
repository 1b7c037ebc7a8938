"""Trials whose process died: find them, fail them and queue their configuration again.

A worker holds an exclusive ``flock`` on its own lock file (``<study dir>/workers/<id>.lock``)
for as long as it lives, and tags every trial it runs with that id. The kernel drops the lock when
the process ends, however it ends (``kill -9`` included), so a RUNNING trial whose worker's lock
can be taken was abandoned. This works for every storage and needs no timeout; RDB storages also
have Optuna's heartbeat, which covers workers on other machines. Both end in
:func:`requeue_trial`.

Re-queued trials are new trials (Optuna never reopens a finished one) that carry the old trial's
params and the ``failed_trial`` / ``retry_history`` system attrs of
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`, so the failed originals can be told
apart from real failures when counting a study's trials.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

WORKER_ATTR = "worker"
REASON_ATTR = "reason"
RETRY_OF_ATTR = "retry_of"
FIRST_ATTEMPT_ATTR = "first_attempt"
WORKERS_DIR = "workers"
MAX_RETRIES = 3
"""A configuration whose worker died is queued again this many times, then counts as failed."""


class WorkerLock:
    """Held by a worker process for its lifetime; proves to others that it is alive."""

    def __init__(self, study_dir: Path) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}-{self.pid}-{secrets.token_hex(4)}"
        self.path = study_dir / WORKERS_DIR / f"{self.id}.lock"
        self._fd: int | None = None

    @property
    def info(self) -> dict[str, Any]:
        """What a trial stores about the worker that runs it."""
        return {"host": self.host, "pid": self.pid, "id": self.id}

    def __enter__(self) -> WorkerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._fd is not None
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def worker_is_dead(study_dir: Path, info: Any) -> bool:
    """Whether the worker ``info`` (a trial's ``worker`` attr) is known to have ended.

    Workers on other hosts are never declared dead here; the heartbeat covers them.
    """
    if not isinstance(info, dict) or info.get("host") != socket.gethostname():
        return False
    path = study_dir / WORKERS_DIR / f"{info.get('id')}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def fail_trial(storage: BaseStorage, study_name: str, number: int, reason: str) -> bool:
    """Mark the RUNNING trial ``number`` FAIL with ``reason``; False if it had already ended."""
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    try:
        storage.set_trial_user_attr(trial_id, REASON_ATTR, reason)
        return storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False


def requeue_trial(
    study: optuna.Study, trial: FrozenTrial, *, max_retries: int | None = MAX_RETRIES
) -> bool:
    """Queue ``trial``'s configuration again as a new WAITING trial; False past ``max_retries``.

    The new trial's ``retry_of`` user attr names ``trial`` (whose checkpoint it resumes) and
    ``first_attempt`` the first trial of the configuration. The old trial's other user attrs stay
    behind: they describe that attempt. Also the ``heartbeat_stale_trial_callback`` of RDB
    storages.
    """
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if max_retries is not None and len(history) > max_retries:
        return False
    first = trial.system_attrs.get("failed_trial", trial.number)
    system_attrs = {**trial.system_attrs, "failed_trial": first, "retry_history": history}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={RETRY_OF_ATTR: trial.number, FIRST_ATTEMPT_ATTR: first},
            system_attrs=system_attrs,
        )
    )
    return True


def recover_abandoned_trials(
    study: optuna.Study, storage: BaseStorage, study_dir: Path
) -> list[int]:
    """Fail and re-queue the RUNNING trials of workers on this host that have ended.

    Returns the numbers of the trials recovered. Callers hold the study's claim lock, so two
    processes never recover the same trial.
    """
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        info = trial.user_attrs.get(WORKER_ATTR)
        if not worker_is_dead(study_dir, info):
            continue
        reason = f"abandoned: worker {info['host']}:{info['pid']} ended during the trial"
        if fail_trial(storage, study.study_name, trial.number, reason):
            requeue_trial(study, trial)
            recovered.append(trial.number)
    return recovered


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


def count_trials(trials: Iterable[FrozenTrial]) -> TrialCounts:
    trials = list(trials)
    retried = retried_numbers(trials)
    counts = {state: 0 for state in TrialState}
    for trial in trials:
        if not (trial.state == TrialState.FAIL and trial.number in retried):
            counts[trial.state] += 1
    return TrialCounts(
        complete=counts[TrialState.COMPLETE],
        pruned=counts[TrialState.PRUNED],
        failed=counts[TrialState.FAIL],
        running=counts[TrialState.RUNNING],
        waiting=counts[TrialState.WAITING],
        retried=len(retried),
    )


def retried_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """Numbers of the failed trials whose configuration was queued again."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", ())}
