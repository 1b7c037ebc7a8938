"""Real processes, files and signals: the claim lock, Ctrl-C and SIGTERM, and dead workers.

Every command runs as ``python -m mixer_sweeps`` in its own session, so a "Ctrl-C" is a SIGINT to
its whole process group, as a terminal sends it, and nothing outlives a test.
"""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState
from test_study import make_study, write_study

from conftest import (
    TINY_RUN,
    logged,
    on_another_host,
    storage_url,
    study_trials,
    sweeps,
    sweeps_cmd,
    wait_until,
)
from mixer_sweeps.spec import load_study_file
from mixer_sweeps.study import run_study
from mixer_sweeps.study._storage import HEARTBEAT_GRACE_ENV, HEARTBEAT_INTERVAL_ENV
from mixer_sweeps.study._worker import ABANDON_DELAY_ENV, CLAIM_DELAY_ENV
from mixer_sweeps.training import CHECKPOINT_FILE, load_checkpoint

OTHER_HOST = "other-host"


def _ctrl_c(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``signum``."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) >> (signum - 1) & 1)


def _training(study_dir: Path, n: int) -> Callable[[], bool]:
    """Whether ``n`` trials are running and each has trained an epoch."""

    def check() -> bool:
        running = [t for t in study_trials(study_dir) if t.state == TrialState.RUNNING]
        return len(running) == n and all(t.intermediate_values for t in running)

    return check


def _checkpointed(study_dir: Path, number: int) -> Callable[[], bool]:
    return (study_dir / "trials" / str(number) / CHECKPOINT_FILE).exists


def _lr_study(tmp_path: Path, lrs: list[float], epochs: int) -> Path:
    return write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": lrs}},
        fixed={"optim.epochs": epochs},
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )


# ------------------------------------------------------------------------------ the claim lock


def test_claim_lock_keeps_n_trials_exact_under_a_widened_race(tmp_path: Path, monkeypatch) -> None:
    # Each worker waits a second between counting the trials and claiming one; without the lock
    # both would count two trials and both claim a third.
    monkeypatch.setenv(CLAIM_DELAY_ENV, "1")
    study_file = make_study(
        tmp_path,
        {"optim.lr": {"choices": [3e-3, 1e-2, 3e-2]}},
        fixed={"optim.epochs": 1},
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )
    run = run_study(study_file, workers=2, results_dir=tmp_path)
    assert not run.errors and run.fatal is None
    assert [t.number for t in run.trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in run.trials)
    assert sorted(t.params["optim.lr"] for t in run.trials) == [3e-3, 1e-2, 3e-2]
    assert len({t.user_attrs["worker"]["pid"] for t in run.trials}) == 2


# -------------------------------------------------------------------------- sweeps train signals


def _train_spec(tmp_path: Path, epochs: int) -> Path:
    path = tmp_path / "spec.yaml"
    data = {**TINY_RUN, "optim": {**TINY_RUN["optim"], "epochs": epochs, "warmup_epochs": 0}}
    path.write_text(yaml.safe_dump(data))
    return path


def test_sigterm_stops_train_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    spec, out, log = _train_spec(tmp_path, epochs=15), tmp_path / "run", tmp_path / "log"
    with logged(sweeps_cmd("train", spec, "--out", out), log) as process:
        wait_until((out / CHECKPOINT_FILE).exists, "checkpoint", process=process, log=log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 130, log.read_text()
    output = log.read_text()
    epoch = load_checkpoint(out / CHECKPOINT_FILE)["epoch"]
    assert 1 <= epoch < 15
    assert "interrupted after epoch" in output and "the checkpoint is kept." in output
    assert f"Continue with: sweeps train {spec} --resume --out {out}" in output
    assert "Traceback" not in output

    done = sweeps("train", spec, "--out", out, "--resume")
    assert done.returncode == 0, done.stderr
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 15
    assert (out / "metrics.json").is_file() and not (out / CHECKPOINT_FILE).exists()


def _fill(pipe: int) -> None:
    """Fill ``pipe`` to the brim, through a non-blocking file description of our own."""
    filler = os.open(f"/proc/self/fd/{pipe}", os.O_WRONLY | os.O_NONBLOCK)
    try:
        for size in (4096, 256, 16, 1):
            with contextlib.suppress(BlockingIOError):
                while True:
                    os.write(filler, b"\n" * size)
    finally:
        os.close(filler)


def test_a_second_ctrl_c_ends_train_at_once_while_it_cleans_up(tmp_path: Path) -> None:
    # Clean-up that hangs, honestly: the progress bar's last line goes to a terminal that nobody
    # reads any more, and it is written while the interrupt is being handled.
    spec, out, log = _train_spec(tmp_path, epochs=200), tmp_path / "run", tmp_path / "log"
    read_end, write_end = pty.openpty()  # a terminal, so that `sweeps train` draws its bar
    try:
        with logged(sweeps_cmd("train", spec, "--out", out), log, stdout=write_end) as process:
            wait_until((out / CHECKPOINT_FILE).exists, "checkpoint", process=process, log=log)
            _fill(write_end)
            _ctrl_c(process)
            wait_until(
                lambda: not _catches(process.pid, signal.SIGINT),
                "clean-up",
                process=process,
                log=log,
            )
            assert process.poll() is None, "the stalled clean-up did not hold the process"
            _ctrl_c(process)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail("a second Ctrl-C did not end `sweeps train` stuck in clean-up")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert process.returncode == -signal.SIGINT
    assert "Traceback" not in log.read_text()
    assert load_checkpoint(out / CHECKPOINT_FILE)["epoch"] >= 1


# ---------------------------------------------------------------------------- sweeps run signals


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_a_study_like_ctrl_c(tmp_path: Path, workers: int) -> None:
    path, log = _lr_study(tmp_path, [1e-2, 3e-2][:workers], epochs=500), tmp_path / "log"
    study_dir = tmp_path / "tiny"
    command = sweeps_cmd("run", path, "--workers", workers, "--results", tmp_path)
    with logged(command, log) as process:
        wait_until(
            _training(study_dir, workers), f"{workers} trials training", process=process, log=log
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 130, log.read_text()
    output = log.read_text()
    assert "run the same command again" in output and "Traceback" not in output
    trials = study_trials(study_dir)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert len(failed) == len(queued) == workers == len(trials) // 2
    assert all(t.user_attrs["reason"].startswith("interrupted") for t in failed)
    assert sorted(t.params["optim.lr"] for t in queued) == [1e-2, 3e-2][:workers]


def test_a_second_ctrl_c_kills_the_workers_and_the_next_run_recovers_them(tmp_path: Path) -> None:
    path, log = _lr_study(tmp_path, [1e-2, 3e-2], epochs=40), tmp_path / "log"
    study_dir = tmp_path / "tiny"
    # Workers linger a minute over the trials they abandon, so the second Ctrl-C surely finds
    # them cleaning up.
    env = {**os.environ, ABANDON_DELAY_ENV: "60"}
    command = sweeps_cmd("run", path, "--workers", 2, "--results", tmp_path)
    with logged(command, log, env=env) as process:
        wait_until(_training(study_dir, 2), "both trials training", process=process, log=log)
        _ctrl_c(process)

        def cleaning_up() -> bool:
            trials = study_trials(study_dir)
            reasons = [t.user_attrs.get("reason", "") for t in trials]
            return len(trials) == 2 and all(r.startswith("interrupted") for r in reasons)

        wait_until(cleaning_up, "workers abandoning their trials", process=process, log=log)
        _ctrl_c(process)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("a second Ctrl-C did not end `sweeps run` while its workers cleaned up")
    output = log.read_text()
    assert process.returncode == 130, output
    assert "Traceback" not in output
    assert [t.state for t in study_trials(study_dir)] == [TrialState.RUNNING] * 2

    run = run_study(load_study_file(path), results_dir=tmp_path)
    counts = run.counts
    assert (counts.finished, counts.complete, counts.retried, counts.running) == (2, 2, 2, 0)
    for killed in run.trials[:2]:
        assert killed.state == TrialState.FAIL
        assert killed.user_attrs["reason"].startswith("abandoned: worker")
        retry = next(t for t in run.trials if t.user_attrs.get("retry_of") == killed.number)
        assert retry.state == TrialState.COMPLETE and retry.params == killed.params
        assert retry.user_attrs["resumed"]["trial"] == killed.number
        assert sorted(retry.intermediate_values) == list(range(1, 41))


def test_two_quick_ctrl_cs_kill_the_workers_too(tmp_path: Path) -> None:
    # Both presses land between two of the runner's polls, which count them and act later.
    path, log = _lr_study(tmp_path, [1e-2, 3e-2], epochs=500), tmp_path / "log"
    env = {**os.environ, ABANDON_DELAY_ENV: "60"}
    command = sweeps_cmd("run", path, "--workers", 2, "--results", tmp_path)
    with logged(command, log, env=env) as process:
        wait_until(
            _training(tmp_path / "tiny", 2), "both trials training", process=process, log=log
        )
        _ctrl_c(process)
        time.sleep(0.1)
        _ctrl_c(process)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("two quick Ctrl-Cs did not end `sweeps run`")
    output = log.read_text()
    assert process.returncode == 130, output
    assert "Traceback" not in output


# ------------------------------------------------------------------------- dead workers' trials


def _check_recovered(run, killed_pid: int, host: str, *, reason: str | None) -> None:
    killed = run.trials[0]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["worker"]["pid"] == killed_pid
    assert killed.user_attrs["worker"]["host"] == host
    if reason is not None:
        assert killed.user_attrs["reason"].startswith(reason)
    retries = [t for t in run.trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retries) == 1, "the killed trial's configuration was not queued again"
    retry = retries[0]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    resumed = retry.user_attrs["resumed"]
    assert resumed["trial"] == 0 and resumed["epoch"] >= 1
    assert sorted(retry.intermediate_values) == list(range(1, 21))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_killed_worker_s_trial_is_recovered_through_its_identity(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest, monkeypatch
) -> None:
    # The heartbeat keeps its defaults (stale after 120 s): only the worker's identity (this
    # host, no process with its pid and start time) can tell.
    monkeypatch.delenv(HEARTBEAT_INTERVAL_ENV, raising=False)
    monkeypatch.delenv(HEARTBEAT_GRACE_ENV, raising=False)
    url = storage_url(kind, tmp_path, request)
    path, log = _lr_study(tmp_path, [1e-2, 3e-2], epochs=20), tmp_path / "log"
    study_dir = tmp_path / "tiny"
    command = sweeps_cmd("run", path, "--results", tmp_path, "--storage", url)
    with logged(command, log) as process:
        wait_until(_checkpointed(study_dir, 0), "a checkpoint of trial 0", process=process, log=log)
        process.kill()
        process.wait()
    assert [t.state for t in study_trials(study_dir, url)] == [TrialState.RUNNING]

    run = run_study(load_study_file(path), results_dir=tmp_path, storage=url)
    _check_recovered(run, process.pid, socket.gethostname(), reason="abandoned: worker")
    counts = run.counts
    assert (counts.finished, counts.complete, counts.retried) == (2, 2, 1)
    assert sorted(t.params["optim.lr"] for t in run.trials[1:]) == [1e-2, 3e-2]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_killed_worker_on_another_host_is_recovered_by_the_heartbeat(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest, monkeypatch
) -> None:
    monkeypatch.setenv(HEARTBEAT_INTERVAL_ENV, "1")
    monkeypatch.setenv(HEARTBEAT_GRACE_ENV, "3")
    url = storage_url(kind, tmp_path, request)
    # One trial: its dead attempt, counted as running, would leave nothing to run.
    path, log = _lr_study(tmp_path, [1e-2], epochs=20), tmp_path / "log"
    study_dir = tmp_path / "tiny"
    # Its own UTS namespace: the lock-file recovery sees a worker of another machine.
    command = on_another_host(
        sweeps_cmd("run", path, "--results", tmp_path, "--storage", url), OTHER_HOST
    )
    with logged(command, log) as process:
        wait_until(_checkpointed(study_dir, 0), "a checkpoint of trial 0", process=process, log=log)
        process.kill()
        process.wait()
    (orphan,) = study_trials(study_dir, url)
    assert orphan.state == TrialState.RUNNING
    assert orphan.user_attrs["worker"]["host"] == OTHER_HOST
    time.sleep(3 + 2)  # the grace period, and SQLite's clock has whole seconds

    run = run_study(load_study_file(path), results_dir=tmp_path, storage=url)
    _check_recovered(run, process.pid, OTHER_HOST, reason=None)
    counts = run.counts
    assert (counts.finished, counts.complete, counts.retried) == (1, 1, 1)
