"""Studies on digits with tiny budgets and real Optuna storages (journal file, SQLite)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from conftest import TINY_RUN
from mixer_sweeps.cli import app
from mixer_sweeps.results import TrialRecord, count_trials
from mixer_sweeps.spec import StudyFile, load_study_file
from mixer_sweeps.study import (
    StudyMismatchError,
    WorkerIdentity,
    make_pruner,
    make_sampler,
    open_storage,
    run_study,
    why_abandoned,
)

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
        assert trial.user_attrs["best_val_acc"] == [metrics["best_val_acc"]]
        assert trial.user_attrs["num_params"] == metrics["num_params"] > 0
    complete = run.trials[0]
    assert complete.value == complete.user_attrs["best_val_acc"][0]
    assert complete.user_attrs["test_acc"][0] is not None
    assert run.trials[2].user_attrs["test_acc"] == [None]
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
        accs = trial.user_attrs["best_val_acc"]
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


def test_confirm_trains_more_seeds_for_contenders_only(tmp_path: Path) -> None:
    # Grid order (seed 3): lr 1e-2 and 3e-2 learn, lr 1e-7 stays at chance, far behind.
    study_file = make_study(
        tmp_path,
        {"optim.lr": {"choices": [3e-2, 1e-2, 1e-7]}},
        sampler={"type": "grid", "seed": 3},
        pruner={"type": "none"},
        confirm={"seeds": 2, "within": 0.05},
    )
    run = run_study(study_file, results_dir=tmp_path)
    by_lr = {t.params["optim.lr"]: t for t in run.trials}
    best = max(t.value for t in run.trials)
    for lr, trial in by_lr.items():
        accs = trial.user_attrs["best_val_acc"]
        trial_dir = tmp_path / "tiny" / "trials" / str(trial.number)
        if len(accs) == 2:
            assert trial.user_attrs["seeds"] == [0, 1]
            assert trial.value == pytest.approx(sum(accs) / 2)
            spec = yaml.safe_load((trial_dir / "seed-1" / "spec.yaml").read_text())
            assert spec["seed"] == 1 and spec["optim"]["lr"] == lr
        else:
            assert trial.user_attrs["seeds"] == [0] and not (trial_dir / "seed-1").exists()
    assert len(by_lr[1e-2].user_attrs["best_val_acc"]) == 2, "the first trial is the best so far"
    assert len(by_lr[1e-7].user_attrs["best_val_acc"]) == 1
    assert by_lr[1e-7].value < best - 0.05


def test_confirm_needs_a_single_replicate(tmp_path: Path) -> None:
    from mixer_sweeps.spec import SpecError

    with pytest.raises(SpecError, match="study.confirm"):
        make_study(tmp_path, {"optim.lr": {"choices": [1e-2]}}, replicates=2, confirm={"seeds": 3})


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
    # A worker of this host whose process has ended (its heartbeat is fresh: only its
    # identity, read from the storage, tells that it is gone).
    orphan.set_user_attr("worker", {**WorkerIdentity.of_this_process().attr(), "pid": _ended_pid()})
    storage.set_trial_system_attr(orphan._trial_id, "heartbeat", time.time())

    run = run_study(study_file, results_dir=tmp_path)
    first = run.trials[0]
    assert first.state == TrialState.FAIL and first.user_attrs["reason"].startswith("abandoned")
    retry = next(t for t in run.trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.state == TrialState.COMPLETE and retry.params == first.params
    counts = count_trials(run.trials)
    assert (counts.finished, counts.complete, counts.failed, counts.retried) == (2, 2, 0, 1)
    assert sorted(t.params["optim.lr"] for t in run.trials[1:]) == [1e-2, 3e-2]


def _ended_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_worker_identity_and_heartbeat_tell_the_living_from_the_dead() -> None:
    me = WorkerIdentity.of_this_process()
    now, grace = time.time(), 120

    def judged(worker: dict[str, Any] | None, heartbeat: float | None = now) -> str | None:
        started = datetime.fromtimestamp(now - 3600)  # the heartbeat speaks, not the start
        trial = TrialRecord(
            0, TrialState.RUNNING, worker=worker, heartbeat=heartbeat, started=started
        )
        return why_abandoned(trial, grace_s=grace, now=now)

    assert judged(me.attr()) is None
    assert me.start_time is not None, "no /proc: the start time cannot be read"
    # The pid of a process that ended, and a pid in use by another process since.
    assert "ended during the trial" in judged({**me.attr(), "pid": _ended_pid()})
    assert "ended during the trial" in judged({**me.attr(), "start_time": me.start_time - 1})
    # Another host, or this host's name in another boot or pid namespace (a container, a cloned
    # machine): the process table is not ours to read, only the heartbeat tells.
    for elsewhere in ({"host": "elsewhere"}, {"boot_id": "another"}, {"pid_ns": "pid:[1]"}):
        worker = {**me.attr(), **elsewhere, "pid": _ended_pid()}
        assert judged(worker) is None, elsewhere
        assert "no heartbeat for 121 s" in judged(worker, heartbeat=now - grace - 1)
    # A living worker of this host is never taken for dead, however late its heartbeat.
    assert judged(me.attr(), heartbeat=now - grace - 1) is None
    # No worker yet: the trial's start counts as its first sign of life.
    assert "no heartbeat" in judged(None, heartbeat=None)
    assert judged(None, heartbeat=now - 1) is None
    assert why_abandoned(TrialRecord(0, TrialState.COMPLETE), grace_s=grace, now=now) is None


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


# Integer ranges only, so that every sampler (grid and CMA-ES included) can take the space.
MAPPED_SPACE = {
    "model.depth": {"low": 1, "high": 3, "step": 1},
    "model.token_mlp_dim": {"low": 4, "high": 16, "step": 4},
    "optim.epochs": {"low": 6, "high": 9, "step": 3},
}
MAPPED_GRID = {
    "model.depth": [1, 2, 3],
    "model.token_mlp_dim": [4, 8, 12, 16],
    "optim.epochs": [6, 9],
}
STUDY_SEED, WORKER_SEED = 5, 99


def _plain_settings(algorithm: object) -> dict[str, Any]:
    """The settings an Optuna sampler or pruner keeps as plain values (seeds live in RNGs)."""
    kinds = (int, float, str, bool, type(None))
    return {k: v for k, v in vars(algorithm).items() if isinstance(v, kinds)}


def _draws(sampler: optuna.samplers.BaseSampler, space) -> list[dict[str, Any]]:
    """The params ``sampler`` proposes over 12 trials of a deterministic objective."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: float(sum(space.suggest(t).values())), n_trials=12)
    return [t.params for t in study.trials]


@pytest.mark.parametrize(
    ("section", "settings", "expected", "arguments"),
    [
        ("sampler", {"type": "tpe"}, "TPESampler", {"seed": WORKER_SEED, "n_startup_trials": 10}),
        (
            "sampler",
            {"type": "tpe", "startup_trials": 3},
            "TPESampler",
            {"seed": WORKER_SEED, "n_startup_trials": 3},
        ),
        ("sampler", {"type": "random"}, "RandomSampler", {"seed": WORKER_SEED}),
        # Every worker walks the grid and the Sobol sequence of the study's own seed.
        (
            "sampler",
            {"type": "grid"},
            "GridSampler",
            {"search_space": MAPPED_GRID, "seed": STUDY_SEED},
        ),
        (
            "sampler",
            {"type": "cmaes"},
            "CmaEsSampler",
            {"seed": WORKER_SEED, "n_startup_trials": 1, "warn_independent_sampling": False},
        ),
        (
            "sampler",
            {"type": "cmaes", "startup_trials": 4},
            "CmaEsSampler",
            {"seed": WORKER_SEED, "n_startup_trials": 4, "warn_independent_sampling": False},
        ),
        (
            "sampler",
            {"type": "qmc"},
            "QMCSampler",
            {"seed": STUDY_SEED, "warn_independent_sampling": False},
        ),
        (
            "pruner",
            {"type": "median"},
            "MedianPruner",
            {"n_startup_trials": 5, "n_warmup_steps": 1},
        ),
        (
            "pruner",
            {"type": "median", "min_epochs": 3, "startup_trials": 2},
            "MedianPruner",
            {"n_startup_trials": 2, "n_warmup_steps": 3},
        ),
        # max_resource: the most epochs a trial of the space trains.
        (
            "pruner",
            {"type": "hyperband"},
            "HyperbandPruner",
            {"min_resource": 1, "max_resource": 9, "reduction_factor": 3},
        ),
        (
            "pruner",
            {"type": "hyperband", "min_epochs": 2, "reduction_factor": 2},
            "HyperbandPruner",
            {"min_resource": 2, "max_resource": 9, "reduction_factor": 2},
        ),
        (
            "pruner",
            {"type": "successive_halving", "min_epochs": 3, "reduction_factor": 4},
            "SuccessiveHalvingPruner",
            {"min_resource": 3, "reduction_factor": 4},
        ),
        ("pruner", {"type": "none"}, "NopPruner", {}),
    ],
    ids=[
        "tpe",
        "tpe-startup",
        "random",
        "grid",
        "cmaes",
        "cmaes-startup",
        "qmc",
        "median",
        "median-settings",
        "hyperband",
        "hyperband-settings",
        "successive_halving",
        "none",
    ],
)
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # QMCSampler
def test_study_settings_map_to_optuna_classes(
    tmp_path: Path, section: str, settings: dict[str, Any], expected: str, arguments
) -> None:
    # The reference is Optuna's class built here with the arguments the settings promise.
    if section == "sampler":
        settings = {**settings, "seed": STUDY_SEED}
    study_file = make_study(tmp_path, MAPPED_SPACE, n_trials=4, **{section: settings})
    if section == "sampler":
        made = make_sampler(study_file.settings.sampler, study_file.space, seed=WORKER_SEED)
        reference = getattr(optuna.samplers, expected)(**arguments)
    else:
        made = make_pruner(study_file.settings.pruner, max_epochs=study_file.max_epochs)
        reference = getattr(optuna.pruners, expected)(**arguments)
    assert type(made) is type(reference)
    assert _plain_settings(made) == _plain_settings(reference)
    if section == "sampler":
        assert _draws(made, study_file.space) == _draws(reference, study_file.space)


PRUNER_CLASSES = {
    "median": "MedianPruner",
    "hyperband": "HyperbandPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "none": "NopPruner",
}


@pytest.mark.parametrize(
    ("sampler", "pruner"),
    [
        ({"type": "tpe", "startup_trials": 1}, {"type": "successive_halving"}),
        ({"type": "random"}, {"type": "hyperband"}),
        ({"type": "cmaes"}, {"type": "median", "startup_trials": 1}),
        ({"type": "qmc"}, {"type": "none"}),
    ],
    ids=["tpe-successive_halving", "random-hyperband", "cmaes-median", "qmc-none"],
)
def test_every_sampler_and_pruner_runs(tmp_path: Path, sampler, pruner) -> None:
    space = {
        "optim.lr": {"low": 3e-3, "high": 3e-2, "log": True},
        "model.token_mlp_dim": {"low": 4, "high": 8, "step": 4},
        "augment.randaugment": {"choices": [None, {"num_ops": 1}]},
    }
    study_file = make_study(
        tmp_path, space, n_trials=3, sampler=sampler, pruner={**pruner, "min_epochs": 1}
    )
    run = run_study(study_file, results_dir=tmp_path)
    assert run.counts.finished == 3 and run.counts.failed == 0
    assert all(t.params["model.token_mlp_dim"] in (4, 8) for t in run.trials)
    assert {t.params["augment.randaugment"] for t in run.trials} <= {None, "{num_ops: 1}"}

    # The worker opens the study with its own sampler and pruner, which leave their marks in
    # the stored trials; the run's own study object has neither.
    keys = [set(t.system_attrs) for t in run.trials]
    storage = open_storage(None, study_dir=tmp_path / "tiny")
    study_attrs = storage.get_study_system_attrs(storage.get_study_id_from_name("tiny"))
    qmc_draws = [v for k, v in study_attrs.items() if k.startswith("qmc:")]
    kind = sampler["type"]
    # After their startup trial, TPE and CMA-ES propose whole configurations and store them.
    assert ["tpe:relative_params:0" in k for k in keys] == [False, kind == "tpe", kind == "tpe"]
    assert ["cma:generation" in k for k in keys] == [False, kind == "cmaes", kind == "cmaes"]
    # QMC counts its Sobol points in the study (trial 0 is drawn independently).
    assert qmc_draws == ([1] if kind == "qmc" else [])
    if kind == "random":
        replay = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        draws = [study_file.space.suggest(replay.ask()) for _ in range(3)]
        assert [t.params for t in run.trials] == draws

    halving = pruner["type"] in ("hyperband", "successive_halving")
    assert ["completed_rung_0" in k for k in keys] == [halving] * 3
    pruned = [t for t in run.trials if t.state == TrialState.PRUNED]
    for trial in pruned:
        assert trial.user_attrs["reason"].startswith(f"pruned by {PRUNER_CLASSES[pruner['type']]} ")
    if pruner["type"] == "median":
        # These seeded curves put trials 1 and 2 below trial 0's median; MedianPruner alone
        # leaves no mark on the trials it lets go on.
        assert [t.number for t in pruned] == [1, 2]


@contextlib.contextmanager
def _ctrl_c_after(seconds: float) -> Iterator[None]:
    """Hang guard: a Ctrl-C to this process after ``seconds``, which run_study handles by
    stopping cleanly and reporting the run as interrupted. One landing outside run_study is
    dropped rather than ending the test session."""
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)


def test_timeout_starts_no_trial_after_the_deadline(tmp_path: Path) -> None:
    # No n_trials: only the timeout ends this study, so a timeout that is ignored runs trials
    # until the guard's Ctrl-C, many seconds after the deadline.
    timeout = 2.0
    study_file = make_study(
        tmp_path,
        {"optim.lr": {"low": 3e-3, "high": 3e-2}},
        timeout=timeout,
        sampler={"type": "random"},
        pruner={"type": "none"},
    )
    assert study_file.n_trials is None
    started = datetime.now()
    with _ctrl_c_after(timeout + 10):
        run = run_study(study_file, results_dir=tmp_path)
    deadline = started + timedelta(seconds=timeout)
    assert not run.interrupted, "the timeout never stopped the study"
    assert run.counts.finished == len(run.trials) >= 1 and run.counts.running == 0
    # Claiming a trial after the deadline check takes a moment; a second is plenty.
    late = [t.number for t in run.trials if t.datetime_start > deadline + timedelta(seconds=1)]
    assert late == []
    # And trials keep starting until the deadline: the last one ends after it.
    assert run.trials[-1].datetime_complete >= deadline


def test_cli_n_trials_option_sets_the_budget(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"low": 3e-3, "high": 3e-2, "log": True}},
        n_trials=5,
        sampler={"type": "random"},
        pruner={"type": "none"},
    )
    command = ["run", str(path), "--results", str(tmp_path)]
    for bad in ("0", "-1", "two"):
        result = runner.invoke(app, [*command, "--n-trials", bad])
        assert result.exit_code == 2 and "--n-trials" in result.output, (bad, result.output)
    assert not (tmp_path / "tiny").exists()

    # The option replaces study.n_trials (5), and like it counts trials across runs.
    for n_trials in (2, 3):
        result = runner.invoke(app, [*command, "--n-trials", str(n_trials)])
        assert result.exit_code == 0, result.output
        assert f"study tiny: {n_trials} trials," in result.output
        storage = open_storage(None, study_dir=tmp_path / "tiny")
        trials = optuna.load_study(study_name="tiny", storage=storage).trials
        assert [t.number for t in trials] == list(range(n_trials))
        assert all(t.state == TrialState.COMPLETE for t in trials)


def test_cli_workers_option_runs_worker_processes(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [3e-2, 2e-2, 1e-2, 5e-3]}},
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )
    command = ["run", str(path), "--results", str(tmp_path)]
    for bad in ("0", "-2", "two"):
        result = runner.invoke(app, [*command, "--workers", bad])
        assert result.exit_code == 2 and "--workers" in result.output, (bad, result.output)
    assert not (tmp_path / "tiny").exists()

    result = runner.invoke(app, [*command, "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "2 workers" in result.output
    storage = open_storage(None, study_dir=tmp_path / "tiny")
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert sorted(t.params["optim.lr"] for t in trials) == [5e-3, 1e-2, 2e-2, 3e-2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # Both workers are processes of their own, not this one.
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_combination_that_only_fails_together_fails_its_trial_with_the_reason(
    tmp_path: Path,
) -> None:
    # Each value is valid with the base spec (4 epochs, no warm-up), which is all the study file
    # can check; only 3 warm-up epochs in a 2-epoch run breaks optim's cross-field rule.
    study_file = make_study(
        tmp_path,
        {"optim.epochs": {"choices": [2, 4]}, "optim.warmup_epochs": {"choices": [0, 3]}},
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )
    run = run_study(study_file, results_dir=tmp_path)
    assert not run.errors and run.fatal is None and not run.interrupted
    assert run.counts.finished == 4 == len(run.trials)
    failed = [t for t in run.trials if t.state == TrialState.FAIL]
    assert [t.params for t in failed] == [{"optim.epochs": 2, "optim.warmup_epochs": 3}]
    reason = failed[0].user_attrs["reason"]
    assert reason.startswith("invalid run spec: optim.warmup_epochs: cannot exceed optim.epochs=2")
    assert not (tmp_path / "tiny" / "trials" / str(failed[0].number) / "history.csv").exists()
    complete = sorted(
        (t.params["optim.epochs"], t.params["optim.warmup_epochs"], t.user_attrs["epochs"])
        for t in run.trials
        if t.state == TrialState.COMPLETE
    )
    assert complete == [(2, 0, [2]), (4, 0, [4]), (4, 3, [4])]


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
