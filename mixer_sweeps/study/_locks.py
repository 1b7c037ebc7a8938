"""``flock`` on a file: the kernel drops it when its process ends, however it ends."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FileLock:
    """An exclusive ``flock`` on ``path``, taken and released as often as needed.

    A process that dies (``kill -9`` included) never leaves it taken: a mutex between the
    workers that share a folder (the claim lock).
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        """Raises FileNotFoundError when ``path`` does not exist and ``create`` is False."""
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        self.held = False

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take the lock; without ``blocking``, False at once when another process holds it."""
        assert self._fd is not None, "the lock was closed"
        flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(self._fd, flags)
        except BlockingIOError:
            return False
        self.held = True
        return True

    def release(self) -> None:
        if self.held and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self.held = False

    def close(self) -> None:
        self.release()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
