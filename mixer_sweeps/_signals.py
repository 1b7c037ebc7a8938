"""Ctrl-C and SIGTERM, handled alike everywhere: stop cleanly the first time, at once the second.

Three processes care: ``sweeps train`` (:func:`graceful_interrupts`), a study worker
(:class:`Interrupt`, which never cuts a storage write in half) and the parent of study workers
(:func:`ignored` while it spawns them, then :func:`counted`: it passes the first signal on to
its workers and kills them on the second).
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _in_main_thread() -> bool:
    # Signal handlers can only be set from the main thread (a CliRunner in a thread, say).
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _handled(handler: Callable[[int, object], None] | int) -> Iterator[None]:
    if not _in_main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in INTERRUPT_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextmanager
def graceful_interrupts() -> Iterator[None]:
    """The first SIGINT or SIGTERM raises ``KeyboardInterrupt`` in the main thread.

    The epoch in progress is abandoned; the checkpoint of the last finished epoch stays, and
    trackers are finished on the way out. Any further signal gets the default action, so a second
    Ctrl-C ends the process at once even if clean-up hangs.
    """

    def first(signum: int, frame: object) -> None:
        for s in INTERRUPT_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    with _handled(first):
        yield


@contextmanager
def ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored in the block: processes spawned in it start ignoring them."""
    with _handled(signal.SIG_IGN):
        yield


def redeliver_unraisable_interrupts() -> None:
    """A Ctrl-C that lands while a finalizer or weakref callback runs cannot propagate there, and
    Python would print its traceback and lose it; deliver it to the main thread again instead."""
    previous = sys.unraisablehook

    def hook(info: Any) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt):
            # A moment later, from another thread: raised here, it would be lost in this hook.
            timer = threading.Timer(0.1, _interrupt_main)
            timer.daemon = True
            timer.start()
        else:
            previous(info)

    sys.unraisablehook = hook


def _interrupt_main() -> None:
    """Ctrl-C again, as a signal to the main thread: it also ends a call that blocks there (a
    sleep, a wait), which ``_thread.interrupt_main`` alone would leave to run to its end."""
    if callable(signal.getsignal(signal.SIGINT)):
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]
    else:  # no Python handler would run for the signal (ignored, or the default's kill)
        _thread.interrupt_main()


class Counter:
    """How many SIGINT/SIGTERM arrived; read by a supervising loop at its own pace."""

    def __init__(self) -> None:
        self.presses = 0

    def handle(self, signum: int, frame: object) -> None:
        self.presses += 1

    @contextmanager
    def installed(self) -> Iterator[Counter]:
        with _handled(self.handle):
            yield self


class Interrupt:
    """Ctrl-C (or SIGTERM) in a worker: it stops training at once, elsewhere it asks to stop.

    Optuna's storage writes and the claim of the next trial are never cut in half: outside
    :meth:`armed` blocks a Ctrl-C is only recorded, and the worker loop stops at its next check.
    Later Ctrl-Cs are ignored while the worker cleans up.
    """

    def __init__(self) -> None:
        self.requested = False
        self._armed = False

    def handle(self, signum: int, frame: object) -> None:
        if self.requested:
            return
        self.requested = True
        if self._armed:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupt]:
        """Handle SIGINT and SIGTERM with this object in the block (main thread only)."""
        previous = sys.unraisablehook

        def unraisable(info: Any) -> None:
            # The KeyboardInterrupt raised while a finalizer or weakref callback runs cannot
            # propagate, and Python would print its traceback; the request is recorded anyway,
            # and the worker stops at its next check.
            if not isinstance(info.exc_value, KeyboardInterrupt):
                previous(info)

        sys.unraisablehook = unraisable
        try:
            with _handled(self.handle):
                yield self
        finally:
            sys.unraisablehook = previous

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        """A Ctrl-C inside the block raises KeyboardInterrupt there."""
        if self.requested:
            raise KeyboardInterrupt
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Inside an armed block: hold a Ctrl-C back until the block ends."""
        armed, self._armed = self._armed, False
        try:
            yield
        finally:
            self._armed = armed
        if armed and self.requested:
            raise KeyboardInterrupt
