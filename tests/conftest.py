from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture(scope="session")
def digits():
    from mixer_sweeps.data import load_dataset

    return load_dataset("digits", val_size=287)


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
