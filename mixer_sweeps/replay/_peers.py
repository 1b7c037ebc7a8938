"""Peers: other libraries' own schedulers against the same curves and the same noise.

The peers live in an environment of their own (``.venv-peers``, made by ``scripts/setup-peers``:
DEHB pins numpy < 2, which must never reach the project's environment) and are driven through a
child process speaking JSON lines (``_peer_child``):

- ``dehb``: DEHB's own ask/tell optimiser on this package's simulated workers (a job at fidelity
  ``b`` trains ``b`` epochs from scratch, as DEHB does; a job at the full fidelity is a complete
  trial).
- ``syne-asha`` and ``syne-bohb``: Syne Tune's ``ASHA`` and ``BOHB`` baselines on Syne Tune's
  own simulator for tabulated blackboxes (``UserBlackboxBackend`` over ``BlackboxTabular``), with
  as many simulated workers. Its tuner advances the simulated clock in steps of
  ``tuner_sleep_time``, set here to half the shortest epoch, so a stop decision reaches its trial
  before that trial's next epoch ends, as it does on this package's clock (Syne Tune's default of
  5 s would let a stopped digits trial train several more epochs).
- ``syne-moasha``: Syne Tune's ``MOASHA`` (random configurations, successive halving by
  non-dominated sorting of val accuracy and params at each rung) on the same simulator, for
  replays with several objectives (``--objectives``); measured by its front's hypervolume.

Each replay ``r`` gives every configuration the recorded seed that the policies' replay ``r``
trains first, so peers and policies meet the same noise. Their trials are measured like a
policy's, with the same winner rule over the trials that trained every epoch.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import TrialState

from mixer_sweeps.replay._clock import Job, Reuse, Settled, Trace, Wait, simulate
from mixer_sweeps.replay._front import (
    FrontOutcome,
    FrontScale,
    FrontSummary,
    Objectives,
    measure_front,
)
from mixer_sweeps.replay._metrics import BUDGETS, Outcome, Summary, WinnerRule, best_named, measure
from mixer_sweeps.replay._policies import SINGLE
from mixer_sweeps.replay._run import available_cores
from mixer_sweeps.replay._table import Curves
from mixer_sweeps.results import TrialRecord

PEERS_ENV = "SWEEPS_PEERS_PYTHON"
"""The python of the peers' environment, if not ``.venv-peers/bin/python`` of the checkout."""
CHILD = Path(__file__).with_name("_peer_child.py")
ETA = 3
"""The peers' reduction factor, as the policies' ``reduction_factor`` (Syne Tune's default)."""


@dataclass(frozen=True)
class Peer:
    name: str
    library: str
    """The PyPI distribution whose version is reported."""
    description: str
    front: bool = False
    """Searches for several objectives (a front), not one."""


PEERS: dict[str, Peer] = {
    "syne-asha": Peer("syne-asha", "syne-tune", "Syne Tune ASHA (random search, stopping)"),
    "syne-bohb": Peer("syne-bohb", "syne-tune", "Syne Tune BOHB (KDE searcher, ASHA stopping)"),
    "dehb": Peer("dehb", "dehb", "DEHB (differential evolution, Hyperband fidelities)"),
    "syne-moasha": Peer(
        "syne-moasha",
        "syne-tune",
        "Syne Tune MOASHA (random search, stopping by non-dominated sorting)",
        front=True,
    ),
}


class PeerError(RuntimeError):
    """The peers' environment is missing, or its child process failed."""


def peer_python() -> Path | None:
    """The peers' python: ``$SWEEPS_PEERS_PYTHON``, else ``.venv-peers`` of this checkout or of
    the current folder; None if there is none."""
    given = os.environ.get(PEERS_ENV)
    if given:
        return Path(given)
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = root / ".venv-peers" / "bin" / "python"
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def installed_peers() -> dict[str, str]:
    """Each installed peer's name and its library's version (empty without the environment)."""
    python = peer_python()
    if python is None:
        return {}
    try:
        with _Child(python) as child:
            versions = child.call({"op": "versions"})
    except PeerError:
        return {}
    return {name: versions[p.library] for name, p in PEERS.items() if p.library in versions}


class _Child:
    """The child process in the peers' environment."""

    def __init__(self, python: Path) -> None:
        self.python = python
        self.log = tempfile.TemporaryFile(mode="w+", prefix="sweeps-peer-")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [str(python), str(CHILD)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.log,
                text=True,
                env={**os.environ, "PYTHONNOUSERSITE": "1", "PYTHONPATH": ""},
            )
        except OSError as exc:
            self.log.close()
            raise PeerError(f"cannot start the peers' python {python}: {exc.strerror}") from None

    def call(self, request: dict[str, Any]) -> Any:
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self.process.wait()
            self.log.seek(0)
            tail = self.log.read()[-2000:].strip()
            raise PeerError(
                f"the peers' process ({self.python}) ended with code {self.process.returncode}"
                + (f":\n{tail}" if tail else "")
            )
        return json.loads(line)

    def __enter__(self) -> _Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.log.close()


def _params(curves: Curves) -> dict[str, list[Any]]:
    return {dim.path: list(dim.grid()) for dim in curves.space}


class DehbDriver:
    """DEHB's ask/tell on the simulated workers: a job trains its fidelity (rounded to whole
    epochs) from scratch and is told its best val accuracy (as a loss: its negative)."""

    def __init__(self, child: _Child, curves: Curves, *, seed: int, first_seed: np.ndarray):
        self.child = child
        self.curves = curves
        self.first_seed = first_seed
        self.asked = 0
        child.call(
            {
                "op": "dehb_init",
                "params": _params(curves),
                "epochs": curves.epochs,
                "eta": ETA,
                "seed": seed,
            }
        )

    def ask(self, worker: int) -> Job | Reuse | Wait | None:
        job = self.child.call({"op": "dehb_ask"})
        config = self.curves.index(job["config"])
        epochs = min(self.curves.epochs, max(1, round(job["fidelity"])))
        number, self.asked = self.asked, self.asked + 1
        seeds = (int(self.first_seed[config]),)
        return Job(number, config, seeds, epochs, handle=job["id"])

    def report(self, job: Job, epoch: int, value: float) -> bool:
        return False

    def finish(self, job: Job, pruned: bool, best: tuple[float, ...]) -> TrialRecord:
        cost = float(self.curves.seconds[job.config, job.seeds[0], : job.epochs].sum())
        self.child.call({"op": "dehb_tell", "id": job.handle, "fitness": -best[0], "cost": cost})
        full = job.epochs == self.curves.epochs
        return _record(job.number, self.curves.configs[job.config], full, best[0], job.epochs)

    def take(self, wait: Wait, twin: TrialRecord) -> TrialRecord:
        raise AssertionError("DEHB's jobs never wait for a twin")


def _record(number: int, params: dict, full: bool, best: float, epochs: int) -> TrialRecord:
    return TrialRecord(
        number=number,
        state=TrialState.COMPLETE if full else TrialState.PRUNED,
        params=dict(params),
        value=best if full else None,
        best=(best,),
        epochs=(epochs,),
    )


def trace_from_rows(curves: Curves, rows: Sequence[Sequence[Any]]) -> Trace:
    """A Syne Tune run's results (trial, config, epoch, val_acc, time; in time order) as a trace:
    a trial ends at its last result, complete if that is the last epoch."""
    last = {int(r[0]): i for i, r in enumerate(rows)}
    best: dict[int, float] = {}
    trace = Trace()
    for i, (trial, config, epoch, value, at) in enumerate(rows):
        trace.spent += 1
        trace.time = float(at)
        trace.reports.append((float(at), int(trial), int(epoch), float(value)))
        best[trial] = max(best.get(trial, -np.inf), float(value))
        if last[trial] == i:
            full = int(epoch) == curves.epochs
            record = _record(int(trial), curves.configs[config], full, best[trial], int(epoch))
            trace.end(float(at), int(config), record)
    return trace


def run_peer(
    curves: Curves,
    name: str,
    *,
    workers: Sequence[int],
    repeats: int,
    budget: int,
    rule: WinnerRule = best_named,
    seed_orders: Callable[[int], np.ndarray],
    objectives: Objectives = SINGLE,
    jobs: int | None = None,
    on_done: Callable[[Summary | FrontSummary], None] = lambda s: None,
) -> list[Summary | FrontSummary]:
    """``repeats`` replays of peer ``name`` with each number of ``workers``.

    Args:
        budget: epochs (see :func:`~mixer_sweeps.replay.budget_epochs`).
        seed_orders: replay ``r``'s seed order (:func:`~mixer_sweeps.replay.seed_order`).
        objectives: several for a peer that searches for a front (measured by hypervolume,
            run until the budget is spent).
    """
    if name not in PEERS:
        raise PeerError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    multi = len(objectives) > 1
    if PEERS[name].front != multi:
        raise PeerError(
            f"peer {name} searches for {'several objectives' if PEERS[name].front else 'one'}"
            f" but the replay has {len(objectives)}"
        )
    python = peer_python()
    if python is None or name not in installed_peers():
        raise PeerError(
            f"peer {name} is not installed: run scripts/setup-peers (it makes .venv-peers), or"
            f" set {PEERS_ENV} to a python that has {PEERS[name].library}"
        )
    targets = set() if multi else set(curves.near_best().tolist())
    horizon = budget if multi else max(BUDGETS) * curves.grid_epochs
    scale = FrontScale.of(curves, objectives) if multi else None

    def replays(n: int, chosen: Sequence[int]) -> list[Outcome | FrontOutcome]:
        outcomes = []
        with _Child(python) as child:
            for r in chosen:
                first = seed_orders(r)[:, 0]
                if name == "dehb":
                    driver = DehbDriver(child, curves, seed=r, first_seed=first)
                    trace = simulate(
                        curves, driver, workers=n, budget=budget, enough=Settled(targets, horizon)
                    )
                else:
                    trace = _syne_trace(child, curves, name, n, budget, r, first, targets, horizon)
                if scale is not None:
                    outcomes.append(measure_front(scale, trace))
                else:
                    outcomes.append(measure(curves, trace, rule=rule))
        return outcomes

    # The peers' work is done in their child processes: threads here keep every core busy.
    jobs = min(jobs or available_cores(), repeats)
    chunks = [list(range(i, repeats, jobs)) for i in range(jobs)]
    summaries = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for n in workers:
            started = time.perf_counter()
            parts = list(pool.map(replays, [n] * len(chunks), chunks))
            by_replay = {
                r: o
                for chunk, part in zip(chunks, parts, strict=True)
                for r, o in zip(chunk, part, strict=True)
            }
            outcomes = [by_replay[r] for r in range(repeats)]
            seconds = time.perf_counter() - started
            summary: Summary | FrontSummary
            if multi:
                summary = FrontSummary(
                    name,
                    n,
                    tuple(outcomes),
                    seconds=seconds,
                    description=PEERS[name].description,
                    grid_epochs=curves.grid_epochs,
                    budget=budget / curves.grid_epochs,
                )
            else:
                summary = Summary.of(
                    name, n, outcomes, seconds=seconds, description=PEERS[name].description
                )
            summaries.append(summary)
            on_done(summary)
    return summaries


def _syne_trace(
    child: _Child,
    curves: Curves,
    name: str,
    workers: int,
    budget: int,
    replay: int,
    first: np.ndarray,
    targets: set[int],
    horizon: float,
) -> Trace:
    configs = np.arange(len(curves.configs))
    val = curves.val_acc[configs, first, :]
    seconds = curves.seconds[configs, first, :]
    params = _params(curves)
    rows = child.call(
        {
            "op": "syne",
            "scheduler": name.removeprefix("syne-"),
            "params": params,
            "configs": [[c[p] for p in params] for c in curves.configs],
            "val": val.tolist(),
            "seconds": seconds.tolist(),
            "workers": workers,
            "budget": budget,
            "seed": replay,
            "sleep": max(1e-3, float(curves.seconds.min()) / 2),
            "targets": sorted(targets),
            "horizon": horizon,
            "num_params": list(curves.num_params) if name == "syne-moasha" else None,
        }
    )["rows"]
    return trace_from_rows(curves, rows[:budget])


def peer_versions() -> str:
    """``syne-tune 0.16.0, dehb 0.1.2`` for the installed peers."""
    versions = {PEERS[n].library: v for n, v in installed_peers().items()}
    return ", ".join(f"{lib} {v}" for lib, v in versions.items()) or "none installed"
