"""Plots of the trials one by one, pruned trials included: the optimisation history, every
trial's curve, parallel coordinates, and val acc against parameter count.

A pruned trial is drawn faint at the last value it reported to the pruner (in the Pareto plot,
the best val acc it reached), so what pruning stopped, and when, is there to see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from mixer_sweeps.report._figure import (
    COMPLETE_COLOR,
    PRUNED_STYLE,
    count_x_axis,
    new_figure,
)
from mixer_sweeps.report._frame import OBJECTIVE, value_label
from mixer_sweeps.report._tables import COMPLETE, PRUNED
from mixer_sweeps.results import StudyResults, TrialRecord, short_names
from mixer_sweeps.spec import Choices

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LABEL_OFFSETS = ((-4, 4), (4, 4), (-4, -4), (4, -4), (0, 9), (0, -9), (10, 0), (-10, 0))
"""Where a Pareto label may go (points from its trial), tried in order; the first, above left,
is where no trial can be: nothing with fewer parameters beats a trial of the front."""
TICK_BOX = {"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}
MARKER_RADIUS = 3
"""Points around a trial's centre that a label keeps clear of."""


def metric_label(metric: str) -> str:
    return metric.replace("_", " ")


def last_value(trial: TrialRecord) -> float | None:
    """A complete trial's value; a pruned trial's last reported value."""
    if trial.state.name == COMPLETE:
        return trial.value
    last = trial.last_epoch
    return last[1] if last is not None else trial.mean_best


def trial_values(results: StudyResults) -> pd.DataFrame:
    """One row per complete or pruned trial: ``number``, ``state``, ``value`` (see
    :func:`last_value`) and a column per searched path (Optuna's param values)."""
    rows = [
        {"number": t.number, "state": t.state.name, "value": last_value(t), **t.params}
        for t in results.trials
        if t.state.name in (COMPLETE, PRUNED)
    ]
    columns = ["number", "state", "value", *(d.path for d in results.space)]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"value": float}).dropna(subset=["value"])


def _maximize(results: StudyResults) -> bool:
    return results.direction.name == "MAXIMIZE"


def history_figure(studies: Sequence[StudyResults]) -> Figure:
    """Each trial's value in the order the trials ran, and the best so far; several studies
    share the axes."""
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(7, 4.2)
    ax = figure.add_subplot()
    several = len(studies) > 1
    for i, results in enumerate(studies):
        points = trial_values(results)
        complete, pruned = (points[points["state"] == s] for s in (COMPLETE, PRUNED))
        color = f"C{i}" if several else COMPLETE_COLOR
        name = f"{results.name}: " if several else ""
        pruned_style = {**PRUNED_STYLE, "color": color} if several else PRUNED_STYLE
        ax.scatter(
            complete["number"],
            complete["value"],
            color=color,
            s=24,
            zorder=3,
            label=f"{name}complete",
            gid="complete",
        )
        if len(pruned):
            ax.scatter(
                pruned["number"],
                pruned["value"],
                marker="x",
                s=24,
                zorder=2,
                label=f"{name}pruned (last reported value)",
                gid="pruned",
                **pruned_style,
            )
        if len(complete):
            best = complete["value"].cummax() if _maximize(results) else complete["value"].cummin()
            xs = [*complete["number"], points["number"].max()]
            ys = [*best, best.iloc[-1]]
            ax.step(xs, ys, where="post", color=color, lw=1.5, label=f"{name}best so far")
    metrics = {results.metric for results in studies}
    ax.set(
        xlabel="trial",
        ylabel=metric_label(metrics.pop()) if len(metrics) == 1 else "value",
        title="Optimisation history",
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    figure.legend(loc="outside lower center", ncols=3, fontsize="small", frameon=False)
    return figure


def _value_colors(results: StudyResults, values: pd.Series) -> tuple[Any, Any]:
    """A colour map (bright: better) and its norm over ``values``."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    cmap = colormaps["viridis" if _maximize(results) else "viridis_r"]
    low, high = (values.min(), values.max()) if len(values) else (0.0, 1.0)
    return cmap, Normalize(low, high if high > low else low + 1e-9)


def intermediate_figure(results: StudyResults) -> Figure | None:
    """Every trial's reported metric per epoch: complete trials coloured by their value, pruned
    ones faint and ending with a cross at the epoch they were stopped."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    curves = [
        t for t in results.trials if t.state.name in (COMPLETE, PRUNED) and len(t.intermediate)
    ]
    if not curves:
        return None
    values = pd.Series([t.value for t in curves if t.state.name == COMPLETE], dtype=float)
    cmap, norm = _value_colors(results, values)
    figure = new_figure(7, 4.5)
    ax = figure.add_subplot()
    for trial in sorted(curves, key=lambda t: (t.state.name == COMPLETE, t.number)):
        epochs = sorted(trial.intermediate)
        reported = [trial.intermediate[e] for e in epochs]
        if trial.state.name == PRUNED:
            style = {**PRUNED_STYLE, "lw": 0.9, "marker": "x", "markevery": [len(epochs) - 1]}
        else:
            style = {"color": cmap(norm(trial.value)), "lw": 1.4, "zorder": 3}
        ax.plot(epochs, reported, gid=trial.state.name.lower(), **style)
    metric = metric_label(results.metric)
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch, every trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if len(values):
        figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label=f"{metric} of the trial")
    if any(t.state.name == PRUNED for t in curves):
        cross = Line2D([], [], marker="x", lw=0.9, label="pruned (stopped at ×)", **PRUNED_STYLE)
        ax.legend(handles=[cross], loc="best", fontsize="small")
    return figure


def _axis_positions(dim: Any, column: pd.Series) -> tuple[pd.Series, list[tuple[float, str]]]:
    """A parameter's values placed on a 0..1 axis (choices evenly, ranges linearly or on a log
    scale between their bounds), and the axis's ticks."""
    if isinstance(dim, Choices):
        keys = [repr(label) for label in dim.labels]
        spread = max(len(keys) - 1, 1)
        place = {key: i / spread for i, key in enumerate(keys)}
        positions = column.map(lambda v: place.get(repr(v)), na_action="ignore")
        ticks = [(i / spread, _tick(label)) for i, label in enumerate(dim.labels)]
        return positions.astype(float), ticks
    scale = math.log10 if dim.log else float
    low, high = scale(dim.low), scale(dim.high)
    width = high - low or 1.0
    positions = column.astype(float).map(lambda v: (scale(v) - low) / width, na_action="ignore")
    ticks = [(0.0, f"{dim.low:.3g}"), (1.0, f"{dim.high:.3g}")]
    return positions, ticks


def _tick(label: Any) -> str:
    if isinstance(label, float):
        return f"{label:.3g}"
    return str(value_label(label))


def parallel_figure(results: StudyResults) -> Figure | None:
    """Parallel coordinates: an axis per searched parameter and one for the objective, a line
    per trial; complete trials coloured by their value, pruned ones faint."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection

    points = trial_values(results)
    if points.empty:
        return None
    paths = [d.path for d in results.space]
    axes = {}
    ticks = []
    for dim in results.space:
        axes[dim.path], dim_ticks = _axis_positions(dim, points[dim.path])
        ticks.append(dim_ticks)
    low, high = points["value"].min(), points["value"].max()
    spread = high - low or 1.0
    axes["value"] = (points["value"] - low) / spread
    ticks.append([(i / 4, f"{low + spread * i / 4:.3g}") for i in range(5)])
    placed = pd.DataFrame(axes)
    xs = range(len(placed.columns))

    figure = new_figure(max(6.0, 1.5 * len(placed.columns) + 2), 4.5)
    ax = figure.add_subplot()
    complete = points["state"] == COMPLETE
    cmap, norm = _value_colors(results, points.loc[complete, "value"])
    for state, rows in ((PRUNED, ~complete), (COMPLETE, complete)):
        lines = [list(zip(xs, row, strict=True)) for row in placed[rows].to_numpy()]
        if state == PRUNED:
            collection = LineCollection(lines, lw=0.9, gid="pruned", **PRUNED_STYLE)
        else:
            collection = LineCollection(lines, lw=1.6, cmap=cmap, norm=norm, gid="complete")
            collection.set_array(points.loc[rows, "value"].to_numpy())
        ax.add_collection(collection)
    for x, axis_ticks in zip(xs, ticks, strict=True):
        ax.axvline(x, color="black", lw=0.8, zorder=1)
        for y, text in axis_ticks:
            ax.annotate(
                text,
                (x, y),
                xytext=(-3, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=7,
                zorder=4,
                bbox=TICK_BOX,
            )
    metric = metric_label(results.metric)
    names = short_names(paths)
    ax.set_xticks(list(xs), [*(names[p] for p in paths), metric])
    ax.set(xlim=(-0.45, len(xs) - 0.8), ylim=(-0.05, 1.05), yticks=[])
    ax.set_title(f"Parallel coordinates: {len(points)} complete and pruned trials")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    if complete.any():
        figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label=metric)
    if not complete.all():
        from matplotlib.lines import Line2D

        handle = Line2D([], [], lw=0.9, label="pruned (last reported value)", **PRUNED_STYLE)
        figure.legend(handles=[handle], loc="outside lower center", fontsize="small")
    return figure


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """The trials that no other beats on both: fewer (or as many) parameters and higher val acc."""
    ordered = points.sort_values(["num_params", OBJECTIVE], ascending=[True, False])
    best = ordered[OBJECTIVE].cummax().shift(fill_value=-float("inf"))
    return ordered[ordered[OBJECTIVE] > best]


def pareto_figure(frame: pd.DataFrame) -> Figure | None:
    """Val acc against parameter count, the front in red and its trials labelled by number;
    pruned trials faint at the best val acc they reached."""
    sized = frame.dropna(subset=["num_params", OBJECTIVE]).astype({"num_params": float})
    points = sized[sized["state"] == COMPLETE]
    pruned = sized[sized["state"] == PRUNED]
    if points.empty:
        return None
    front = pareto_front(points)
    figure = new_figure(7, 4.5)
    ax = figure.add_subplot()
    ax.scatter(
        points["num_params"],
        points[OBJECTIVE],
        color=COMPLETE_COLOR,
        alpha=0.6,
        s=28,
        zorder=2,
        label="complete",
        gid="complete",
    )
    if len(pruned):
        ax.scatter(
            pruned["num_params"],
            pruned[OBJECTIVE],
            marker="x",
            s=24,
            label="pruned",
            gid="pruned",
            **PRUNED_STYLE,
        )
    ax.step(
        front["num_params"], front[OBJECTIVE], where="post", color="tab:red", label="Pareto front"
    )
    ax.scatter(front["num_params"], front[OBJECTIVE], color="tab:red", s=28, zorder=3)
    count_x_axis(ax, sized["num_params"].min(), sized["num_params"].max())
    ax.set(xlabel="parameters", ylabel="val acc", title="Val accuracy vs parameter count")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    _label_front(ax, front, sized)
    return figure


def _label_front(ax: Axes, front: pd.DataFrame, every: pd.DataFrame) -> None:
    """Labels the front's trials by number, each where it covers no trial and no other label.

    The layout is fixed first, so the places found are the places drawn.
    """
    figure = ax.figure
    figure.draw_without_rendering()
    figure.set_layout_engine("none")
    renderer = figure.canvas.get_renderer()
    centres = ax.transData.transform(every[["num_params", OBJECTIVE]].to_numpy())
    marker = MARKER_RADIUS * figure.dpi / 72
    frame = ax.get_window_extent(renderer)
    taken: list[Any] = []
    for row in front.itertuples():
        xy = (row.num_params, getattr(row, OBJECTIVE))
        options = []
        for dx, dy in LABEL_OFFSETS:
            label = ax.annotate(
                str(row.number),
                xy,
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=8,
                ha="right" if dx < 0 else "left" if dx > 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                gid="front label",
            )
            box = label.get_window_extent(renderer)
            clashes = box.padded(marker).count_contains(centres)
            clashes += sum(box.overlaps(other) for other in taken)
            clashes += not (frame.x0 <= box.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1)
            options.append((clashes, label, box))
        _, kept, box = min(options, key=lambda option: option[0])
        for _, label, _ in options:
            if label is not kept:
                label.remove()
        taken.append(box)
