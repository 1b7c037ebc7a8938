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

import os
import secrets
import socket
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps.study import _record as attr
from mixer_sweeps.study._layout import StudyLayout
from mixer_sweeps.study._locks import FileLock

MAX_RETRIES = 3
"""A configuration whose worker died is queued again this many times, then counts as failed."""


class WorkerLock:
    """Held by a worker process for its lifetime; proves to others that it is alive."""

    def __init__(self, layout: StudyLayout) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}-{self.pid}-{secrets.token_hex(4)}"
        self.path = layout.workers_dir / f"{self.id}.lock"
        self._lock: FileLock | None = None

    @property
    def info(self) -> dict[str, Any]:
        """What a trial stores about the worker that runs it."""
        return {"host": self.host, "pid": self.pid, "id": self.id}

    def __enter__(self) -> WorkerLock:
        self._lock = FileLock(self.path)
        self._lock.acquire(blocking=False)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._lock is not None
        self.path.unlink(missing_ok=True)
        self._lock.close()
        self._lock = None


def worker_is_dead(layout: StudyLayout, info: Any) -> bool:
    """Whether the worker ``info`` (a trial's ``worker`` attr) is known to have ended.

    Workers on other hosts are never declared dead here; the heartbeat covers them.
    """
    if not isinstance(info, dict) or info.get("host") != socket.gethostname():
        return False
    path = layout.workers_dir / f"{info.get('id')}.lock"
    try:
        lock = FileLock(path, create=False)
    except FileNotFoundError:
        return True
    try:
        if not lock.acquire(blocking=False):
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        lock.close()


def fail_trial(storage: BaseStorage, study_name: str, number: int, reason: str) -> bool:
    """Mark the RUNNING trial ``number`` FAIL with ``reason``; False if it had already ended."""
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    try:
        storage.set_trial_user_attr(trial_id, attr.REASON, reason)
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
    history = [*trial.system_attrs.get(attr.RETRY_HISTORY, []), trial.number]
    if max_retries is not None and len(history) > max_retries:
        return False
    first = trial.system_attrs.get(attr.FAILED_TRIAL, trial.number)
    system_attrs = {
        **trial.system_attrs,
        attr.FAILED_TRIAL: first,
        attr.RETRY_HISTORY: history,
    }
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={attr.RETRY_OF: trial.number, attr.FIRST_ATTEMPT: first},
            system_attrs=system_attrs,
        )
    )
    return True


def recover_abandoned_trials(
    study: optuna.Study, storage: BaseStorage, layout: StudyLayout
) -> list[int]:
    """Fail and re-queue the RUNNING trials of workers on this host that have ended.

    Returns the numbers of the trials recovered. Callers hold the study's claim lock, so two
    processes never recover the same trial.
    """
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        info = trial.user_attrs.get(attr.WORKER)
        if not worker_is_dead(layout, info):
            continue
        reason = f"abandoned: worker {info['host']}:{info['pid']} ended during the trial"
        if fail_trial(storage, study.study_name, trial.number, reason):
            requeue_trial(study, trial)
            recovered.append(trial.number)
    return recovered
