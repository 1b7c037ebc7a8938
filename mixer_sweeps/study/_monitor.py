"""What a running study shows: a line per finished trial and, on a terminal, a live summary.

Everything shown is read back from the storage, so the same display serves one in-process
worker and many worker processes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mixer_sweeps.study._recovery import REASON_ATTR, count_trials, retried_numbers

if TYPE_CHECKING:
    from mixer_sweeps.study._runner import StudyRun

_STATE_STYLES = {
    TrialState.COMPLETE: "green",
    TrialState.PRUNED: "yellow",
    TrialState.FAIL: "red",
}


def short_names(paths: Sequence[str]) -> dict[str, str]:
    """Dotted paths by their last part where that is unambiguous (``optim.lr`` -> ``lr``)."""
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return {p: (s if last.count(s) == 1 else p) for p, s in zip(paths, last, strict=True)}


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_params(params: dict[str, Any], names: dict[str, str] | None = None) -> str:
    names = names or {}
    return "  ".join(f"{names.get(k, k)}={format_value(v)}" for k, v in params.items())


def best_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The COMPLETE trial with the highest value (the lowest number among ties)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return max(complete, key=lambda t: (t.value, -t.number), default=None)


def trial_epochs(trial: FrozenTrial) -> int:
    epochs = trial.user_attrs.get("epochs")
    if isinstance(epochs, list) and epochs:
        return int(sum(epochs))
    return len(trial.intermediate_values)


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
        self._trials: list[FrozenTrial] = []
        self._started = time.monotonic()

    def begin(self, trials: Sequence[FrozenTrial]) -> None:
        """Take the trials already stored as seen: only new ones get a line."""
        self._seen = {t.number for t in trials if t.state.is_finished()}
        self._trials = list(trials)

    def update(self, trials: Sequence[FrozenTrial]) -> None:
        self._trials = list(trials)
        retried = retried_numbers(trials)
        for trial in sorted(trials, key=lambda t: t.number):
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

    def _line(self, trial: FrozenTrial, *, requeued: bool) -> Text:
        state = trial.state.name + (" (queued again)" if requeued else "")
        line = Text(f"  trial {trial.number:>4}  ")
        line.append(f"{state:<9}", style=_STATE_STYLES.get(trial.state, ""))
        twin = trial.user_attrs.get("duplicate_of")
        if trial.state == TrialState.FAIL:
            line.append(f"  {trial.user_attrs.get(REASON_ATTR, 'failed')}")
        elif twin is not None:
            value = "-" if trial.value is None else f"{trial.value:.4f}"
            line.append(f"  {value}  as trial {twin} (same configuration, not trained again)")
        else:
            value = "-" if trial.value is None else f"{trial.value:.4f}"
            seconds = trial.user_attrs.get("seconds")
            took = f"{seconds:6.1f} s" if isinstance(seconds, int | float) else ""
            line.append(f"  {value}  {trial_epochs(trial):>3} ep {took}")
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
            Text(
                f"{counts.complete} complete  {counts.pruned} pruned  {counts.failed} failed"
                f"  {counts.running} running"
            ),
        ]
        best = best_trial(self._trials)
        if best is not None:
            rows.append(
                Text(
                    f"best {best.value:.4f} (trial {best.number})  "
                    + format_params(best.params, self.names)
                )
            )
        for trial in self._trials:
            if trial.state == TrialState.RUNNING and trial.intermediate_values:
                epoch = max(trial.intermediate_values)
                value = trial.intermediate_values[epoch]
                rows.append(
                    Text(f"trial {trial.number}: epoch {epoch}, val_acc {value:.4f}", style="dim")
                )
        if self.note:
            rows.append(Text(self.note, style="yellow"))
        return Group(*rows)


def print_summary(run: StudyRun, console: Console) -> None:
    """The end of ``sweeps run``: the counts, the best trial and where its files are."""
    counts = run.counts
    total = "" if run.n_trials is None else f" of {run.n_trials}"
    minutes, seconds = divmod(round(run.seconds), 60)
    console.print(
        f"{run.study.study_name}: {counts.finished}{total} trials finished"
        f" ({counts.complete} complete, {counts.pruned} pruned, {counts.failed} failed),"
        f" {run.added} of them in this run ({minutes}m{seconds:02d}s)"
    )
    if run.interrupted:
        console.print("interrupted: run the same command again to finish the study")
    best = run.best_trial
    if best is None:
        console.print("no trial has completed yet")
    else:
        attrs = best.user_attrs
        value = f"{best.value:.4f}"
        accs = attrs.get("best_val_accs") or []
        if len(accs) > 1:
            value += f" ± {attrs.get('best_val_acc_std', 0.0):.4f} (mean of {len(accs)} seeds)"
        tests = [t for t in attrs.get("test_accs") or [] if t is not None]
        details = []
        if tests:
            details.append(f"test acc {sum(tests) / len(tests):.4f}")
        if "num_params" in attrs:
            details.append(f"{attrs['num_params']:,} params")
        details.append(f"{trial_epochs(best)} epochs")
        console.print(f"best: trial {best.number}, val_acc {value} ({', '.join(details)})")
        for path, label in best.params.items():
            console.print(f"  {path}: {format_value(label)}")
        console.print(f"files: {run.study_dir / attrs.get('run_dir', '')}/")
