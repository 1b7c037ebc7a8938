"""Regret (one objective) or hypervolume (several) against epochs spent: median and
interquartile band per policy, a panel per worker count."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mixer_sweeps.replay._front import FrontSummary
from mixer_sweeps.replay._metrics import Summary, curve_x


def plot_regret(summaries: Sequence[Summary], path: Path, *, title: str) -> Path:
    """Write the PNG to ``path`` (atomically) and return it."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixer_sweeps.training import atomic_write_bytes

    workers = sorted({s.workers for s in summaries})
    fig, axes = plt.subplots(
        1, len(workers), figsize=(6 * len(workers), 4.2), sharey=True, squeeze=False
    )
    x = curve_x()
    names = list(dict.fromkeys(s.name for s in summaries))
    # Ten colours, then the same ten dashed, dotted: no two policies share a line.
    colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
    styles = {n: ("-", "--", ":")[(i // 10) % 3] for i, n in enumerate(names)}
    for ax, n in zip(axes[0], workers, strict=True):
        for s in (s for s in summaries if s.workers == n):
            median, low, high = s.curve
            ax.plot(x, 100 * median, color=colors[s.name], ls=styles[s.name], label=s.name, lw=1.6)
            ax.fill_between(x, 100 * low, 100 * high, color=colors[s.name], alpha=0.15, lw=0)
        # Before any winner is named the regret is the table's worst: tens of points, which a
        # linear axis would let flatten the differences of a point or two that matter.
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(f"{n} worker{'s' if n != 1 else ''}")
        ax.set_xlabel("epochs spent / grid epochs (one seed)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("regret of the named winner (test acc, points)")
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_hypervolume(
    summaries: Sequence[FrontSummary], path: Path, *, title: str, best: float
) -> Path:
    """Hypervolume against epochs spent, median and interquartile band per policy, a panel per
    worker count, with the table's own hypervolume (every configuration) as a dashed line."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixer_sweeps.training import atomic_write_bytes

    workers = sorted({s.workers for s in summaries})
    fig, axes = plt.subplots(
        1, len(workers), figsize=(6 * len(workers), 4.2), sharey=True, squeeze=False
    )
    names = list(dict.fromkeys(s.name for s in summaries))
    colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
    for ax, n in zip(axes[0], workers, strict=True):
        for s in (s for s in summaries if s.workers == n):
            median, low, high = s.curve()
            x = s.curve_x()
            ax.plot(x, median, color=colors[s.name], label=s.name, lw=1.6)
            ax.fill_between(x, low, high, color=colors[s.name], alpha=0.15, lw=0)
        ax.axhline(best, color="0.3", ls="--", lw=1, label="every configuration")
        ax.set_title(f"{n} worker{'s' if n != 1 else ''}")
        ax.set_xlabel("epochs spent / grid epochs (one seed)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("hypervolume of the front (normalised)")
    # Any one decent configuration holds most of the volume: the differences are near the top.
    floor = min((float(np.percentile(s.curve()[1], 50)) for s in summaries), default=0.0)
    axes[0][0].set_ylim(max(0.0, min(floor, best) - 0.02), best + 0.01)
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
