"""Optuna studies over run specs: study files, the objective, storages and the runner."""

from mixer_sweeps.study._algorithms import make_pruner, make_sampler, worker_seed
from mixer_sweeps.study._file import (
    PrunerSettings,
    SamplerSettings,
    StudyFile,
    StudySettings,
    describe_study,
    load_study_file,
    parse_study_file,
)
from mixer_sweeps.study._monitor import (
    StudyMonitor,
    best_trial,
    format_params,
    print_summary,
    trial_epochs,
)
from mixer_sweeps.study._objective import (
    DataCache,
    Interrupt,
    Objective,
    PruningCallback,
    TrialAbandoned,
)
from mixer_sweeps.study._recovery import (
    TrialCounts,
    WorkerLock,
    count_trials,
    recover_abandoned_trials,
    requeue_trial,
)
from mixer_sweeps.study._runner import StudyMismatchError, StudyRun, run_study
from mixer_sweeps.study._space import Choices, Range, SearchSpace, choice_label
from mixer_sweeps.study._storage import (
    STORAGE_ENV,
    check_storage_url,
    describe_storage,
    open_storage,
    resolve_storage,
)

__all__ = [
    "STORAGE_ENV",
    "Choices",
    "DataCache",
    "Interrupt",
    "Objective",
    "PrunerSettings",
    "PruningCallback",
    "Range",
    "SamplerSettings",
    "SearchSpace",
    "StudyFile",
    "StudyMismatchError",
    "StudyMonitor",
    "StudyRun",
    "StudySettings",
    "TrialAbandoned",
    "TrialCounts",
    "WorkerLock",
    "best_trial",
    "check_storage_url",
    "choice_label",
    "count_trials",
    "describe_storage",
    "describe_study",
    "format_params",
    "load_study_file",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "parse_study_file",
    "print_summary",
    "recover_abandoned_trials",
    "requeue_trial",
    "resolve_storage",
    "run_study",
    "trial_epochs",
    "worker_seed",
]
