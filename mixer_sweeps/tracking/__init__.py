"""Trackers: where a run reports its progress (in memory, Weights & Biases)."""

from mixer_sweeps.tracking._base import MemoryTracker, Tracker
from mixer_sweeps.tracking._factory import make_trackers

__all__ = ["MemoryTracker", "Tracker", "make_trackers"]
