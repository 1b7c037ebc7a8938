"""Faults of the machine, not of a trial's configuration: they stop a study and fail no trial.

A full disk or quota, a read-only or unwritable folder, a failing disk, a dataset that is not
there, a device the machine does not have: every trial would meet it again, so the study stops
with one message (``sweeps run`` exits 2) and the trials it cut short are queued again, to run
once the machine is put right. Found anywhere in an exception's chain (``raise ... from``, or
raised while handling one), so a :class:`~mixer_sweeps.training.CheckpointError` over a full
disk, or Optuna's own error after it failed to record a trial on one, counts too.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from mixer_sweeps.data import DatasetUnavailable
from mixer_sweeps.training import DeviceUnavailable

_FULL = "free some space (or raise the quota)"
_UNWRITABLE = "make it writable, or give another folder with {elsewhere}"
MACHINE_ERRNOS: dict[int, str] = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: _FULL,
    errno.EFBIG: _FULL,
    errno.EROFS: _UNWRITABLE,
    errno.EACCES: _UNWRITABLE,
    errno.EPERM: _UNWRITABLE,
    errno.EIO: "check the disk",
}
"""OS errors that are the machine's, with what to do about each."""


def machine_fault(
    exc: BaseException, *, elsewhere: str = "--results or --storage", trials: bool = True
) -> str | None:
    """One line for people when ``exc`` is a fault of the machine; None when it is not.

    ``elsewhere``: the options that choose another folder; ``trials``: say that the trials cut
    short are queued again (``sweeps run``'s case, not that of a command that trains nothing).
    """
    for cause in _chain(exc):
        if isinstance(cause, (DatasetUnavailable, DeviceUnavailable)):
            return str(cause)
        if isinstance(cause, OSError) and cause.errno in MACHINE_ERRNOS:
            return describe_os_error(cause, outer=exc, elsewhere=elsewhere, trials=trials)
    return None


def describe_os_error(
    exc: OSError,
    *,
    outer: BaseException | None = None,
    elsewhere: str = "--results or --storage",
    trials: bool = True,
) -> str:
    """``exc`` for people, with what to do; ``outer`` (that wraps it) may tell the file."""
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else type(exc).__name__)
    if exc.filename:
        reason = f"{reason} ({exc.filename})"
    elif outer is not None and outer is not exc and reason in str(outer):
        # "could not write checkpoint PATH: No space left on device; ...": it names the file.
        reason = str(outer).split(";")[0].strip()
    todo = MACHINE_ERRNOS.get(exc.errno or 0, "put it right").format(elsewhere=elsewhere)
    queued = "; trials cut short are queued to run again" if trials else ""
    return f"{reason}: {todo}, then run the same command again{queued}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
