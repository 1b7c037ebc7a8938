"""Faults of liveness and identity of workers, with real processes on real storages (classes
1-4 of issue 11).

Workers in different folders on one storage judge each other by what the storage says (identity
and heartbeat), never by files of their own folder; workers started together draw configurations
of their own; Ctrl-C never counts against the crash-retry limit; a worker whose trial was taken
from it finishes cleanly.

Every command runs as ``python -m mixer_sweeps`` in a folder of its own, in its own session, so
nothing outlives a test. Each test stands alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_study import write_study

from conftest import (
    logged,
    on_another_host,
    plain_env,
    race_for_the_last_trial,
    storage_url,
    study_trials,
    sweeps,
    sweeps_cmd,
    wait_until,
)
from mixer_sweeps.results import count_trials
from mixer_sweeps.spec import load_study_file
from mixer_sweeps.study import open_storage, requeue_trial, run_study
from mixer_sweeps.study._recovery import fail_trial
from mixer_sweeps.study._storage import HEARTBEAT_GRACE_ENV, HEARTBEAT_INTERVAL_ENV
from mixer_sweeps.study._worker import CLAIM_DELAY_ENV
from mixer_sweeps.training import CHECKPOINT_FILE, load_checkpoint

# Wide enough that two random draws of it never meet: lr alone is continuous.
WIDE_SPACE = {
    "optim.lr": {"low": 3e-3, "high": 3e-2, "log": True},
    "model.token_mlp_dim": {"choices": [4, 8, 16]},
}


def _checkpoint_epoch(trial_dir: Path) -> int:
    try:
        return load_checkpoint(trial_dir / CHECKPOINT_FILE)["epoch"]
    except Exception:  # not there yet, or moved away by the attempt that resumes it
        return 0


# ------------------------------------------------------------- workers in different folders


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_runs_in_different_folders_on_one_storage_never_fail_each_other_s_trials(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    # Each run keeps its files (and once its lock files) under its own folder; neither can see
    # the other's, only the storage they share.
    url = storage_url(kind, tmp_path, request)
    path = write_study(
        tmp_path / "study.yaml",
        WIDE_SPACE,
        fixed={"optim.epochs": 6},
        n_trials=4,
        sampler={"type": "random"},
        pruner={"type": "none"},
    )
    env = {**os.environ, HEARTBEAT_INTERVAL_ENV: "1", HEARTBEAT_GRACE_ENV: "60"}
    folders = [tmp_path / "a", tmp_path / "b"]
    with contextlib.ExitStack() as stack:
        processes = []
        for folder in folders:
            folder.mkdir()
            command = sweeps_cmd("run", path, "--results", "results", "--storage", url)
            log = folder / "log"
            processes.append((stack.enter_context(logged(command, log, cwd=folder, env=env)), log))
        for process, log in processes:
            assert process.wait(timeout=120) == 0, log.read_text()
    for _, log in processes:
        output = log.read_text()
        assert "Traceback" not in output and "Cannot tell" not in output, output
        assert "warning: trial" not in output, output

    trials = study_trials(tmp_path, url)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4, [
        (t.number, t.state, t.user_attrs.get("reason")) for t in trials
    ]
    folder_of = {
        process.pid: folder for (process, _), folder in zip(processes, folders, strict=True)
    }
    assert {t.user_attrs["worker"]["pid"] for t in trials} == set(folder_of), "one run did all"
    for trial in trials:
        assert trial.system_attrs["heartbeat"] > trial.datetime_start.timestamp()
        # The trial's files are in the folder of the run that trained it.
        study_dir = folder_of[trial.user_attrs["worker"]["pid"]] / "results" / "tiny"
        assert (study_dir / "trials" / str(trial.number) / "metrics.json").is_file()


def test_runs_in_different_folders_claiming_the_last_trial_at_once_train_it_once(
    tmp_path: Path,
) -> None:
    # The claim lock is per results folder. Two runs in different folders count the same empty
    # study (the test-only delay holds both between counting and claiming) and both claim a trial
    # of a budget of one: the later-numbered claim gives way, and the study has one trial.
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    path = write_study(
        tmp_path / "study.yaml",
        WIDE_SPACE,
        fixed={"optim.epochs": 1},
        n_trials=1,
        sampler={"type": "random"},
        pruner={"type": "none"},
    )
    for log in race_for_the_last_trial(path, url, tmp_path):
        assert "Traceback" not in log.read_text(), log.read_text()

    stored = optuna.load_study(study_name="tiny", storage=url).get_trials()
    assert len(stored) == 2, "both runs claimed a trial: the race did not happen"
    counted = count_trials(stored)
    assert (counted.complete, counted.failed, counted.running) == (1, 0, 0)
    assert [t.state for t in stored] == [TrialState.COMPLETE, TrialState.FAIL]
    assert stored[1].system_attrs.get("surplus") is True


# --------------------------------------------------------------- workers started together


def test_workers_started_together_draw_configurations_of_their_own(tmp_path: Path) -> None:
    # Three `sweeps run` of one study file on one empty study, as `docker compose up --scale
    # worker=3` starts them. Each waits a second at its claim, so all three have opened the study
    # before the first trial exists.
    path = write_study(
        tmp_path / "study.yaml",
        WIDE_SPACE,
        fixed={"optim.epochs": 2},
        n_trials=3,
        sampler={"type": "random", "seed": 0},
        pruner={"type": "none"},
    )
    env = {**os.environ, CLAIM_DELAY_ENV: "1"}
    command = sweeps_cmd("run", path, "--results", tmp_path)
    with contextlib.ExitStack() as stack:
        processes = [
            (stack.enter_context(logged(command, tmp_path / f"log{i}", env=env)), i)
            for i in range(3)
        ]
        for process, i in processes:
            output = (tmp_path / f"log{i}").read_text
            assert process.wait(timeout=120) == 0, output()
            assert "Traceback" not in output()
    trials = study_trials(tmp_path / "tiny")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == 3, f"workers drew the same configurations: {params}"
    # The worker that ran trial 0 drew what a lone worker of a fresh study draws: the seed's.
    replay = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    assert trials[0].params == load_study_file(path).space.suggest(replay.ask())


def test_a_configuration_that_another_worker_trains_is_waited_for_not_trained_twice(
    tmp_path: Path,
) -> None:
    # One configuration in the space: the second worker's trial draws what the first one is
    # training, waits for it and takes its outcome.
    path = write_study(
        tmp_path / "study.yaml",
        {"model.depth": {"choices": [1]}},
        fixed={"optim.epochs": 8},
        n_trials=2,
        sampler={"type": "random"},
        pruner={"type": "none"},
    )
    run = run_study(load_study_file(path), workers=2, results_dir=tmp_path)
    assert not run.errors and run.fatal is None
    first, second = run.trials
    assert [first.state, second.state] == [TrialState.COMPLETE] * 2
    assert first.user_attrs["worker"]["pid"] != second.user_attrs["worker"]["pid"]
    assert second.user_attrs["duplicate_of"] == 0 and second.value == first.value
    assert second.datetime_start < first.datetime_complete, "the trials did not overlap"
    assert sorted(p.name for p in (tmp_path / "tiny" / "trials").iterdir()) == ["0"]


# ------------------------------------------------------------------------------ retry limit


def _ctrl_c_when(condition: Callable[[], bool]) -> threading.Thread:
    """A thread that sends this process a Ctrl-C once ``condition`` holds (within 60 s)."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_never_counts_against_the_retry_limit_of_a_crash(tmp_path: Path) -> None:
    # One configuration is stopped by Ctrl-C three times (real SIGINTs to the study's process),
    # then its worker is killed (kill -9). It is one crash, well within MAX_RETRIES: the next run
    # goes on from the checkpoint the killed attempt left.
    epochs = 30
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-2]}},
        fixed={"optim.epochs": epochs},
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )
    study_file, study_dir = load_study_file(path), tmp_path / "tiny"
    reached = 0
    # A stray Ctrl-C (after a run ended) must not end the test session.
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        for attempt in range(3):
            trial_dir = study_dir / "trials" / str(attempt)
            start = reached

            def further(trial_dir: Path = trial_dir, start: int = start) -> bool:
                return _checkpoint_epoch(trial_dir) > start

            watcher = _ctrl_c_when(further)
            run = run_study(study_file, results_dir=tmp_path)
            watcher.join()
            assert run.interrupted
            reached = _checkpoint_epoch(study_dir / "trials" / str(attempt))
            assert start < reached < epochs
    finally:
        signal.signal(signal.SIGINT, previous)
    trials = study_trials(study_dir)
    assert [t.state for t in trials] == [TrialState.FAIL] * 3 + [TrialState.WAITING]
    assert all(t.user_attrs["reason"].startswith("interrupted") for t in trials[:3])

    log = tmp_path / "log"
    with logged(sweeps_cmd("run", path, "--results", tmp_path), log) as process:
        wait_until(
            lambda: _checkpoint_epoch(study_dir / "trials" / "3") > reached,
            "a new checkpoint of trial 3",
            process=process,
            log=log,
        )
        process.kill()
        process.wait()
    reached = _checkpoint_epoch(study_dir / "trials" / "3")
    assert [t.state for t in study_trials(study_dir)][3] == TrialState.RUNNING

    run = run_study(study_file, results_dir=tmp_path)
    killed, retry = run.trials[3], run.trials[-1]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["reason"].startswith("abandoned: worker")
    assert retry.state == TrialState.COMPLETE, retry.user_attrs.get("reason")
    assert retry.user_attrs["resumed"] == {"trial": 3, "epoch": reached}
    assert retry.system_attrs["retry_history"] == [0, 1, 2, 3]
    assert retry.system_attrs["crash_history"] == [3]
    assert retry.system_attrs["failed_trial"] == 0
    assert sorted(retry.intermediate_values) == list(range(1, epochs + 1))
    counts = run.counts
    assert (counts.finished, counts.complete, counts.failed, counts.retried) == (1, 1, 0, 4)


# ---------------------------------------------------------------- a trial taken from its worker


def test_a_worker_whose_trial_was_taken_finishes_cleanly(tmp_path: Path) -> None:
    # Another worker took this one for dead: it failed the RUNNING trial and queued it again,
    # through the storage (the journal file), while this one trains it.
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-2]}},
        fixed={"optim.epochs": 20},
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )
    study_dir, log = tmp_path / "tiny", tmp_path / "log"
    with logged(sweeps_cmd("run", path, "--results", tmp_path), log) as process:

        def training() -> bool:
            return any(
                t.state == TrialState.RUNNING and t.intermediate_values
                for t in study_trials(study_dir)
            )

        wait_until(training, "a trial training", process=process, log=log)
        storage = open_storage(None, study_dir=study_dir)
        study = optuna.load_study(study_name="tiny", storage=storage)
        (taken,) = study.get_trials(states=(TrialState.RUNNING,))
        assert fail_trial(storage, "tiny", taken.number, "abandoned: taken by the test")
        requeue_trial(study, taken)
        assert process.wait(timeout=60) == 0, log.read_text()
    output = log.read_text()
    assert "Traceback" not in output, output
    warnings = [line for line in output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: trial {taken.number} was ended by another worker, which took this one for"
        " dead (abandoned: taken by the test); going on with the next trial"
    ], output
    trials = study_trials(study_dir)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].user_attrs["reason"] == "abandoned: taken by the test"
    # The next trial was the taken one's configuration, queued again by the other worker.
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].params == trials[0].params
    # The taken trial's folder holds no error of its own: nothing went wrong in it.
    assert not (study_dir / "trials" / str(taken.number) / "error.txt").exists()


# ------------------------------------------------------------------- the journal's heartbeat


def test_a_killed_worker_on_another_host_is_recovered_by_the_journal_s_heartbeat(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(HEARTBEAT_INTERVAL_ENV, "1")
    monkeypatch.setenv(HEARTBEAT_GRACE_ENV, "3")
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-2]}},
        fixed={"optim.epochs": 20},
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )
    study_dir, log = tmp_path / "tiny", tmp_path / "log"
    # Its own UTS namespace: this host cannot look its process up, only the heartbeat tells.
    command = on_another_host(sweeps_cmd("run", path, "--results", tmp_path))
    with logged(command, log) as process:
        wait_until(
            lambda: _checkpoint_epoch(study_dir / "trials" / "0") >= 1,
            "a checkpoint of trial 0",
            process=process,
            log=log,
        )
        process.kill()
        process.wait()
    (orphan,) = study_trials(study_dir)
    assert orphan.state == TrialState.RUNNING
    assert orphan.user_attrs["worker"]["host"] == "other-host"
    assert "heartbeat" in orphan.system_attrs
    time.sleep(3 + 1)

    run = run_study(load_study_file(path), results_dir=tmp_path)
    killed, retry = run.trials
    assert killed.state == TrialState.FAIL
    assert "worker other-host:" in killed.user_attrs["reason"]
    assert "sent no heartbeat" in killed.user_attrs["reason"]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert retry.user_attrs["resumed"]["trial"] == 0
    assert sorted(retry.intermediate_values) == list(range(1, 21))


# ---------------------------------------------------------------------- a front study killed


def test_a_front_study_killed_mid_trial_loses_nothing(tmp_path: Path) -> None:
    # kill -9 of `sweeps run --workers 2` (its whole group) while trials train, after a trial's
    # costs are stored and before its values are: the re-run queues the killed configurations
    # again, and every trial counted has its costs and both objectives.
    epochs = 20
    n_trials = 4
    path = write_study(
        tmp_path / "study.yaml",
        {"model.embed_dim": {"choices": [4, 8]}, "optim.lr": {"choices": [1e-2, 3e-3]}},
        fixed={"optim.epochs": epochs},
        n_trials=n_trials,
        objectives=[{"metric": "val_acc"}, {"metric": "params"}],
        sampler={"type": "grid"},
        pruner={"type": "front", "min_epochs": 2, "startup_trials": 1},
    )
    study_dir = tmp_path / "tiny"
    log = tmp_path / "log"
    with logged(sweeps_cmd("run", path, "--results", tmp_path, "--workers", 2), log) as process:
        wait_until(
            lambda: sum(_checkpoint_epoch(d) >= 2 for d in study_dir.glob("trials/*")) >= 2,
            "two trials at epoch 2",
            process=process,
            log=log,
        )
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed = [t for t in study_trials(study_dir) if t.state == TrialState.RUNNING]
    assert killed and all("costs" in t.user_attrs for t in killed)
    reached = {t.number: _checkpoint_epoch(study_dir / "trials" / str(t.number)) for t in killed}

    again = sweeps("run", path, "--results", tmp_path, env=plain_env(WANDB_MODE="disabled"))
    assert again.returncode == 0, again.stderr
    trials = study_trials(study_dir)
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == n_trials
    assert sorted(map(str, (t.params for t in counted))) == sorted(
        map(str, ({"model.embed_dim": e, "optim.lr": lr} for e in (4, 8) for lr in (1e-2, 3e-3)))
    )
    for trial in counted:
        assert set(trial.user_attrs["costs"]) == {"params", "flops"}
        if trial.state == TrialState.COMPLETE:
            assert len(trial.values) == 2 and trial.values[1] == trial.user_attrs["costs"]["params"]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert {t.number for t in failed} == {t.number for t in killed}
    assert all(t.user_attrs["reason"].startswith("abandoned: worker") for t in failed)
    for number, epoch in reached.items():  # queued again, each goes on from its checkpoint
        retry = next(t for t in counted if t.system_attrs.get("failed_trial") == number)
        assert retry.user_attrs.get("resumed") == (
            {"trial": number, "epoch": epoch} if epoch else None
        )
