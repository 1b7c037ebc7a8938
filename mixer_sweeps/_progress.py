"""Rich progress display for a single run."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mixer_sweeps.training import Callback, EpochRecord, Stop, TrainerView


class EpochProgress(Callback):
    """One bar over epochs, with the latest epoch's metrics beside it; use it as a context."""

    def __init__(self, epochs: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
        )
        self.task = self.progress.add_task("epochs", total=epochs, metrics="")

    def on_fit_start(self, trainer: TrainerView) -> None:
        self.progress.update(self.task, description=trainer.spec.name)

    def on_epoch_end(self, trainer: TrainerView, record: EpochRecord) -> Stop | None:
        metrics = (
            f"loss {record.train_loss:.3f}  val acc {record.val_acc:.4f}"
            f"  best {trainer.best_val_acc:.4f}  {record.images_per_s:,.0f} img/s"
        )
        self.progress.update(self.task, completed=record.epoch, metrics=metrics)
        return None

    def __enter__(self) -> EpochProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
