"""How the command line shows its output: live displays on a terminal, plain lines elsewhere.

In a pipe or a log file rich draws nothing live (a progress bar shows only when it ends) and
cuts tables at 80 columns. So :func:`output_console` gives non-terminals a width that fits any
table, and :class:`EpochProgress` prints one line per epoch there instead of a bar. Rich
flushes after every print, so each line reaches a log as it happens.
"""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mixer_sweeps.training import Callback, EpochRecord, Stop, TrainerView

NON_TERMINAL_WIDTH = 10_000
"""Columns of a console that is not a terminal: tables take only the width they need."""


def output_console() -> Console:
    """The console commands print to. Not a terminal (and no ``COLUMNS`` set): full width."""
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = NON_TERMINAL_WIDTH
    return console


class EpochProgress(Callback):
    """One bar over epochs, with the latest epoch's metrics beside it; use it as a context.

    On a console that is not a terminal, one line per epoch instead.
    """

    def __init__(self, epochs: int, console: Console | None = None) -> None:
        self.console = console or output_console()
        self.epochs = epochs
        self.name = ""
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
        )
        self.task = self.progress.add_task("epochs", total=epochs, metrics="")

    def on_fit_start(self, trainer: TrainerView) -> None:
        self.name = trainer.spec.name
        self.progress.update(self.task, description=self.name)

    def on_epoch_end(self, trainer: TrainerView, record: EpochRecord) -> Stop | None:
        metrics = (
            f"loss {record.train_loss:.3f}  val acc {record.val_acc:.4f}"
            f"  best {trainer.best_val_acc:.4f}  {record.images_per_s:,.0f} img/s"
        )
        if self.live:
            self.progress.update(self.task, completed=record.epoch, metrics=metrics)
        else:
            self.console.print(
                f"{self.name}  epoch {record.epoch}/{self.epochs}  {metrics}"
                f"  {record.seconds:.1f} s",
                markup=False,
            )
        return None

    def __enter__(self) -> EpochProgress:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()
