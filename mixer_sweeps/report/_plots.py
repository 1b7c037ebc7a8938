"""The report's plots, as PNG files with a caption each, in matplotlib's default style.

The plots of the trials one by one (history, intermediate values, parallel coordinates, Pareto)
are in :mod:`._plots_trials`; here are those of groups of trials, and the list of a report's
plots.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mixer_sweeps.report._figure import new_figure, save_figure
from mixer_sweeps.report._frame import OBJECTIVE
from mixer_sweeps.report._importances import Importances, draw_importances
from mixer_sweeps.report._plots_trials import (
    history_figure,
    intermediate_figure,
    metric_label,
    parallel_figure,
    pareto_figure,
)
from mixer_sweeps.report._tables import COMPLETE, cell_runs, pivot_pairs
from mixer_sweeps.results import StudyResults, short_names
from mixer_sweeps.training import HISTORY_FILE

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CURVES_K = 5


@dataclass(frozen=True)
class Plot:
    title: str
    path: Path
    caption: str = ""
    """What the plot shows and how to read it, under it in the report."""


@contextlib.contextmanager
def _matplotlib() -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context():
        yield plt
        plt.close("all")


def _save(ax: Axes, path: Path) -> Path:
    return save_figure(ax.figure, path)


def _draw(path: Path, draw: Callable[[Any], Axes]) -> Path:
    with _matplotlib() as plt:
        return _save(draw(plt), path)


def history_plot(studies: Sequence[StudyResults], path: Path) -> Path:
    """The optimisation history; several studies share the axes."""
    return save_figure(history_figure(studies), path)


def importances_plot(importances: Importances, path: Path) -> Path:
    """The importances the report's table shows, as bars with their intervals (largest on top)."""
    return _draw(path, lambda plt: draw_importances(importances, plt))


def heatmap_figure(
    results: StudyResults, frame: pd.DataFrame, levels: pd.DataFrame, rows: str, columns: str
) -> Figure:
    """Mean val acc per cell of two factors, with the cell's number of complete trials ``n``;
    a cell of a single trial is hatched."""
    from matplotlib.patches import Rectangle

    means = cell_runs(frame, levels, rows, columns).mean().unstack(columns)
    counts = trial_counts(frame, levels, rows, columns)
    names = short_names([rows, columns])
    figure = new_figure(1.4 * len(means.columns) + 2.5, 0.9 * len(means.index) + 1.8)
    ax = figure.add_subplot()
    image = ax.imshow(means.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(means.columns)), [_level(c) for c in means.columns])
    ax.set_yticks(range(len(means.index)), [_level(c) for c in means.index])
    ax.set(xlabel=names[columns], ylabel=names[rows], title="Mean val acc (n: complete trials)")
    for i, j in ((i, j) for i in range(len(means.index)) for j in range(len(means.columns))):
        value, n = means.iat[i, j], int(counts.iat[i, j])
        if pd.isna(value):
            text = f"–\nn={n}"
            ax.text(j, i, text, ha="center", va="center", color="grey", fontsize=8, gid="cell")
            continue
        color = "black" if image.norm(value) > 0.6 else "white"
        text = f"{value:.3f}\nn={n}"
        box = {"facecolor": image.cmap(image.norm(value)), "edgecolor": "none"} if n == 1 else None
        ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8, bbox=box, gid="cell")
        if n == 1:
            ax.add_patch(
                Rectangle(
                    (j - 0.5, i - 0.5),
                    1,
                    1,
                    fill=False,
                    hatch="///",
                    edgecolor=color,
                    lw=1.5,
                    alpha=0.5,
                    gid="single trial",
                )
            )
    figure.colorbar(image, ax=ax, label="val acc")
    return figure


def trial_counts(frame: pd.DataFrame, levels: pd.DataFrame, rows: str, columns: str) -> Any:
    """The number of complete trials in each cell of two factors (zero where there are none)."""
    complete = levels.loc[frame["state"] == COMPLETE, [rows, columns]]
    return complete.groupby([rows, columns], observed=False).size().unstack(columns)


def heatmap_caption(results: StudyResults, rows: str, columns: str) -> str:
    caption = (
        f"Mean val acc of the complete trials in each cell of {rows} (rows) × {columns}"
        " (columns); n: the cell's complete trials, hatched: a cell of a single trial."
    )
    if results.replicates > 1:
        caption += f" A trial's val acc is the mean of its {results.replicates} seeds."
    others = [d.path for d in results.space if d.path not in (rows, columns)]
    if others:
        caption += (
            f" The other parameters ({', '.join(others)}) vary within a cell, as the sampler"
            " chose them: a cell's mean mixes their values."
        )
    return caption


def _level(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def curves_plot(
    results: StudyResults, frame: pd.DataFrame, path: Path, k: int = CURVES_K
) -> Path | None:
    """Val acc per epoch of the top ``k`` complete trials (the mean over seeds with replicates)."""
    complete = frame[frame["state"] == COMPLETE]
    top = complete.sort_values([OBJECTIVE, "number"], ascending=[False, True]).head(k)
    trials = {t.number: t for t in results.trials}
    curves = {}
    for number in top["number"]:
        trial_dir = results.trial_dir(trials[number])
        files = (
            [trial_dir / HISTORY_FILE]
            if (trial_dir / HISTORY_FILE).is_file()
            else sorted(trial_dir.glob(f"seed-*/{HISTORY_FILE}"))
        )
        if files:
            history = pd.concat(pd.read_csv(f) for f in files)
            curves[number] = history.groupby("epoch")["val_acc"].mean()
    if not curves:
        return None

    def draw(plt: Any) -> Axes:
        from matplotlib.ticker import MaxNLocator

        fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
        for number, curve in curves.items():
            ax.plot(curve.index, curve.to_numpy(), marker=".", label=f"trial {number}")
        ax.set(
            xlabel="epoch",
            ylabel="val acc",
            title=f"Learning curves of the top {len(curves)} trials",
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        return ax

    return _draw(path, draw)


def study_plots(
    results: StudyResults,
    frame: pd.DataFrame,
    levels: pd.DataFrame,
    out: Path,
    *,
    importances: Importances | None,
) -> list[Plot]:
    """Every plot that applies to the study, written to ``out``."""
    if not (frame["state"] == COMPLETE).any():
        return []
    metric = metric_label(results.metric)
    plots = [
        Plot(
            "Optimisation history",
            history_plot([results], out / "history.png"),
            f"The {metric} of each trial in the order they ran, and the best so far; a pruned"
            " trial (×, faint) at the last value it reported before it was stopped.",
        )
    ]
    figure = intermediate_figure(results)
    if figure is not None:
        caption = (
            f"The {metric} each trial reported per epoch, the value the pruner judged"
            + (" (the first seed's)" if results.replicates > 1 else "")
            + "; complete trials coloured by their value, pruned ones faint, ending (×) at the"
            " epoch they were stopped."
        )
        path = save_figure(figure, out / "intermediate_values.png")
        plots.append(Plot("Intermediate values", path, caption))
    figure = parallel_figure(results)
    if figure is not None:
        caption = (
            f"One line per trial through its parameters and its {metric}; complete trials"
            " coloured by their value, pruned ones faint at the last value they reported."
        )
        path = save_figure(figure, out / "parallel_coordinates.png")
        plots.append(Plot("Parallel coordinates", path, caption))
    if importances is not None:
        plots.append(
            Plot(importances.title, importances_plot(importances, out / "importances.png"))
        )
    figure = None if results.multi else pareto_figure(frame)  # the front plot is the study's own
    if figure is not None:
        caption = (
            "Best val acc against the number of parameters. Red: the Pareto front (no trial has"
            " as few parameters and a higher val acc), labelled by trial number; pruned trials"
            " faint, at the best val acc they reached before they were stopped."
        )
        path = save_figure(figure, out / "pareto.png")
        plots.append(Plot("Val accuracy vs parameter count", path, caption))
    for rows, columns in pivot_pairs(results):
        names = short_names([rows, columns])
        path = out / f"heatmap-{names[rows]}-{names[columns]}.png"
        figure = heatmap_figure(results, frame, levels, rows, columns)
        caption = heatmap_caption(results, rows, columns)
        plots.append(Plot(f"{rows} × {columns}", save_figure(figure, path), caption))
    curves = curves_plot(results, frame, out / "learning_curves.png")
    if curves is not None:
        plots.append(Plot("Learning curves", curves))
    return plots
