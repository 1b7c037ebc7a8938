"""The shared trainer, its callbacks and the records it produces."""

from mixer_sweeps.training._build import (
    build_augment,
    build_model,
    build_optimizer,
    warmup_cosine,
)
from mixer_sweeps.training._callbacks import Callback, TrainerView
from mixer_sweeps.training._checkpoint import (
    BEST_WEIGHTS_FILE,
    CHECKPOINT_FILE,
    CheckpointError,
    check_resumable,
    load_checkpoint,
    save_checkpoint,
)
from mixer_sweeps.training._outputs import (
    CURVES_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    SPEC_FILE,
    atomic_write_bytes,
    atomic_write_text,
    spec_to_yaml,
)
from mixer_sweeps.training._records import HISTORY_COLUMNS, EpochRecord, Stop, TrainResult
from mixer_sweeps.training._trainer import (
    DeviceUnavailable,
    NonFiniteLossError,
    Trainer,
    resolve_device,
    seed_everything,
)

__all__ = [
    "BEST_WEIGHTS_FILE",
    "CHECKPOINT_FILE",
    "CheckpointError",
    "DeviceUnavailable",
    "check_resumable",
    "load_checkpoint",
    "save_checkpoint",
    "CURVES_FILE",
    "HISTORY_COLUMNS",
    "HISTORY_FILE",
    "METRICS_FILE",
    "SPEC_FILE",
    "Callback",
    "EpochRecord",
    "NonFiniteLossError",
    "Stop",
    "TrainResult",
    "Trainer",
    "TrainerView",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_augment",
    "build_model",
    "build_optimizer",
    "resolve_device",
    "seed_everything",
    "spec_to_yaml",
    "warmup_cosine",
]
