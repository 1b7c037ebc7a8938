"""The keys a trial keeps in storage, one name each: the only place that spells them."""


class StudyAttr:
    """The keys of a study's own attrs in storage, set once by the first worker that opens it."""

    FINGERPRINT = "fingerprint"
    METRIC = "metric"
    REPLICATES = "replicates"
    SPACE = "space"
    BASE = "base"
    OBJECTIVES = "objectives"
    """The study's objectives in Optuna's order: ``[{"metric": ..., "direction": ...}, ...]``
    (one for a single-objective study; older studies lack it)."""


class TrialAttr:
    """The keys of a trial's attrs in storage: the objective and workers write them, readers
    read them back through :class:`TrialRecord`."""

    WORKER = "worker"
    RUN_DIR = "run_dir"
    REASON = "reason"
    SEEDS = "seeds"
    BEST_VAL_ACC = "best_val_acc"
    TEST_ACC = "test_acc"
    EPOCHS = "epochs"
    NUM_PARAMS = "num_params"
    COSTS = "costs"
    """What the trial costs, known before it trains: ``{"params": ..., "flops": ...,
    "images_per_s": ...}``."""
    SECONDS = "seconds"
    METRIC = "metric"
    DIRECTION = "direction"
    RETRY_OF = "retry_of"
    FIRST_ATTEMPT = "first_attempt"
    DUPLICATE_OF = "duplicate_of"
    RESUMED = "resumed"
    ABANDONED = "abandoned"
    CRASHED = "crashed"
    SURPLUS = "surplus"
    """System attr: a trial claimed past ``n_trials`` in the same instant as another, by a worker in
    another results folder (whose claim lock is not this one's); ended at once, and not a trial of
    the study at all: :func:`records` and :func:`count_trials` leave it out (see
    :func:`is_surplus`), and it is never queued again."""
    RETRY_HISTORY = "retry_history"
    """System attr: the numbers of the failed attempts of this trial's configuration."""
    FAILED_TRIAL = "failed_trial"
    """System attr: the number of the first attempt of this trial's configuration."""
    CRASH_HISTORY = "crash_history"
    """System attr: the failed attempts of this configuration whose worker died
    (``study._recovery``)."""
    HEARTBEAT = "heartbeat"
    """System attr: ``time.time()`` when the trial's worker last said it was alive
    (``study._liveness``)."""
