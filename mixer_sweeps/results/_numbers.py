"""How every number is written, in the report's tables and in the terminal alike.

One place, so that a parameter count reads ``138,506`` and an accuracy ``0.9512`` wherever it
is shown: the report (Markdown, HTML, LaTeX, the terminal), ``sweeps best``, ``sweeps status``,
``sweeps dashboard`` and ``sweeps run``'s summary.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

MISSING = "–"
METRIC_DECIMALS = 4
VALUE_DIGITS = 4

Kind = Literal["value", "metric", "count"]
"""``value``: a searched parameter's value as the study file writes it (``0.0003``, ``128``);
``metric``: an accuracy or loss (``0.9512``); ``count``: a parameter count, a number of trials
or seeds (``138,506``)."""


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA (told by its type's name: this module imports no pandas)."""
    if value is None or type(value).__name__ == "NAType":
        return True
    return isinstance(value, float) and math.isnan(value)


def format_count(value: Any) -> str:
    """``138,506``; a count that is not whole keeps one decimal (``12.5`` epochs per seed)."""
    if is_missing(value):
        return MISSING
    if isinstance(value, numbers.Integral) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{float(value):,.1f}"


def format_metric(value: Any, ci: Any = None) -> str:
    """``0.9512``, or ``0.9512 ± 0.0031`` with a confidence interval's half width."""
    if is_missing(value):
        return MISSING
    text = f"{float(value):.{METRIC_DECIMALS}f}"
    if not is_missing(ci):
        text += f" ± {float(ci):.{METRIC_DECIMALS}f}"
    return text


def format_value(value: Any) -> str:
    """A parameter's value: floats to 4 significant digits (``0.0003``), the rest as written."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.{VALUE_DIGITS}g}"
    return str(value)


def format_seconds(value: Any) -> str:
    return MISSING if is_missing(value) else f"{float(value):.1f} s"


def format_cell(value: Any, kind: Kind) -> str:
    """A table's cell: missing as ``–``, booleans as yes/no, numbers by ``kind``, text as is.

    Whole numbers in a metric column are counts (``n``, ``seeds``, ``params``)."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, numbers.Real):
        return str(value)
    if kind == "count" or (kind == "metric" and isinstance(value, numbers.Integral)):
        return format_count(value)
    if kind == "metric":
        return format_metric(value)
    if isinstance(value, numbers.Integral):
        return str(value)
    return format_value(float(value))
