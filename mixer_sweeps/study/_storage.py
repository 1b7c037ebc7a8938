"""Where a study keeps its trials.

The default is Optuna's journal file under ``<results>/<name>/``: an append-only log that several
local processes share safely and that survives crashes. ``sqlite:///...``, ``postgresql://...``
and ``mysql://...`` URLs use :class:`optuna.storages.RDBStorage` with a heartbeat, so the trials of
a worker that died anywhere are failed and queued again. The URL comes from, in order: the
``--storage`` option, the ``SWEEPS_STORAGE`` environment variable, ``study.storage``.

A running trial records a heartbeat every ``SWEEPS_HEARTBEAT_INTERVAL_S`` seconds (default 30);
one silent for ``SWEEPS_HEARTBEAT_GRACE_S`` seconds (default 120) is failed and queued again by
the next worker that claims a trial. Raise the grace period when a worker can stall for longer
than that (a loaded cluster node, a slow shared disk); lower both to recover sooner.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage

from mixer_sweeps.study._layout import StudyLayout
from mixer_sweeps.study._recovery import requeue_trial

STORAGE_ENV = "SWEEPS_STORAGE"
HEARTBEAT_INTERVAL_ENV = "SWEEPS_HEARTBEAT_INTERVAL_S"
HEARTBEAT_GRACE_ENV = "SWEEPS_HEARTBEAT_GRACE_S"
HEARTBEAT_INTERVAL_S = 30
HEARTBEAT_GRACE_S = 120

_RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
_JOURNAL_PREFIX = "journal:"


def resolve_storage(option: str | None, file_value: str | None) -> str | None:
    """The storage URL to use; None means the default journal file."""
    for value in (option, os.environ.get(STORAGE_ENV), file_value):
        if value:
            return value
    return None


def check_storage_url(url: str | None) -> None:
    """Raise ValueError, naming ``url``, when it is not a storage this project opens."""
    if url is None or url.startswith(_JOURNAL_PREFIX):
        return
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in _RDB_SCHEMES or "://" not in url:
        raise ValueError(
            f"unsupported storage {redact(url)!r}: expected sqlite:///PATH,"
            " postgresql://USER@HOST/DB, mysql://... or journal:PATH"
        )


def journal_path(url: str | None, study_dir: Path) -> Path | None:
    """The journal file a storage URL names (the default one for None); None for RDB URLs."""
    if url is None:
        return StudyLayout(study_dir).journal
    if url.startswith(_JOURNAL_PREFIX):
        return Path(url.removeprefix(_JOURNAL_PREFIX)).expanduser()
    return None


def open_storage(url: str | None, *, study_dir: Path) -> BaseStorage:
    """Open the storage ``url`` names; each process opens its own."""
    check_storage_url(url)
    path = journal_path(url, study_dir)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    assert url is not None
    heartbeat_interval = _env_seconds(HEARTBEAT_INTERVAL_ENV, HEARTBEAT_INTERVAL_S)
    grace_period = _env_seconds(HEARTBEAT_GRACE_ENV, HEARTBEAT_GRACE_S)
    engine_kwargs = {}
    if url.startswith("sqlite"):
        # Workers write at once; wait for SQLite's lock instead of failing at once.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        try:
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=requeue_trial,
            )
        except Exception as exc:  # sqlalchemy and the DB drivers raise many kinds
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"cannot open storage {redact(url)}: {reason}") from None


def _env_seconds(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ValueError(f"{name} must be a whole number of seconds of at least 1, not {value!r}")
    return seconds


def describe_storage(url: str | None, study_dir: Path) -> str:
    path = journal_path(url, study_dir)
    if path is not None:
        return f"journal file {path}"
    assert url is not None
    return redact(url)


def redact(url: str) -> str:
    """``url`` without its password."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
