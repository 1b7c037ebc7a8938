"""Tracking must never cost a result: time-limited calls, and what the process has learnt.

Every wandb call runs on a helper thread with a time limit (:func:`_bounded`). What one call
learns (the server is unreachable, wandb is wedged) is kept for the whole process in
:data:`_state`, so one outage costs one time-out and one warning, not one per trial.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any


class TrackingWarning(UserWarning):
    """A tracker could not do its job; training went on without it (or with less of it)."""


class _ProcessState:
    """What this process has learnt about W&B, so one outage costs one time-out and one warning."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.online_failed = False
        self.broken = False
        """An offline run could not start, or a call hung: W&B is off for the process."""
        self.warned: set[str] = set()


_state = _ProcessState()


def _reset_state() -> None:
    """Forget earlier failures and warnings (for tests)."""
    _state.reset()


def _warn_once(key: str, message: str) -> None:
    with _state.lock:
        if key in _state.warned:
            return
        _state.warned.add(key)
    warnings.warn(message, TrackingWarning, stacklevel=3)


def _env_seconds(name: str, default: float) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


class _CallFailed(RuntimeError):
    """A wandb call raised (anything, even SystemExit) or ran out of time."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def _bounded(
    fn: Callable[[], Any],
    *,
    limit: float,
    what: str,
    on_late: Callable[[Any], None] | None = None,
) -> Any:
    """``fn()`` on a daemon thread; raise :class:`_CallFailed` if it fails or outlives ``limit``.

    A call that gives up leaves the thread behind (Python cannot kill it); ``on_late`` then
    receives the result if it arrives after all, e.g. to finish a run that started too late.
    """
    lock = threading.Lock()
    done = threading.Event()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            value = fn()
        except BaseException as exc:  # wandb may even raise SystemExit
            box["error"] = exc
        else:
            with lock:
                box["value"] = value
                late = box.get("abandoned", False)
            if late and on_late is not None:
                with contextlib.suppress(BaseException):
                    on_late(value)
        finally:
            done.set()

    threading.Thread(target=target, name=f"wandb-{what}", daemon=True).start()
    if not done.wait(limit):
        with lock:
            if "value" not in box:
                box["abandoned"] = True
                raise _CallFailed(f"{what} did not return within {limit:g} s", timed_out=True)
    if "error" in box:
        exc = box["error"]
        raise _CallFailed(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    return box.get("value")
