"""One W&B run whose every call is bounded in time and never raises: what trackers build on.

Runs live in ``<results_dir>/wandb/`` (wandb adds the ``wandb/`` to the ``dir`` it is given).
A failed online start falls back to offline, a failed offline start to nothing; a call that
fails drops W&B for this run, one that hangs for the whole process (see :mod:`._guard`). wandb
is imported only when a run starts: importing this module is free.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer_sweeps.tracking._guard import (
    _bounded,
    _CallFailed,
    _env_seconds,
    _state,
    _warn_once,
)

if TYPE_CHECKING:
    from mixer_sweeps.spec import WandbSpec

# Overridable with wandb's own variables (WANDB_INIT_TIMEOUT, WANDB_FINISH_TIMEOUT), read at
# each run start rather than from wandb's settings, which wandb freezes at its first use.
INIT_TIMEOUT_S = 30.0
FINISH_TIMEOUT_S = 60.0
# Extra time the watchdog grants beyond wandb's own limits before it gives up on a call.
GRACE_S = 15.0
OFFLINE_INIT_LIMIT_S = 60.0
LOG_LIMIT_S = 30.0


def _run_id(*parts: str) -> str:
    """A fresh id: readable prefix plus a random suffix, so no retry reuses an earlier run."""
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-.")[:48]
    return f"{prefix}-{secrets.token_hex(4)}"


class _GuardedRun:
    """One wandb run whose calls are all bounded in time and never raise."""

    def __init__(
        self,
        *,
        mode: str,
        root: Path,
        wandb_spec: WandbSpec,
        group: str,
        job_type: str,
        name: str,
        id_parts: tuple[str, ...],
    ) -> None:
        self.mode = mode
        self.root = root
        self.wandb_spec = wandb_spec
        self.group = group
        self.job_type = job_type
        self.name = name
        self.id_parts = id_parts
        self.run: Any = None

    @property
    def path(self) -> Path | None:
        """The run's folder (``.../wandb/offline-run-<time>-<id>``), once started."""
        return Path(self.run.dir).parent if self.run is not None else None

    @property
    def url(self) -> str | None:
        return self.run.url if self.run is not None and self.mode == "online" else None

    def open(self, config: dict[str, Any]) -> bool:
        if self.mode == "online":
            if self._init("online", config):
                return True
            self.mode = "disabled" if _state.broken else "offline"
        if self.mode == "offline" and self._init("offline", config):
            return True
        self.mode = "disabled"
        return False

    def _init(self, mode: str, config: dict[str, Any]) -> bool:
        import wandb

        init_timeout = _env_seconds("WANDB_INIT_TIMEOUT", INIT_TIMEOUT_S)
        settings: dict[str, Any] = {"console": "off", "init_timeout": init_timeout}
        if "WANDB_SILENT" not in os.environ and "WANDB_QUIET" not in os.environ:
            settings["silent"] = True
        if mode == "online":
            settings["finish_timeout"] = _env_seconds("WANDB_FINISH_TIMEOUT", FINISH_TIMEOUT_S)
        spec = self.wandb_spec
        # A failed online start keeps its id busy inside wandb's service: every attempt gets
        # a new id.
        run_id = _run_id(*self.id_parts)

        def init() -> Any:
            # wandb warns about a git root that does not exist yet.
            self.root.mkdir(parents=True, exist_ok=True)
            return wandb.init(
                project=spec.project,
                entity=spec.entity,
                tags=list(spec.tags),
                group=self.group,
                job_type=self.job_type,
                name=self.name,
                id=run_id,
                dir=self.root,
                mode=mode,
                config=config,
                reinit="create_new",
                settings=wandb.Settings(**settings),
            )

        limit = init_timeout + GRACE_S if mode == "online" else OFFLINE_INIT_LIMIT_S
        try:
            self.run = _bounded(init, limit=limit, what="wandb.init", on_late=_finish_quietly)
        except _CallFailed as exc:
            if mode == "online":
                _state.online_failed = True
                _warn_once(
                    "online-init",
                    f"W&B online run could not start ({exc}); this and later runs of this"
                    f" process are written offline under {self.root / 'wandb'} instead;"
                    " upload them later with `sweeps sync`.",
                )
            else:
                _state.broken = True
                _warn_once(
                    "offline-init",
                    f"W&B is off for this process: an offline run could not start ({exc}).",
                )
            return False
        return True

    def call(self, what: str, fn: Callable[[Any], Any], *, scale: float = 1.0) -> bool:
        """``fn(run)``; on failure warn once and stop using W&B for this run (not for others)."""
        if self.run is None:
            return False
        run = self.run
        try:
            _bounded(lambda: fn(run), limit=LOG_LIMIT_S * scale, what=what)
        except _CallFailed as exc:
            self.run = None
            if exc.timed_out:
                # A hung call means a wedged wandb: later runs of this process go without it.
                _state.broken = True
                _warn_once("hung", f"W&B is off for this process: {exc} in run {self.name}.")
                threading.Thread(target=_finish_quietly, args=(run,), daemon=True).start()
            else:
                _warn_once(f"call-{what}", f"W&B logging stopped for run {self.name}: {exc}")
                with contextlib.suppress(_CallFailed):
                    _bounded(lambda: _finish_quietly(run), limit=LOG_LIMIT_S, what="wandb.finish")
            return False
        return True

    def finish(self, exit_code: int) -> None:
        if self.run is None:
            return
        run, self.run = self.run, None
        limit = (
            _env_seconds("WANDB_FINISH_TIMEOUT", FINISH_TIMEOUT_S) + GRACE_S
            if self.mode == "online"
            else LOG_LIMIT_S
        )
        try:
            _bounded(lambda: run.finish(exit_code=exit_code), limit=limit, what="wandb.finish")
        except _CallFailed as exc:
            if exc.timed_out:
                _state.broken = True
            _warn_once("finish", f"W&B run {self.name} did not finish cleanly: {exc}")


def _finish_quietly(run: Any) -> None:
    with contextlib.suppress(BaseException):
        run.finish(exit_code=1)


def _clean(value: Any) -> Any:
    """A value W&B shows well: None for NaN, JSON text for anything that is not a scalar."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, default=str, sort_keys=True)
