"""Executing a study: storages, the claim loop, worker processes, recovery and launch.

Modules, bottom up: ``_quiet`` (Optuna's logging silenced), ``_journal`` (the journal file's lock
and the repair of a torn record), ``_storage`` (which storage, opened), ``_locks`` (the claim
lock), ``_liveness`` (who runs a trial, its heartbeat, whether it lives), ``_recovery`` (dead
workers' trials failed and queued again), ``_faults`` (the machine's faults),
``_front_pruner`` (the cost-aware pruner of a study with several objectives), ``_algorithms``
(Optuna samplers and pruners built from the study file), ``_finished`` (a study with nothing
left to run, told at once), ``_objective`` (one trial), ``_monitor`` (the live display),
``_worker`` (the claim loop), ``_placement`` (workers on cores and GPUs), ``_processes``
(supervising workers), ``_runner`` (one run of a study), ``_job`` (one batch job: a worker that
checkpoints itself), ``_launch`` (a launch planned: SLURM or local batch jobs through submitit)
and ``_submit`` (the jobs submitted and waited for).
The study file itself is in ``mixer_sweeps.spec``; reading a study back is
``mixer_sweeps.results``.

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
        "._front_pruner": [
            "FrontPruner",
        ],
        "._finished": [
            "FinishedStudy",
            "finished_study",
        ],
        "._faults": [
            "machine_fault",
        ],
        "._job": [
            "StudyJob",
        ],
        "._submit": [
            "Launched",
            "launch_study",
            "wait_for_jobs",
        ],
        "._launch": [
            "LaunchError",
            "LaunchPlan",
            "plan_launch",
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
            "usable_cores",
        ],
        "._quiet": [
            "optuna_quiet",
        ],
        "._recovery": [
            "MAX_RETRIES",
            "recover_abandoned_trials",
            "requeue_trial",
        ],
        "._runner": [
            "StudyMismatchError",
            "StudyRun",
            "run_study",
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
    },
)
