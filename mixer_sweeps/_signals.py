"""Ctrl-C and SIGTERM: stop cleanly the first time, at once the second."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def graceful_interrupts() -> Iterator[None]:
    """The first SIGINT or SIGTERM raises ``KeyboardInterrupt`` in the main thread.

    The epoch in progress is abandoned; the checkpoint of the last finished epoch stays, and
    trackers are finished on the way out. Any further signal gets the default action, so a second
    Ctrl-C ends the process at once even if clean-up hangs.
    """

    def first(signum: int, frame: object) -> None:
        for s in _SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, first) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
