"""Where a study keeps its trials.

The default is Optuna's journal file under ``<results>/<name>/``: an append-only log that several
local processes share safely and that survives crashes. ``sqlite:///...``, ``postgresql://...``
and ``mysql://...`` URLs use :class:`optuna.storages.RDBStorage`. The URL comes from, in order: the
``--storage`` option, the ``SWEEPS_STORAGE`` environment variable, ``study.storage``.

On every storage a running trial records a heartbeat every ``SWEEPS_HEARTBEAT_INTERVAL_S`` seconds
(default 30); one silent for ``SWEEPS_HEARTBEAT_GRACE_S`` seconds (default 120), or whose worker
on this host has ended, is failed and queued again by the next worker that claims a trial (see
``_liveness``; Optuna's own RDB heartbeat is not used). Raise the grace period when a worker can
stall for longer than that (a loaded cluster node, a slow shared disk); lower both to recover
sooner.

A journal file is named by its absolute path (Optuna's lock is a symlink to it, which must resolve
from the lock's folder). Its lock is bounded and talkative: a wait longer than
``LOCK_NOTICE_S`` says which lock file it waits for and how to clear it, and a lock unchanged for
``SWEEPS_JOURNAL_LOCK_GRACE_S`` seconds (default 30; a write holds it for milliseconds) was left
by a process killed while writing and is broken. A record cut short (a full disk, a killed
writer) is saved aside as ``<journal>.torn-<time>`` and cut off when the journal is opened, with
one warning; any other damaged line is an error that names the file and the line.

A command that only reads a study (``sweeps status``) waits at most ``SWEEPS_STORAGE_TIMEOUT_S``
seconds (default 10) for its storage: it passes that bound to the driver (PostgreSQL's
``connect_timeout``, SQLite's lock wait) and gives up on a read that takes longer (see
``_cmd_status``), so a database that accepts connections but never answers, or a stalled file
system, holds it up for no longer. Workers wait as long as it takes.

Creating the tables of a new SQL database races when several workers start at once; creation is
retried a few times after a short random pause, so they all succeed.
"""

from __future__ import annotations

import math
import os
import random
import re
import time
import warnings
from pathlib import Path
from typing import Any

from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalStorage

from mixer_sweeps.results import StudyLayout
from mixer_sweeps.study._journal import JournalFile, env_seconds, notice

STORAGE_ENV = "SWEEPS_STORAGE"
HEARTBEAT_INTERVAL_ENV = "SWEEPS_HEARTBEAT_INTERVAL_S"
HEARTBEAT_GRACE_ENV = "SWEEPS_HEARTBEAT_GRACE_S"
HEARTBEAT_INTERVAL_S = 30
HEARTBEAT_GRACE_S = 120
GRACE_INTERVALS = 3
"""The heartbeat grace must span this many heartbeat intervals (a late beat or two is no death)."""
"""A wait for the journal lock longer than this says what it waits for."""
CREATE_ATTEMPTS = 6
"""Tries to open a new SQL database whose tables other workers are creating at the same time."""
STORAGE_TIMEOUT_ENV = "SWEEPS_STORAGE_TIMEOUT_S"
STORAGE_TIMEOUT_S = 10.0
STORAGE_TIMEOUT_RANGE = (0.1, 86_400.0)

_RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
_JOURNAL_PREFIX = "journal:"


def resolve_storage(option: str | None, file_value: str | None) -> str | None:
    """The storage URL to use; None means the default journal file."""
    for value in (option, os.environ.get(STORAGE_ENV), file_value):
        if value:
            return value
    return None


def check_storage_url(url: str | None) -> None:
    """Raise ValueError, naming ``url``, when it is not a storage this project opens.

    Nothing is written: a ``journal:`` path that names a folder is refused here.
    """
    if url is None:
        return
    if url.startswith(_JOURNAL_PREFIX):
        given = url.removeprefix(_JOURNAL_PREFIX)
        path = Path(given).expanduser()
        if not given.strip():
            raise ValueError("storage 'journal:' names no file: give journal:PATH")
        if path.is_dir() or given.endswith(("/", os.sep)):
            raise ValueError(
                f"storage {url!r} names a folder, not a journal file: give a file, e.g."
                f" journal:{path / 'study.journal'}"
            )
        return
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in _RDB_SCHEMES or "://" not in url:
        raise ValueError(
            f"unsupported storage {redact(url)!r}: expected sqlite:///PATH,"
            " postgresql://USER:PASSWORD@HOST/DB, mysql://... or journal:PATH"
        )


def journal_path(url: str | None, study_dir: Path) -> Path | None:
    """The absolute path of the journal file a storage URL names (the default one for None).

    None for RDB URLs. Absolute, because Optuna's lock is a symlink to this path: a relative one
    would not resolve from the lock's folder, and the lock could never be found stale.
    """
    if url is None:
        return Path(os.path.abspath(StudyLayout(study_dir).journal))
    if url.startswith(_JOURNAL_PREFIX):
        return Path(os.path.abspath(Path(url.removeprefix(_JOURNAL_PREFIX)).expanduser()))
    return None


def open_storage(
    url: str | None, *, study_dir: Path, timeout_s: float | None = None
) -> BaseStorage:
    """Open the storage ``url`` names; each process opens its own.

    ``timeout_s`` bounds the database driver's waits (connecting to PostgreSQL, SQLite's lock);
    None keeps a worker's (no bound on connecting, 60 s for SQLite's lock).

    Raises:
        ValueError: a bad URL, a storage that cannot be opened, a damaged journal.
        OSError: the journal's folder cannot be written.
    """
    check_storage_url(url)
    heartbeat_interval_s(), heartbeat_grace_s()  # a bad setting fails here, not in a worker
    path = journal_path(url, study_dir)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFile(path)
        try:
            backend.repair_tail()
        except OSError as exc:  # a read-only copy (a report): the reader skips the torn record
            notice(f"{path} ends in a record cut short that cannot be cut off here: {exc}")
        return JournalStorage(backend)
    assert url is not None
    engine_kwargs = _engine_kwargs(url, timeout_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        for attempt in range(CREATE_ATTEMPTS):
            try:
                return RDBStorage(url, engine_kwargs=engine_kwargs)
            except Exception as exc:  # sqlalchemy and the DB drivers raise many kinds
                if attempt + 1 < CREATE_ATTEMPTS and _creation_race(exc):
                    # Another process is creating the tables: let it finish, then look again.
                    time.sleep(random.uniform(0.05, 0.15) * 2**attempt)
                    continue
                text = str(exc).strip()
                reason = text.splitlines()[0] if text else type(exc).__name__
                raise ValueError(f"cannot open storage {redact(url)}: {redact(reason)}") from None
    raise AssertionError("unreachable")


def _engine_kwargs(url: str, timeout_s: float | None) -> dict[str, Any]:
    backend, _, driver = url.split("://", 1)[0].partition("+")
    if backend == "sqlite":
        # Workers write at once; wait for SQLite's lock instead of failing at once.
        return {"connect_args": {"timeout": 60 if timeout_s is None else timeout_s}}
    # libpq's connect_timeout (psycopg's too) bounds the whole handshake, a server that accepts
    # and never answers included; without it psycopg waits 130 s. libpq's least is 2 s.
    if timeout_s is None or backend != "postgresql" or driver not in ("", "psycopg", "psycopg2"):
        return {}
    if "connect_timeout=" in url:  # the URL's own wins
        return {}
    return {"connect_args": {"connect_timeout": max(2, math.ceil(timeout_s))}}


def storage_timeout_s(given: float | None = None, *, option: str = "--timeout") -> float:
    """Seconds a command that reads a study waits for its storage: ``given`` (its ``option``),
    else ``SWEEPS_STORAGE_TIMEOUT_S``, else 10.

    Raises:
        ValueError: the value is not a number of seconds in ``STORAGE_TIMEOUT_RANGE``.
    """
    if given is not None:
        source, value, seconds = option, f"{given:g}", float(given)
    else:
        source, value = STORAGE_TIMEOUT_ENV, os.environ.get(STORAGE_TIMEOUT_ENV, "").strip()
        if not value:
            return STORAGE_TIMEOUT_S
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
    low, high = STORAGE_TIMEOUT_RANGE
    if not low <= seconds <= high:
        raise ValueError(
            f"{source} must be a number of seconds from {low:g} to {high:g}, not {value!r}"
        )
    return seconds


def _creation_race(exc: BaseException) -> bool:
    """Whether ``exc`` says another process created a table or row that this one was creating."""
    import sqlalchemy.exc

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.IntegrityError):
            return True
        text = str(seen).lower()
        if any(m in text for m in ("already exists", "duplicate key", "unique constraint")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def heartbeat_interval_s() -> int:
    """Seconds between two heartbeats of a running trial (``SWEEPS_HEARTBEAT_INTERVAL_S``)."""
    return env_seconds(HEARTBEAT_INTERVAL_ENV, HEARTBEAT_INTERVAL_S)


def heartbeat_grace_s() -> int:
    """Seconds without a heartbeat that abandon a running trial (``SWEEPS_HEARTBEAT_GRACE_S``).

    Raises:
        ValueError: a grace shorter than :data:`GRACE_INTERVALS` heartbeat intervals, which
            would take live workers on other hosts for dead between two of their heartbeats.
    """
    grace = env_seconds(HEARTBEAT_GRACE_ENV, HEARTBEAT_GRACE_S)
    interval = heartbeat_interval_s()
    if grace < GRACE_INTERVALS * interval:
        grace_set, interval_set = (
            f"{name}={value}" + ("" if os.environ.get(name, "").strip() else " (the default)")
            for name, value in ((HEARTBEAT_GRACE_ENV, grace), (HEARTBEAT_INTERVAL_ENV, interval))
        )
        raise ValueError(
            f"{grace_set} must be at least {GRACE_INTERVALS} times {interval_set}, that is"
            f" {GRACE_INTERVALS * interval} s, so that a live worker is not taken for dead"
            " between two heartbeats; raise the grace or lower the interval"
        )
    return grace


def describe_storage(url: str | None, study_dir: Path) -> str:
    path = journal_path(url, study_dir)
    if path is not None:
        return f"journal file {path}"
    assert url is not None
    return redact(url)


def redact(url: str) -> str:
    """``url`` without its password."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
