"""Optuna studies over run specs: study files, the objective, storages and the runner.

Modules, bottom up: ``_record`` (what a trial is), ``_layout`` (where a study keeps its files),
``_space`` and ``_file`` (the study file), ``_algorithms`` (samplers, pruners), ``_storage``,
``_locks`` (the claim lock), ``_liveness`` (who runs a trial, its heartbeat, whether it lives) and
``_recovery`` (dead workers' trials), ``_faults`` (the machine's faults),
``_objective`` (one trial), ``_describe`` and ``_monitor`` (text for people), ``_worker`` (the
claim loop), ``_processes`` (supervising workers), ``_runner`` (one run of a study),
``_summary`` and ``_launch`` (workers as SLURM or local batch jobs, through submitit).
"""

from mixer_sweeps.study._algorithms import make_pruner, make_sampler, stream_seed
from mixer_sweeps.study._describe import (
    describe_counts,
    describe_search,
    format_params,
    format_value,
    short_names,
)
from mixer_sweeps.study._faults import machine_fault
from mixer_sweeps.study._file import (
    PrunerSettings,
    SamplerSettings,
    StudyFile,
    StudySettings,
    describe_study,
    load_study_file,
    parse_study_file,
)
from mixer_sweeps.study._launch import (
    Launched,
    LaunchError,
    LaunchPlan,
    StudyJob,
    launch_study,
    plan_launch,
    wait_for_jobs,
)
from mixer_sweeps.study._layout import StudyLayout
from mixer_sweeps.study._liveness import WorkerIdentity, WorkerPresence, why_abandoned
from mixer_sweeps.study._monitor import StudyMonitor
from mixer_sweeps.study._objective import DataCache, Objective, PruningCallback, TrialAbandoned
from mixer_sweeps.study._placement import Placement, parse_gpus, place_workers
from mixer_sweeps.study._quiet import optuna_quiet
from mixer_sweeps.study._record import (
    TrialCounts,
    TrialRecord,
    best_trial,
    count_trials,
    records,
    retried_numbers,
)
from mixer_sweeps.study._recovery import MAX_RETRIES, recover_abandoned_trials, requeue_trial
from mixer_sweeps.study._runner import StudyMismatchError, StudyRun, run_study
from mixer_sweeps.study._space import Choices, Range, SearchSpace, choice_label
from mixer_sweeps.study._storage import (
    STORAGE_ENV,
    check_storage_url,
    describe_storage,
    journal_path,
    open_storage,
    resolve_storage,
)
from mixer_sweeps.study._summary import print_summary

__all__ = [
    "Placement",
    "parse_gpus",
    "place_workers",
    "MAX_RETRIES",
    "STORAGE_ENV",
    "Choices",
    "DataCache",
    "LaunchError",
    "LaunchPlan",
    "Launched",
    "Objective",
    "PrunerSettings",
    "PruningCallback",
    "Range",
    "SamplerSettings",
    "SearchSpace",
    "StudyFile",
    "StudyJob",
    "StudyLayout",
    "StudyMismatchError",
    "StudyMonitor",
    "StudyRun",
    "StudySettings",
    "TrialAbandoned",
    "TrialCounts",
    "TrialRecord",
    "WorkerIdentity",
    "WorkerPresence",
    "best_trial",
    "check_storage_url",
    "choice_label",
    "count_trials",
    "describe_counts",
    "describe_search",
    "describe_storage",
    "describe_study",
    "format_params",
    "format_value",
    "journal_path",
    "launch_study",
    "load_study_file",
    "machine_fault",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "optuna_quiet",
    "parse_study_file",
    "plan_launch",
    "print_summary",
    "recover_abandoned_trials",
    "records",
    "requeue_trial",
    "resolve_storage",
    "retried_numbers",
    "run_study",
    "short_names",
    "stream_seed",
    "wait_for_jobs",
    "why_abandoned",
]
