from __future__ import annotations

import contextlib
import copy
import itertools
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixer_sweeps.spec import RunSpec, apply_overrides

REPO = Path(__file__).resolve().parents[1]

# A run that trains in about a second on two CPU cores: the tests' workhorse.
TINY_RUN: dict[str, Any] = {
    "name": "tiny-digits",
    "seed": 0,
    "data": {"dataset": "digits", "val_size": 287},
    "model": {
        "patch_size": 2,
        "embed_dim": 16,
        "depth": 1,
        "token_mlp_dim": 8,
        "channel_mlp_dim": 32,
    },
    "augment": {
        "random_crop": True,
        "crop_padding": 1,
        "hflip": False,
        "randaugment": None,
        "mixup_alpha": 0.0,
        "random_erasing": 0.0,
        "label_smoothing": 0.1,
    },
    "optim": {
        "lr": 3e-3,
        "batch_size": 128,
        "epochs": 3,
        "warmup_epochs": 1,
        "min_lr": 1e-5,
        "early_stopping_patience": None,
    },
    "train": {"device": "cpu", "threads": 1},
    "tracking": {"wandb": {"mode": "disabled"}},
}


def tiny_spec(**overrides: Any) -> RunSpec:
    """The tiny run with dotted-path overrides: ``tiny_spec(**{"optim.lr": 0.1})``."""
    return RunSpec.model_validate(apply_overrides(TINY_RUN, overrides))


def tiny_run(**changes: Any) -> dict[str, Any]:
    """The tiny run with dotted-path changes, as a dict to write (unchecked, so it can be bad)."""
    data = copy.deepcopy(TINY_RUN)
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return data


# ------------------------------------------------------------------ finished tiny studies

TINY_FIXED: dict[str, Any] = {"optim.epochs": 4, "optim.warmup_epochs": 0, "optim.min_lr": 0.0}
"""Four epochs: room for the median pruner (from epoch 2) to stop a trial."""

MIXED_GRID: dict[str, Any] = {
    "model.embed_dim": {"choices": [16, 24]},
    "model.depth": {"choices": [1, 2]},
    "optim.lr": {"choices": [3e-2, 1e-7, 1e6]},
}
"""lr 1e6 makes the loss non-finite (FAIL); lr 1e-7 stays at chance and the median pruner stops
it; lr 3e-2 completes."""


def write_tiny_study(path: Path, name: str, space: dict[str, Any], **study: Any) -> Path:
    """The study file ``name`` over ``space``, the tiny run with :data:`TINY_FIXED`."""
    document = {
        "study": {"name": name, **study},
        "fixed": TINY_FIXED,
        "space": space,
        "run": TINY_RUN,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def run_tiny(tmp: Path, name: str, space: dict[str, Any], **study: Any) -> Path:
    """Runs the study ``tmp/NAME.yaml`` in ``tmp/results``; returns its results folder."""
    from mixer_sweeps.spec import load_study_file
    from mixer_sweeps.study import run_study

    path = write_tiny_study(tmp / f"{name}.yaml", name, space, **study)
    run_study(load_study_file(path), results_dir=tmp / "results")
    return tmp / "results" / name


@pytest.fixture(scope="session")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The finished study ``grid`` over :data:`MIXED_GRID` (complete, pruned and failed trials)
    with its report, trained once for every test that reads it: copy it to change it."""
    from mixer_sweeps.report import write_report
    from mixer_sweeps.results import load_results

    study_dir = run_tiny(
        tmp_path_factory.mktemp("grid"),
        "grid",
        MIXED_GRID,
        sampler={"type": "grid", "seed": 1},
        pruner={"type": "median", "min_epochs": 2, "startup_trials": 2},
    )
    write_report(load_results(study_dir))
    return study_dir


@pytest.fixture
def no_wandb_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh wandb session that sees no credentials, server or settings but the test's own:
    no ``WANDB_*`` or ``NETRC`` variable, HOME in ``tmp_path``, before and after the test."""
    import wandb

    from mixer_sweeps.tracking import _guard

    for name in list(os.environ):
        if name.startswith("WANDB_") or name == "NETRC":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    # wandb freezes its settings (base URL, keys) at first use in a process.
    wandb.teardown()
    _guard._reset_state()
    yield
    wandb.teardown()
    _guard._reset_state()


@pytest.fixture(scope="session")
def digits():
    from mixer_sweeps.data import load_dataset

    return load_dataset("digits", val_size=287)


@pytest.fixture(scope="session")
def checkpoint_state() -> dict[str, Any]:
    """A real checkpoint of the tiny run (3 epochs) after its first epoch; copy it to damage it."""
    from mixer_sweeps.training import Trainer

    trainer = Trainer(RunSpec.model_validate(TINY_RUN))
    trainer.run_epoch()
    return trainer.state_dict()


# ------------------------------------------------------------------ processes, polls, files
# Commands run as `python -m mixer_sweeps` rather than .venv/bin/sweeps, so that scripts/mutants'
# copies (which set PYTHONPATH) are what runs.

HANG_S = 60.0
"""Wall seconds after which a command that the tests wait for counts as hung."""


def sweeps_cmd(*args: object) -> list[str]:
    """The command line of ``sweeps ARGS``."""
    return [sys.executable, "-m", "mixer_sweeps", *map(str, args)]


def plain_env(**extra: str) -> dict[str, str]:
    """This environment, with a wide terminal and no storage from outside."""
    return {**os.environ, "COLUMNS": "200", "SWEEPS_STORAGE": "", **extra}


def sweeps(
    *args: object,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """``sweeps ARGS`` to its end, its output captured as text; ``timeout`` only a hang reaches."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        sweeps_cmd(*args),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


@dataclass(frozen=True)
class Took:
    wall: float
    cpu: float


def run_timed(
    command: list[str], *, timeout: float = HANG_S, **kwargs: Any
) -> tuple[subprocess.CompletedProcess[str], Took]:
    """``command`` to its end in a session of its own (its group killed after), its output
    captured as text, with the wall and CPU seconds it took.

    CPU rather than wall time for limits: other jobs on a shared machine stretch wall time
    several-fold.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{command} still running after {timeout} s:\n{out}\n{err}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    return subprocess.CompletedProcess(command, process.returncode, out, err), Took(wall, cpu)


@contextlib.contextmanager
def logged(command: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen]:
    """``command`` in its own session, its output (stderr, and stdout unless given) in ``log``.

    At the end it is killed with its group if it is still alive, and only then: what outlives a
    command that ended is for the test to see.
    """
    with log.open("w") as output:
        kwargs.setdefault("stdout", output)
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stderr=output, start_new_session=True, **kwargs
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def race_for_the_last_trial(study: Path, url: str, tmp_path: Path) -> list[Path]:
    """Two ``sweeps run`` of ``study`` on one storage, from folders ``a`` and ``b`` of
    ``tmp_path``, that count the study in the same instant (the test-only claim delay holds each
    between counting and claiming); both must exit 0. Returns their logs."""
    from mixer_sweeps.study._worker import CLAIM_DELAY_ENV

    env = {**os.environ, CLAIM_DELAY_ENV: "4"}
    with contextlib.ExitStack() as stack:
        processes = []
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            command = sweeps_cmd("run", study, "--results", "results", "--storage", url)
            log = folder / "log"
            processes.append((stack.enter_context(logged(command, log, cwd=folder, env=env)), log))
        for process, log in processes:
            assert process.wait(timeout=120) == 0, log.read_text()
    return [log for _, log in processes]


def wait_until(
    condition: Callable[[], object],
    what: str,
    *,
    process: subprocess.Popen | None = None,
    log: Path | None = None,
    timeout: float = HANG_S,
    every: float = 0.05,
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds, or as soon as
    ``process`` has ended. The message holds ``log``, else what ``process`` said in its pipes."""

    def said() -> str:
        if log is not None:
            return log.read_text()
        if process is not None and process.poll() is not None:
            return "".join(filter(None, process.communicate()))
        return ""

    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None:
            assert process.poll() is None, f"ended before {what}:\n{said()}"
        assert time.monotonic() < deadline, f"no {what} after {timeout:g} s:\n{said()}"
        time.sleep(every)


def on_another_host(command: list[str], host: str = "other-host") -> list[str]:
    """``command`` in a UTS namespace of its own named ``host``: this host cannot look its
    processes up, only its heartbeat tells. Skips where ``unshare --uts`` is not allowed."""
    probe = subprocess.run(["unshare", "--uts", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot give a worker another host name (unshare --uts): {probe.stderr!r}")
    return ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is no zombie (read from /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def study_trials(study_dir: Path, storage: str | None = None) -> list[Any]:
    """The trials of the study ``tiny`` on ``storage`` (default: ``study_dir``'s journal file);
    none before the study exists."""
    import optuna

    from mixer_sweeps.study import open_storage

    if storage is None and not (study_dir / "study.journal").exists():
        return []
    try:
        study = optuna.load_study(
            study_name="tiny", storage=open_storage(storage, study_dir=study_dir)
        )
    except KeyError:
        return []
    return study.get_trials()


def storage_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A storage of ``kind``: a SQLite file in ``tmp_path``, or an empty PostgreSQL database."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


def unwritable_folder(tmp: Path) -> Path:
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


def markdown_table(text: str, title: str) -> list[list[str]]:
    """The rows (header first) of the Markdown table under ``## title``."""
    block = text.split(f"## {title}\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in block]
    return [rows[0], *rows[2:]]


def _pg_bin() -> Path | None:
    """``$PG_BIN``, else the newest ``/usr/lib/postgresql/<major>/bin`` that has ``initdb``."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    return max(
        found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else -1, default=None
    )


PG_BIN = _pg_bin()
_databases = itertools.count()


def _as_postgres_user(args: list[str]) -> list[str]:
    # initdb refuses to run as root; CI runs as root, so hand the cluster to the postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a loopback port: its URL without a database."""
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip(
            "PostgreSQL server not installed: no initdb in $PG_BIN or /usr/lib/postgresql/*/bin."
            " scripts/setup --dev installs it when run as root where apt-get works (Debian's"
            " postgresql package); elsewhere install a PostgreSQL server and set PG_BIN to the"
            " folder holding initdb and pg_ctl"
        )
    # pytest's temp folders are private to root; the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="sweeps-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres_user(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off"
    subprocess.run(
        _as_postgres_user(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-w",
                "-l",
                str(root / "server.log"),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database of the throwaway cluster, so tests never see each other's studies."""
    import sqlalchemy

    name = f"test_{next(_databases)}"
    engine = sqlalchemy.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    finally:
        engine.dispose()
    return f"{postgres_server}/{name}"
