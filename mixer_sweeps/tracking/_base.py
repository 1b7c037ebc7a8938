"""Trackers receive a run's story: its spec, every epoch, its images and how it ended.

The trainer calls them; it never knows which ones it has. A tracker must not stop training:
one that fails should warn and carry on (see the W&B tracker).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mixer_sweeps.spec import RunSpec
    from mixer_sweeps.training import EpochRecord


class Tracker:
    """Base class; every hook does nothing by default."""

    def start(self, spec: RunSpec, *, run_dir: Path | None, meta: dict[str, Any]) -> None:
        """Called once before the first epoch. ``meta`` holds e.g. the parameter count."""

    def log_epoch(self, record: EpochRecord) -> None:
        """Called after every epoch."""

    def log_image(self, name: str, path: Path) -> None:
        """Called with images worth keeping (the learning curves)."""

    def finish(self, summary: dict[str, Any], *, state: str, reason: str) -> None:
        """Called once at the end, also when the run failed (``state="failed"``)."""


class MemoryTracker(Tracker):
    """Keeps everything in memory: for tests, reports and notebooks."""

    def __init__(self) -> None:
        self.spec: RunSpec | None = None
        self.meta: dict[str, Any] = {}
        self.epochs: list[EpochRecord] = []
        self.images: dict[str, Path] = {}
        self.summary: dict[str, Any] = {}
        self.state: str | None = None
        self.reason: str | None = None

    def start(self, spec: RunSpec, *, run_dir: Path | None, meta: dict[str, Any]) -> None:
        self.spec = spec
        self.meta = dict(meta)

    def log_epoch(self, record: EpochRecord) -> None:
        self.epochs.append(record)

    def log_image(self, name: str, path: Path) -> None:
        self.images[name] = path

    def finish(self, summary: dict[str, Any], *, state: str, reason: str) -> None:
        self.summary = dict(summary)
        self.state = state
        self.reason = reason
