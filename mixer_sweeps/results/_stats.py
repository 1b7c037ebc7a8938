"""The spread of a sample: the one 95% confidence interval that every output quotes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def ci95(values: Sequence[float] | Any) -> float:
    """Half-width of the 95% confidence interval of the mean (Student's t); NaN below 2 values.

    ``values`` is any sequence of numbers (a pandas Series too); NaNs are left out.
    """
    import pandas as pd
    from scipy import stats

    values = pd.Series(values, dtype=float).dropna()
    if len(values) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(values) - 1) * values.sem())
