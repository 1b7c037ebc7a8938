"""Outputs that follow the study and the terminal (issue 18): the comparison table names the
studies' metric, and ``sweeps status`` in a pipe honours ``COLUMNS``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, TINY_RUN
from mixer_sweeps._progress import NON_TERMINAL_WIDTH
from mixer_sweeps.report import comparison_table
from mixer_sweeps.results import load_results
from mixer_sweeps.spec import load_study_file
from mixer_sweeps.study import run_study

FIXED = {"optim.epochs": 2, "optim.warmup_epochs": 0}


def run_tiny(tmp: Path, name: str, **study: Any) -> Path:
    document = {
        "study": {"name": name, "n_trials": 2, "sampler": {"type": "random", "seed": 0}, **study},
        "fixed": FIXED,
        "space": {"optim.lr": {"choices": [3e-2, 1e-2]}},
        "run": TINY_RUN,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    run_study(load_study_file(path), results_dir=tmp / "results")
    return tmp / "results" / name


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("studies")
    return {
        "acc": run_tiny(tmp, "acc"),
        "loss": run_tiny(tmp, "loss", metric="val_loss", pruner={"type": "none"}),
    }


def test_the_comparison_table_labels_the_best_value_by_the_studies_metric(studies) -> None:
    loss = load_results(studies["loss"])
    frame = comparison_table([loss]).frame
    assert "best val_loss" in frame.columns and "best val acc" not in frame.columns
    best = min(t.value for t in loss.trials if t.value is not None)  # the lowest loss wins
    assert frame.loc["loss", "best val_loss"] == pytest.approx(best)
    acc = load_results(studies["acc"])
    assert "best val acc" in comparison_table([acc]).frame.columns
    assert "best value" in comparison_table([acc, loss]).frame.columns


def piped(args: list[str], columns: str | None) -> str:
    """What ``python ARGS | cat`` prints, with ``COLUMNS`` set to ``columns`` (None: unset)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERM")}
    environ["SWEEPS_STORAGE"] = ""
    if columns is not None:
        environ["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


@pytest.mark.parametrize(("columns", "width"), [("200", 200), (None, NON_TERMINAL_WIDTH)])
def test_the_console_of_every_command_in_a_pipe_is_as_wide_as_columns_says(columns, width):
    code = "from mixer_sweeps._progress import output_console; print(output_console().width)"
    assert int(piped(["-c", code], columns)) == width


def test_status_in_a_pipe_prints_at_200_columns_and_never_cuts_a_line(studies) -> None:
    study_dir = str(studies["acc"])
    out = piped(["-m", "mixer_sweeps", "status", study_dir], "200")
    first = out.splitlines()[0]
    assert study_dir in first and "journal file" in first, out
    # Plain lines longer than a narrow console are printed whole, never wrapped or cut.
    assert len(first) > 40
    assert piped(["-m", "mixer_sweeps", "status", study_dir], "40") == out
