"""``sweeps retrain``: a real tiny digits study's best configurations trained again with fresh
seeds, test accuracy as mean ± 95% CI; resuming, bad input and the report's Retrained section."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml
from optuna.study import StudyDirection
from optuna.trial import TrialState
from scipy import stats
from typer.testing import CliRunner

from conftest import TINY_RUN
from mixer_sweeps.cli import app
from mixer_sweeps.results import TrialRecord, best_configurations
from mixer_sweeps.spec import RunSpec, load_study_file
from mixer_sweeps.study import run_study
from mixer_sweeps.training import Callback, Trainer

runner = CliRunner()
SWEEPS = Path(sys.executable).parent / "sweeps"

# Three configurations of two epochs each: a study of a few seconds.
SPACE = {"model.embed_dim": {"choices": [8, 16]}, "optim.lr": {"choices": [3e-3, 1e-2]}}
FIXED = {"optim.epochs": 2, "optim.warmup_epochs": 1}
# The tiny run without a word on early stopping: its trials get the default patience.
RUN = {**TINY_RUN, "optim": {k: v for k, v in TINY_RUN["optim"].items() if "stopping" not in k}}


def write_study(folder: Path, name: str, **fixed: Any) -> Path:
    document = {
        "study": {
            "name": name,
            "n_trials": 3,
            "sampler": {"type": "grid", "seed": 0},
            "pruner": {"type": "none"},
        },
        "fixed": {**FIXED, **fixed},
        "space": SPACE,
        "run": RUN,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def load(folder: Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "results" / name / "study.journal"))
    )
    return optuna.load_study(study_name=name, storage=storage)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A finished tiny study in ``<folder>/results/tiny``; returns ``<folder>/tiny.yaml``."""
    folder = tmp_path_factory.mktemp("retrain")
    path = write_study(folder, "tiny")
    run_study(load_study_file(path), results_dir=folder / "results")
    return path


@pytest.fixture(scope="module")
def retrained(study: Path) -> subprocess.CompletedProcess:
    """``sweeps retrain tiny.yaml --top 2 --seeds 2`` as a user runs it."""
    done = subprocess.run(
        [SWEEPS, "retrain", study.name, "--top", "2", "--seeds", "2"],
        cwd=study.parent,
        capture_output=True,
        text=True,
        timeout=120,  # a hang, not a speed goal
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def retrain(study: Path, *args: str) -> Any:
    old = Path.cwd()
    os.chdir(study.parent)
    try:
        return runner.invoke(app, ["retrain", study.name, *args])
    finally:
        os.chdir(old)


def test_retrain_writes_mean_and_ci_of_test_acc_over_fresh_seeds(study, retrained) -> None:
    root = study.parent / "results" / "tiny" / "retrain"
    trials = load(study.parent, "tiny").get_trials(states=(TrialState.COMPLETE,))
    ranked = sorted(trials, key=lambda t: (-t.value, t.number))[:2]
    summary = pd.read_csv(root / "summary.csv", index_col="config")
    assert list(summary.index) == [f"trial-{t.number}" for t in ranked]
    for trial in ranked:
        row = summary.loc[f"trial-{trial.number}"]
        accs = []
        for seed in (1000, 1001):
            run = root / f"trial-{trial.number}" / f"seed-{seed}"
            spec = yaml.safe_load((run / "spec.yaml").read_text())
            assert spec["seed"] == seed
            assert spec["model"]["embed_dim"] == trial.params["model.embed_dim"]
            assert spec["optim"]["lr"] == trial.params["optim.lr"]
            accs.append(json.loads((run / "metrics.json").read_text())["test_acc"])
        half = stats.t.ppf(0.975, 1) * statistics.stdev(accs) / math.sqrt(2)
        assert row["seeds"] == 2
        assert row["test acc"] == pytest.approx(statistics.fmean(accs))
        assert row["± 95% CI"] == pytest.approx(half)
        assert row["search val_acc"] == pytest.approx(trial.value)
    text = (root / "summary.md").read_text()
    assert "optimistic" in text and "number to quote" in text
    # The study's report gains the Retrained section, first.
    report = (study.parent / "results" / "tiny" / "report" / "report.md").read_text()
    section = report.index("## Retrained")
    assert section < report.index("## Top")
    assert "optimistic" in report[section:]


def test_retrained_runs_are_the_trials_specs_with_fresh_seeds_and_no_early_stopping(
    study, retrained
) -> None:
    root = study.parent / "results" / "tiny"
    summary = pd.read_csv(root / "retrain" / "summary.csv", index_col="config")
    number = int(summary.index[0].removeprefix("trial-"))
    trial = yaml.safe_load((root / "trials" / str(number) / "spec.yaml").read_text())
    again = yaml.safe_load(
        (root / "retrain" / f"trial-{number}" / "seed-1001" / "spec.yaml").read_text()
    )
    assert trial["optim"]["early_stopping_patience"] == 20  # the default, not asked for
    assert again["optim"]["early_stopping_patience"] is None
    for spec in (trial, again):
        del spec["name"], spec["seed"], spec["optim"]["early_stopping_patience"]
    assert again == trial


def test_retrain_again_skips_finished_seeds_and_resumes_an_interrupted_one(
    study, retrained
) -> None:
    root = study.parent / "results" / "tiny" / "retrain"
    summary = pd.read_csv(root / "summary.csv", index_col="config")
    first, second = (root / c for c in summary.index)
    finished = {p: p.stat().st_mtime_ns for p in first.glob("seed-*/metrics.json")}
    # Seed 1001 of the second configuration was cut short after its first epoch.
    cut = second / "seed-1001"
    before = pd.read_csv(cut / "history.csv")
    spec = RunSpec.model_validate(yaml.safe_load((cut / "spec.yaml").read_text()))
    for path in cut.iterdir():
        path.unlink()

    class CtrlC(Callback):
        def on_epoch_end(self, trainer, record):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, run_dir=cut, callbacks=[CtrlC()]).fit()
    interrupted = pd.read_csv(cut / "history.csv")
    assert (cut / "checkpoint.pt").exists() and not (cut / "metrics.json").exists()

    result = retrain(study, "--top", "2", "--seeds", "2")
    assert result.exit_code == 0, result.output
    assert result.output.count("finished before") == 3
    assert {p: p.stat().st_mtime_ns for p in first.glob("seed-*/metrics.json")} == finished
    after = pd.read_csv(cut / "history.csv")
    # Resumed, not restarted: epoch 1 is the interrupted run's record, its timing included;
    # and on CPU the resumed run ends where the uninterrupted one did.
    assert after.iloc[0].equals(interrupted.iloc[0])
    assert after["val_acc"].tolist() == before["val_acc"].tolist()
    assert not (cut / "checkpoint.pt").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--seeds", "0"), ("--top", "0"), ("--epochs", "0"), ("--top", "-3")]
)
def test_bad_numbers_exit_2_naming_the_option_and_value(tmp_path, option, value) -> None:
    path = write_study(tmp_path, "never")
    result = retrain(path, option, value)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and value in lines[0], result.output
    assert not (tmp_path / "results").exists()


def test_a_study_without_a_complete_trial_exits_2_in_one_line(tmp_path) -> None:
    path = write_study(tmp_path, "doomed", **{"optim.lr": 1e6})
    doomed = {**SPACE, "optim.lr": {"choices": [1e6, 1e7]}}
    document = yaml.safe_load(path.read_text())
    document["space"] = doomed
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    run_study(load_study_file(path), results_dir=tmp_path / "results")
    result = retrain(path)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no complete trial" in lines[0], result.output
    assert not (tmp_path / "results" / "doomed" / "retrain").exists()


def test_a_study_never_run_exits_2(tmp_path) -> None:
    result = retrain(write_study(tmp_path, "unrun"))
    assert result.exit_code == 2
    assert "has the study been run" in result.output


def test_other_options_than_the_runs_were_made_with_are_refused_before_training(
    study, retrained
) -> None:
    root = study.parent / "results" / "tiny" / "retrain"
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    result = retrain(study, "--top", "2", "--seeds", "2", "--epochs", "3")
    assert result.exit_code == 2
    assert "optim.epochs: 2 there, 3 now" in result.output
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamps


def test_a_run_spec_is_retrained_the_same_way(tmp_path) -> None:
    asks = {
        **TINY_RUN,
        "name": "asks",
        "optim": {**TINY_RUN["optim"], "early_stopping_patience": 1},
    }
    plain = {**RUN, "name": "plain"}
    for spec in (asks, plain):
        path = tmp_path / f"{spec['name']}.yaml"
        path.write_text(yaml.safe_dump(spec), encoding="utf-8")
        result = retrain(path, "--seeds", "2", "--epochs", "2")
        assert result.exit_code == 0, result.output
        root = tmp_path / "results" / spec["name"] / "retrain"
        saved = yaml.safe_load((root / "spec" / "seed-1001" / "spec.yaml").read_text())
        assert saved["optim"]["epochs"] == 2
        # Early stopping stays only where the spec asks for it.
        assert saved["optim"]["early_stopping_patience"] == (1 if spec is asks else None)
        summary = pd.read_csv(root / "summary.csv", index_col="config")
        accs = [
            json.loads((root / "spec" / f"seed-{s}" / "metrics.json").read_text())["test_acc"]
            for s in (1000, 1001)
        ]
        assert summary.loc["spec", "test acc"] == pytest.approx(statistics.fmean(accs))


def record(
    number: int, value: float, params: dict[str, Any], state: TrialState = TrialState.COMPLETE
) -> TrialRecord:
    return TrialRecord(number=number, state=state, params=params, value=value)


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        (StudyDirection.MAXIMIZE, [({"x": 2}, 0.9, (2,)), ({"x": 1}, 0.6, (0, 3))]),
        (StudyDirection.MINIMIZE, [({"x": 3}, 0.1, (4,)), ({"x": 1}, 0.6, (0, 3))]),
    ],
)
def test_best_configurations_group_by_params_and_follow_the_direction(direction, expected) -> None:
    trials = [
        record(0, 0.5, {"x": 1}),
        record(1, 0.99, {"x": 9}, state=TrialState.PRUNED),
        record(2, 0.9, {"x": 2}),
        record(3, 0.7, {"x": 1}),  # a replicate of trial 0's configuration: their mean counts
        record(4, 0.1, {"x": 3}),
    ]
    best, distinct = best_configurations(trials, direction=direction, top=2)
    assert distinct == 3
    assert best == expected
