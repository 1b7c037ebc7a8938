"""``sweeps status`` under attack (issue 17, points 7 and 8): every readable study is shown and
every unreadable one is one line saying why; no storage holds it up for longer than its timeout;
``--watch`` outlives a refresh that fails; Ctrl-C ends ``status --watch`` and ``dashboard`` with
130, also as background jobs in a pipe, which a shell starts with SIGINT ignored.

All with real processes, real files, and a real stalled database: a socket on 127.0.0.1 that
accepts connections and never answers.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import TINY_RUN, sweeps
from mixer_sweeps.spec import load_study_file
from mixer_sweeps.study import open_storage, run_study

TIMEOUT_S = 2
"""The storage timeout the tests give status (psycopg's least connect_timeout is 2 s)."""
MARGIN_S = 30
"""Start-up and a loaded machine, on top of the timeout; the unbounded waits are 60-130 s."""
BAD = ("bad-journal", "bad-yaml", "gone-sqlite", "run-elsewhere", "stalled-pg")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results folder of a finished one-trial study named ``good``, to copy."""
    root = tmp_path_factory.mktemp("finished")
    document = {
        "study": {"name": "good", "sampler": {"type": "grid"}, "pruner": {"type": "none"}},
        "fixed": {"optim.epochs": 1, "optim.warmup_epochs": 0},
        "space": {"optim.lr": {"choices": [1e-2]}},
        "run": TINY_RUN,
    }
    path = root / "good.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    assert run_study(load_study_file(path), results_dir=root / "results").counts.complete == 1
    return root / "results" / "good"


@pytest.fixture
def stalled_port() -> Iterator[int]:
    """A port on 127.0.0.1 where connections are accepted and never answered."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            held.append(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def clone(finished: Path, results: Path, name: str, storage: str | None = None) -> Path:
    """A copy of the finished study under ``results/name``, named ``name``, on ``storage``."""
    folder = results / name
    shutil.copytree(finished, folder)
    study_file = folder / "study.yaml"
    document = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    document["study"].update(name=name, storage=storage)
    study_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    journal = folder / "study.journal"
    journal.write_text(
        journal.read_text(encoding="utf-8").replace(
            '"study_name":"good"', f'"study_name":"{name}"'
        ),
        encoding="utf-8",
    )
    if storage is not None:
        journal.unlink()
    return folder


def make_results(finished: Path, root: Path, port: int, names=("good", *BAD)) -> Path:
    """``root/results`` with the good study and one study of each bad kind in ``names``."""
    results = root / "results"
    results.mkdir()
    for name in names:
        if name == "good":
            shutil.copytree(finished, results / "good")
        elif name == "bad-yaml":
            folder = clone(finished, results, name)
            (folder / "study.yaml").write_text("study: [name: bad-yaml\nspace: {}\n")
        elif name == "bad-journal":
            journal = clone(finished, results, name) / "study.journal"
            lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
            lines[2] = "not a record\n"
            journal.write_text("".join(lines), encoding="utf-8")
        elif name == "gone-sqlite":  # its database file was moved away (opening it creates one)
            clone(finished, results, name, f"sqlite:///{root / 'studies.db'}")
        elif name == "run-elsewhere":  # run with --storage, which status is not given
            (clone(finished, results, name) / "study.journal").unlink()
        elif name == "stalled-pg":
            clone(finished, results, name, f"postgresql://sweeps@127.0.0.1:{port}/sweeps")
    return results


WHY = {
    "bad-journal": r"study\.journal, line 3: not a journal record",
    "bad-yaml": r"study\.yaml: 1 problem; .*\(line \d+\): invalid YAML",
    "gone-sqlite": r"sqlite:///.*studies\.db is gone: no file .*studies\.db",
    "run-elsewhere": r"no study storage in results/run-elsewhere/ \(no study\.journal\)",
    "stalled-pg": r"127\.0\.0\.1:{port}/sweeps",
}


def files_of(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------ every study, bounded


def test_status_shows_every_readable_study_and_one_line_per_unreadable_one(
    finished: Path, tmp_path: Path, stalled_port: int
) -> None:
    make_results(finished, tmp_path, stalled_port)
    before = files_of(tmp_path)

    started = time.monotonic()
    done = sweeps("status", "--timeout", str(TIMEOUT_S), cwd=tmp_path)
    elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < TIMEOUT_S + MARGIN_S, f"the stalled database held status {elapsed:.0f} s"
    assert done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert "good  results/good  (journal file" in done.stdout
    assert "trials   1/1 finished: 1 complete" in done.stdout, done.stdout
    for name in BAD:
        (line,) = [line for line in lines if line.startswith(f"{name} ")]
        prefix = f"{name}  results/{name}  cannot be read: "
        assert line.startswith(prefix), line
        assert re.search(WHY[name].format(port=stalled_port), line), (name, line)
    # A status reads: no database file is created where one is missing, nothing is cut or moved.
    assert files_of(tmp_path) == before

    as_json = sweeps("status", "--json", "--timeout", str(TIMEOUT_S), cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert [s["name"] for s in payload["studies"]] == ["good"]
    assert payload["studies"][0]["counts"]["complete"] == 1
    unreadable = {u["study"]: u["error"] for u in payload["unreadable"]}
    assert sorted(unreadable) == [f"results/{name}" for name in BAD]
    assert "not a journal record" in unreadable["results/bad-journal"]


def test_status_exits_non_zero_when_no_study_can_be_read(
    finished: Path, tmp_path: Path, stalled_port: int
) -> None:
    make_results(finished, tmp_path, stalled_port, names=BAD)

    started = time.monotonic()
    done = sweeps("status", "--timeout", str(TIMEOUT_S), cwd=tmp_path)
    elapsed = time.monotonic() - started

    assert done.returncode == 2, done.stdout + done.stderr
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == len(BAD), done.stderr
    for name, line in zip(BAD, lines, strict=True):
        assert line.startswith(f"error: results/{name}: "), line
        assert re.search(WHY[name].format(port=stalled_port), line), (name, line)
    assert "Traceback" not in done.stderr


def test_open_storage_gives_up_on_a_database_that_never_answers(
    tmp_path: Path, stalled_port: int
) -> None:
    url = f"postgresql://sweeps@127.0.0.1:{stalled_port}/sweeps"
    outcome: dict[str, str] = {}

    def open_it() -> None:
        try:
            open_storage(url, study_dir=tmp_path, timeout_s=TIMEOUT_S)
        except ValueError as exc:
            outcome["error"] = str(exc)

    opening = threading.Thread(target=open_it, daemon=True)
    opening.start()
    opening.join(TIMEOUT_S + MARGIN_S)
    assert not opening.is_alive(), "no bound on connecting (psycopg's own is 130 s)"
    assert outcome["error"].startswith(f"cannot open storage {url}: "), outcome
    assert "timeout" in outcome["error"]


def test_a_journal_lock_that_is_not_released_holds_status_up_no_longer_than_its_timeout(
    finished: Path, tmp_path: Path
) -> None:
    # A journal whose last record was cut short is repaired under its lock when opened; the lock
    # is held (a writer on a stalled file system) and is broken only after the grace period.
    results = make_results(finished, tmp_path, 0, names=("good",))
    journal = clone(finished, results, "locked") / "study.journal"
    with journal.open("ab") as f:
        f.write(b'{"op_code":6,"worker_id":"w","trial_id":0,"st')
    whole = journal.read_bytes()
    (journal.parent / "study.journal.lock").symlink_to(journal)
    env = {**os.environ, "SWEEPS_JOURNAL_LOCK_GRACE_S": "300"}

    started = time.monotonic()
    done = sweeps("status", "--timeout", str(TIMEOUT_S), cwd=tmp_path, env=env, timeout=60)
    elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < TIMEOUT_S + MARGIN_S, f"the journal lock held status {elapsed:.0f} s"
    assert "trials   1/1 finished" in done.stdout
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("locked ")]
    assert re.search(rf"cannot be read: no answer from journal file {journal} in \d+ s; ", line)
    assert "raise --timeout" in line, line
    assert journal.read_bytes() == whole and (journal.parent / "study.journal.lock").is_symlink()


@pytest.mark.parametrize("value", ["inf", "0"])
def test_a_storage_timeout_out_of_range_exits_2_naming_it(tmp_path: Path, value: str) -> None:
    by_option = sweeps("status", "--timeout", value, cwd=tmp_path)
    by_env = sweeps("status", cwd=tmp_path, env={**os.environ, "SWEEPS_STORAGE_TIMEOUT_S": value})
    for done, name in ((by_option, "--timeout"), (by_env, "SWEEPS_STORAGE_TIMEOUT_S")):
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr == (
            f"error: {name} must be a number of seconds from 0.1 to 86400, not '{value}'\n"
        )


# --------------------------------------------------------------------------------- --watch


class Lines:
    """A process's stdout, read line by line in a thread as it comes."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no line like {pattern!r} in:\n" + "\n".join(self.seen[-30:])
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            assert line is not None, "stdout closed:\n" + "\n".join(self.seen[-30:])
            self.seen.append(line)
            if re.search(pattern, line):
                return line


def test_status_watch_goes_on_through_a_damaged_journal_and_a_stalled_database(
    finished: Path, tmp_path: Path, stalled_port: int
) -> None:
    results = make_results(finished, tmp_path, stalled_port, names=("good", "stalled-pg"))
    journal = results / "good" / "study.journal"
    whole = journal.read_bytes()
    process = subprocess.Popen(
        [sys.executable, "-m", "mixer_sweeps", "status", "--watch", "--interval", "0.2"]
        + ["--timeout", str(TIMEOUT_S)],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(process)
        lines.wait_for(r"^  trials   1/1 finished")
        last = whole.splitlines(keepends=True)[-1]
        with journal.open("ab") as f:  # damaged while it is watched: a line, then more records
            f.write(b"not a record\n" + last)
        damaged = lines.wait_for(r"^good  results/good  cannot be read: ")
        line = whole.count(b"\n") + 1
        assert f"{journal}, line {line}: not a journal record" in damaged, damaged
        mended = journal.with_name("mended")
        mended.write_bytes(whole)
        mended.replace(journal)  # shown again at the next refresh
        lines.wait_for(r"^  trials   1/1 finished")
        assert process.poll() is None, "status --watch ended on a refresh that failed"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert stderr.strip() == "interrupted", stderr
    blocks = [b for b in "\n".join(lines.seen).split("--- ") if b.strip()]
    assert len(blocks) >= 3
    for block in blocks[:-1]:  # the last may be cut short by Ctrl-C
        stalled = [line for line in block.splitlines() if line.startswith("stalled-pg ")]
        assert len(stalled) == 1 and f"127.0.0.1:{stalled_port}" in stalled[0], block


# ------------------------------------------------------------------- Ctrl-C, also in a pipe

# As a script runs `sweeps ... | cat &`: job control is off, so the background job starts with
# SIGINT ignored; `$!` is the sweeps process, `wait` gives its exit code.
BACKGROUND_IN_A_PIPE = (
    '{ "$0" -m mixer_sweeps "$@" 2>err & echo $! >pid; wait $!; echo $? >code; } | cat >out'
)


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["status", "--watch", "--interval", "0.2"], r"1/1 finished"),
        (["dashboard", "results/good", "--port", "0"], r"dashboard: http://127\.0\.0\.1:\d+/"),
    ],
    ids=["status-watch", "dashboard"],
)
def test_ctrl_c_ends_a_background_job_in_a_pipe_with_130(
    finished: Path, tmp_path: Path, args: list[str], shown: str
) -> None:
    make_results(finished, tmp_path, 0, names=("good",))
    shell = subprocess.Popen(
        ["sh", "-c", BACKGROUND_IN_A_PIPE, sys.executable, *args],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        out = tmp_path / "out"
        while not (out.is_file() and re.search(shown, out.read_text())):
            if shell.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nothing shown: {(tmp_path / 'err').read_text()}")
            time.sleep(0.2)
        pid = int((tmp_path / "pid").read_text())
        os.kill(pid, signal.SIGINT)
        shell.wait(timeout=30)
    finally:
        if shell.poll() is None:
            with open(tmp_path / "pid") as f:
                os.kill(int(f.read()), signal.SIGKILL)
            shell.wait()
    err = (tmp_path / "err").read_text()
    assert (tmp_path / "code").read_text().strip() == "130", err
    assert "Traceback" not in err, err
    if args[0] == "dashboard":
        assert (tmp_path / "out").read_text().endswith("dashboard stopped\n")
    else:
        assert err.strip() == "interrupted", err
