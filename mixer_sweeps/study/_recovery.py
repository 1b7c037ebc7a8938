"""Trials whose worker died: find them, fail them and queue their configuration again.

Whether a running trial's worker lives is read from the storage, where every worker of the study
sees it (:func:`~mixer_sweeps.study._liveness.why_abandoned`: the worker is provably gone, or its
heartbeat is stale), so workers in different folders, on other hosts and on every storage judge
alike. The next worker that claims a trial fails those trials and queues them again.

Re-queued trials are new trials (Optuna never reopens a finished one) that carry the old trial's
params and the ``failed_trial`` / ``retry_history`` system attrs of
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`, so the failed originals can be told
apart from real failures when counting a study's trials. Only crashes count towards
``MAX_RETRIES``: ``crash_history`` lists the attempts whose worker died, while a trial stopped by
Ctrl-C (not its configuration's fault) is queued again however often it happens.
"""

from __future__ import annotations

import time

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps.results import TrialAttr as attr
from mixer_sweeps.results import is_surplus
from mixer_sweeps.study._liveness import why_abandoned

MAX_RETRIES = 3
"""A configuration whose worker died is queued again this many times, then counts as failed."""

_ATTEMPT_ATTRS = (attr.HEARTBEAT, attr.SURPLUS)
"""System attrs of one attempt, never copied onto its retry."""


def fail_trial(storage: BaseStorage, study_name: str, number: int, reason: str) -> bool:
    """Mark the RUNNING trial ``number`` FAIL with ``reason``; False if it had already ended."""
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    try:
        storage.set_trial_user_attr(trial_id, attr.REASON, reason)
        # Marked before it ends, so a worker killed between failing and re-queueing it leaves a
        # trial the next worker still re-queues (see the worker's claim loop).
        storage.set_trial_user_attr(trial_id, attr.CRASHED, True)
        return storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False


def requeue_trial(
    study: optuna.Study,
    trial: FrozenTrial,
    *,
    crashed: bool = True,
    max_retries: int | None = MAX_RETRIES,
) -> bool:
    """Queue ``trial``'s configuration again as a new WAITING trial; False past ``max_retries``,
    and for a claim that gave way (:func:`~mixer_sweeps.results._record.is_surplus`): it was never
    a trial of the study.

    ``crashed``: ``trial`` failed because its worker died; such attempts are counted (the
    ``crash_history`` system attr) and, past ``max_retries`` of them, the configuration is not
    queued again. Other failed attempts (Ctrl-C, a dataset that is missing) are never counted.

    The new trial's ``retry_of`` user attr names ``trial`` (whose checkpoint it resumes) and
    ``first_attempt`` the first trial of the configuration. The old trial's other user attrs, its
    heartbeat and a surplus mark stay behind: they describe that attempt.
    """
    if is_surplus(trial):
        return False
    history = [*trial.system_attrs.get(attr.RETRY_HISTORY, []), trial.number]
    crashes = [*trial.system_attrs.get(attr.CRASH_HISTORY, [])]
    if crashed:
        crashes.append(trial.number)
        if max_retries is not None and len(crashes) > max_retries:
            return False
    first = trial.system_attrs.get(attr.FAILED_TRIAL, trial.number)
    system_attrs = {
        **{k: v for k, v in trial.system_attrs.items() if k not in _ATTEMPT_ATTRS},
        attr.FAILED_TRIAL: first,
        attr.RETRY_HISTORY: history,
        attr.CRASH_HISTORY: crashes,
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
    study: optuna.Study, storage: BaseStorage, *, grace_s: float | None = None
) -> list[int]:
    """Fail and re-queue the RUNNING trials whose worker is gone or silent (see
    :func:`~mixer_sweeps.study._liveness.why_abandoned`; ``grace_s`` defaults to
    ``SWEEPS_HEARTBEAT_GRACE_S``).

    Returns the numbers of the trials recovered. A trial that another worker fails first is left
    to it: the storage lets only one of them end the trial.
    """
    recovered = []
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = why_abandoned(trial, grace_s=grace_s, now=now)
        if why is None:
            continue
        if fail_trial(storage, study.study_name, trial.number, f"abandoned: {why}"):
            requeue_trial(study, trial)
            recovered.append(trial.number)
    return recovered
