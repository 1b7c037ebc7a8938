"""How numbers are written: one module (``results._numbers``) for every table and line."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mixer_sweeps.report import Table, display_frame
from mixer_sweeps.results import (
    format_cell,
    format_count,
    format_metric,
    format_seconds,
    format_value,
)


@pytest.mark.parametrize(
    ("value", "kind", "shown"),
    [
        (138506, "count", "138,506"),
        (np.int64(138506), "metric", "138,506"),  # a whole number among accuracies is a count
        (pd.array([138506], dtype="Int64")[0], "metric", "138,506"),
        (1234567.0, "count", "1,234,567"),
        (12.5, "count", "12.5"),
        (7, "count", "7"),
        (0.951234, "metric", "0.9512"),
        (np.float64(0.95), "metric", "0.9500"),
        (1.0, "metric", "1.0000"),
        (0.0003, "value", "0.0003"),
        (3e-07, "value", "3e-07"),
        (0.123456, "value", "0.1235"),
        (1024, "value", "1024"),  # a parameter's value as the study file writes it
        (np.int64(16), "value", "16"),
        (True, "metric", "yes"),
        (False, "value", "no"),
        (None, "metric", "–"),
        (math.nan, "count", "–"),
        (pd.NA, "value", "–"),
        ("null", "value", "null"),
        ("0.9 ± 0.01", "metric", "0.9 ± 0.01"),
    ],
)
def test_format_cell(value: Any, kind: Any, shown: str) -> None:
    assert format_cell(value, kind) == shown


@pytest.mark.parametrize(
    ("call", "shown"),
    [
        (lambda: format_count(138506), "138,506"),
        (lambda: format_count(None), "–"),
        (lambda: format_metric(0.95123), "0.9512"),
        (lambda: format_metric(0.95123, 0.00314), "0.9512 ± 0.0031"),
        (lambda: format_metric(0.95123, math.nan), "0.9512"),
        (lambda: format_metric(None, 0.1), "–"),
        (lambda: format_value(0.00031415), "0.0003142"),
        (lambda: format_value({"num_ops": 2}), "{'num_ops': 2}"),
        (lambda: format_seconds(34.56), "34.6 s"),
        (lambda: format_seconds(None), "–"),
    ],
)
def test_format_functions(call: Any, shown: str) -> None:
    assert call() == shown


def test_display_frame_writes_counts_metrics_and_values_by_column() -> None:
    frame = pd.DataFrame(
        {
            "lr": [0.0003, 0.01],
            "val acc": [0.951234, 0.9],
            "params": pd.array([138506, None], dtype="Int64"),
            "epochs": [12.0, 12.5],
        },
        index=pd.Index([7, 1200], name="trial"),
    )
    shown = display_frame(Table("t", "T", frame, params=("lr", "epochs")))
    assert shown.to_dict("list") == {
        "trial": ["7", "1200"],
        "lr": ["0.0003", "0.01"],
        "val acc": ["0.9512", "0.9000"],
        "params": ["138,506", "–"],
        "epochs": ["12", "12.5"],
    }
