"""Optuna studies over run specs: study files, the objective, storages and the runner.

Modules, bottom up: ``_record`` (what a trial is), ``_layout`` (where a study keeps its files),
``_space`` and ``_file`` (the study file), ``_algorithms`` (samplers, pruners), ``_storage``,
``_locks`` (the claim lock), ``_liveness`` (who runs a trial, its heartbeat, whether it lives) and
``_recovery`` (dead workers' trials), ``_faults`` (the machine's faults),
``_objective`` (one trial), ``_describe`` and ``_monitor`` (text for people), ``_worker`` (the
claim loop), ``_processes`` (supervising workers), ``_runner`` (one run of a study),
``_summary`` and ``_launch`` (workers as SLURM or local batch jobs, through submitit).

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._algorithms": [
            "make_pruner",
            "make_sampler",
            "stream_seed",
        ],
        "._best": [
            "TrialSpec",
            "trial_run_spec",
            "trial_seeds",
        ],
        "._describe": [
            "describe_counts",
            "describe_search",
            "format_params",
            "format_value",
            "short_names",
        ],
        "._faults": [
            "machine_fault",
        ],
        "._file": [
            "PrunerSettings",
            "SamplerSettings",
            "StudyFile",
            "StudySettings",
            "describe_study",
            "load_study_file",
            "parse_study_file",
        ],
        "._launch": [
            "Launched",
            "LaunchError",
            "LaunchPlan",
            "StudyJob",
            "launch_study",
            "plan_launch",
            "wait_for_jobs",
        ],
        "._layout": [
            "StudyLayout",
        ],
        "._liveness": [
            "WorkerIdentity",
            "WorkerPresence",
            "why_abandoned",
        ],
        "._monitor": [
            "StudyMonitor",
        ],
        "._objective": [
            "DataCache",
            "Objective",
            "PruningCallback",
            "TrialAbandoned",
        ],
        "._placement": [
            "Placement",
            "parse_gpus",
            "place_workers",
        ],
        "._retrain": [
            "RETRAIN_DIR",
            "RetrainError",
            "RetrainPlan",
            "RunOutcome",
            "best_configurations",
            "check_retrain",
            "plan_retrain",
            "plan_spec_retrain",
            "run_retrain",
        ],
        "._plan": [
            "StudyPlan",
            "plan_study",
        ],
        "._quiet": [
            "optuna_quiet",
        ],
        "._record": [
            "TrialCounts",
            "TrialRecord",
            "best_trial",
            "count_trials",
            "is_surplus",
            "records",
            "retried_numbers",
        ],
        "._recovery": [
            "MAX_RETRIES",
            "recover_abandoned_trials",
            "requeue_trial",
        ],
        "._runner": [
            "FINGERPRINT_ATTR",
            "StudyMismatchError",
            "StudyRun",
            "run_study",
        ],
        "._space": [
            "Choices",
            "Range",
            "SearchSpace",
            "choice_label",
        ],
        "._status": [
            "StudyStatus",
            "find_studies",
            "format_duration",
            "ranked",
            "study_status",
        ],
        "._storage": [
            "STORAGE_ENV",
            "check_storage_url",
            "describe_storage",
            "journal_path",
            "open_storage",
            "resolve_storage",
            "storage_timeout_s",
        ],
        "._summary": [
            "print_summary",
        ],
    },
)
