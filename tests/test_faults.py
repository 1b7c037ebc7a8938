"""Faults, with real processes, real files and real storages: one section per class of fault
(the numbers are those of the classes in issue 11).

- **Liveness and identity of workers.** Workers in different folders on one storage judge each
  other by what the storage says (identity and heartbeat), never by files of their own folder;
  workers started together draw configurations of their own; Ctrl-C never counts against the
  crash-retry limit; a worker whose trial was taken from it finishes cleanly.
- **Storage integrity and faults of the machine.** A journal lock left by a ``kill -9``, a
  journal record cut short by a full disk, a damaged journal line, a journal path that names a
  folder, a disk that fills up during a trial, a study in which every trial fails, workers that
  create one new storage at the same instant, and the PostgreSQL URL exactly as the README
  writes it.
- **Input.** Bad input through the real command line: exit code 2, the key (or file) named,
  quickly, nothing written, never a traceback; an unexpected error or a Ctrl-C as one line.

Every command runs as ``python -m mixer_sweeps`` in a folder of its own, in its own session, so
nothing outlives a test. Each test stands alone.
"""

from __future__ import annotations

import contextlib
import copy
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import FrozenTrial, TrialState
from test_study import write_study

from conftest import REPO, TINY_RUN
from mixer_sweeps.results import count_trials
from mixer_sweeps.spec import load_study_file
from mixer_sweeps.study import open_storage, requeue_trial, run_study
from mixer_sweeps.study._journal import LOCK_GRACE_ENV
from mixer_sweeps.study._recovery import fail_trial
from mixer_sweeps.study._storage import HEARTBEAT_GRACE_ENV, HEARTBEAT_INTERVAL_ENV
from mixer_sweeps.study._worker import CLAIM_DELAY_ENV
from mixer_sweeps.training import CHECKPOINT_FILE, load_checkpoint

# ================================================= Liveness and identity of workers (issue 11, 1-4)


# Wide enough that two random draws of it never meet: lr alone is continuous.
WIDE_SPACE = {
    "optim.lr": {"low": 3e-3, "high": 3e-2, "log": True},
    "model.token_mlp_dim": {"choices": [4, 8, 16]},
}


@contextlib.contextmanager
def _logged(command: list[str], log: Path, **kwargs) -> Iterator[subprocess.Popen]:
    """``command`` in its own session, its output in ``log``; killed at the end if still alive."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_until(condition: Callable[[], bool], what: str, *, process=None, log=None) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if process is not None:
            assert process.poll() is None, f"ended before {what}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {what} after 60 s"
        time.sleep(0.1)


def _trials(study_dir: Path, storage: str | None = None) -> list[FrozenTrial]:
    if storage is None and not (study_dir / "study.journal").exists():
        return []
    try:
        study = optuna.load_study(
            study_name="tiny", storage=open_storage(storage, study_dir=study_dir)
        )
    except KeyError:
        return []
    return study.get_trials()


def _checkpoint_epoch(trial_dir: Path) -> int:
    try:
        return load_checkpoint(trial_dir / CHECKPOINT_FILE)["epoch"]
    except Exception:  # not there yet, or moved away by the attempt that resumes it
        return 0


def _storage_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


# ------------------------------------------------------------- workers in different folders


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_runs_in_different_folders_on_one_storage_never_fail_each_other_s_trials(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    # Each run keeps its files (and once its lock files) under its own folder; neither can see
    # the other's, only the storage they share.
    url = _storage_url(kind, tmp_path, request)
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
            command = _sweeps_cmd("run", path, "--results", "results", "--storage", url)
            log = folder / "log"
            processes.append((stack.enter_context(_logged(command, log, cwd=folder, env=env)), log))
        for process, log in processes:
            assert process.wait(timeout=120) == 0, log.read_text()
    for _, log in processes:
        output = log.read_text()
        assert "Traceback" not in output and "Cannot tell" not in output, output
        assert "warning: trial" not in output, output

    trials = _trials(tmp_path, url)
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
    env = {**os.environ, CLAIM_DELAY_ENV: "4"}
    with contextlib.ExitStack() as stack:
        processes = []
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            command = _sweeps_cmd("run", path, "--results", "results", "--storage", url)
            log = folder / "log"
            processes.append((stack.enter_context(_logged(command, log, cwd=folder, env=env)), log))
        for process, log in processes:
            assert process.wait(timeout=120) == 0, log.read_text()
    for _, log in processes:
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
    command = _sweeps_cmd("run", path, "--results", tmp_path)
    with contextlib.ExitStack() as stack:
        processes = [
            (stack.enter_context(_logged(command, tmp_path / f"log{i}", env=env)), i)
            for i in range(3)
        ]
        for process, i in processes:
            output = (tmp_path / f"log{i}").read_text
            assert process.wait(timeout=120) == 0, output()
            assert "Traceback" not in output()
    trials = _trials(tmp_path / "tiny")
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
    trials = _trials(study_dir)
    assert [t.state for t in trials] == [TrialState.FAIL] * 3 + [TrialState.WAITING]
    assert all(t.user_attrs["reason"].startswith("interrupted") for t in trials[:3])

    log = tmp_path / "log"
    with _logged(_sweeps_cmd("run", path, "--results", tmp_path), log) as process:
        _wait_until(
            lambda: _checkpoint_epoch(study_dir / "trials" / "3") > reached,
            "a new checkpoint of trial 3",
            process=process,
            log=log,
        )
        process.kill()
        process.wait()
    reached = _checkpoint_epoch(study_dir / "trials" / "3")
    assert [t.state for t in _trials(study_dir)][3] == TrialState.RUNNING

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
    with _logged(_sweeps_cmd("run", path, "--results", tmp_path), log) as process:

        def training() -> bool:
            return any(
                t.state == TrialState.RUNNING and t.intermediate_values for t in _trials(study_dir)
            )

        _wait_until(training, "a trial training", process=process, log=log)
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
    trials = _trials(study_dir)
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
    probe = subprocess.run(["unshare", "--uts", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot give a worker another host name (unshare --uts): {probe.stderr!r}")
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
    command = [
        "unshare",
        "--uts",
        "sh",
        "-c",
        'hostname other-host && exec "$@"',
        "sh",
        *_sweeps_cmd("run", path, "--results", tmp_path),
    ]
    with _logged(command, log) as process:
        _wait_until(
            lambda: _checkpoint_epoch(study_dir / "trials" / "0") >= 1,
            "a checkpoint of trial 0",
            process=process,
            log=log,
        )
        process.kill()
        process.wait()
    (orphan,) = _trials(study_dir)
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


# ================================================ Storage integrity and faults of the machine (5-8)


BAD_INPUT_S = 5.0
"""Seconds of CPU in which bad input is refused (reading a storage imports Optuna: about 1 s)."""
HANG_S = 60
"""A command that takes this long hangs (each one here takes a few seconds)."""


def _sweeps_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "mixer_sweeps", *map(str, args)]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "SWEEPS_STORAGE": "", **extra}


def _sweeps(*args: object, cwd: Path | None = None, timeout: float = HANG_S, **env: str):
    """Run ``sweeps ARGS`` to its end; returns (exit code, stdout + stderr, stderr, CPU seconds).

    CPU rather than wall time: other jobs on a shared machine stretch wall time several-fold.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        _sweeps_cmd(*args),
        cwd=cwd,
        env=_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"sweeps {args} still running after {timeout} s:\n{out}\n{err}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    return process.returncode, out + err, err, cpu


def _assert_refused(code: int, output: str, seconds: float, *needles: str) -> None:
    """Bad input: exit 2 at once, with one message and no traceback."""
    assert code == 2, output
    assert "Traceback" not in output, output
    assert output.count("error:") == 1, output
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"
    assert seconds < BAD_INPUT_S, f"refused after {seconds:.1f} s of CPU"


def _files(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its content (None for folders and links): what was written."""
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        found[name] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return found


def _lr_study(path: Path, n_trials: int = 2, epochs: int = 1, **study: Any) -> Path:
    return write_study(
        path,
        {"optim.lr": {"choices": [3e-3, 1e-2, 3e-2][:n_trials]}},
        fixed={"optim.epochs": epochs, "optim.warmup_epochs": 0},
        sampler={"type": "grid"},
        pruner={"type": "none"},
        n_trials=n_trials,
        **study,
    )


def _finished_study(tmp_path: Path, n_trials: int = 2) -> tuple[Path, Path]:
    """A finished study, run in this process (fast): (study file, its results folder)."""
    study_path = _lr_study(tmp_path / "study.yaml", n_trials)
    results = tmp_path / "results"
    run = run_study(load_study_file(study_path), results_dir=results)
    assert run.counts.complete == n_trials and run.fatal is None
    return study_path, results


# ------------------------------------------------------------------------ 1. the journal lock


@contextlib.contextmanager
def _holding_the_lock(cwd: Path, journal: str) -> Iterator[subprocess.Popen]:
    """A process that holds Optuna's own lock on the relative path ``journal`` (the old
    default), as a writer does, touching it so that it never looks stale, until it is killed."""
    child = textwrap.dedent(
        f"""
        import os, time
        from optuna.storages.journal import JournalFileSymlinkLock
        JournalFileSymlinkLock({journal!r}).acquire()
        print("held", flush=True)
        while True:
            os.utime({journal + ".lock"!r}, follow_symlinks=False)
            time.sleep(0.2)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for_text(path: Path, text: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + HANG_S
    while text not in path.read_text():
        assert process.poll() is None, f"ended before saying {text!r}:\n{path.read_text()}"
        assert time.monotonic() < deadline, f"not said after {HANG_S} s: {text!r}"
        time.sleep(0.05)


def test_a_lock_left_by_kill_9_is_waited_for_out_loud_then_broken(tmp_path: Path) -> None:
    study_path, _ = _finished_study(tmp_path)
    lock = tmp_path / "results" / "tiny" / "study.journal.lock"
    before = len(_trials(tmp_path / "results" / "tiny"))
    log = tmp_path / "stderr.log"
    grace = 3
    with _holding_the_lock(tmp_path, "results/tiny/study.journal") as holder:
        assert lock.is_symlink() and not lock.exists(), "the lock's link does not resolve"
        with log.open("w") as stderr:
            run = subprocess.Popen(
                _sweeps_cmd("run", study_path.name, "--results", "results"),
                cwd=tmp_path,
                env=_env(**{LOCK_GRACE_ENV: str(grace)}),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
            )
        try:
            # Said after LOCK_NOTICE_S of waiting: what it waits for and how to clear it.
            _wait_for_text(log, "waiting for the journal lock", run)
            waited = time.monotonic()
            os.killpg(holder.pid, signal.SIGKILL)  # the lock stays, as a kill -9 leaves it
            holder.wait()
            assert lock.is_symlink()
            while lock.is_symlink() and time.monotonic() - waited < HANG_S:
                time.sleep(0.05)
            broken_after = time.monotonic() - waited
            out, _ = run.communicate(timeout=HANG_S)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    err = log.read_text()
    assert run.returncode == 0, out + err
    assert "Traceback" not in out + err
    assert err.count("waiting for the journal lock") == 1, err
    assert f"remove {lock}" in err, err
    assert err.count(f"removed the journal lock {lock}") == 1, err
    assert broken_after < grace + 5, f"broken {broken_after:.1f} s after the kill"
    assert not lock.is_symlink()
    assert "nothing to run: 2 of 2 trials have finished" in out
    # The study is whole, and its journal named by its absolute path.
    assert f"storage: journal file {tmp_path / 'results' / 'tiny' / 'study.journal'}" in out
    assert len(_trials(tmp_path / "results" / "tiny")) == before


def test_a_lock_left_long_ago_is_broken_at_once_and_said(tmp_path: Path) -> None:
    # Made by hand as Optuna makes it: a symlink to the journal's relative path, here dated an
    # hour back, as a lock found after a crash is. Also through `journal:` with a relative path.
    study_path, _ = _finished_study(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    os.rename(tmp_path / "results" / "tiny" / "study.journal", tmp_path / "elsewhere" / "j")
    lock = tmp_path / "elsewhere" / "j.lock"
    os.symlink("elsewhere/j", lock)
    hour_ago = time.time() - 3600
    os.utime(lock, (hour_ago, hour_ago), follow_symlinks=False)

    storage = "journal:elsewhere/j"
    code, output, err, _ = _sweeps(
        "run", study_path.name, "--results", "results", "--storage", storage, cwd=tmp_path
    )
    assert code == 0, output
    assert "Traceback" not in output
    assert err.count(f"removed the journal lock {lock}") == 1, err
    assert "waiting for the journal lock" not in err  # broken at once, without a wait
    assert f"storage: journal file {tmp_path / 'elsewhere' / 'j'}" in output
    assert "nothing to run: 2 of 2 trials have finished" in output


# ------------------------------------------------------------- 5. records cut short, damage


def test_a_record_cut_short_is_saved_aside_and_cut_with_one_warning(tmp_path: Path) -> None:
    study_path, results = _finished_study(tmp_path)
    journal = results / "tiny" / "study.journal"
    whole = journal.read_bytes()
    torn = b'{"op_code":8,"worker_id":"w","trial_id":1,"user_attr":{"reas'
    with journal.open("ab") as f:  # what a full disk leaves: half a record, no newline
        f.write(torn)

    code, output, err, _ = _sweeps("run", study_path, "--results", results)
    assert code == 0, output
    assert "Traceback" not in output
    assert err.count("cut short") == 1, err
    asides = list(journal.parent.glob("study.journal.torn-*"))
    assert [p.read_bytes() for p in asides] == [torn]
    assert str(asides[0]) in err
    text = journal.read_bytes()
    assert text.startswith(whole) and text.endswith(b"\n")  # cut, then appended to

    code, output, err, _ = _sweeps("report", results / "tiny")
    assert code == 0, output
    assert "Traceback" not in output and "cut short" not in err  # one warning only
    trials = _trials(results / "tiny")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert all(t.user_attrs["reason"] for t in trials)  # every record readable
    assert count_trials(trials).finished == 2


@pytest.mark.parametrize("command", ["run", "report"])
def test_a_damaged_journal_line_names_the_file_and_line(tmp_path: Path, command: str) -> None:
    study_path, results = _finished_study(tmp_path)
    journal = results / "tiny" / "study.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[2] = b"\x00garbage" + lines[2]
    journal.write_bytes(b"".join(lines))
    before = _files(tmp_path)

    target = study_path if command == "run" else results / "tiny"
    code, output, _, seconds = _sweeps(command, target, "--results", results)
    _assert_refused(code, output, seconds, f"{journal.resolve()}, line 3")
    assert _files(tmp_path) == before


# ----------------------------------------------------------------- journal: naming a folder


@pytest.mark.parametrize("where", ["an existing folder", "a path ending in /"])
def test_journal_naming_a_folder_exits_2_and_writes_nothing(tmp_path: Path, where: str) -> None:
    study_path = _lr_study(tmp_path / "study.yaml")
    folder = tmp_path / "journals"
    if where == "an existing folder":
        folder.mkdir()
        storage = f"journal:{folder}"
    else:
        storage = f"journal:{folder}/"
    before = _files(tmp_path)

    code, output, _, seconds = _sweeps(
        "run", study_path, "--results", tmp_path / "results", "--storage", storage
    )
    _assert_refused(code, output, seconds, "names a folder", storage)
    assert _files(tmp_path) == before


# ------------------------------------------------------------------ 6. faults of the machine


@contextlib.contextmanager
def _small_disk(path: Path, size: str = "4m") -> Iterator[Path]:
    """A real, small filesystem (tmpfs) at ``path``; skips where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, stdin=subprocess.DEVNULL)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the filler file (delete it to free the space)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        chunk = b"\0" * (1 << 16)
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
        chunk = b"\0" * 512
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
    return filler


@contextlib.contextmanager
def _started(*args: object, **kwargs: Any) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        _sweeps_cmd(*args),
        env=_env(),
        **kwargs,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def _wait_for_file(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + HANG_S
    while not path.exists():
        assert process.poll() is None, f"ended before {path} appeared: {process.communicate()}"
        assert time.monotonic() < deadline, f"no {path} after {HANG_S} s"
        time.sleep(0.02)


def _file_size_limit(limit: int) -> Any:
    """A ``preexec_fn``: writes past ``limit`` bytes fail with EFBIG, as on a full disk."""

    def limit_writes() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing us
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

    return limit_writes


@pytest.mark.parametrize("disk", ["tmpfs", "file size limit"])
def test_a_full_results_disk_stops_the_study_and_queues_the_cut_trial(
    tmp_path: Path, disk: str
) -> None:
    # The results folder fills up while trial 0 trains; the study's storage is elsewhere. Every
    # trial would fail the same way, so the study stops at once. "tmpfs": a small real disk,
    # filled once trial 0 has its first checkpoint. "file size limit", where mounting is not
    # allowed: RLIMIT_FSIZE below a checkpoint's size (EFBIG part-way, as ENOSPC would).
    study_path = _lr_study(tmp_path / "study.yaml", n_trials=3, epochs=40)
    storage = f"journal:{tmp_path / 'store' / 'study.journal'}"
    run = ("run", study_path, "--results")
    with contextlib.ExitStack() as stack:
        if disk == "tmpfs":
            results = stack.enter_context(_small_disk(tmp_path / "disk"))
            process = stack.enter_context(_started(*run, results, "--storage", storage))
            _wait_for_file(results / "tiny" / "trials" / "0" / "checkpoint.pt", process)
            _fill(results)
            expected = "No space left on device"
        else:
            results = tmp_path / "results"
            limit = _file_size_limit(20_000)
            process = stack.enter_context(
                _started(*run, results, "--storage", storage, preexec_fn=limit)
            )
            expected = "File too large"
        out, err = process.communicate(timeout=HANG_S)
        output = out + err
        assert process.returncode == 2, output
        assert "Traceback" not in output, output
        assert err.count("error:") == 1 and expected in err, err
        assert str(results / "tiny" / "trials" / "0") in err  # names the file it stopped on
        trials = _trials(tmp_path, storage)
    counts = count_trials(trials)
    assert (counts.finished, counts.failed, counts.running, counts.waiting) == (0, 0, 0, 1)
    first, queued = trials
    assert first.state == TrialState.FAIL and first.user_attrs["abandoned"] is True
    assert expected in first.user_attrs["reason"]
    assert queued.state == TrialState.WAITING and queued.params == first.params
    assert queued.user_attrs["retry_of"] == 0


def test_a_full_disk_under_the_journal_loses_nothing(tmp_path: Path) -> None:
    # The default storage, on the small disk too: the writes of the journal itself can fail.
    # The run stops with one message; once space is freed, the next run recovers the trial it
    # cut short, and the study ends with exactly its trials, none counted as failed.
    study_path = _lr_study(tmp_path / "study.yaml", n_trials=2, epochs=15)
    with _small_disk(tmp_path / "disk") as results:
        with _started("run", study_path, "--results", results) as process:
            _wait_for_file(results / "tiny" / "trials" / "0" / "checkpoint.pt", process)
            filler = _fill(results)
            out, err = process.communicate(timeout=HANG_S)
        assert process.returncode == 2, out + err
        assert "Traceback" not in out + err, out + err
        assert err.count("error:") == 1 and "No space left on device" in err, err

        filler.unlink()
        code, output, err, _ = _sweeps("run", study_path, "--results", results)
        assert code == 0, output
        assert "Traceback" not in output and err.count("cut short") <= 1, output
        trials = _trials(results / "tiny")
    counts = count_trials(trials)
    assert (counts.complete, counts.failed, counts.running, counts.waiting) == (2, 0, 0, 0)
    assert sorted(t.params["optim.lr"] for t in trials if t.state == TrialState.COMPLETE) == [
        3e-3,
        1e-2,
    ]


def test_a_failed_journal_write_is_taken_back(tmp_path: Path) -> None:
    # A real write cut short by the OS: a child whose file-size limit (RLIMIT_FSIZE) lets only
    # 10 bytes of a record reach the journal gets EFBIG part-way, as on a full disk. The journal
    # is left as it was: no record cut short for the next write to append to.
    study_path, results = _finished_study(tmp_path, n_trials=1)
    journal = results / "tiny" / "study.journal"
    before = journal.read_bytes()
    child = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import optuna
        from mixer_sweeps.study import open_storage

        study = optuna.load_study(
            study_name="tiny", storage=open_storage(None, study_dir=Path({str(results / "tiny")!r}))
        )
        try:
            study.set_user_attr("note", "x" * 500)
        except OSError as exc:
            sys.exit(exc.strerror)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=HANG_S,
        preexec_fn=_file_size_limit(len(before) + 10),
    )
    assert out.returncode == 1 and "File too large" in out.stderr, out.stderr
    assert journal.read_bytes() == before


def test_a_report_on_a_full_disk_exits_2_with_one_line(tmp_path: Path) -> None:
    study_path, results = _finished_study(tmp_path, n_trials=1)
    out = subprocess.run(
        [*_sweeps_cmd("report", study_path, "--results", results, "--out", tmp_path / "r")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=_env(),
        timeout=HANG_S,
        preexec_fn=_file_size_limit(2_000),  # the plots and the HTML page are larger
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="this machine has a CUDA device"
)
def test_train_device_cuda_without_a_gpu_exits_2_and_fails_no_trial(tmp_path: Path) -> None:
    study_path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [3e-3, 1e-2]}},
        fixed={"optim.epochs": 1, "train.device": "cuda"},
        sampler={"type": "grid"},
        pruner={"type": "none"},
        n_trials=2,
    )
    code, output, _, seconds = _sweeps("run", study_path, "--results", tmp_path / "results")
    _assert_refused(code, output, seconds, "train.device is 'cuda'")
    journal = tmp_path / "results" / "tiny" / "study.journal"
    if journal.exists():  # refused before the study, or stopped at its first trial
        counts = count_trials(_trials(journal.parent))
        assert (counts.finished, counts.running) == (0, 0)


def test_faults_of_the_machine_are_told_from_faults_of_a_trial(tmp_path: Path) -> None:
    import errno

    from mixer_sweeps.data import DatasetUnavailable
    from mixer_sweeps.study import machine_fault
    from mixer_sweeps.training import CheckpointError, DeviceUnavailable, NonFiniteLossError

    def raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
        try:
            raise exc from cause
        except BaseException as caught:
            return caught

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    checkpoint = raised(
        CheckpointError(f"could not write checkpoint {tmp_path}/c.pt: {full.strerror}"), full
    )
    machine = {
        "checkpoint on a full disk": checkpoint,
        "quota": OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(tmp_path)),
        "read-only": OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path)),
        "unwritable": PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path)),
        "no dataset": DatasetUnavailable("cifar10 is not in data/: download it"),
        "no GPU": DeviceUnavailable("train.device is 'cuda' but torch sees no CUDA device"),
        "Optuna's error after": raised(AssertionError("Should not reach."), full),
    }
    for what, exc in machine.items():
        assert machine_fault(exc), what
    assert f"{tmp_path}/c.pt" in machine_fault(checkpoint)
    trial = {
        "non-finite": NonFiniteLossError("training loss became non-finite (nan) in epoch 1"),
        "a bug": ValueError("bad value"),
        "out of memory": RuntimeError("CUDA out of memory"),
        "a missing file": FileNotFoundError(errno.ENOENT, "No such file", "x"),
    }
    for what, exc in trial.items():
        assert machine_fault(exc) is None, what


def test_a_study_in_which_every_trial_fails_exits_1_with_one_line(tmp_path: Path) -> None:
    # Learning rates so large that the loss turns non-finite in the first epoch.
    study_path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e6, 1e7]}},
        fixed={"optim.epochs": 1, "optim.warmup_epochs": 0},
        sampler={"type": "grid"},
        pruner={"type": "none"},
        n_trials=2,
    )
    code, output, err, _ = _sweeps("run", study_path, "--results", tmp_path / "results")
    assert code == 1, output
    assert "Traceback" not in output
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "all 2 trials failed" in errors[0], err
    assert "non-finite" in errors[0]


# --------------------------------------------------------- 7. creating a new storage at once


def _open_and_create(url: str, study_dir: Path, barrier: Any, results: Any) -> None:
    """In a child: wait at ``barrier`` with the others, then open ``url`` and create the study."""
    try:
        barrier.wait(timeout=HANG_S)
        storage = open_storage(url, study_dir=study_dir)
        optuna.create_study(storage=storage, study_name="tiny", load_if_exists=True)
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
        raise SystemExit(1) from None
    results.put("ok")


def _open_at_once(tmp_path: Path, urls: list[str], processes: int = 4) -> None:
    """``processes`` processes open each new storage of ``urls`` in the same instant.

    Forked from this process, which has imported everything already: each starts in a moment,
    and a barrier releases them together.
    """
    import multiprocessing

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    context = multiprocessing.get_context("fork")
    for url in urls:
        barrier, results = context.Barrier(processes), context.Queue()
        children = [
            context.Process(target=_open_and_create, args=(url, tmp_path, barrier, results))
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join(timeout=HANG_S)
            if child.is_alive():
                child.kill()
                child.join()
        said = sorted(results.get(timeout=5) for _ in children)
        assert said == ["ok"] * processes, f"{url}: {said}"
        assert [c.exitcode for c in children] == [0] * processes
        summaries = optuna.get_all_study_summaries(open_storage(url, study_dir=tmp_path))
        assert [s.study_name for s in summaries] == ["tiny"]


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_workers_creating_one_new_storage_at_once_all_succeed(tmp_path: Path, kind: str) -> None:
    # Four rounds, each on a new storage: one round alone may miss the race.
    if kind == "sqlite":
        urls = [f"sqlite:///{tmp_path / f'new-{i}.db'}" for i in range(4)]
    else:
        urls = [f"journal:{tmp_path / f'new-{i}.journal'}" for i in range(4)]
    _open_at_once(tmp_path, urls)


def test_workers_creating_one_new_postgres_database_at_once_all_succeed(
    tmp_path: Path, postgres_server: str
) -> None:
    import sqlalchemy

    names = [f"race_{uuid.uuid4().hex[:12]}" for _ in range(4)]
    engine = sqlalchemy.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for name in names:
                connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    finally:
        engine.dispose()
    _open_at_once(tmp_path, [f"{postgres_server}/{name}" for name in names])


# ----------------------------------------------------- 8. the PostgreSQL URL of the README


def test_the_readmes_postgres_url_works_as_written(tmp_path: Path, postgres_url: str) -> None:
    tomllib = pytest.importorskip("tomllib")
    import importlib.metadata
    import re

    from sqlalchemy.dialects import registry

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "--storage postgresql://USER:PASS@HOST/DB" in readme
    # The driver SQLAlchemy loads for a plain postgresql:// URL is a declared dependency.
    driver = registry.load("postgresql").import_dbapi().__name__.split(".")[0]
    providers = {d.lower() for d in importlib.metadata.packages_distributions()[driver]}
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    dependencies = pyproject["project"]["dependencies"]
    declared = {re.split(r"[\[<>=~!; ]", d)[0].lower() for d in dependencies}
    assert providers & declared, f"{driver} ({providers}) is not among {sorted(declared)}"

    # Exactly the README's form, with a password (the test cluster trusts it), and with the
    # psycopg2 driver out of reach: nothing else may need it.
    password = "s3cret-" + uuid.uuid4().hex[:8]
    user_host, db = postgres_url.removeprefix("postgresql://").rsplit("/", 1)
    user, host = user_host.split("@")
    url = f"postgresql://{user}:{password}@{host}/{db}"
    shim = tmp_path / "shim" / "psycopg2"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('psycopg2 is not installed here')\n")
    pythonpath = os.pathsep.join(filter(None, [str(shim.parent), os.environ.get("PYTHONPATH")]))
    study_path = _lr_study(tmp_path / "study.yaml", n_trials=2)
    results = tmp_path / "results"
    code, output, _, _ = _sweeps(
        "run", study_path, "--results", results, "--storage", url, PYTHONPATH=pythonpath
    )
    assert code == 0, output
    assert password not in output
    assert f"storage: postgresql://{user}:***@{host}/{db}" in output
    assert "2 of 2 trials finished" in output
    assert not (results / "tiny" / "study.journal").exists()
    assert count_trials(_trials(results / "tiny", url)).complete == 2


# ===================================================================================== Input (9-12)


GUARD_S = 5.0
"""Every bad input is refused within 5 s of CPU time. That is not a benchmark but a guard against
the blow-ups these inputs used to cause: alias bombs that ran for a minute, models allocated until
the machine ran out of memory. Checking a spec imports no torch, so most take well under a
second; the checkpoint and device cases import torch (1-3 s). CPU rather than wall time, because
other jobs on a shared machine stretch wall time several-fold."""
INPUT_HANG_S = 30.0
"""Hang guard: ... and of wall time (a base spec on a named pipe blocks without using CPU)."""
KILL_S = 60


@dataclass(frozen=True)
class Took:
    wall: float
    cpu: float


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _spec(**changes: Any) -> dict[str, Any]:
    """The tiny run with dotted-path changes, as a dict to write."""
    data = copy.deepcopy(TINY_RUN)
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return data


def _study(base: str | None = "tiny.yaml", **study: Any) -> dict[str, Any]:
    settings = {"name": "s", "n_trials": 2, **study}
    if base is not None:
        settings["base"] = base
    return {"study": settings, "space": {"optim.lr": {"low": 1e-3, "high": 1e-2, "log": True}}}


def _run(
    args: list[str], cwd: Path, *, code: str | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Took]:
    """``sweeps ARGS`` in ``cwd``; with ``code``, that Python runs first (a fault injected)."""
    command = [sys.executable, "-m", "mixer_sweeps", *args]
    if code is not None:
        entry = "from mixer_sweeps.__main__ import main\nmain()"  # what the `sweeps` script runs
        command = [sys.executable, "-c", f"{code}\n{entry}"]
        command += args
    environment = {**os.environ, "XDG_STATE_HOME": str(cwd / ".state"), **(env or {})}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = subprocess.run(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=KILL_S,
        env=environment,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    return out, Took(wall=wall, cpu=cpu)


def _tree(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1
        for p in root.rglob("*")
        if not p.is_fifo()
    }


def _unwritable(tmp: Path) -> Path:
    """A folder in which nothing can be created, also for root (who ignores permissions)."""
    if os.geteuid() != 0:
        folder = tmp / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for candidate in (Path("/sys/fs"), Path("/proc/sys"), Path("/sys")):
        probe = candidate / f"sweeps-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            return candidate
        probe.rmdir()
    pytest.skip("no folder that root cannot write to (read-only /sys or /proc)")


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def checkpoint_state() -> dict[str, Any]:
    """A real checkpoint of the tiny run, after one epoch, to damage."""
    from mixer_sweeps.spec import RunSpec
    from mixer_sweeps.training import Trainer

    trainer = Trainer(RunSpec.model_validate(TINY_RUN))
    trainer.run_epoch()
    return trainer.state_dict()


def _checkpoint(damage: Callable[[dict[str, Any]], None]) -> Callable[[Path, Any], None]:
    def setup(tmp: Path, state: dict[str, Any]) -> None:
        import torch

        _write(tmp / "tiny.yaml", _spec())
        state = copy.deepcopy(state)
        damage(state)
        (tmp / "run").mkdir()
        torch.save(state, tmp / "run" / "checkpoint.pt")

    return setup


def _shrink_head(state: dict[str, Any]) -> None:
    import torch

    state["model"]["head.weight"] = torch.zeros(3, 3)


# ----------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[..., Any]
    """``setup(tmp)``, or ``setup(tmp, checkpoint_state)``; returns extra args (or None)."""
    args: list[str]
    named: list[str]
    """Each must appear in stderr: the key, the file, the folder."""
    needs_checkpoint: bool = False


def _laughs(tmp: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    _write(tmp / "laughs.yaml", "\n".join(lines) + "\n" + yaml.safe_dump(_spec()))


def _fifo(tmp: Path) -> None:
    _write(tmp / "tiny.yaml", _spec())
    os.mkfifo(tmp / "pipe.yaml")
    _write(tmp / "study.yaml", _study("pipe.yaml"))


def _grid(tmp: Path) -> None:
    _write(tmp / "tiny.yaml", _spec())
    study = _study(sampler={"type": "grid"}, n_trials=None)
    study["space"] = {
        "optim.epochs": {"low": 1, "high": 100_000, "step": 1},
        "model.depth": {"low": 1, "high": 1000, "step": 1},
    }
    _write(tmp / "study.yaml", study)


def _infinite_range(tmp: Path) -> None:
    _write(tmp / "tiny.yaml", _spec())
    text = yaml.safe_dump(_study()).replace("high: 0.01", "high: .inf")
    assert ".inf" in text
    _write(tmp / "study.yaml", text)


def _missing_device() -> str:
    import torch

    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def _inline_run(tmp: Path) -> None:
    run = _spec(**{"optim.lr": -1, "model.embed_dim": 0})
    del run["name"]
    study = _study(None, name="not a name")
    study["run"] = run
    study["fixed"] = {"optim.epochs": 0}
    _write(tmp / "study.yaml", study)


CASES = [
    # (9) YAML that blows up, files far too large, a base that is no regular file
    Case(
        "alias-bomb",
        _laughs,
        ["train", "laughs.yaml"],
        ["laughs.yaml", "(line ", "expands to more than"],
    ),
    Case(
        "recursive-alias",
        lambda tmp: _write(tmp / "loop.yaml", "name: &a [*a]\n"),
        ["train", "loop.yaml"],
        ["loop.yaml", "(line 1)", "*a"],
    ),
    Case(
        "nested-too-deep",
        lambda tmp: _write(tmp / "deep.yaml", "name: " + "[" * 5000 + "]" * 5000 + "\n"),
        ["validate", "deep.yaml"],
        ["deep.yaml", "nested more than"],
    ),
    Case(
        "file-too-large",
        lambda tmp: _write(tmp / "big.yaml", "#" * (2 << 20) + "\n" + yaml.safe_dump(_spec())),
        ["train", "big.yaml"],
        ["big.yaml", "at most 1 MiB"],
    ),
    Case(
        "base-is-dev-zero",
        lambda tmp: _write(tmp / "study.yaml", _study("/dev/zero")),
        ["run", "study.yaml"],
        ["study.base", "/dev/zero", "not a regular file"],
    ),
    Case("base-is-a-fifo", _fifo, ["run", "study.yaml"], ["study.base", "pipe.yaml", "pipe"]),
    # (10) values that cannot be allocated or run
    Case(
        "embed-dim-huge",
        lambda tmp: _write(tmp / "s.yaml", _spec(**{"model.embed_dim": 10**9})),
        ["train", "s.yaml"],
        ["model.embed_dim", "16384"],
    ),
    Case(
        "depth-huge",
        lambda tmp: _write(tmp / "s.yaml", _spec(**{"model.depth": 10**8})),
        ["train", "s.yaml"],
        ["model.depth", "1024"],
    ),
    Case(
        "crop-padding-huge",
        lambda tmp: _write(tmp / "s.yaml", _spec(**{"augment.crop_padding": 10**8})),
        ["train", "s.yaml"],
        ["augment.crop_padding"],
    ),
    Case(
        "crop-padding-beyond-image",
        lambda tmp: _write(tmp / "s.yaml", _spec(**{"augment.crop_padding": 9})),
        ["train", "s.yaml"],
        ["augment.crop_padding", "image size 8"],
    ),
    Case(
        "memory-beyond-machine",
        lambda tmp: _write(
            tmp / "s.yaml",
            _spec(
                **{
                    "model.embed_dim": 16384,
                    "model.depth": 1024,
                    "model.token_mlp_dim": 65536,
                    "model.channel_mlp_dim": 65536,
                }
            ),
        ),
        ["train", "s.yaml"],
        ["s.yaml", "model.depth", "model.embed_dim", "memory"],
    ),
    Case(
        "seed-beyond-numpy",
        lambda tmp: _write(tmp / "s.yaml", _spec(seed=2**32)),
        ["train", "s.yaml"],
        ["seed", "4294967296"],
    ),
    Case(
        "grid-of-millions",
        _grid,
        ["run", "study.yaml"],
        ["study.yaml", "space.optim.epochs", "model.depth", "1,000,000"],
    ),
    Case(
        "workers-beyond-memory",  # one run fits (about 2 GiB); 1024 at once do not
        lambda tmp: (
            _write(
                tmp / "tiny.yaml",
                _spec(**{"model.embed_dim": 4096, "model.channel_mlp_dim": 16384}),
            ),
            _write(tmp / "study.yaml", _study()),
        ),
        ["run", "study.yaml", "--workers", "1024"],
        ["--workers 1024", "fit"],
    ),
    Case(
        "launch-workers-beyond-any-job-array",
        lambda tmp: (_write(tmp / "tiny.yaml", _spec()), _write(tmp / "study.yaml", _study())),
        ["launch", "study.yaml", "--workers", "1000000000000", "--dry-run"],
        ["--workers", "100000"],
    ),
    Case(
        "range-high-inf",
        _infinite_range,
        ["run", "study.yaml"],
        ["space.optim.lr.high", "finite"],
    ),
    Case(
        "device-missing",
        lambda tmp: _write(tmp / "s.yaml", _spec(**{"train.device": _missing_device()})),
        ["train", "s.yaml"],
        ["train.device"],
    ),
    Case(
        "study-device-missing",
        lambda tmp: (
            _write(tmp / "tiny.yaml", _spec(**{"train.device": _missing_device()})),
            _write(tmp / "study.yaml", _study()),
        ),
        ["run", "study.yaml"],
        ["study.yaml", "train.device"],
    ),
    # (11) damaged checkpoints, folders that cannot be written, damaged files to report on
    Case(
        "checkpoint-missing-key",
        _checkpoint(lambda s: s.pop("optimizer")),
        ["train", "tiny.yaml", "--resume", "--out", "run"],
        ["run/checkpoint.pt", "optimizer"],
        needs_checkpoint=True,
    ),
    Case(
        "checkpoint-wrong-shape",
        _checkpoint(_shrink_head),
        ["train", "tiny.yaml", "--resume", "--out", "run"],
        ["run/checkpoint.pt", "model.head.weight", "(3, 3)"],
        needs_checkpoint=True,
    ),
    Case(
        "checkpoint-wrong-type",
        _checkpoint(lambda s: s.__setitem__("epoch", "three")),
        ["train", "tiny.yaml", "--resume", "--out", "run"],
        ["run/checkpoint.pt", "epoch", "str"],
        needs_checkpoint=True,
    ),
    Case(
        "results-read-only",
        lambda tmp: (_write(tmp / "tiny.yaml", _spec()), _write(tmp / "study.yaml", _study())),
        ["run", "study.yaml", "--results", "{unwritable}/results"],
        ["{unwritable}/results"],
    ),
    Case(
        "report-out-read-only",
        lambda tmp: (_write(tmp / "tiny.yaml", _spec()), _write(tmp / "study.yaml", _study())),
        ["report", "study.yaml", "--out", "{unwritable}/report"],
        ["{unwritable}/report"],
    ),
    Case(
        "schema-out-read-only",
        lambda tmp: None,
        ["schema", "--out", "{unwritable}/schema.json"],
        ["{unwritable}/schema.json"],
    ),
    Case(
        "report-invalid-yaml",
        lambda tmp: _write(tmp / "study.yaml", "study: {name: s, base: tiny.yaml\nspace: [\n"),
        ["report", "study.yaml"],
        ["study.yaml", "(line 2)", "invalid YAML"],
    ),
    Case(
        "report-corrupt-saved-study",
        lambda tmp: _write(tmp / "results" / "s" / "study.yaml", "study:\n\tname: s\n"),
        ["report", "results/s"],
        ["results/s/study.yaml", "(line 2)"],
    ),
    # (12) an inline run: every mistake at once, with those of the rest of the file
    Case(
        "inline-run-every-mistake",
        _inline_run,
        ["run", "study.yaml"],
        ["study.name", "run.optim.lr", "run.model.embed_dim", "fixed.optim.epochs", "(line"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_naming_the_key_quickly_writing_nothing(
    case: Case, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if case.needs_checkpoint:
        case.setup(tmp_path, request.getfixturevalue("checkpoint_state"))
    else:
        case.setup(tmp_path)
    needs_unwritable = any("{unwritable}" in a for a in case.args)
    unwritable = str(_unwritable(tmp_path)) if needs_unwritable else ""
    args = [a.replace("{unwritable}", unwritable) for a in case.args]
    before = _tree(tmp_path)

    out, took = _run(args, tmp_path)

    stderr = out.stderr
    assert out.returncode == 2, f"exit code {out.returncode}\n{stderr}{out.stdout}"
    for words in case.named:
        assert words.replace("{unwritable}", unwritable) in stderr, stderr
    assert "Traceback" not in stderr + out.stdout
    assert took.cpu < GUARD_S, f"blow-up guard: {took.cpu:.1f} s of CPU\n{stderr}"
    assert took.wall < INPUT_HANG_S, f"hang guard: {took.wall:.1f} s\n{stderr}"
    assert _tree(tmp_path) == before, "the command wrote files"
    for arg in args:
        if needs_unwritable and arg.startswith(unwritable):
            assert not Path(arg).exists()


# ----------------------------------------------------------- unexpected errors and Ctrl-C

# The fault is injected in the test's own process wrapper (python -c), not by any switch of the
# program: `sweeps` itself has no test hooks.
_BUG = (
    "import mixer_sweeps.spec as spec\n"
    "def broken(*args, **kwargs):\n"
    "    raise RuntimeError('simulated bug in the loader')\n"
    "spec.load_run_spec = broken"
)


def test_an_unexpected_error_is_one_line_and_a_log_with_the_traceback(tmp_path: Path) -> None:
    _write(tmp_path / "tiny.yaml", _spec())
    out, _ = _run(["validate", "tiny.yaml"], tmp_path, code=_BUG)

    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: RuntimeError: simulated bug in the loader (details in ")
    log = Path(lines[0].rsplit("(details in ", 1)[1].rstrip(")"))
    assert log.is_relative_to(tmp_path / ".state" / "mixer-sweeps" / "logs")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: simulated bug in the loader" in text
    assert "'validate' 'tiny.yaml'" in text


def test_the_log_falls_back_to_the_temp_folder(tmp_path: Path) -> None:
    _write(tmp_path / "tiny.yaml", _spec())
    state = tmp_path / "state-is-a-file"
    state.write_text("")
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {"XDG_STATE_HOME": str(state), "TMPDIR": str(temp)}
    out, _ = _run(["validate", "tiny.yaml"], tmp_path, code=_BUG, env=env)

    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    (log,) = (temp / "mixer-sweeps" / "logs").iterdir()
    assert str(log) in out.stderr
    assert "simulated bug" in log.read_text()


_CTRL_C = (
    "import mixer_sweeps.spec as spec\n"
    "def interrupted(*args, **kwargs):\n"
    "    raise KeyboardInterrupt\n"
    "spec.load_run_spec = interrupted"
)

# Ctrl-C while Python is still importing the command line, before any handler of ours is set.
_CTRL_C_WHILE_STARTING = (
    "import sys\n"
    "class Interrupt:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'mixer_sweeps.cli':\n"
    "            raise KeyboardInterrupt\n"
    "sys.meta_path.insert(0, Interrupt())"
)

# A second Ctrl-C while `sweeps train` prints its last lines (after the run's handlers are gone).
_CTRL_C_AT_THE_END = (
    "import mixer_sweeps.cli._train as cli\n"
    "def interrupted(*args, **kwargs):\n"
    "    raise KeyboardInterrupt\n"
    "cli._echo_wandb = interrupted"
)


@pytest.mark.parametrize(
    ("code", "args"),
    [
        (_CTRL_C_WHILE_STARTING, ["validate", "tiny.yaml"]),
        (_CTRL_C, ["validate", "tiny.yaml"]),
        (_CTRL_C_AT_THE_END, ["train", "tiny.yaml", "--epochs", "1", "--out", "run"]),
    ],
    ids=["while-starting", "while-loading", "while-train-prints-its-results"],
)
def test_ctrl_c_is_one_line_and_exit_130(code: str, args: list[str], tmp_path: Path) -> None:
    _write(tmp_path / "tiny.yaml", _spec())
    out, _ = _run(args, tmp_path, code=code)

    assert out.returncode == 130, out.stderr
    assert out.stderr.strip().endswith("\ninterrupted") or out.stderr.strip() == "interrupted"
    assert "Traceback" not in out.stderr + out.stdout
    if args[0] == "train":
        assert (tmp_path / "run" / "metrics.json").is_file()


def test_a_ctrl_c_that_lands_in_a_finalizer_prints_no_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker's Ctrl-C raises KeyboardInterrupt wherever the main thread is; inside a weakref
    # callback (garbage collection) it cannot propagate, and Python would print its traceback.
    import weakref

    from mixer_sweeps._signals import Interrupt

    class Thing:
        pass

    def interrupted(_: object) -> None:
        raise KeyboardInterrupt

    printed: list[object] = []  # what Python's own hook would print, with its traceback
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    with Interrupt().installed():
        thing = Thing()
        ref = weakref.ref(thing, interrupted)
        del thing
    assert ref() is None
    assert printed == []


def test_a_ctrl_c_lost_in_a_finalizer_still_interrupts_the_command(tmp_path: Path) -> None:
    # Outside a worker (a command's last lines, say) the Ctrl-C is delivered again to the main
    # thread: one line and exit 130, not a traceback and a Ctrl-C lost.
    code = textwrap.dedent(
        """
        import time, weakref
        from mixer_sweeps._crash import run_guarded

        class Thing:
            pass

        def interrupted(_):
            raise KeyboardInterrupt

        def command():
            thing = Thing()
            ref = weakref.ref(thing, interrupted)
            del thing
            time.sleep(30)

        run_guarded(command)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=KILL_S,
        # Python handles Ctrl-C only where it is not ignored, and a background job's is.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert (out.returncode, out.stderr.strip()) == (130, "interrupted"), out.stderr


def test_crashed_workers_are_one_line_each_and_their_tracebacks_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mixer_sweeps._crash import summarize

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    reports = [
        "worker 0 crashed:\nTraceback (most recent call last):\n  File ...\nValueError: bad\n",
        "worker 1 ended with exit code -9",
    ]
    lines = summarize(reports).splitlines()

    assert lines[:2] == ["worker 0 crashed: ValueError: bad", "worker 1 ended with exit code -9"]
    assert "Traceback" not in "\n".join(lines)
    log = Path(lines[2].removeprefix("(details in ").removesuffix(")"))
    assert "Traceback (most recent call last)" in log.read_text()


@pytest.mark.parametrize("preset", ["mixer-digits", "mixer-nano", "mixer-tiny"])
def test_the_memory_estimate_counts_the_parameters_of_the_model_it_builds(preset: str) -> None:
    from mixer_sweeps.data import DATASETS
    from mixer_sweeps.spec import RunSpec, estimate_memory
    from mixer_sweeps.training import build_model

    dataset = "digits" if preset == "mixer-digits" else "cifar100"
    spec = RunSpec.model_validate(
        _spec(**{"model": {"preset": preset}, "data.dataset": dataset, "data.val_size": 100})
    )
    model = build_model(spec.model, DATASETS[dataset])
    assert estimate_memory(spec).parameters == sum(p.numel() for p in model.parameters())


def test_a_study_is_checked_against_the_machine_value_by_value(tmp_path: Path) -> None:
    from mixer_sweeps.spec import load_study_file

    _write(tmp_path / "tiny.yaml", _spec())
    study = _study()
    study["space"]["model.depth"] = {"choices": [1, 2, 3]}
    file = load_study_file(_write(tmp_path / "study.yaml", study))

    variants = list(file.variants())
    assert [label.split(" ", 1)[1] for label, _ in variants] == [
        "(the base spec)",
        "with optim.lr=0.001",
        "with optim.lr=0.01",
        "with model.depth=1",
        "with model.depth=2",
        "with model.depth=3",
    ]
    assert [spec.model.depth for _, spec in variants[-3:]] == [1, 2, 3]
