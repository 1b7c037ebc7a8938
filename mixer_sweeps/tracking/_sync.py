"""``wandb sync`` run as a child process: in a session of its own, waited for within a bound,
and ended together with the wandb-core service it starts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

SYNC_NOTE_S = 30.0
"""While `wandb sync` runs, ``on_wait`` is told this often that it still waits."""


def sync_offline_runs(
    runs: Sequence[Path],
    *,
    dry_run: bool,
    timeout: float,
    on_wait: Callable[[float], None] = lambda waited: None,
) -> int | None:
    """Upload ``runs`` with ``wandb sync`` (never prompting): its exit code, or None when
    ``timeout`` seconds (0: never) passed first. Whatever happens (the time-out, Ctrl-C), the
    process and what it started are killed before this returns."""
    command = [sys.executable, "-m", "wandb", "sync", "--yes", *(["--dry-run"] * dry_run)]
    # wandb writes its own logs into WANDB_DIR/wandb, by default the current folder's: beside
    # the offline runs instead (<results>/<name>/wandb/), never where the user happens to be.
    env = dict(os.environ)
    if runs:
        env.setdefault("WANDB_DIR", str(Path(runs[0]).absolute().parent.parent))
    # Its own session and process group, so that stopping it ends wandb-core as well.
    process = subprocess.Popen(
        [*command, *map(str, runs)], stdin=subprocess.DEVNULL, start_new_session=True, env=env
    )
    try:
        return _wait(process, timeout, on_wait)
    finally:
        _end_process_group(process)


def _wait(
    process: subprocess.Popen, timeout: float, on_wait: Callable[[float], None]
) -> int | None:
    started = time.monotonic()
    while True:
        waited = time.monotonic() - started
        step = SYNC_NOTE_S if not timeout else min(SYNC_NOTE_S, timeout - waited)
        if step <= 0:
            return None
        try:
            return process.wait(timeout=step)
        except subprocess.TimeoutExpired:
            waited = time.monotonic() - started
            if not timeout or waited < timeout:
                on_wait(waited)


def _end_process_group(process: subprocess.Popen) -> None:
    """Kill what is left of ``process``'s group (the process, the wandb-core it started)."""
    with contextlib.suppress(ProcessLookupError):  # all gone already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
