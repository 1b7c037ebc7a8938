"""Whether the worker of a running trial is alive: who it is, its heartbeat, and the one rule.

Liveness lives in the storage, where every worker of a study sees it, whatever folder it runs in:

- Identity. Each trial stores who runs it (the ``worker`` user attr, a :class:`WorkerIdentity`):
  host name, pid, the kernel's boot id, the pid namespace, the process's start time (field 22 of
  ``/proc/<pid>/stat``, so a pid used again by another process is not taken for the worker) and
  a random id.
- Heartbeat. While a trial runs, a daemon thread of its worker (:class:`WorkerPresence`) stamps
  the trial's ``heartbeat`` system attr with ``time.time()`` every ``SWEEPS_HEARTBEAT_INTERVAL_S``
  seconds (default 30), through the storage API, so the journal file carries it as well as SQL.

:func:`why_abandoned` is the rule. A worker on this host (in this boot and pid namespace) is
judged by its process alone: its trial is abandoned when no process with its pid and start time
is left (or only its zombie), and never while that process lives, however late its heartbeat. Any
other worker is judged by its last sign of life (its heartbeat, or its start before the first
one): abandoned once that is older than ``SWEEPS_HEARTBEAT_GRACE_S`` seconds (default 120, at
least three heartbeat intervals) by this worker's clock, so hosts' clocks must agree to well
within the grace period (NTP does). A host name alone does not prove that a worker's process
table is ours to read (containers and cloned machines share names), so another boot id or pid
namespace under the same name is left to the heartbeat too: a rebooted host's trials are
recovered one grace period after their last heartbeat.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps.results import TrialAttr as attr
from mixer_sweeps.results import TrialRecord
from mixer_sweeps.study._storage import heartbeat_grace_s, heartbeat_interval_s


@dataclass(frozen=True)
class WorkerIdentity:
    """A worker process, as a trial stores it (see the module docstring for each part)."""

    host: str
    pid: int
    boot_id: str | None
    pid_ns: str | None
    start_time: int | None
    """Clock ticks from boot to the process's start; None where there is no ``/proc``."""
    id: str

    @classmethod
    def of_this_process(cls) -> WorkerIdentity:
        pid = os.getpid()
        host = socket.gethostname()
        return cls(
            host=host,
            pid=pid,
            boot_id=_boot_id(),
            pid_ns=_pid_namespace(),
            start_time=_start_time(pid),
            id=f"{host}-{pid}-{secrets.token_hex(4)}",
        )

    @classmethod
    def from_attr(cls, value: Any) -> WorkerIdentity | None:
        """The identity a trial's ``worker`` attr holds; None for anything else."""
        if not isinstance(value, Mapping) or not isinstance(value.get("pid"), int):
            return None
        return cls(
            host=str(value.get("host", "")),
            pid=value["pid"],
            boot_id=value.get("boot_id"),
            pid_ns=value.get("pid_ns"),
            start_time=value.get("start_time"),
            id=str(value.get("id", "")),
        )

    def attr(self) -> dict[str, Any]:
        """The ``worker`` user attr (JSON values)."""
        return asdict(self)

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}"

    def is_local(self) -> bool:
        """Whether this worker runs where this process does: its process table is ours to read."""
        return (self.host, self.boot_id, self.pid_ns) == (
            socket.gethostname(),
            _boot_id(),
            _pid_namespace(),
        )

    def is_gone(self) -> bool:
        """Whether this worker has provably ended: only a worker whose processes we can see."""
        return self.is_local() and not _process_alive(self.pid, self.start_time)

    def lives_here(self) -> bool:
        """Whether this worker's process provably lives on this host: its pid and start time
        (without a start time, a pid used again could be taken for it)."""
        return (
            self.start_time is not None
            and self.is_local()
            and _process_alive(self.pid, self.start_time)
        )


def why_abandoned(
    trial: TrialRecord | FrozenTrial, *, grace_s: float | None = None, now: float | None = None
) -> str | None:
    """Why the RUNNING ``trial`` is abandoned by its worker, or None while that may be alive.

    ``grace_s`` defaults to ``SWEEPS_HEARTBEAT_GRACE_S``, ``now`` to ``time.time()``.
    """
    record = trial if isinstance(trial, TrialRecord) else TrialRecord.from_trial(trial)
    if record.state != TrialState.RUNNING:
        return None
    worker = WorkerIdentity.from_attr(record.worker)
    if worker is not None and worker.is_gone():
        return f"worker {worker.name} ended during the trial"
    if worker is not None and worker.lives_here():
        return None  # its heartbeat may be late (a loaded machine), never its process
    grace = heartbeat_grace_s() if grace_s is None else grace_s
    signs = [record.heartbeat, record.started.timestamp() if record.started else None]
    last = max((s for s in signs if s is not None), default=None)
    silent = (time.time() if now is None else now) - last if last is not None else None
    if silent is None or silent <= grace:
        return None
    who = f"worker {worker.name}" if worker is not None else "its worker (unknown)"
    return f"{who} sent no heartbeat for {silent:.0f} s (grace {grace:g} s)"


class WorkerPresence:
    """A worker process's presence in the storage: its identity and its trials' heartbeat.

    Use it as a context for the worker's life; wrap each trial it runs in :meth:`running`. One
    daemon thread stamps the running trial every ``interval_s`` seconds (default
    ``SWEEPS_HEARTBEAT_INTERVAL_S``); :meth:`running` stamps it once at once.
    """

    def __init__(self, storage: BaseStorage, *, interval_s: float | None = None) -> None:
        self.storage = storage
        self.identity = WorkerIdentity.of_this_process()
        self.interval_s = float(heartbeat_interval_s() if interval_s is None else interval_s)
        self._trial_id: int | None = None
        self._unfinished: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def info(self) -> dict[str, Any]:
        """What a trial stores about the worker that runs it (the ``worker`` user attr)."""
        return self.identity.attr()

    def __enter__(self) -> WorkerPresence:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="sweeps-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            # A stamp stuck on a locked database must not hold the worker's exit.
            self._thread.join(timeout=5)
            self._thread = None

    @contextlib.contextmanager
    def running(self, trial_id: int) -> Iterator[None]:
        """Heartbeats for trial ``trial_id`` while the block runs.

        The trial stays "unfinished" after the block until :meth:`told` says that this worker
        ended it; see :meth:`taken`.
        """
        self._unfinished = trial_id
        self._stamp(trial_id)
        self._trial_id = trial_id
        try:
            yield
        finally:
            self._trial_id = None

    def told(self, study: Any, trial: FrozenTrial) -> None:
        """An Optuna callback (it runs after the trial was told): this worker ended its trial."""
        self._unfinished = None

    def taken(self) -> FrozenTrial | None:
        """The last trial this worker ran, if another worker ended it first (it took this one
        for dead, and this worker's tell failed); None otherwise."""
        trial_id, self._unfinished = self._unfinished, None
        if trial_id is None:
            return None
        trial = self.storage.get_trial(trial_id)
        return trial if trial.state.is_finished() else None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            trial_id = self._trial_id
            if trial_id is not None:
                self._stamp(trial_id)

    def _stamp(self, trial_id: int) -> None:
        try:
            self.storage.set_trial_system_attr(trial_id, attr.HEARTBEAT, time.time())
        except UpdateFinishedTrialError:
            pass  # ended meanwhile, by this worker or by another that took it for dead
        except Exception:  # a storage hiccup: the next beat tries again, the grace allows it
            pass


# ------------------------------------------------------------------------------ this machine


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _boot_id() -> str | None:
    return _read("/proc/sys/kernel/random/boot_id")


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _stat(pid: int) -> list[str] | None:
    """Fields 3 on of ``/proc/<pid>/stat`` (after the command name, which may hold spaces)."""
    text = _read(f"/proc/{pid}/stat")
    if text is None or ")" not in text:
        return None
    return text[text.rindex(")") + 1 :].split()


def _start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[22 - 3]) if fields is not None and len(fields) > 19 else None


def _process_alive(pid: int, start_time: int | None) -> bool:
    """Whether process ``pid`` lives and is the one that started at ``start_time``."""
    if Path("/proc/self/stat").exists():
        fields = _stat(pid)
        if fields is None or fields[0] in ("Z", "X"):  # none, or a zombie nobody reaped yet
            return False
        return start_time is None or int(fields[22 - 3]) == start_time
    try:  # no /proc: a pid used again cannot be told from the worker
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
