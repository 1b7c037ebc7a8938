"""``sweeps best`` on a multi-objective study: its front, each configuration with its objectives.

A front has no single best trial: ``best`` lists it (the front's trials, cheapest first) and
``best --trial N`` shows, or with ``--export`` writes, any one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from mixer_sweeps.results import StudyResults, TrialRecord


def front_rows(found: StudyResults) -> list[dict[str, Any]]:
    """The front's trials as ``sweeps best --json`` lists them: each trial's summary and its
    ``objectives`` by name."""
    from mixer_sweeps.results import objectives_summary, pareto_front, trial_summary

    return [
        {**trial_summary(t), "objectives": objectives_summary(t, found.objectives)}
        for t in pareto_front(found.trials, found.objectives)
    ]


def objectives_json(found: StudyResults) -> list[dict[str, str]]:
    return [o.as_json() for o in found.objectives]


def front_payload(found: StudyResults, complete: int) -> dict[str, Any]:
    return {
        "study": found.name,
        "objectives": objectives_json(found),
        "replicates": found.replicates,
        "complete": complete,
        "front": front_rows(found),
    }


def trial_objectives(found: StudyResults, trial: TrialRecord) -> dict[str, Any]:
    """What ``best --trial N --json`` adds for a multi-objective study."""
    from mixer_sweeps.results import objectives_summary, pareto_front

    front = {t.number for t in pareto_front(found.trials, found.objectives)}
    return {
        "objectives": objectives_summary(trial, found.objectives),
        "on_front": trial.number in front,
    }


def describe_objectives(found: StudyResults) -> str:
    """``maximize val_acc, minimize params``."""
    return ", ".join(str(o) for o in found.objectives)


def front_table(found: StudyResults, rows: list[dict[str, Any]], complete: int) -> Any:
    """The front as a table: trial, each objective (the learning metric ± 95% CI with
    replicates), the searched params and test acc."""
    from rich import box
    from rich.table import Table

    from mixer_sweeps.results import format_metric, format_objective, format_value, short_names

    names = short_names([d.path for d in found.space])
    ci = found.replicates > 1
    title = (
        f"study {found.name}: front of {len(rows)} configuration{'s' * (len(rows) != 1)} among"
        f" {complete} complete trials ({describe_objectives(found)}"
    )
    title += f"; mean ± 95% CI over {found.replicates} seeds)" if ci else ")"
    table = Table(title=title, box=box.SIMPLE, title_justify="left")
    table.add_column("trial", justify="right")
    for objective in found.objectives:
        shown = objective.metric + (" ± 95% CI" if ci and not objective.is_cost else "")
        table.add_column(shown, justify="right")
    for short in names.values():
        table.add_column(short, justify="right")
    table.add_column("test acc", justify="right")
    for row in rows:
        cells = []
        for objective in found.objectives:
            value = row["objectives"][objective.metric]
            if objective.is_cost:
                cells.append(format_objective(objective.metric, value))
            else:
                cells.append(format_metric(value, row["ci95"]))
        params = [format_value(row["params"].get(path, "")) for path in names]
        table.add_row(str(row["number"]), *cells, *params, format_metric(row["test_acc"]))
    return table


def print_front(console: Console, found: StudyResults, complete: int) -> None:
    rows = front_rows(found)
    console.print(front_table(found, rows, complete))
    if rows:
        console.print(
            f"`sweeps best {found.study_dir} --trial N` shows one (its run spec);"
            " with --export it writes it for `sweeps train`",
            markup=False,
        )


def print_objectives(console: Console, found: StudyResults, trial: TrialRecord) -> None:
    """The objectives line of ``best --trial N`` in a multi-objective study."""
    from mixer_sweeps.results import format_objective

    shown = trial_objectives(found, trial)
    values = ", ".join(
        f"{metric} {format_objective(metric, value)}"
        for metric, value in shown["objectives"].items()
    )
    where = "on the front" if shown["on_front"] else "not on the front"
    console.print(f"  objectives: {values} ({where})", markup=False)
