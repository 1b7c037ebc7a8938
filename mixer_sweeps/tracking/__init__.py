"""Trackers: where a run reports its progress (in memory, Weights & Biases)."""

from mixer_sweeps.tracking._base import MemoryTracker, Tracker
from mixer_sweeps.tracking._factory import make_trackers
from mixer_sweeps.tracking._wandb import (
    TrackingWarning,
    WandbTracker,
    has_wandb_credentials,
    log_study,
    offline_runs,
    resolve_mode,
    trials_table,
)

__all__ = [
    "MemoryTracker",
    "Tracker",
    "TrackingWarning",
    "WandbTracker",
    "has_wandb_credentials",
    "log_study",
    "make_trackers",
    "offline_runs",
    "resolve_mode",
    "trials_table",
]
