"""The report's plots, as PNG files: Optuna's own matplotlib plots where they exist.

Optuna's plots switch matplotlib to its ggplot style; each is drawn in an ``rc_context`` so the
style stays with it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mixer_sweeps.report._frame import OBJECTIVE
from mixer_sweeps.report._importances import Importances, draw_importances
from mixer_sweeps.report._tables import COMPLETE, cell_runs, pivot_pairs
from mixer_sweeps.results import StudyResults, short_names
from mixer_sweeps.study import optuna_quiet
from mixer_sweeps.training import HISTORY_FILE, atomic_write_bytes

if TYPE_CHECKING:
    import optuna
    from matplotlib.axes import Axes

DPI = 110
CURVES_K = 5


@dataclass(frozen=True)
class Plot:
    title: str
    path: Path


@contextlib.contextmanager
def _matplotlib() -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(), optuna_quiet():
        yield plt
        plt.close("all")


def _save(ax: Axes, path: Path) -> Path:
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _draw(path: Path, draw: Callable[[Any], Axes]) -> Path:
    with _matplotlib() as plt:
        return _save(draw(plt), path)


def history_plot(studies: Sequence[optuna.Study], path: Path) -> Path:
    """Optuna's optimisation history; several studies share the axes."""
    from optuna.visualization.matplotlib import plot_optimization_history

    study = studies[0] if len(studies) == 1 else list(studies)
    return _draw(path, lambda plt: plot_optimization_history(study, target_name="val acc"))


def importances_plot(importances: Importances, path: Path) -> Path:
    """The importances the report's table shows, as bars with their intervals (largest on top)."""
    return _draw(path, lambda plt: draw_importances(importances, plt))


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """The trials that no other beats on both: fewer (or as many) parameters and higher val acc."""
    ordered = points.sort_values(["num_params", OBJECTIVE], ascending=[True, False])
    best = ordered[OBJECTIVE].cummax().shift(fill_value=-float("inf"))
    return ordered[ordered[OBJECTIVE] > best]


def pareto_plot(frame: pd.DataFrame, path: Path) -> Path:
    points = frame[frame["state"] == COMPLETE].dropna(subset=["num_params", OBJECTIVE])
    points = points.astype({"num_params": float})
    front = pareto_front(points)

    def draw(plt: Any) -> Axes:
        fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
        ax.scatter(
            points["num_params"], points[OBJECTIVE], color="tab:blue", alpha=0.6, label="trial"
        )
        ax.step(
            front["num_params"],
            front[OBJECTIVE],
            where="post",
            color="tab:red",
            label="Pareto front",
        )
        ax.scatter(front["num_params"], front[OBJECTIVE], color="tab:red", zorder=3)
        for row in front.itertuples():
            ax.annotate(
                str(row.number),
                (row.num_params, getattr(row, OBJECTIVE)),
                xytext=(4, -10),
                textcoords="offset points",
                fontsize=8,
            )
        if points["num_params"].max() > 10 * points["num_params"].min():
            ax.set_xscale("log")
        ax.set(xlabel="parameters", ylabel="val acc", title="Val accuracy vs parameter count")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        return ax

    return _draw(path, draw)


def heatmap_plot(
    results: StudyResults,
    frame: pd.DataFrame,
    levels: pd.DataFrame,
    rows: str,
    columns: str,
    path: Path,
) -> Path:
    grouped = cell_runs(frame, levels, rows, columns)
    means = grouped.mean().unstack(columns)
    counts = grouped.count().unstack(columns)
    names = short_names([rows, columns])

    def draw(plt: Any) -> Axes:
        fig, ax = plt.subplots(
            figsize=(1.4 * len(means.columns) + 2.5, 0.9 * len(means.index) + 1.8),
            constrained_layout=True,
        )
        image = ax.imshow(means.to_numpy(dtype=float), cmap="viridis", aspect="auto")
        ax.set_xticks(
            range(len(means.columns)),
            [f"{c:g}" if isinstance(c, float) else str(c) for c in means.columns],
        )
        ax.set_yticks(
            range(len(means.index)),
            [f"{c:g}" if isinstance(c, float) else str(c) for c in means.index],
        )
        ax.set(xlabel=names[columns], ylabel=names[rows], title="Mean val acc (n runs)")
        for i, j in ((i, j) for i in range(len(means.index)) for j in range(len(means.columns))):
            value, n = means.iat[i, j], counts.iat[i, j]
            if pd.isna(value):
                ax.text(j, i, "–", ha="center", va="center", color="grey")
                continue
            bright = image.norm(value) > 0.6
            color = "black" if bright else "white"
            ax.text(j, i, f"{value:.3f}\n({n})", ha="center", va="center", color=color, fontsize=8)
        fig.colorbar(image, ax=ax, label="val acc")
        return ax

    return _draw(path, draw)


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
    plots = [Plot("Optimisation history", history_plot([results.study], out / "history.png"))]
    if importances is not None:
        plots.append(
            Plot(importances.title, importances_plot(importances, out / "importances.png"))
        )
    plots.append(Plot("Val accuracy vs parameter count", pareto_plot(frame, out / "pareto.png")))
    for rows, columns in pivot_pairs(results):
        names = short_names([rows, columns])
        name = f"heatmap-{names[rows]}-{names[columns]}.png"
        plots.append(
            Plot(
                f"{rows} × {columns}",
                heatmap_plot(results, frame, levels, rows, columns, out / name),
            )
        )
    curves = curves_plot(results, frame, out / "learning_curves.png")
    if curves is not None:
        plots.append(Plot("Learning curves", curves))
    return plots
