"""A study shared by two workers through a real PostgreSQL server (its own throwaway cluster)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState
from test_study import make_study

from mixer_sweeps.study import count_trials, run_study

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres_user(args: list[str]) -> list[str]:
    # initdb refuses to run as root; CI runs as root, so hand the cluster to the postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
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
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgres_study_and_a_rerun_adds_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    study_file = make_study(
        tmp_path,
        {"optim.lr": {"choices": [1e-3, 3e-3, 1e-2, 3e-2]}},
        sampler={"type": "grid", "seed": 0},
        pruner={"type": "none"},
        n_trials=4,
    )
    run = run_study(study_file, workers=2, results_dir=tmp_path, storage=postgres_url)
    assert not run.errors and run.fatal is None
    assert all(t.state == TrialState.COMPLETE for t in run.trials)
    assert sorted(t.params["optim.lr"] for t in run.trials) == [1e-3, 3e-3, 1e-2, 3e-2]
    assert len({t.user_attrs["worker"]["pid"] for t in run.trials}) == 2
    assert not (tmp_path / "tiny" / "study.journal").exists()

    again = run_study(study_file, workers=2, results_dir=tmp_path, storage=postgres_url)
    assert again.added == 0
    assert count_trials(again.trials).finished == 4
