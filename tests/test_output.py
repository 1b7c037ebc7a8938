"""What the commands show when their output is not a terminal, and how `sweeps sync` waits.

Real ``sweeps`` processes with their output in a pipe, read line by line as it comes: a log must
get a line per epoch and per trial as they happen, and whole tables. And a real `wandb sync`
against a W&B server that never answers: it says what it waits for, and a signal ends it with
every process it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, TINY_RUN, logged, pid_alive, sweeps_cmd, wait_until
from mixer_sweeps.spec import apply_overrides, load_run_spec


def _env(home: Path, **extra: str) -> dict[str, str]:
    """No terminal width, unbuffered output, W&B login or mode from outside; HOME in the test's
    folder."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WANDB_")
        and k not in ("COLUMNS", "NETRC", "FORCE_COLOR", "PYTHONUNBUFFERED")
    }
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), **extra}


def _spec(path: Path, **overrides: Any) -> Path:
    path.write_text(yaml.safe_dump(apply_overrides(TINY_RUN, overrides)), encoding="utf-8")
    return path


def _piped(
    command: list[str], env: dict[str, str], stderr: Path
) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """``command`` with its stdout in a pipe (as in ``sweeps ... | tee log``), in its own
    session; killed with its group at the end if still alive."""
    return logged(command, stderr, stdout=subprocess.PIPE, env=env, cwd=REPO, text=True)


def test_train_in_a_pipe_prints_each_epoch_as_it_ends(tmp_path: Path) -> None:
    # 30 epochs: stopped after the second line, so lines that came only at the end fail this.
    spec = _spec(tmp_path / "tiny.yaml", **{"optim.epochs": 30})
    command = sweeps_cmd("train", spec, "--out", tmp_path / "run")
    with _piped(command, _env(tmp_path / "home"), tmp_path / "stderr") as process:
        assert process.stdout is not None
        lines = []
        while len([x for x in lines if " epoch " in x]) < 2:
            line = process.stdout.readline()
            assert line, f"sweeps train ended before its second epoch line: {lines}"
            lines.append(line)
        assert process.poll() is None, "the epoch lines came only when the run was over"
        process.send_signal(signal.SIGINT)
        lines += process.stdout.readlines()
        assert process.wait(timeout=60) == 130
    epochs = [x.split()[2] for x in lines if x.startswith("tiny-digits  epoch ")]
    assert epochs[:2] == ["1/30", "2/30"], lines
    assert epochs == [f"{n}/30" for n in range(1, len(epochs) + 1)], lines  # one line each
    assert len(epochs) < 30
    line = next(x for x in lines if " epoch 1/30 " in x)
    for word in ("loss ", "val acc ", "best ", "img/s"):
        assert word in line
    assert "interrupted after epoch" in (tmp_path / "stderr").read_text()


def _write_study(path: Path, **overrides: Any) -> Path:
    run = apply_overrides(TINY_RUN, {"tracking.wandb.mode": "auto", **overrides})
    document = {
        "study": {
            "name": "piped",
            "n_trials": 3,
            "sampler": {"type": "random", "seed": 0},
            "pruner": {"type": "none"},
        },
        "fixed": {"optim.epochs": 2, "optim.warmup_epochs": 0},
        "space": {
            "model.token_mlp_dim": {"choices": [8, 16]},
            "model.channel_mlp_dim": {"choices": [16, 32]},
            "optim.lr": {"low": 1e-3, "high": 1e-2, "log": True},
        },
        "run": run,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_run_in_a_pipe_prints_each_trial_whole_tables_and_where_wandb_runs_went(
    tmp_path: Path,
) -> None:
    study = _write_study(tmp_path / "study.yaml")
    results = tmp_path / "results"
    command = sweeps_cmd("run", study, "--results", results)
    arrived: list[tuple[float, str]] = []
    with _piped(command, _env(tmp_path / "home"), tmp_path / "stderr") as process:
        assert process.stdout is not None
        for line in process.stdout:
            arrived.append((time.monotonic(), line))
        assert process.wait(timeout=300) == 0, (tmp_path / "stderr").read_text()
        ended = time.monotonic()
    lines = [line for _, line in arrived]
    output = "".join(lines)
    trials = [(t, x) for t, x in arrived if x.startswith("  trial ")]
    assert [x.split()[1] for _, x in trials] == ["0", "1", "2"], output
    # Two more trials and the report came after the first trial's line: it came as it happened.
    assert ended - trials[0][0] > 1.0, output

    # Whole tables: nothing cut short, full column names, rows wider than 80 columns.
    assert "…" not in output, output
    tables = [x for x in lines if "│" in x or "┃" in x]
    assert tables, output
    header = next(x for x in tables if "┃" in x and "channel_mlp_dim" in x)
    assert "token_mlp_dim" in header
    assert max(len(x.rstrip("\n")) for x in tables) > 80

    # With no W&B key, the study's runs are offline and the last lines say where.
    wandb_dir = results / "piped" / "wandb"
    runs = sorted(wandb_dir.glob("offline-run-*"))
    assert len(runs) == 4  # three trials and the study's run
    said = next(x for x in lines if x.startswith("W&B: "))
    assert f"4 offline runs in {wandb_dir}/" in said
    assert f"wandb leet {wandb_dir}" in said
    assert f"sweeps sync {results / 'piped'}" in said


def test_shipped_main_job_writes_wandb_runs() -> None:
    # The quickstart's base: offline runs without a key, nothing with WANDB_MODE=disabled.
    assert load_run_spec(REPO / "specs" / "digits.yaml").tracking.wandb.mode == "auto"


def test_torch_threads_sleep_when_idle(tmp_path: Path) -> None:
    code = "import os, mixer_sweeps; print(os.environ['OMP_WAIT_POLICY'])"
    env = _env(tmp_path)
    env.pop("OMP_WAIT_POLICY", None)
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert shown.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a choice of the user's stays
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert shown.stdout.strip() == "ACTIVE"


@pytest.mark.parametrize(
    ("cpu_max", "expected"), [("150000 100000\n", 1), ("max 100000\n", None), (None, None)]
)
def test_default_threads_stay_within_a_cpu_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str | None, expected: int | None
) -> None:
    import torch

    from mixer_sweeps.training import _build

    cgroup = tmp_path / "cpu.max"  # what docker run --cpus 1.5 shows a container
    if cpu_max is not None:
        cgroup.write_text(cpu_max)
    monkeypatch.setattr(_build, "CGROUP_CPU_MAX", cgroup)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert _build.set_threads(None) == (expected or 2) == torch.get_num_threads()
        assert _build.set_threads(3) == 3 == torch.get_num_threads()  # train.threads wins
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------- sweeps sync


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder holding one offline W&B run, from a real one-epoch `sweeps train`."""
    folder = tmp_path_factory.mktemp("offline")
    spec = _spec(folder / "tiny.yaml", **{"optim.epochs": 1, "tracking.wandb.mode": "offline"})
    done = subprocess.run(
        sweeps_cmd("train", spec, "--out", folder / "run"),
        env=_env(folder / "home"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert list((folder / "run" / "wandb").glob("offline-run-*"))
    return folder / "run"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A W&B host that takes every connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for connection in held:
            connection.close()


def _descendants(pid: int) -> set[int]:
    """Living (not zombie) processes below ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sync_says_what_it_waits_for_and_a_signal_ends_its_children(
    tmp_path: Path, offline_run: Path, silent_server: str, signum: int
) -> None:
    env = _env(tmp_path / "home", WANDB_BASE_URL=silent_server, WANDB_API_KEY="x" * 40)
    command = sweeps_cmd("sync", offline_run, "--timeout", 120)
    with _piped(command, env, tmp_path / "stderr") as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        # Said before any waiting: the server, the time limit and how to stop.
        assert silent_server in first and "120 s" in first and "Ctrl-C" in first, first
        children: set[int] = set()

        def wandb_core() -> bool:
            children.update(_descendants(process.pid))
            return any("wandb-core" in _cmdline(p) for p in children)

        stderr = tmp_path / "stderr"
        wait_until(wandb_core, "wandb-core started", process=process, log=stderr, every=0.2)
        process.send_signal(signum)
        code = process.wait(timeout=30)
    try:
        deadline = time.monotonic() + 5
        while any(pid_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {p: _cmdline(p) for p in children if pid_alive(p)}
        assert not left, f"still running after sweeps sync ended: {left}"
    finally:
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    assert code == 130
    assert "sync stopped; the runs stay on disk" in (tmp_path / "stderr").read_text()
    assert list(offline_run.glob("wandb/offline-run-*/*.wandb"))
