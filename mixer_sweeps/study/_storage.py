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

import contextlib
import json
import math
import os
import random
import re
import sys
import time
import uuid
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage

from mixer_sweeps.study._layout import StudyLayout

STORAGE_ENV = "SWEEPS_STORAGE"
HEARTBEAT_INTERVAL_ENV = "SWEEPS_HEARTBEAT_INTERVAL_S"
HEARTBEAT_GRACE_ENV = "SWEEPS_HEARTBEAT_GRACE_S"
HEARTBEAT_INTERVAL_S = 30
HEARTBEAT_GRACE_S = 120
GRACE_INTERVALS = 3
"""The heartbeat grace must span this many heartbeat intervals (a late beat or two is no death)."""
LOCK_GRACE_ENV = "SWEEPS_JOURNAL_LOCK_GRACE_S"
LOCK_GRACE_S = 30
"""A journal lock unchanged for this long was left by a process that died while writing."""
LOCK_NOTICE_S = 5.0
"""A wait for the journal lock longer than this says what it waits for."""
CREATE_ATTEMPTS = 6
"""Tries to open a new SQL database whose tables other workers are creating at the same time."""
STORAGE_TIMEOUT_ENV = "SWEEPS_STORAGE_TIMEOUT_S"
STORAGE_TIMEOUT_S = 10.0
STORAGE_TIMEOUT_RANGE = (0.1, 86_400.0)

_RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
_JOURNAL_PREFIX = "journal:"


class JournalDamaged(ValueError):
    """A line of a journal file, not its last, is not a journal record."""


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
            _notice(f"{path} ends in a record cut short that cannot be cut off here: {exc}")
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
    return _env_seconds(HEARTBEAT_INTERVAL_ENV, HEARTBEAT_INTERVAL_S)


def heartbeat_grace_s() -> int:
    """Seconds without a heartbeat that abandon a running trial (``SWEEPS_HEARTBEAT_GRACE_S``).

    Raises:
        ValueError: a grace shorter than :data:`GRACE_INTERVALS` heartbeat intervals, which
            would take live workers on other hosts for dead between two of their heartbeats.
    """
    grace = _env_seconds(HEARTBEAT_GRACE_ENV, HEARTBEAT_GRACE_S)
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


def _notice(text: str) -> None:
    """One line for people on stderr (also from worker processes, whose stderr is the same)."""
    try:
        sys.stderr.write(f"warning: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stderr must not stop a study
        pass


# ---------------------------------------------------------------------------------- journal


class JournalLock:
    """Optuna's symlink lock (``<journal>.lock`` -> the journal), bounded and talkative.

    The lock file is the one :class:`optuna.storages.journal.JournalFileSymlinkLock` makes, so
    plain Optuna processes on the same journal (optuna-dashboard) and this lock exclude each
    other. Unlike Optuna's, it reads the lock's own times (``lstat``), so a lock whose link does
    not resolve (left by an older version with a relative path) is still seen to be stale; it
    counts the lock's age from the lock's mtime, so one left long ago is broken at once; it says
    after ``LOCK_NOTICE_S`` what it waits for and how to clear it; and a Ctrl-C while waiting
    leaves another process's lock alone.
    """

    def __init__(self, journal: Path, *, grace_s: float | None = None) -> None:
        self.journal = journal
        self.path = journal.with_name(journal.name + ".lock")
        self.grace_s = float(grace_s if grace_s is not None else _lock_grace())
        self._mine: tuple[int, int] | None = None

    def acquire(self) -> bool:
        started = time.monotonic()
        told = False
        seen: tuple[int, int, int] | None = None
        seen_since = started
        pause = 0.001
        while True:
            try:
                os.symlink(self.journal, self.path)
            except FileExistsError:
                pass
            else:
                st = os.lstat(self.path)
                self._mine = (st.st_dev, st.st_ino)
                return True
            try:
                st = os.lstat(self.path)
            except FileNotFoundError:
                continue  # released between our two calls: try again at once
            now = time.monotonic()
            key = (st.st_dev, st.st_ino, st.st_mtime_ns)
            if key != seen:
                seen, seen_since = key, now
            age = max(time.time() - st.st_mtime, now - seen_since)
            if age > self.grace_s:
                if self._break(st):
                    _notice(
                        f"removed the journal lock {self.path}: unchanged for {age:.0f} s, it was"
                        " left by a process that ended while writing"
                    )
                pause = 0.001
                continue
            if not told and now - started > LOCK_NOTICE_S:
                told = True
                _notice(
                    f"waiting for the journal lock {self.path} (another process is writing to"
                    f" {self.journal.name}, or one was killed while writing); it is broken once"
                    f" unchanged for {self.grace_s:g} s. If no sweeps process uses this study,"
                    f" remove {self.path}"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _break(self, stale: os.stat_result) -> bool:
        """Remove the lock ``stale`` (an lstat of it); False if another process got there first."""
        aside = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.stale")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        moved = os.lstat(aside)
        if (moved.st_dev, moved.st_ino) != (stale.st_dev, stale.st_ino):
            # Another process broke the stale lock and took a fresh one meanwhile: give it back.
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path, follow_symlinks=False)
            os.unlink(aside)
            return False
        os.unlink(aside)
        return True

    def release(self) -> None:
        mine, self._mine = self._mine, None
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return  # broken as stale while held (a very slow write); nothing of ours is left
        if mine is not None and (st.st_dev, st.st_ino) != mine:
            return  # someone else's lock now
        aside = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.release")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        os.unlink(aside)


def _lock_grace() -> int:
    return _env_seconds(LOCK_GRACE_ENV, LOCK_GRACE_S)


class JournalFile(JournalFileBackend):
    """Optuna's journal file, safe against records cut short and clear about damage.

    - :meth:`repair_tail` (on open) saves a last record cut short aside and cuts it off;
    - :meth:`append_logs` never appends after a record cut short, and takes back a write that
      fails part-way (a full disk), so the journal always ends with a whole record;
    - :meth:`read_logs` names the file and line of a damaged record.
    """

    def __init__(self, path: Path, *, lock: JournalLock | None = None) -> None:
        self.path = path
        super().__init__(str(path), lock_obj=lock or JournalLock(path))

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        # Optuna's reader, with line numbers in its errors. A last line without its newline is
        # a record being written by another process: it is read next time.
        with open(self._file_path, "rb") as f:
            remaining = os.fstat(f.fileno()).st_size
            start = 0
            if log_number_from in self._log_number_offset:
                f.seek(self._log_number_offset[log_number_from])
                start = log_number_from
                remaining -= self._log_number_offset[log_number_from]
            for log_number, line in enumerate(f, start=start):
                remaining -= len(line)
                if remaining < 0 or not line.endswith(b"\n"):
                    return
                if log_number + 1 not in self._log_number_offset:
                    self._log_number_offset[log_number + 1] = self._log_number_offset[
                        log_number
                    ] + len(line)
                if log_number < log_number_from:
                    continue
                record = _record(line)
                if record is None:
                    del self._log_number_offset[log_number + 1]
                    raise JournalDamaged(
                        f"{self.path}, line {log_number + 1}: not a journal record"
                        f" ({_excerpt(line)}); the journal is damaged there. Restore it from a"
                        " backup, or delete that line to keep the rest"
                    )
                yield record

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        payload = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        self._lock.acquire()
        try:
            self._cut_torn_tail(check_last_record=False)
            _append(self.path, payload.encode("utf-8"))
        finally:
            self._lock.release()

    def repair_tail(self) -> None:
        """Save aside and cut off a last record that was cut short, under the lock, warning once.

        Cheap when there is nothing to do: only the last record is read, and the lock is taken
        only when it is not whole.
        """
        if _torn_tail(self.path, check_last_record=True) is None:
            return
        self._lock.acquire()
        try:
            self._cut_torn_tail(check_last_record=True)
        finally:
            self._lock.release()

    def _cut_torn_tail(self, *, check_last_record: bool) -> None:
        """With the lock held: cut off a last record cut short, keeping a copy beside the file."""
        start = _torn_tail(self.path, check_last_record=check_last_record)
        if start is None:
            return
        with open(self.path, "rb+") as f:
            f.seek(start)
            tail = f.read()
            aside = self._aside()
            try:
                with open(aside, "xb") as copy:
                    copy.write(tail)
                    copy.flush()
                    os.fsync(copy.fileno())
                saved = f"saved to {aside}"
            except OSError as exc:
                Path(aside).unlink(missing_ok=True)
                saved = f"not saved ({exc.strerror or exc})"
            f.truncate(start)
            f.flush()
            os.fsync(f.fileno())
        _notice(
            f"{self.path} ended in a record cut short (a write that did not finish: a full disk"
            f" or a killed process); its {len(tail)} bytes were {saved} and cut off, and the"
            " study goes on from the last whole record"
        )

    def _aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.torn-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.torn-{stamp}-{n}")
        return aside


def _record(line: bytes) -> dict[str, Any] | None:
    """The journal record on ``line``, or None when it is not one."""
    try:
        record = json.loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    return record if isinstance(record, dict) and "op_code" in record else None


def _excerpt(line: bytes, limit: int = 60) -> str:
    text = line.rstrip(b"\n").decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _torn_tail(path: Path, *, check_last_record: bool) -> int | None:
    """Where the last record of ``path`` starts when it was cut short; None when it is whole.

    Cut short: no newline at the end (a write that stopped part-way) or, with
    ``check_last_record``, a last line that is not a record (a write cut short and then
    continued by an older version that appended after it).
    """
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return None
        f.seek(size - 1)
        whole = f.read(1) == b"\n"
        if whole and not check_last_record:
            return None
        end = size - 1 if whole else size
        start = _line_start(f, end)
        if whole:
            f.seek(start)
            if _record(f.read(size - start)) is not None:
                return None
        return start


def _line_start(f: Any, end: int, chunk: int = 1 << 16) -> int:
    """The offset just after the last newline before ``end`` (0 if none)."""
    pos = end
    while pos > 0:
        begin = max(0, pos - chunk)
        f.seek(begin)
        found = f.read(pos - begin).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        pos = begin
    return 0


def _append(path: Path, data: bytes) -> None:
    """Append ``data`` whole, or take back what reached the file (a full disk) and raise."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        before = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            with contextlib.suppress(OSError):  # else the next open cuts the record off
                os.ftruncate(fd, before)
            raise
        os.fsync(fd)
    finally:
        os.close(fd)
