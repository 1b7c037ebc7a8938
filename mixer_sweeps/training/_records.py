"""What a run produces: one record per epoch and a result at the end."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    """1-based."""
    train_loss: float
    train_acc: float
    """Against the dominant label of each (possibly mixed) target."""
    val_loss: float
    val_acc: float
    lr: float
    """Learning rate at the end of the epoch."""
    seconds: float
    images_per_s: float
    """Training images per second of the epoch's training steps (evaluation excluded)."""

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


HISTORY_COLUMNS = tuple(f.name for f in dataclasses.fields(EpochRecord))


@dataclass(frozen=True)
class Stop:
    """Returned by a callback's ``on_epoch_end`` to end the run after this epoch."""

    state: str
    """How the run ends: ``pruned`` for a pruned trial, ``stopped`` for a user stop."""
    reason: str


@dataclass(frozen=True)
class RunMetrics:
    """A finished run's numbers: the contents of its ``metrics.json``, written and read here."""

    state: str
    reason: str
    best_val_acc: float
    best_epoch: int
    test_acc: float | None
    test_loss: float | None
    num_params: int
    epochs: int
    seconds: float

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> RunMetrics | None:
        """The metrics in ``path``; None when it is missing, damaged or not a run's metrics."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})
        except (OSError, ValueError, TypeError, KeyError):
            return None


@dataclass
class TrainResult:
    history: list[EpochRecord]
    best_val_acc: float
    best_epoch: int
    test_acc: float | None
    test_loss: float | None
    num_params: int
    seconds: float
    state: str
    """``completed`` (ran out of epochs or stopped early) or the state of a callback's Stop."""
    reason: str

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    def metrics(self) -> RunMetrics:
        """The numbers ``metrics.json`` keeps."""
        return RunMetrics(
            state=self.state,
            reason=self.reason,
            best_val_acc=self.best_val_acc,
            best_epoch=self.best_epoch,
            test_acc=self.test_acc,
            test_loss=self.test_loss,
            num_params=self.num_params,
            epochs=self.epochs_run,
            seconds=round(self.seconds, 3),
        )
