"""Faults of storage integrity and of the machine, with real processes and real files (classes
5-8 of issue 11).

A journal lock left by a ``kill -9``, a journal record cut short by a full disk, a damaged journal
line, a journal path that names a folder, a disk that fills up during a trial, a study in which
every trial fails, workers that create one new storage at the same instant, and the PostgreSQL URL
exactly as the docs write it (docs/studies.md).

Every command runs as ``python -m mixer_sweeps`` in a folder of its own, in its own session, so
nothing outlives a test. Each test stands alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from test_study import write_study

from conftest import HANG_S, REPO, plain_env, run_timed, study_trials, sweeps_cmd, wait_until
from mixer_sweeps.results import count_trials
from mixer_sweeps.spec import load_study_file
from mixer_sweeps.study import open_storage, run_study
from mixer_sweeps.study._journal import LOCK_GRACE_ENV

BAD_INPUT_S = 5.0
"""Seconds of CPU in which bad input is refused (reading a storage imports Optuna: about 1 s)."""


def _sweeps(*args: object, cwd: Path | None = None, timeout: float = HANG_S, **env: str):
    """Run ``sweeps ARGS`` to its end; returns (exit code, stdout + stderr, stderr, CPU seconds)."""
    done, took = run_timed(sweeps_cmd(*args), cwd=cwd, env=plain_env(**env), timeout=timeout)
    return done.returncode, done.stdout + done.stderr, done.stderr, took.cpu


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


def _one_trial_left(tmp_path: Path) -> tuple[Path, Path]:
    """A study of 3 trials that has run 2: its next run writes to the storage (a finished
    study's re-run only reads it)."""
    study_path = _lr_study(tmp_path / "study.yaml", 3)
    results = tmp_path / "results"
    run = run_study(load_study_file(study_path, {"study.n_trials": 2}), results_dir=results)
    assert run.counts.complete == 2 and run.fatal is None
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


def test_a_lock_left_by_kill_9_is_waited_for_out_loud_then_broken(tmp_path: Path) -> None:
    study_path, _ = _one_trial_left(tmp_path)
    lock = tmp_path / "results" / "tiny" / "study.journal.lock"
    before = len(study_trials(tmp_path / "results" / "tiny"))
    log = tmp_path / "stderr.log"
    grace = 3
    with _holding_the_lock(tmp_path, "results/tiny/study.journal") as holder:
        assert lock.is_symlink() and not lock.exists(), "the lock's link does not resolve"
        with log.open("w") as stderr:
            run = subprocess.Popen(
                sweeps_cmd("run", study_path.name, "--results", "results"),
                cwd=tmp_path,
                env=plain_env(**{LOCK_GRACE_ENV: str(grace)}),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
            )
        try:
            # Said after LOCK_NOTICE_S of waiting: what it waits for and how to clear it.
            said = "waiting for the journal lock"
            wait_until(lambda: said in log.read_text(), repr(said), process=run, log=log)
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
    assert "resuming: 2 trials finished" in out
    # The study is whole, and its journal named by its absolute path.
    assert f"storage: journal file {tmp_path / 'results' / 'tiny' / 'study.journal'}" in out
    assert len(study_trials(tmp_path / "results" / "tiny")) == before + 1


def test_a_lock_left_long_ago_is_broken_at_once_and_said(tmp_path: Path) -> None:
    # Made by hand as Optuna makes it: a symlink to the journal's relative path, here dated an
    # hour back, as a lock found after a crash is. Also through `journal:` with a relative path.
    study_path, _ = _one_trial_left(tmp_path)
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
    assert "resuming: 2 trials finished" in output


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
    trials = study_trials(results / "tiny")
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
        sweeps_cmd(*args),
        env=plain_env(),
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
            checkpoint = results / "tiny" / "trials" / "0" / "checkpoint.pt"
            wait_until(checkpoint.exists, str(checkpoint), process=process)
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
        trials = study_trials(tmp_path, storage)
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
            checkpoint = results / "tiny" / "trials" / "0" / "checkpoint.pt"
            wait_until(checkpoint.exists, str(checkpoint), process=process)
            filler = _fill(results)
            out, err = process.communicate(timeout=HANG_S)
        assert process.returncode == 2, out + err
        assert "Traceback" not in out + err, out + err
        assert err.count("error:") == 1 and "No space left on device" in err, err

        filler.unlink()
        code, output, err, _ = _sweeps("run", study_path, "--results", results)
        assert code == 0, output
        assert "Traceback" not in output and err.count("cut short") <= 1, output
        trials = study_trials(results / "tiny")
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
        [*sweeps_cmd("report", study_path, "--results", results, "--out", tmp_path / "r")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=plain_env(),
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
        counts = count_trials(study_trials(journal.parent))
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


# ------------------------------------------------------- 8. the PostgreSQL URL of the docs


def test_the_docs_postgres_url_works_as_written(tmp_path: Path, postgres_url: str) -> None:
    tomllib = pytest.importorskip("tomllib")
    import importlib.metadata
    import re

    from sqlalchemy.dialects import registry

    studies_page = (REPO / "docs" / "studies.md").read_text(encoding="utf-8")
    assert "--storage postgresql://USER:PASS@HOST/DB" in studies_page
    # The driver SQLAlchemy loads for a plain postgresql:// URL is a declared dependency.
    driver = registry.load("postgresql").import_dbapi().__name__.split(".")[0]
    providers = {d.lower() for d in importlib.metadata.packages_distributions()[driver]}
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    dependencies = pyproject["project"]["dependencies"]
    declared = {re.split(r"[\[<>=~!; ]", d)[0].lower() for d in dependencies}
    assert providers & declared, f"{driver} ({providers}) is not among {sorted(declared)}"

    # Exactly the docs' form, with a password (the test cluster trusts it), and with the
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
    assert count_trials(study_trials(results / "tiny", url)).complete == 2
