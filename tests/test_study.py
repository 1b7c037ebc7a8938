"""Studies on digits with tiny budgets and real Optuna storages (journal file, SQLite)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from conftest import TINY_RUN
from mixer_sweeps._cli import app
from mixer_sweeps.study import (
    StudyFile,
    StudyMismatchError,
    WorkerLock,
    count_trials,
    load_study_file,
    open_storage,
    run_study,
)
from mixer_sweeps.study._recovery import worker_is_dead

runner = CliRunner()

# Learns to ~35% val accuracy in 2 epochs of well under a second; lr 1e-7 stays at chance.
FIXED = {"optim.epochs": 4, "optim.warmup_epochs": 0, "optim.min_lr": 0.0}


def write_study(
    path: Path, space: dict[str, Any], *, fixed: dict[str, Any] | None = None, **study: Any
) -> Path:
    document = {
        "study": {"name": "tiny", **study},
        "fixed": {**FIXED, **(fixed or {})},
        "space": space,
        "run": TINY_RUN,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def make_study(tmp_path: Path, space: dict[str, Any], **study: Any) -> StudyFile:
    return load_study_file(write_study(tmp_path / "study.yaml", space, **study))


def by_state(trials: list[optuna.trial.FrozenTrial]) -> dict[TrialState, list[int]]:
    states: dict[TrialState, list[int]] = {}
    for trial in trials:
        states.setdefault(trial.state, []).append(trial.number)
    return states


@pytest.fixture(scope="module")
def pruned_study(tmp_path_factory) -> tuple[StudyFile, Path, Any]:
    # The grid's seed-3 order puts lr 1e-7 last, after two trials that learn, so the median
    # pruner has something to compare it with at epoch 2.
    tmp_path = tmp_path_factory.mktemp("pruned")
    study_file = make_study(
        tmp_path,
        {"optim.lr": {"choices": [3e-2, 1e-2, 1e-7]}},
        sampler={"type": "grid", "seed": 3},
        pruner={"type": "median", "min_epochs": 2, "startup_trials": 2},
    )
    return study_file, tmp_path, run_study(study_file, results_dir=tmp_path)


def test_median_pruner_prunes_the_laggard_and_completes_the_rest(pruned_study) -> None:
    _, _, run = pruned_study
    lrs = [t.params["optim.lr"] for t in run.trials]
    assert lrs == [1e-2, 3e-2, 1e-7], "the grid order this test relies on changed"
    assert by_state(run.trials) == {TrialState.COMPLETE: [0, 1], TrialState.PRUNED: [2]}
    pruned = run.trials[2]
    assert pruned.user_attrs["epochs"] == [2] and "MedianPruner" in pruned.user_attrs["reason"]
    assert sorted(pruned.intermediate_values) == [1, 2]
    assert all(t.user_attrs["epochs"] == [4] for t in run.trials[:2])
    assert run.added == 3 and not run.interrupted


def test_each_trial_keeps_its_run_files_and_attrs(pruned_study) -> None:
    _, tmp_path, run = pruned_study
    for trial in run.trials:
        trial_dir = tmp_path / "tiny" / "trials" / str(trial.number)
        assert trial.user_attrs["run_dir"] == f"trials/{trial.number}"
        for name in ("spec.yaml", "history.csv", "metrics.json", "curves.png"):
            assert (trial_dir / name).is_file(), (trial.number, name)
        spec = yaml.safe_load((trial_dir / "spec.yaml").read_text())
        assert spec["optim"]["lr"] == trial.params["optim.lr"]
        assert spec["name"] == f"tiny-{trial.number}"
        metrics = json.loads((trial_dir / "metrics.json").read_text())
        assert trial.user_attrs["best_val_accs"] == [metrics["best_val_acc"]]
        assert trial.user_attrs["num_params"] == metrics["params"] > 0
    complete = run.trials[0]
    assert complete.value == complete.user_attrs["best_val_accs"][0]
    assert complete.user_attrs["test_accs"][0] is not None
    assert run.trials[2].user_attrs["test_accs"] == [None]
    assert run.best_trial is not None and run.best_trial.state == TrialState.COMPLETE


def test_rerunning_a_finished_study_adds_no_trials(pruned_study) -> None:
    study_file, tmp_path, first = pruned_study
    again = run_study(study_file, results_dir=tmp_path)
    assert again.added == 0
    assert [t.number for t in again.trials] == [t.number for t in first.trials]


def test_a_changed_study_file_is_not_mixed_into_the_stored_study(pruned_study) -> None:
    _, tmp_path, _ = pruned_study
    (tmp_path / "changed").mkdir()
    changed = make_study(
        tmp_path / "changed", {"optim.lr": {"choices": [3e-2, 1e-3]}}, sampler={"type": "grid"}
    )
    with pytest.raises(StudyMismatchError, match="different base spec"):
        run_study(changed, results_dir=tmp_path)


@pytest.mark.parametrize(
    ("space", "settings"),
    [
        (
            {"model.embed_dim": {"choices": [16, 24]}, "optim.lr": {"choices": [1e-2, 3e-2]}},
            {"sampler": {"type": "grid"}},
        ),
        ({"optim.lr": {"low": 1e-3, "high": 3e-2, "log": True}}, {"n_trials": 5}),
    ],
    ids=["grid", "tpe"],
)
def test_two_workers_on_one_journal_run_exactly_n_trials(tmp_path: Path, space, settings) -> None:
    study_file = make_study(tmp_path, space, **settings)
    run = run_study(study_file, workers=2, results_dir=tmp_path)
    assert not run.errors and run.fatal is None
    n_trials = study_file.n_trials
    assert (tmp_path / "tiny" / "study.journal").is_file()
    assert [t.number for t in run.trials] == list(range(n_trials))
    assert all(t.state == TrialState.COMPLETE for t in run.trials)
    params = [tuple(sorted(t.params.items())) for t in run.trials]
    assert len(set(params)) == n_trials
    workers = {t.user_attrs["worker"]["pid"] for t in run.trials}
    assert len(workers) == 2 and os.getpid() not in workers
    if study_file.settings.sampler.type == "grid":
        grid = study_file.space.grid()
        assert set(params) == {
            tuple(sorted(zip(grid, point, strict=True)))
            for point in itertools.product(*grid.values())
        }


def test_grid_with_replicates_on_sqlite_runs_every_point_once(tmp_path: Path) -> None:
    study_file = make_study(
        tmp_path,
        {"model.depth": {"low": 1, "high": 2, "step": 1}},
        sampler={"type": "grid"},
        replicates=2,
        pruner={"type": "none"},
    )
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run = run_study(study_file, results_dir=tmp_path, storage=storage)
    assert sorted(t.params["model.depth"] for t in run.trials) == [1, 2]
    assert all(t.state == TrialState.COMPLETE for t in run.trials)
    for trial in run.trials:
        accs = trial.user_attrs["best_val_accs"]
        assert trial.user_attrs["seeds"] == [0, 1] and len(accs) == 2
        assert trial.value == pytest.approx(sum(accs) / 2)
        trial_dir = tmp_path / "tiny" / "trials" / str(trial.number)
        metrics = json.loads((trial_dir / "metrics.json").read_text())
        assert metrics["value"] == pytest.approx(trial.value)
        assert metrics["best_val_acc"]["seeds"] == {"0": accs[0], "1": accs[1]}
        for seed in (0, 1):
            spec = yaml.safe_load((trial_dir / f"seed-{seed}" / "spec.yaml").read_text())
            assert spec["seed"] == seed
    assert run_study(study_file, results_dir=tmp_path, storage=storage).added == 0
    assert not (tmp_path / "tiny" / "study.journal").exists()


def test_non_finite_loss_fails_the_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "study.yaml", {"optim.lr": {"choices": [1e6, 1e-2]}}, sampler={"type": "grid"}
    )
    result = runner.invoke(app, ["run", str(path), "--results", str(tmp_path)])
    assert result.exit_code == 0, result.output
    storage = open_storage(None, study_dir=tmp_path / "tiny")
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert [t.params["optim.lr"] for t in failed] == [1e6]
    assert [t.params["optim.lr"] for t in complete] == [1e-2]
    reason = failed[0].user_attrs["reason"]
    assert reason.startswith("NonFiniteLossError: ") and "non-finite" in reason
    error = tmp_path / "tiny" / "trials" / str(failed[0].number) / "error.txt"
    assert "NonFiniteLossError" in error.read_text()
    assert "FAIL" in result.output and reason in result.output
    assert f"best: trial {complete[0].number}" in result.output
    assert f"tiny/trials/{complete[0].number}/" in result.output


def test_trials_of_a_dead_worker_are_failed_and_run_again(tmp_path: Path) -> None:
    study_file = make_study(
        tmp_path, {"optim.lr": {"choices": [1e-2, 3e-2]}}, sampler={"type": "grid"}
    )
    study_dir = tmp_path / "tiny"
    storage = open_storage(None, study_dir=study_dir)
    study = optuna.create_study(
        study_name="tiny",
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.GridSampler(study_file.space.grid(), seed=0),
    )
    orphan = study.ask()
    study_file.space.suggest(orphan)
    orphan.set_user_attr("worker", {"host": os.uname().nodename, "pid": 1, "id": "gone"})

    run = run_study(study_file, results_dir=tmp_path)
    first = run.trials[0]
    assert first.state == TrialState.FAIL and first.user_attrs["reason"].startswith("abandoned")
    retry = next(t for t in run.trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.state == TrialState.COMPLETE and retry.params == first.params
    counts = count_trials(run.trials)
    assert (counts.finished, counts.complete, counts.failed, counts.retried) == (2, 2, 0, 1)
    assert sorted(t.params["optim.lr"] for t in run.trials[1:]) == [1e-2, 3e-2]


def test_worker_lock_tells_the_living_from_the_dead(tmp_path: Path) -> None:
    with WorkerLock(tmp_path) as lock:
        assert not worker_is_dead(tmp_path, lock.info)
    assert worker_is_dead(tmp_path, lock.info)
    assert not worker_is_dead(tmp_path, {**lock.info, "host": "elsewhere"})


def test_ctrl_c_stops_cleanly_and_the_study_resumes(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-2, 3e-2]}},
        fixed={"optim.epochs": 60},
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "mixer_sweeps", "run", str(path), "--results", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    study_dir = tmp_path / "tiny"
    deadline = time.monotonic() + 60
    while not _has_trained_an_epoch(study_dir):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=30)[0]
    assert process.returncode == 130, output
    assert "run the same command again" in output

    storage = open_storage(None, study_dir=study_dir)
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    interrupted = trials[0]
    assert interrupted.state == TrialState.FAIL
    assert interrupted.user_attrs["reason"].startswith("interrupted")
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert [t.params for t in queued] == [interrupted.params]

    run = run_study(load_study_file(path), results_dir=tmp_path)
    counts = run.counts
    assert (counts.finished, counts.complete, counts.retried) == (2, 2, 1)
    complete = [t for t in run.trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["optim.lr"] for t in complete) == [1e-2, 3e-2]
    # The queued configuration went on from the checkpoint its interrupted attempt left.
    retry = next(t for t in complete if t.user_attrs.get("retry_of") == interrupted.number)
    resumed = retry.user_attrs["resumed"]
    assert resumed["trial"] == interrupted.number and resumed["epoch"] >= 1
    assert sorted(retry.intermediate_values) == list(range(1, 61))
    retry_dir = study_dir / "trials" / str(retry.number)
    assert len((retry_dir / "history.csv").read_text().splitlines()) == 61
    assert yaml.safe_load((retry_dir / "spec.yaml").read_text())["name"] == "tiny-0"


def _has_trained_an_epoch(study_dir: Path) -> bool:
    if not (study_dir / "study.journal").exists():
        return False
    storage = open_storage(None, study_dir=study_dir)
    try:
        trials = optuna.load_study(study_name="tiny", storage=storage).trials
    except KeyError:
        return False
    return any(t.intermediate_values for t in trials)


@pytest.mark.parametrize(
    ("sampler", "pruner"),
    [
        ("tpe", "hyperband"),
        ("random", "successive_halving"),
        ("cmaes", "median"),
        ("qmc", "none"),
    ],
)
def test_every_sampler_and_pruner_runs(tmp_path: Path, sampler: str, pruner: str) -> None:
    space = {
        "optim.lr": {"low": 3e-3, "high": 3e-2, "log": True},
        "model.token_mlp_dim": {"low": 4, "high": 8, "step": 4},
        "augment.randaugment": {"choices": [None, {"num_ops": 1}]},
    }
    study_file = make_study(
        tmp_path,
        space,
        n_trials=3,
        sampler={"type": sampler},
        pruner={"type": pruner, "min_epochs": 1},
    )
    run = run_study(study_file, results_dir=tmp_path)
    assert run.counts.finished == 3 and run.counts.failed == 0
    pruner_class = type(run.study.pruner).__name__
    assert all(t.params["model.token_mlp_dim"] in (4, 8) for t in run.trials), pruner_class
    assert {t.params["augment.randaugment"] for t in run.trials} <= {None, "{num_ops: 1}"}


def test_timeout_stops_starting_new_trials(tmp_path: Path) -> None:
    study_file = make_study(
        tmp_path, {"optim.lr": {"low": 3e-3, "high": 3e-2}}, timeout=0.5, sampler={"type": "random"}
    )
    assert study_file.n_trials is None
    run = run_study(study_file, results_dir=tmp_path)
    assert run.counts.finished >= 1 and run.counts.running == 0
    assert run.seconds < 30


@pytest.mark.parametrize("skip", [True, False], ids=["skipped", "retrained"])
def test_a_repeated_configuration_is_not_trained_again(tmp_path: Path, skip: bool) -> None:
    study_file = make_study(
        tmp_path,
        {"model.depth": {"choices": [1]}},
        n_trials=3,
        sampler={"type": "random"},
        skip_duplicates=skip,
    )
    run = run_study(study_file, results_dir=tmp_path)
    assert {t.value for t in run.trials} == {run.trials[0].value}
    trained = sorted(p.name for p in (tmp_path / "tiny" / "trials").iterdir())
    if skip:
        assert trained == ["0"]
        assert [t.user_attrs.get("duplicate_of") for t in run.trials] == [None, 0, 0]
        assert run.trials[1].user_attrs["run_dir"] == "trials/0"
    else:
        assert trained == ["0", "1", "2"]
    assert run.best_trial.number == 0
