"""What a running study shows: a line per finished trial and, on a terminal, a live summary.

Everything shown is read back from the storage, so the same display serves one in-process
worker and many worker processes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mixer_sweeps.results import (
    TrialRecord,
    best_trial,
    count_trials,
    describe_counts,
    format_outcome,
    format_params,
    records,
    retried_numbers,
    short_names,
)

_STATE_STYLES = {
    TrialState.COMPLETE: "green",
    TrialState.PRUNED: "yellow",
    TrialState.FAIL: "red",
}


class StudyMonitor:
    """Prints each trial as it finishes and keeps a live summary on terminals.

    Use it as a context; feed it the study's trials with :meth:`update` as often as is cheap.
    """

    def __init__(
        self,
        name: str,
        *,
        n_trials: int | None,
        param_paths: Sequence[str],
        console: Console,
        live: bool | None = None,
    ) -> None:
        self.name = name
        self.n_trials = n_trials
        self.names = short_names(list(param_paths))
        self.console = console
        self.note: str | None = None
        self._show_live = console.is_terminal if live is None else live
        self._live: Live | None = None
        self._seen: set[int] = set()
        self._trials: list[TrialRecord] = []
        self._started = time.monotonic()

    def begin(self, trials: Sequence[FrozenTrial]) -> None:
        """Take the trials already stored as seen: only new ones get a line."""
        self._trials = records(trials)
        self._seen = {t.number for t in self._trials if t.state.is_finished()}

    def update(self, trials: Sequence[FrozenTrial]) -> None:
        self._trials = records(trials)
        retried = retried_numbers(self._trials)
        for trial in sorted(self._trials, key=lambda t: t.number):
            if trial.state.is_finished() and trial.number not in self._seen:
                self._seen.add(trial.number)
                self.console.print(self._line(trial, requeued=trial.number in retried))
        if self._live is not None:
            self._live.update(self._summary(), refresh=True)

    def __enter__(self) -> StudyMonitor:
        if self._show_live:
            self._live = Live(
                self._summary(), console=self.console, auto_refresh=False, transient=True
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _line(self, trial: TrialRecord, *, requeued: bool) -> Text:
        state = trial.state.name + (" (queued again)" if requeued else "")
        line = Text(f"  trial {trial.number:>4}  ")
        line.append(f"{state:<9}", style=_STATE_STYLES.get(trial.state, ""))
        line.append(f"  {format_outcome(trial)}")
        if trial.params:
            line.append(f"  {format_params(trial.params, self.names)}", style="dim")
        return line

    def _summary(self) -> Group:
        counts = count_trials(self._trials)
        minutes, seconds = divmod(int(time.monotonic() - self._started), 60)
        head = Table.grid(padding=(0, 1))
        head.add_row(
            Text(self.name, style="bold"),
            ProgressBar(total=self.n_trials, completed=counts.finished, width=24),
            Text(f"{counts.finished}/{self.n_trials or '?'} trials  {minutes}:{seconds:02d}"),
        )
        rows: list[Any] = [
            head,
            Text(f"{describe_counts(counts)}, {counts.running} running"),
        ]
        best = best_trial(self._trials)
        if best is not None and best.value is not None:
            rows.append(
                Text(
                    f"best {best.value:.4f} (trial {best.number})  "
                    + format_params(best.params, self.names)
                )
            )
        for trial in self._trials:
            if trial.state == TrialState.RUNNING and trial.last_epoch is not None:
                epoch, value = trial.last_epoch
                shown = f"{trial.metric} {value:.4f}"
                rows.append(Text(f"trial {trial.number}: epoch {epoch}, {shown}", style="dim"))
        if self.note:
            rows.append(Text(self.note, style="yellow"))
        return Group(*rows)
