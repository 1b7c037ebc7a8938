"""The report's plots read back from their figures: pruned trials drawn where they stopped, the
heat map's counts, parallel coordinates and the Pareto plot's axis and labels, on real tiny
studies."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
from optuna.trial import TrialState

from conftest import MIXED_GRID, run_tiny
from mixer_sweeps.report import (
    OBJECTIVE,
    heatmap_figure,
    history_figure,
    intermediate_figure,
    parallel_figure,
    pareto_figure,
    pareto_front,
    trials_frame,
)
from mixer_sweeps.report._figure import WIDE
from mixer_sweeps.report._tables import levels_frame
from mixer_sweeps.results import load_results

WIDTH, DEPTH = "model.embed_dim", "model.depth"
# Sizes a hundredfold apart: a 2k-parameter model beside a 200k one.
SIZES = {WIDTH: {"choices": [8, 160]}, DEPTH: {"choices": [1, 4]}}


@pytest.fixture(scope="module")
def sizes(tmp_path_factory) -> Path:
    return run_tiny(
        tmp_path_factory.mktemp("sizes"),
        "sizes",
        SIZES,
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )


def trials_in(study_dir: Path, state: TrialState) -> list:
    return [t for t in load_results(study_dir).study.trials if t.state == state]


def last_reported(trial) -> tuple[int, float]:
    step = max(trial.intermediate_values)
    return step, trial.intermediate_values[step]


def by_gid(artists, gid: str) -> list:
    return [a for a in artists if a.get_gid() == gid]


def test_history_marks_each_pruned_trial_at_its_last_reported_value(grid) -> None:
    pruned = trials_in(grid, TrialState.PRUNED)
    complete = trials_in(grid, TrialState.COMPLETE)
    assert pruned and complete
    figure = history_figure([load_results(grid)])
    ax = figure.axes[0]
    (crosses,) = by_gid(ax.collections, "pruned")
    assert sorted(map(tuple, crosses.get_offsets().tolist())) == sorted(
        (t.number, last_reported(t)[1]) for t in pruned
    )
    assert crosses.get_alpha() < 1
    (dots,) = by_gid(ax.collections, "complete")
    assert sorted(map(tuple, dots.get_offsets().tolist())) == sorted(
        (t.number, t.value) for t in complete
    )
    assert ax.get_title() == "Optimisation history" and ax.get_ylabel() == "val acc"
    # The legend sits under the axes, which keep the figure's width.
    assert ax.get_legend() is None and len(figure.legends) == 1
    figure.draw_without_rendering()
    assert ax.get_position().width > 0.8


def test_intermediate_values_draw_every_curve_to_the_epoch_it_stopped(grid) -> None:
    figure = intermediate_figure(load_results(grid))
    ax = figure.axes[0]
    for state, gid in ((TrialState.PRUNED, "pruned"), (TrialState.COMPLETE, "complete")):
        trials = trials_in(grid, state)
        lines = by_gid(ax.lines, gid)
        drawn = sorted((tuple(line.get_xdata()), tuple(line.get_ydata())) for line in lines)
        expected = sorted(
            tuple(zip(*sorted(t.intermediate_values.items()), strict=True)) for t in trials
        )
        assert drawn == expected
    epochs = {len(t.intermediate_values) for t in trials_in(grid, TrialState.PRUNED)}
    assert max(epochs) < 4, "a pruned trial stops before the last epoch"
    assert all(line.get_alpha() < 1 for line in by_gid(ax.lines, "pruned"))
    assert all(line.get_alpha() is None for line in by_gid(ax.lines, "complete"))


def test_parallel_coordinates_draw_one_line_per_trial_across_params_and_value(grid) -> None:
    results = load_results(grid)
    figure = parallel_figure(results)
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["embed_dim", "depth", "lr", "val acc"]
    complete = trials_in(grid, TrialState.COMPLETE)
    pruned = trials_in(grid, TrialState.PRUNED)
    (coloured,) = by_gid(ax.collections, "complete")
    (faint,) = by_gid(ax.collections, "pruned")
    assert len(coloured.get_segments()) == len(complete)
    assert len(faint.get_segments()) == len(pruned)
    assert sorted(coloured.get_array()) == pytest.approx(sorted(t.value for t in complete))
    assert faint.get_alpha() < 1 and coloured.get_alpha() is None
    for segment in [*coloured.get_segments(), *faint.get_segments()]:
        assert [x for x, _ in segment] == [0, 1, 2, 3]
        assert all(0 <= y <= 1 for _, y in segment)


def test_pareto_plot_marks_pruned_trials_and_labels_the_front_clear_of_every_trial(grid) -> None:
    frame = trials_frame(load_results(grid))
    figure = pareto_figure(frame)
    ax = figure.axes[0]
    (crosses,) = by_gid(ax.collections, "pruned")
    assert len(crosses.get_offsets()) == len(trials_in(grid, TrialState.PRUNED))
    assert crosses.get_alpha() < 1
    front = pareto_front(frame[frame["state"] == "COMPLETE"].astype({"num_params": float}))
    labels = by_gid(ax.texts, "front label")
    assert sorted(int(t.get_text()) for t in labels) == sorted(front["number"])
    assert_labels_clear(figure)
    low, high = frame["num_params"].min(), frame["num_params"].max()
    assert high < WIDE * low and ax.get_xscale() == "linear"
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(re.fullmatch(r"\d+(\.\d+)?k", t) for t in ticks), ticks


def assert_labels_clear(figure) -> None:
    """No front label covers a trial's marker (its disc) or another label."""
    ax = figure.axes[0]
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in by_gid(ax.texts, "front label")]
    for collection in ax.collections:
        centres = ax.transData.transform(collection.get_offsets())
        radius = math.sqrt(max(collection.get_sizes())) / 2 * figure.dpi / 72
        for box in boxes:
            assert box.padded(radius).count_contains(centres) == 0, (box, centres)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_pareto_labels_move_off_trials_crowding_the_front(grid) -> None:
    """Beside each front trial, trials of (nearly) its size just below it, and a pruned one just
    above left, where a label would go first."""
    frame = trials_frame(load_results(grid))
    complete = frame[frame["state"] == "COMPLETE"].astype({"num_params": float})
    front = pareto_front(complete)
    size = complete["num_params"].max() - complete["num_params"].min()
    acc = complete[OBJECTIVE].max() - complete[OBJECTIVE].min()
    crowd = []
    for k, (right, up, state) in enumerate(
        [(0, -0.03, "COMPLETE"), (0.015, -0.05, "COMPLETE"), (-0.015, 0.015, "PRUNED")]
    ):
        rows = front.assign(number=front["number"] + 100 * (k + 1), state=state)
        rows["num_params"] += right * size
        rows[OBJECTIVE] += up * acc
        crowd.append(rows)
    crowded = pd.concat([complete, *crowd], ignore_index=True)
    figure = pareto_figure(crowded)
    labels = by_gid(figure.axes[0].texts, "front label")
    assert sorted(int(t.get_text()) for t in labels) == sorted(front["number"])
    assert_labels_clear(figure)


def test_pareto_plot_counts_a_wide_range_of_sizes_on_a_log_axis_in_k(sizes) -> None:
    frame = trials_frame(load_results(sizes))
    low, high = frame["num_params"].min(), frame["num_params"].max()
    assert high > WIDE * low
    figure = pareto_figure(frame)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    figure.draw_without_rendering()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert len(ticks) >= 2 and all(re.fullmatch(r"\d+(\.\d+)?[kM]?", t) for t in ticks), ticks
    assert any(t.endswith("k") for t in ticks)
    assert not by_gid(ax.collections, "pruned")


def test_heatmap_prints_n_in_every_cell_and_hatches_cells_of_one_trial(grid) -> None:
    results = load_results(grid)
    frame = trials_frame(results)
    figure = heatmap_figure(results, frame, levels_frame(results, frame), WIDTH, DEPTH)
    ax = figure.axes[0]
    widths, depths = MIXED_GRID[WIDTH]["choices"], MIXED_GRID[DEPTH]["choices"]
    counts = {
        (i, j): sum(
            t.params[WIDTH] == w and t.params[DEPTH] == d
            for t in trials_in(grid, TrialState.COMPLETE)
        )
        for i, w in enumerate(widths)
        for j, d in enumerate(depths)
    }
    printed = {
        (round(t.get_position()[1]), round(t.get_position()[0])): int(
            re.search(r"n=(\d+)$", t.get_text()).group(1)
        )
        for t in by_gid(ax.texts, "cell")
    }
    assert printed == counts
    hatched = {
        (round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in by_gid(ax.patches, "single trial")
    }
    assert hatched == {cell for cell, n in counts.items() if n == 1}
    assert hatched and all(p.get_hatch() for p in by_gid(ax.patches, "single trial"))


def test_report_shows_the_new_plots_with_captions(grid) -> None:
    report = grid / "report"
    md = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    tex = (report / "report.tex").read_text()
    for name in ("intermediate_values.png", "parallel_coordinates.png", "history.png"):
        assert f"]({name})" in md and f"\\includegraphics[width=\\linewidth]{{{name}}}" in tex
        assert (report / name).stat().st_size > 1000
    caption = "The other parameters (optim.lr) vary within a cell"
    assert caption in md and caption in html and caption in tex
    assert html.count("<figure>") == md.count("![")
    assert "pruned ones faint" in md and "pruned ones faint" in html
