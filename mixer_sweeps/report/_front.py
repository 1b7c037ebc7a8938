"""The front of a multi-objective study in its report: a table of the front's configurations,
the front plot (two objectives against each other) and the hypervolume over the trials.

The front plot puts the learning metric on the y axis and the first cost on the x axis (counts in
k and M): the front's trials red and labelled, the dominated complete trials faint blue, the
pruned ones faint grey crosses at their costs and the best they reached before they were
stopped. With more than two objectives the front is the front of all of them, seen in these two.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from optuna.study import StudyDirection

from mixer_sweeps.report._figure import (
    COMPLETE_COLOR,
    PRUNED_STYLE,
    count_x_axis,
    new_figure,
    save_figure,
)
from mixer_sweeps.report._plots import Plot
from mixer_sweeps.report._plots_trials import metric_label
from mixer_sweeps.report._tables import CI, COMPLETE, PRUNED, Table
from mixer_sweeps.results import (
    StudyResults,
    ci95,
    hypervolume_box,
    hypervolume_history,
    objective_values,
    pareto_front,
    short_names,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FRONT_PNG = "front.png"
HYPERVOLUME_PNG = "hypervolume.png"
COUNTS = ("params", "flops")
"""Costs that are counts: shown whole (``138,506``) and on a k/M axis."""
FRONT_COLOR = "tab:red"
DOMINATED_ALPHA = 0.3


def front_table(results: StudyResults) -> Table:
    """The front's configurations, cheapest first: trial, params, each objective (the learning
    metric ± 95% CI over seeds with replicates) and test acc."""
    objectives = results.objectives
    front = pareto_front(results.trials, objectives)
    names = short_names([d.path for d in results.space])
    rows = []
    for trial in front:
        row: dict[str, object] = {"trial": trial.number}
        row.update({short: trial.params.get(path) for path, short in names.items()})
        for objective, value in zip(objectives, trial.values, strict=True):
            row[objective.metric] = value
            if not objective.is_cost and results.replicates > 1:
                row[CI] = ci95(trial.best)
        row["test acc"] = trial.mean_test_acc
        rows.append(row)
    columns = ["trial", *names.values()]
    for objective in objectives:
        columns.append(objective.metric)
        if not objective.is_cost and results.replicates > 1:
            columns.append(CI)
    frame = pd.DataFrame(rows, columns=[*columns, "test acc"]).set_index("trial")
    for metric in (o.metric for o in objectives if o.metric in COUNTS):
        frame[metric] = frame[metric].round().astype("Int64")
    aims = ", ".join(str(o) for o in objectives)
    complete = sum(t.state.name == COMPLETE for t in results.trials)
    note = (
        f"The complete trials that no other beats on every objective ({aims}), one per"
        f" configuration, cheapest first: {len(front)} of {complete} complete trials."
    )
    if results.replicates > 1:
        note += f" The learning metric: mean ± 95% CI (Student's t, n={results.replicates} seeds)."
    shown_as_written = (
        *names.values(),
        *(o.metric for o in objectives if o.is_cost and o.metric not in COUNTS),
    )
    title = f"Front: {len(front)} configuration{'s' * (len(front) != 1)}"
    return Table("front", title, frame, note, params=shown_as_written)


def _axes(results: StudyResults) -> tuple[int, int]:
    """The objectives on the x axis (the first cost, else the second) and the y axis (the
    learning metric)."""
    objectives = results.objectives
    y = results.record.learning
    x = next((i for i, o in enumerate(objectives) if o.is_cost), 1 if y == 0 else 0)
    return x, y


def front_figure(results: StudyResults) -> Figure | None:
    """The front plot; None without a complete trial."""
    objectives = results.objectives
    x, y = _axes(results)
    front = {t.number for t in pareto_front(results.trials, objectives)}
    rows = []
    for trial in results.trials:
        if trial.state.name not in (COMPLETE, PRUNED):
            continue
        values = objective_values(trial, objectives)
        if values[x] is None or values[y] is None:
            continue
        kind = (
            "pruned"
            if trial.state.name == PRUNED
            else "front"
            if trial.number in front
            else "dominated"
        )
        rows.append({"number": trial.number, "kind": kind, "x": values[x], "y": values[y]})
    points = pd.DataFrame(rows, columns=["number", "kind", "x", "y"]).astype(
        {"x": float, "y": float}
    )
    if not (points["kind"] == "front").any():
        return None
    figure = new_figure(7, 4.5)
    ax = figure.add_subplot()
    dominated, pruned, best = (
        points[points["kind"] == k] for k in ("dominated", "pruned", "front")
    )
    if len(dominated):
        ax.scatter(
            dominated["x"],
            dominated["y"],
            color=COMPLETE_COLOR,
            alpha=DOMINATED_ALPHA,
            s=24,
            zorder=2,
            label="dominated",
            gid="dominated",
        )
    if len(pruned):
        ax.scatter(
            pruned["x"], pruned["y"], marker="x", s=24, label="pruned", gid="pruned", **PRUNED_STYLE
        )
    best = best.sort_values("x")
    ax.step(
        best["x"],
        best["y"],
        where="post" if objectives[x].direction == StudyDirection.MINIMIZE else "pre",
        color=FRONT_COLOR,
        lw=1.2,
        gid="front line",
    )
    ax.scatter(best["x"], best["y"], color=FRONT_COLOR, s=30, zorder=3, label="front", gid="front")
    for row in best.itertuples():
        ax.annotate(
            str(row.number),
            (row.x, row.y),
            xytext=(4, -4 if objectives[y].direction == StudyDirection.MAXIMIZE else 4),
            textcoords="offset points",
            fontsize=8,
            va="top" if objectives[y].direction == StudyDirection.MAXIMIZE else "bottom",
            gid="front label",
        )
    if objectives[x].metric in COUNTS:
        count_x_axis(ax, points["x"].min(), points["x"].max())
    x_name, y_name = metric_label(objectives[x].metric), metric_label(objectives[y].metric)
    ax.set(
        xlabel=f"{x_name} ({objectives[x].direction.name.lower()})",
        ylabel=f"{y_name} ({objectives[y].direction.name.lower()})",
        title=f"Front: {y_name} vs {x_name}",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return figure


def hypervolume_figure(results: StudyResults) -> Figure | None:
    """The hypervolume of the front after each complete trial; None without one."""
    from matplotlib.ticker import MaxNLocator

    history = hypervolume_history(results.trials, results.objectives)
    if not history:
        return None
    numbers, volumes = zip(*history, strict=True)
    last = max(t.number for t in results.trials)
    figure = new_figure(7, 4)
    ax = figure.add_subplot()
    ax.step(
        [*numbers, last],
        [*volumes, volumes[-1]],
        where="post",
        color=FRONT_COLOR,
        gid="hypervolume",
    )
    ax.scatter(numbers, volumes, color=FRONT_COLOR, s=12, zorder=3, gid="complete")
    ax.set(
        xlabel="trial",
        ylabel="hypervolume (share of the box)",
        ylim=(0, 1.02),
        title="Hypervolume of the front over the trials",
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return figure


def front_plots(results: StudyResults, out: Path) -> list[Plot]:
    """The front plot and the hypervolume plot of a multi-objective study, written to ``out``."""
    plots = []
    figure = front_figure(results)
    if figure is not None:
        x, y = _axes(results)
        caption = (
            f"{metric_label(results.objectives[y].metric)} against"
            f" {metric_label(results.objectives[x].metric)}, one point per trial. Red: the"
            " front (no complete trial is as good on every objective and better on one),"
            " labelled by trial number; faint blue: dominated trials; grey crosses: pruned"
            " trials, at their costs and the best they reached before they were stopped."
        )
        plots.append(Plot("Front", save_figure(figure, out / FRONT_PNG), caption))
    figure = hypervolume_figure(results)
    if figure is not None:
        box = hypervolume_box(results.trials, results.objectives)
        assert box is not None
        corners = ", ".join(
            f"{o.metric} {b:.4g} (0) to {r:.4g} (1)"
            for o, b, r in zip(results.objectives, box.ideal, box.reference, strict=True)
        )
        caption = (
            "The hypervolume the front of the complete trials dominates after each trial, as a"
            f" share of the box from the best value of each objective to the reference point:"
            f" {corners}. It never falls; flat where a trial added nothing to the front."
        )
        plots.append(Plot("Hypervolume", save_figure(figure, out / HYPERVOLUME_PNG), caption))
    return plots
