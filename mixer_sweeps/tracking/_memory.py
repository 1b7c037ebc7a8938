"""A tracker that keeps a run's story in memory: for tests, reports and notebooks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer_sweeps.training import Callback

if TYPE_CHECKING:
    from mixer_sweeps.spec import RunSpec
    from mixer_sweeps.training import EpochRecord, TrainerView, TrainResult


class MemoryTracker(Callback):
    """Keeps everything in memory, as a W&B run would hold it.

    ``meta`` holds ``num_params`` and ``device``; ``epochs`` every epoch (a resumed run's
    restored ones first); ``summary`` the contents of ``metrics.json`` at the end, or
    ``num_params`` and ``epochs`` when the run ended by an exception.
    """

    def __init__(self) -> None:
        self.spec: RunSpec | None = None
        self.run_dir: Path | None = None
        self.meta: dict[str, Any] = {}
        self.epochs: list[EpochRecord] = []
        self.images: dict[str, Path] = {}
        self.summary: dict[str, Any] = {}
        self.state: str | None = None
        self.reason: str | None = None

    def on_fit_start(self, trainer: TrainerView) -> None:
        self.spec = trainer.spec
        self.run_dir = trainer.run_dir
        self.meta = {"num_params": trainer.num_params, "device": str(trainer.device)}
        # A resumed run tells the tracker the whole story, not just the part after resuming.
        self.epochs.extend(trainer.history)

    def on_epoch_end(self, trainer: TrainerView, record: EpochRecord) -> None:
        self.epochs.append(record)

    def on_image(self, trainer: TrainerView, name: str, path: Path) -> None:
        self.images[name] = path

    def on_fit_end(self, trainer: TrainerView, result: TrainResult) -> None:
        self._finish(dataclasses.asdict(result.metrics()), state=result.state, reason=result.reason)

    def on_fit_error(self, trainer: TrainerView, state: str, reason: str) -> None:
        self._finish({"num_params": trainer.num_params, "epochs": trainer.epoch}, state, reason)

    def _finish(self, summary: dict[str, Any], state: str, reason: str) -> None:
        self.summary = dict(summary)
        self.state = state
        self.reason = reason
