"""The shared trainer, its callbacks and the records it produces.

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._build": [
            "build_augment",
            "build_model",
            "build_optimizer",
            "optimizer_kernel",
            "warmup_cosine",
        ],
        "._callbacks": [
            "Callback",
            "TrainerView",
        ],
        "._checkpoint": [
            "CheckpointError",
            "check_resumable",
            "load_checkpoint",
            "save_checkpoint",
        ],
        "._device": [
            "DeviceUnavailable",
            "resolve_device",
        ],
        "._outputs": [
            "BEST_WEIGHTS_FILE",
            "CHECKPOINT_FILE",
            "CURVES_FILE",
            "HISTORY_FILE",
            "METRICS_FILE",
            "SPEC_FILE",
            "atomic_write_bytes",
            "atomic_write_text",
            "run_folder_entry",
            "spec_to_yaml",
        ],
        "._records": [
            "HISTORY_COLUMNS",
            "EpochRecord",
            "Stop",
            "RunMetrics",
            "TrainResult",
        ],
        "._trainer": [
            "NonFiniteLossError",
            "Trainer",
            "seed_everything",
        ],
    },
)
