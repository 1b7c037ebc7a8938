"""Commands that used to surprise (issue 20): a study found when none is named, ``best --export``
without a file, flags shown as flags, ``retrain --epochs`` other than the search's said aloud,
``train`` talking before torch loads, and a finished study's re-run that adds nothing."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from conftest import TINY_RUN, run_timed, sweeps, sweeps_cmd
from mixer_sweeps.cli import app

SEARCH_EPOCHS = 2


def _env(home: Path) -> dict[str, str]:
    """No W&B credentials or settings from outside; W&B offline into the study's folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    return {**env, "HOME": str(home), "WANDB_MODE": "offline", "SWEEPS_STORAGE": ""}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A folder whose ``results/`` holds one study, ``tiny``, finished by ``sweeps run`` as a
    user runs it: 2 trials of 2 epochs, its report and its offline W&B runs written."""
    root = tmp_path_factory.mktemp("commands")
    (root / "home").mkdir()
    document = {
        "study": {
            "name": "tiny",
            "n_trials": 2,
            "sampler": {"type": "random", "seed": 0},
            "pruner": {"type": "none"},
        },
        "fixed": {"optim.epochs": SEARCH_EPOCHS, "optim.warmup_epochs": 0},
        "space": {"optim.lr": {"choices": [3e-3, 1e-2]}},
        "run": {**TINY_RUN, "tracking": {"wandb": {"mode": "offline"}}},
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    done = sweeps("run", "tiny.yaml", cwd=root, env=_env(root / "home"), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def _copy(finished: Path, tmp_path: Path) -> Path:
    shutil.copytree(finished / "results", tmp_path / "results")
    shutil.copy(finished / "tiny.yaml", tmp_path / "tiny.yaml")
    (tmp_path / "home").mkdir()
    return tmp_path


# ---------------------------------------------------------------------- --help shows flags


def test_no_option_of_any_command_shows_a_boolean_metavar() -> None:
    runner = CliRunner()
    group = typer.main.get_command(app)
    for name in [None, *group.commands]:
        args = ["--help"] if name is None else [name, "--help"]
        result = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 0, (name, result.output)
        assert "--help" in result.output
        for shown in ("bool", "BOOLEAN"):
            assert shown not in result.output, (name, result.output)


# ---------------------------------------------------------- the only study under results/


def test_best_and_report_without_a_study_use_the_only_one(finished: Path, tmp_path: Path) -> None:
    folder = _copy(finished, tmp_path)
    named = sweeps("best", "results/tiny", "--json", cwd=folder)
    found = sweeps("best", "--json", cwd=folder)
    assert found.returncode == 0, found.stderr
    assert found.stdout == named.stdout
    report = folder / "results" / "tiny" / "report" / "report.md"
    report.unlink()
    done = sweeps("report", "--format", "md", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert report.is_file() and "results/tiny/report" in done.stdout


def test_best_export_without_a_file_writes_the_studys_best_yaml_and_says_so(
    finished: Path, tmp_path: Path
) -> None:
    folder = _copy(finished, tmp_path)
    target = folder / "results" / "tiny" / "best.yaml"
    done = sweeps("best", "--export", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "to results/tiny/best.yaml" in done.stdout
    shown = sweeps("best", "--json", cwd=folder)
    assert yaml.safe_load(target.read_text()) == json.loads(shown.stdout)["spec"]
    # An existing file needs --force, as with a named one; --export before another option too.
    again = sweeps("best", "--export", cwd=folder)
    assert again.returncode == 2 and "--force" in again.stderr, again.stderr
    forced = sweeps("best", "--export", "--force", "--json", cwd=folder)
    assert forced.returncode == 0, forced.stderr
    assert '"exported": "results/tiny/best.yaml"' in forced.stdout


@pytest.mark.parametrize("command", ["best", "report", "retrain", "dashboard"])
def test_without_a_study_none_or_several_exit_2_listing_them(
    finished: Path, tmp_path: Path, command: str
) -> None:
    empty = sweeps(command, cwd=tmp_path)
    assert empty.returncode == 2, empty.stdout + empty.stderr
    assert empty.stderr.startswith("error: no study under results/"), empty.stderr
    folder = _copy(finished, tmp_path)
    other = folder / "results" / "other"
    other.mkdir()
    shutil.copy(folder / "results" / "tiny" / "study.yaml", other / "study.yaml")
    several = sweeps(command, cwd=folder)
    assert several.returncode == 2, several.stdout + several.stderr
    lines = several.stderr.strip().splitlines()
    assert len(lines) == 1 and "2 studies under results/ (other, tiny)" in lines[0], lines
    assert several.stdout == ""


# --------------------------------------------------------------- retrain --epochs, protocol


def test_retrain_with_other_epochs_warns_first_and_every_table_says_so(
    finished: Path, tmp_path: Path
) -> None:
    folder = _copy(finished, tmp_path)
    done = subprocess.run(
        sweeps_cmd("retrain", "--top", "1", "--seeds", "2", "--epochs", "1"),
        cwd=folder,
        env=_env(folder / "home"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    warning = (
        f"warning: retraining for 1 epoch; the search trained {SEARCH_EPOCHS}: these numbers"
        " are not comparable with the search's"
    )
    assert warning in lines, done.stdout
    first_epoch = next(i for i, line in enumerate(lines) if "epoch 1/1" in line)
    assert lines.index(warning) < first_epoch
    protocol = f"1 epoch (search: {SEARCH_EPOCHS})"
    assert f"Retrained: tiny, {protocol}" in done.stdout  # the terminal's title
    root = folder / "results" / "tiny"
    summary = pd.read_csv(root / "retrain" / "summary.csv", index_col="config")
    assert summary["epochs"].tolist() == [1.0]
    assert summary["search epochs"].tolist() == [SEARCH_EPOCHS]
    assert f"# Retrained: tiny, {protocol}" in (root / "retrain" / "summary.md").read_text()
    report = (root / "report" / "report.md").read_text()
    title = f"## Retrained, {protocol}: not comparable with the search"
    assert title in report
    section = report[report.index(title) :].split("\n## ", 1)[0]
    assert "search epochs" in section and "not comparable" in section
    assert "number to quote" not in section.split("nor the number to quote")[0]


def test_retrain_at_the_searchs_epochs_is_the_number_to_quote(
    finished: Path, tmp_path: Path
) -> None:
    folder = _copy(finished, tmp_path)
    for args in ((), ("--epochs", str(SEARCH_EPOCHS))):
        shutil.rmtree(folder / "results" / "tiny" / "retrain", ignore_errors=True)
        done = sweeps("retrain", "--top", "1", "--seeds", "2", *args, cwd=folder, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "warning" not in done.stderr and "search:" not in done.stdout
        summary = pd.read_csv(folder / "results" / "tiny" / "retrain" / "summary.csv")
        assert "search epochs" not in summary.columns
        report = (folder / "results" / "tiny" / "report" / "report.md").read_text()
        assert "## Retrained: the number to quote" in report


# ------------------------------------------------------------------ train talks at once


def test_train_says_what_it_does_before_torch_loads_in_a_pipe(tmp_path: Path) -> None:
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump({**TINY_RUN, "name": "talks"}), encoding="utf-8")
    # -X importtime writes a line to stderr as each module is imported; in one pipe with
    # stdout, the order shows what was said before torch loaded, flushed, not buffered.
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", *sweeps_cmd("train", spec, "--out", "run")[1:]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},  # a pipe buffers
    )
    try:
        lines = _lines(process, until="epoch 1/")
    finally:
        process.kill()
        process.wait()
    said = [line for line in lines if not line.startswith("import time:")]
    torch = next(i for i, line in enumerate(lines) if re.search(r"\| +torch$", line))
    assert said[0].startswith("training talks: 3 epochs on cpu"), said
    assert "loading digits" in said[0]
    assert lines.index(said[0]) < torch
    assert "building the mixer" in said[1] and "1,698 parameters" in said[2], said
    assert "epoch 1/" in said[3], said


def _lines(process: subprocess.Popen, *, until: str, timeout: float = 120) -> list[str]:
    """The lines ``process`` writes to its stdout pipe, each read as it comes, up to the first
    holding ``until``."""
    assert process.stdout is not None
    lines, buffer = [], b""
    deadline = time.monotonic() + timeout
    while not lines or until not in lines[-1]:
        assert time.monotonic() < deadline, f"no {until!r} after {timeout} s: {lines}"
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if not ready:
            continue
        chunk = os.read(process.stdout.fileno(), 4096)
        assert chunk, f"ended before {until!r}: {lines}"
        buffer += chunk
        *done, buffer = buffer.split(b"\n")
        lines += [line.decode() for line in done]
    return lines


# ------------------------------------------------------------ a finished study run again


def test_a_finished_study_run_again_adds_nothing_and_says_so_at_once(
    finished: Path, tmp_path: Path
) -> None:
    folder = _copy(finished, tmp_path)
    study = folder / "results" / "tiny"
    runs = sorted(p.name for p in (study / "wandb").glob("offline-run-*"))
    assert any(name.endswith(f"-tiny-study-{name.rsplit('-', 1)[-1]}") for name in runs), runs
    report = {p: p.stat().st_mtime_ns for p in (study / "report").iterdir()}
    done, took = run_timed(sweeps_cmd("run", "tiny.yaml"), cwd=folder, env=_env(folder / "home"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(
        "study tiny is finished; nothing to run: 2 of 2 trials have finished (2 complete,"
        " 0 pruned, 0 failed)\nnothing added: no trial, report or W&B run\n"
    ), done.stdout
    assert sorted(p.name for p in (study / "wandb").glob("offline-run-*")) == runs
    assert {p: p.stat().st_mtime_ns for p in (study / "report").iterdir()} == report
    # CPU, not wall time: other jobs on a shared machine stretch wall time several-fold.
    assert took.cpu < 5, f"{took.cpu:.1f} s of CPU"
    # More trials asked for: it runs them, as before.
    more = sweeps("run", "tiny.yaml", "--n-trials", "3", cwd=folder, env=_env(folder / "home"))
    assert more.returncode == 0, more.stdout + more.stderr
    assert "is finished" not in more.stdout and "report in" in more.stdout
