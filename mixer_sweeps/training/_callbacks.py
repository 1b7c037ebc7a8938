"""The trainer's one event system: a :class:`Callback` hears every event of a run.

Everything that reacts to a run is a callback: a study's pruner, a progress bar, and the trackers
of :mod:`mixer_sweeps.tracking` (W&B, in memory), as Composer's ``LoggerDestination`` is a
``Callback``. The trainer calls every callback of its list, in list order, for each event:

1. ``on_fit_start``: before the first epoch (after ``spec.yaml`` is written). A resumed run's
   restored epochs are in ``trainer.history``: trackers replay them so they hold the whole run.
2. ``on_epoch_end``: after every epoch (``history.csv`` and the checkpoint are written). Every
   callback hears it, even when an earlier one returned a :class:`Stop`.
3. ``on_image``: with an image worth keeping (the learning curves, once ``metrics.json`` and
   ``best.pt`` are written).
4. ``on_fit_end``: last, with the result; or ``on_fit_error`` instead, when the run ended by an
   exception (which the trainer re-raises after telling every callback).

The trainer knows nothing of Optuna or W&B, and this package never imports the trackers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mixer_sweeps.training._records import EpochRecord, Stop, TrainResult

if TYPE_CHECKING:
    import torch

    from mixer_sweeps.spec import RunSpec


class TrainerView(Protocol):
    """What a callback may read of the :class:`~mixer_sweeps.training.Trainer` it hears."""

    spec: RunSpec
    run_dir: Path | None
    """Where the run's files go; None when nothing is written."""
    num_params: int
    device: torch.device
    epoch: int
    """Epochs trained so far (restored ones included)."""
    best_val_acc: float
    history: Sequence[EpochRecord]
    """Every epoch so far; at ``on_fit_start``, the epochs a resumed run restored."""


class Callback:
    """Hooks into a run; every hook does nothing by default."""

    def on_fit_start(self, trainer: TrainerView) -> None:
        """Once, before the first epoch of this fit."""

    def on_epoch_end(self, trainer: TrainerView, record: EpochRecord) -> Stop | None:
        """After every epoch; a :class:`Stop` ends the run after this epoch."""
        return None

    def on_image(self, trainer: TrainerView, name: str, path: Path) -> None:
        """With an image worth keeping, e.g. ``("curves", run_dir / "curves.png")``."""

    def on_fit_end(self, trainer: TrainerView, result: TrainResult) -> None:
        """Once, last, when the run ended without an exception (completed, pruned, stopped)."""

    def on_fit_error(self, trainer: TrainerView, state: str, reason: str) -> None:
        """Once, when the run ended by an exception: ``state`` is ``stopped`` for a
        KeyboardInterrupt (Ctrl-C, SIGTERM), else ``failed``; ``reason`` names the exception."""
