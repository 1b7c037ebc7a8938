"""What the report's own plots share: a figure of their style, its PNG file, and readable counts.

Figures are made with matplotlib's object API (``Figure``), not ``pyplot``: no global state to
close, and a test can read a figure's artists back before (or without) saving it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from mixer_sweeps.training import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110
COMPLETE_COLOR = "tab:blue"
PRUNED_STYLE = {"color": "0.55", "alpha": 0.45}
"""Pruned trials in every plot: grey and faint, drawn under the complete ones."""
WIDE = 10
"""A quantity spanning more than this factor gets a log axis."""


def new_figure(width: float = 7, height: float = 4.5) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)  # a renderer to measure text with, whatever pyplot's backend
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def count_label(value: float) -> str:
    """A count with a unit prefix: ``950``, ``12k``, ``1.5M``."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def count_x_axis(ax: Axes, low: float, high: float) -> None:
    """Counts on the x axis in k and M, on a log scale (ticks at 1, 2, 5 per decade) when
    ``high`` is more than :data:`WIDE` times ``low``."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis
    if low > 0 and high > WIDE * low:
        ax.set_xscale("log")
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(lambda value, _: count_label(value)))
