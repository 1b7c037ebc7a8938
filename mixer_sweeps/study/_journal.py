"""The journal file: its bounded, talkative lock and the repair of a record cut short."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend

LOCK_GRACE_ENV = "SWEEPS_JOURNAL_LOCK_GRACE_S"
LOCK_GRACE_S = 30
"""A journal lock unchanged for this long was left by a process that died while writing."""
LOCK_NOTICE_S = 5.0


class JournalDamaged(ValueError):
    """A line of a journal file, not its last, is not a journal record."""


def env_seconds(name: str, default: int) -> int:
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


def notice(text: str) -> None:
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
                    notice(
                        f"removed the journal lock {self.path}: unchanged for {age:.0f} s, it was"
                        " left by a process that ended while writing"
                    )
                pause = 0.001
                continue
            if not told and now - started > LOCK_NOTICE_S:
                told = True
                notice(
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
    return env_seconds(LOCK_GRACE_ENV, LOCK_GRACE_S)


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
        notice(
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
