"""The end of ``sweeps run``, for people: the counts, the best trial (with several objectives,
the front) and where its files are."""

from __future__ import annotations

from rich.console import Console

from mixer_sweeps.results._describe import (
    describe_counts,
    format_epochs,
    format_params,
    short_names,
)
from mixer_sweeps.results._front import format_objective, objectives_summary, pareto_front
from mixer_sweeps.results._numbers import format_count, format_metric, format_value
from mixer_sweeps.results._record import StudyRecord, records
from mixer_sweeps.results._stats import ci95
from mixer_sweeps.study import StudyRun


def print_summary(run: StudyRun, console: Console) -> None:
    counts = run.counts
    total = "" if run.n_trials is None else f" of {run.n_trials}"
    minutes, seconds = divmod(round(run.seconds), 60)
    console.print(
        f"{run.study.study_name}: {counts.finished}{total} trials finished"
        f" ({describe_counts(counts)}), {run.added} of them in this run"
        f" ({minutes}m{seconds:02d}s)"
    )
    if run.interrupted:
        console.print("interrupted: run the same command again to finish the study")
    record = StudyRecord.from_study(run.study)
    if record.multi:
        _print_front(run, record, console)
        return
    best = run.best_trial
    if best is None:
        console.print("no trial has completed yet")
        return
    n = len(best.best)
    value = format_metric(best.value, ci95(best.best) if n > 1 else None)
    if n > 1:
        value += f" (mean ± 95% CI, n={n} seeds)"
    details = []
    if best.mean_test_acc is not None:
        details.append(f"test acc {format_metric(best.mean_test_acc)}")
    if best.num_params is not None:
        details.append(f"{format_count(best.num_params)} params")
    details.append(f"{format_epochs(best)} epochs" + (" per seed" if n > 1 else ""))
    console.print(f"best: trial {best.number}, {best.metric} {value} ({', '.join(details)})")
    for path, label in best.params.items():
        console.print(f"  {path}: {format_value(label)}")
    console.print(f"files: {run.study_dir / (best.run_dir or '')}/")


def _print_front(run: StudyRun, record: StudyRecord, console: Console) -> None:
    """The front of a multi-objective study, a configuration a line, cheapest first."""
    objectives = record.objectives
    front = pareto_front(records(run.trials, record.learning), objectives)
    aims = ", ".join(str(o) for o in objectives)
    if not front:
        console.print(f"no trial has completed yet ({aims})")
        return
    console.print(f"front: {len(front)} configuration{'s' * (len(front) != 1)} ({aims})")
    names = short_names(list(dict.fromkeys(p for t in front for p in t.params)))
    for trial in front:
        values = objectives_summary(trial, objectives)
        shown = ", ".join(f"{m} {format_objective(m, v)}" for m, v in values.items())
        console.print(f"  trial {trial.number}: {shown}  {format_params(trial.params, names)}")
    console.print(f"files: {run.study_dir}/ (`sweeps best` lists the front)")
