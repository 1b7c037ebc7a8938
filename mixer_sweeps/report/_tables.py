"""Ablation tables from the trials DataFrame, and Optuna's parameter importances.

Only COMPLETE trials are averaged; PRUNED and FAIL trials are counted beside them (a failed attempt
whose configuration was queued again is not counted: its retry is). With replicates, a 95%
confidence interval (Student's t) is given over the seed runs behind each number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from optuna.trial import TrialState

from mixer_sweeps.report._frame import OBJECTIVE, is_numeric, seed_columns, value_label
from mixer_sweeps.results import StudyResults, ci95, format_metric, short_names
from mixer_sweeps.spec import Choices, Range

COMPLETE, PRUNED, FAIL = TrialState.COMPLETE.name, TrialState.PRUNED.name, TrialState.FAIL.name
MAX_LEVELS = 12
"""A numeric range with at most this many values gets a row per value, else quantile bins."""
BINS = 4
TOP_K = 5
WIDTH, DEPTH = "model.embed_dim", "model.depth"
CI = "± 95% CI"


@dataclass(frozen=True)
class Table:
    key: str
    """Short and file-safe: ``factor-optim.lr``."""
    title: str
    frame: pd.DataFrame
    note: str = ""
    params: tuple[str, ...] = ()
    """Columns of parameter values; every other float column is an accuracy."""


def factor_levels(frame: pd.DataFrame, dim: Choices | Range) -> pd.Series:
    """Each trial's level of ``dim``: its choice or value, or its quantile bin for a range."""
    column = frame[dim.path]
    if isinstance(dim, Choices):
        labels = [v if is_numeric(dim) else value_label(v) for v in dim.labels]
        return pd.Series(pd.Categorical(column, categories=labels, ordered=True), index=frame.index)
    grid = _grid(dim)
    if grid is not None:
        nearest = column.map(lambda v: min(grid, key=lambda g: abs(g - v)), na_action="ignore")
        return pd.Series(pd.Categorical(nearest, categories=grid, ordered=True), index=frame.index)
    values = column.astype(float)
    q = min(BINS, values.nunique())
    if q < 2:
        return pd.Series(pd.Categorical(values), index=frame.index)
    binned, edges = pd.qcut(values, q, retbins=True, duplicates="drop")
    edges[0] = values.min()
    labels = [f"{lo:.3g}–{hi:.3g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return binned.cat.rename_categories(labels).cat.as_ordered()


def _grid(dim: Range) -> list[int | float] | None:
    if dim.integer and dim.step is None and not dim.log:
        dim = dim.model_copy(update={"step": 1})
    if dim.step is None or (dim.high - dim.low) / dim.step + 1 > MAX_LEVELS:
        return None
    return dim.grid()


def levels_frame(results: StudyResults, frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({dim.path: factor_levels(frame, dim) for dim in results.space})


def counted_failures(frame: pd.DataFrame) -> pd.Series:
    return (frame["state"] == FAIL) & ~frame["queued_again"].astype(bool)


def seed_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per seed run of each COMPLETE trial: its row label in ``frame`` and ``acc``."""
    complete = frame[frame["state"] == COMPLETE]
    columns = seed_columns(frame) or [OBJECTIVE]
    runs = complete[columns].stack().dropna().rename("acc").reset_index(level=1, drop=True)
    return runs.to_frame()


def factor_table(
    results: StudyResults, frame: pd.DataFrame, levels: pd.DataFrame, path: str
) -> Table:
    level = levels[path]
    complete = frame[OBJECTIVE].where(frame["state"] == COMPLETE)
    grouped = complete.groupby(level, observed=False)
    table = pd.DataFrame(
        {"mean": grouped.mean(), "std": grouped.std(), "n": grouped.count(), "best": grouped.max()}
    )
    if results.replicates > 1:
        runs = seed_runs(frame)
        ci = runs["acc"].groupby(level.loc[runs.index], observed=False).agg(ci95)
        table.insert(1, CI, ci)
    table["gap to best"] = table["best"] - complete.max()
    table["n pruned"] = (frame["state"] == PRUNED).groupby(level, observed=False).sum()
    table["n failed"] = counted_failures(frame).groupby(level, observed=False).sum()
    table.index.name = path
    binned = isinstance(results.space.get(path), Range) and _grid(results.space.get(path)) is None
    note = (
        f"Val acc of the complete trials grouped by {path}"
        + (" (quantile bins)" if binned else "")
        + "; gap to best: the group's best minus the best overall."
    )
    if results.replicates > 1:
        note += (
            f" {CI}: mean ± 95% CI (Student's t) over the group's seed runs"
            f" (n = {results.replicates} per trial)."
        )
    return Table(f"factor-{path}", f"Val accuracy by {path}", table, note)


def pivot_table(
    results: StudyResults, frame: pd.DataFrame, levels: pd.DataFrame, rows: str, columns: str
) -> Table:
    grouped = cell_runs(frame, levels, rows, columns)
    means = grouped.mean().unstack(columns)
    note = f"Mean val acc of the complete trials, {rows} (rows) × {columns} (columns)"
    if results.replicates > 1:
        cis = grouped.agg(ci95).unstack(columns)
        means = means.combine(cis, lambda m, c: m.combine(c, _with_ci))
        note += (
            f"; mean ± 95% CI (Student's t) over the seed runs of the cell's trials"
            f" (n = {results.replicates} per trial)"
        )
    means.columns = pd.Index(list(means.columns), name=columns)
    return Table(f"pivot-{rows}-{columns}", f"{rows} × {columns}", means, note + ".")


def cell_runs(frame: pd.DataFrame, levels: pd.DataFrame, rows: str, columns: str) -> Any:
    """The seed runs of the complete trials, grouped by the levels of two factors."""
    runs = seed_runs(frame)
    runs = runs.join(levels[[rows, columns]])
    return runs.groupby([rows, columns], observed=False)["acc"]


def _with_ci(mean: float, ci: float) -> Any:
    return math.nan if math.isnan(mean) else format_metric(mean, ci)


def is_switch(dim: Choices | Range) -> bool:
    """Two choices, one of them off (``null``, ``false``, ``0``): a component on or off."""
    return isinstance(dim, Choices) and len(dim.choices) == 2 and sum(map(_off, dim.choices)) == 1


def _off(value: Any) -> bool:
    return value is None or value is False or (type(value) in (int, float) and value == 0)


def component_table(results: StudyResults, frame: pd.DataFrame) -> Table:
    """Per on/off component: accuracy on, off, and the change when it is turned off.

    The change is the mean difference over matched runs (the other components and the seed the
    same), so in a full grid it is the marginal effect averaged over the other factors.
    """
    paths = [d.path for d in results.space]
    runs = seed_runs(frame)
    runs = runs.assign(seed=runs.groupby(level=0).cumcount()).join(frame[paths])
    rows = []
    for dim in results.space:
        off, on = sorted(dim.labels, key=lambda label: not _off(label))
        off, on = (v if is_numeric(dim) else value_label(v) for v in (off, on))
        keys = [p for p in paths if p != dim.path] + ["seed"]
        with_on, with_off = runs[runs[dim.path] == on], runs[runs[dim.path] == off]
        pairs = with_on.merge(with_off, on=keys, suffixes=("_on", "_off"))
        diffs = pairs["acc_off"] - pairs["acc_on"]
        change = diffs.mean() if len(diffs) else with_off["acc"].mean() - with_on["acc"].mean()
        rows.append(
            {
                "component": dim.path,
                "on": on,
                "acc on": with_on["acc"].mean(),
                "acc off": with_off["acc"].mean(),
                "change when off": change,
                CI: ci95(diffs),
                "pairs": len(diffs),
            }
        )
    table = pd.DataFrame(rows).set_index("component")
    note = (
        "Mean val acc of the complete runs with each component on and off; change when off:"
        " the mean of acc(off) − acc(on) over runs that differ only in that component"
        " (same other components, same seed), with its 95% CI over those pairs."
    )
    return Table("components", "Components turned off", table, note, params=("on",))


def top_table(results: StudyResults, frame: pd.DataFrame, k: int = TOP_K) -> Table:
    complete = frame[frame["state"] == COMPLETE]
    top = complete.sort_values([OBJECTIVE, "number"], ascending=[False, True]).head(k)
    names = short_names([d.path for d in results.space])
    table = top[["number", *names]].rename(columns=names).set_index("number")
    table.index.name = "trial"
    table["val acc"] = top[OBJECTIVE].to_numpy()
    if results.replicates > 1:
        table[CI] = top[seed_columns(frame)].apply(ci95, axis=1).to_numpy()
    for column, title in (("test_acc", "test acc"), ("num_params", "params"), ("epochs", "epochs")):
        table[title] = top[column].to_numpy()
    note = "The complete trials with the best val acc"
    if results.replicates > 1:
        note += (
            f": mean ± 95% CI (Student's t, n={results.replicates} seeds);"
            " epochs: the mean per seed run"
        )
    shown_as_written = (*names.values(), "epochs")  # 12 or 12.5 epochs, not 12.0000
    return Table("top", f"Top {len(table)} trials", table, note + ".", params=shown_as_written)


def ablation_tables(results: StudyResults, frame: pd.DataFrame) -> list[Table]:
    """A table per searched factor, pivots of two factors, and on/off components."""
    levels = levels_frame(results, frame)
    tables = [factor_table(results, frame, levels, d.path) for d in results.space]
    tables += [pivot_table(results, frame, levels, a, b) for a, b in pivot_pairs(results)]
    if all(is_switch(d) for d in results.space):
        tables.append(component_table(results, frame))
    return tables


def pivot_pairs(results: StudyResults) -> list[tuple[str, str]]:
    paths = [d.path for d in results.space]
    pairs = [(paths[0], paths[1])] if len(paths) == 2 else []
    if WIDTH in paths and DEPTH in paths and {WIDTH, DEPTH} != set(paths):
        pairs.append((WIDTH, DEPTH))
    return pairs
