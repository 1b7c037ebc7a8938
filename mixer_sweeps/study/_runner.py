"""Run a study: local worker processes that share one storage, and a display fed from it.

Exactly ``n_trials`` trials in total. Before each trial a worker takes the study's claim lock (an
``flock`` on ``<study dir>/claim.lock``), recovers the trials of workers that died, counts the
trials that are finished or running, and asks Optuna for a new trial only while that count is
below ``n_trials``; it lets go of the lock once the new trial is RUNNING with its params stored.
The count is read from the storage, so it holds across the workers of one run, across separate
``sweeps run`` processes on one machine and across runs: a finished study gains no trials when run
again, and an interrupted one runs only what is left.

With one worker the trials run in this process; with more, each worker is a ``spawn``-ed process
with ``cores // workers`` torch threads, and this process only shows progress. Ctrl-C stops
training at once: the running trials are marked FAIL with the reason ``interrupted`` and their
configurations queued again, so the next run redoes them first. A second Ctrl-C kills the
workers; their trials are recovered when the study next runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from mixer_sweeps.study._algorithms import make_pruner, make_sampler, worker_seed
from mixer_sweeps.study._file import StudyFile
from mixer_sweeps.study._monitor import StudyMonitor, best_trial
from mixer_sweeps.study._objective import (
    ABANDONED_ATTR,
    INTERRUPT_SIGNALS,
    DataCache,
    Interrupt,
    Objective,
    TrialAbandoned,
)
from mixer_sweeps.study._recovery import (
    TrialCounts,
    WorkerLock,
    count_trials,
    recover_abandoned_trials,
    requeue_trial,
)
from mixer_sweeps.study._storage import (
    check_storage_url,
    describe_storage,
    open_storage,
    resolve_storage,
)
from mixer_sweeps.training import Callback, EpochRecord, Stop, Trainer, atomic_write_text

CLAIM_FILE = "claim.lock"
STUDY_FILE = "study.yaml"
FINGERPRINT_ATTR = "fingerprint"
POLL_INTERVAL_S = 0.5
# Test-only: seconds a worker waits between counting the trials and claiming one (widens the race
# the claim lock closes), and lingers over a trial it abandons on Ctrl-C before recording it (so
# a second Ctrl-C lands while workers clean up).
CLAIM_DELAY_ENV = "SWEEPS_TEST_CLAIM_DELAY_S"
ABANDON_DELAY_ENV = "SWEEPS_TEST_ABANDON_DELAY_S"


class StudyMismatchError(ValueError):
    """The storage holds a study of this name that was created from a different study file."""


@dataclass
class StudyRun:
    """What :func:`run_study` did."""

    study: optuna.Study
    study_dir: Path
    storage: str
    """The storage, for people (passwords hidden)."""
    trials: list[FrozenTrial]
    n_trials: int | None
    added: int
    """Trials that finished during this run."""
    interrupted: bool
    seconds: float
    fatal: str | None = None
    """Why no trial could run (a dataset that is not there), if so."""
    errors: list[str] = field(default_factory=list)
    """Workers that crashed, with their tracebacks."""

    @property
    def counts(self) -> TrialCounts:
        return count_trials(self.trials)

    @property
    def best_trial(self) -> FrozenTrial | None:
        return best_trial(self.trials)


@dataclass(frozen=True)
class _WorkerConfig:
    study_file: StudyFile
    storage_url: str | None
    study_dir: Path
    index: int
    sampler_seed: int | None
    n_trials: int | None
    deadline: float | None
    """``time.time()`` after which no trial starts."""
    threads: int | None


def run_study(
    study_file: StudyFile,
    *,
    workers: int = 1,
    results_dir: str | Path = "results",
    storage: str | None = None,
    console: Console | None = None,
) -> StudyRun:
    """Run ``study_file`` until it has ``n_trials`` finished trials or its timeout passes.

    Args:
        study_file: from :func:`~mixer_sweeps.study.load_study_file`.
        workers: local worker processes; 1 runs the trials in this process.
        results_dir: the study's files go to ``<results_dir>/<name>/``.
        storage: storage URL; before ``SWEEPS_STORAGE`` and ``study.storage``.
        console: where progress goes; None shows nothing.

    Raises:
        ValueError: a bad ``workers`` or storage URL.
        StudyMismatchError: the stored study of that name came from a different study file.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1 but got {workers}")
    started = time.monotonic()
    url = resolve_storage(storage, study_file.settings.storage)
    check_storage_url(url)
    study_dir = Path(results_dir) / study_file.name
    described = describe_storage(url, study_dir)
    shown = console is not None
    console = console or Console(quiet=True)

    with _optuna_quiet():
        backend = open_storage(url, study_dir=study_dir)
        study_dir.mkdir(parents=True, exist_ok=True)
        study = _open_study(study_file, backend, described)
    _write_study_file(study_file, study_dir)
    before = study.get_trials(deepcopy=False)
    counts = count_trials(before)
    n_trials = study_file.n_trials
    console.print(_header(study_file, n_trials, workers, described, counts))

    deadline = time.time() + study_file.settings.timeout if study_file.settings.timeout else None
    threads = max(1, _cores() // workers) if workers > 1 else None
    configs = [
        _WorkerConfig(
            study_file=study_file,
            storage_url=url,
            study_dir=study_dir,
            index=i,
            sampler_seed=worker_seed(
                study_file.settings.sampler.seed, trials_before=len(before), worker=i
            ),
            n_trials=n_trials,
            deadline=deadline,
            threads=threads,
        )
        for i in range(workers)
    ]
    monitor = StudyMonitor(
        study_file.name,
        n_trials=n_trials,
        param_paths=[d.path for d in study_file.space],
        console=console,
        live=None if shown else False,
    )
    monitor.begin(before)
    interrupted, fatal, errors = False, None, []
    if n_trials is not None and counts.finished >= n_trials:
        console.print(f"nothing to run: {counts.finished} of {n_trials} trials have finished")
    else:
        with monitor:
            if workers == 1:
                interrupted, fatal = _run_here(configs[0], study, monitor)
            else:
                interrupted, fatal, errors = _run_processes(configs, study, monitor)
            monitor.update(study.get_trials(deepcopy=False))

    trials = study.get_trials(deepcopy=False)
    if fatal is None:
        _log_study(study, study_file, study_dir, console)
    return StudyRun(
        study=study,
        study_dir=study_dir,
        storage=described,
        trials=trials,
        n_trials=n_trials,
        added=count_trials(trials).finished - counts.finished,
        interrupted=interrupted,
        seconds=time.monotonic() - started,
        fatal=fatal,
        errors=errors,
    )


def _open_study(
    study_file: StudyFile, storage: optuna.storages.BaseStorage, described: str
) -> optuna.Study:
    study = optuna.create_study(
        storage=storage,
        study_name=study_file.name,
        direction=study_file.settings.direction,
        load_if_exists=True,
    )
    fingerprint = study_file.fingerprint()
    stored = study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is None:
        study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
        study.set_user_attr("metric", study_file.settings.metric)
        study.set_user_attr("replicates", study_file.settings.replicates)
        study.set_user_attr("space", study_file.space.describe())
        study.set_user_attr("base", study_file.base_spec.model_dump(mode="json"))
        study.set_metric_names([study_file.settings.metric])
    elif stored != fingerprint:
        raise StudyMismatchError(
            f"study {study_file.name!r} in {described} was made from a different base spec,"
            f" fixed values, space or replicates (fingerprint {stored}, the file gives"
            f" {fingerprint}); rename the study or use other --results or --storage"
        )
    return study


def _write_study_file(study_file: StudyFile, study_dir: Path) -> None:
    resolved = {
        "study": study_file.settings.model_dump(mode="json"),
        "fixed": study_file.fixed,
        "space": study_file.space.describe(),
        "base": study_file.base_spec.model_dump(mode="json"),
    }
    atomic_write_text(study_dir / STUDY_FILE, yaml.safe_dump(resolved, sort_keys=False))


def _header(
    study_file: StudyFile, n_trials: int | None, workers: int, storage: str, counts: TrialCounts
) -> str:
    s = study_file.settings
    sampler = f"{s.sampler.type} sampler"
    if s.sampler.seed is not None:
        sampler += f" (seed {s.sampler.seed})"
    pruner = "no pruner" if s.pruner.type == "none" else f"{s.pruner.type} pruner"
    budget = [f"{n_trials} trials"] if n_trials is not None else []
    if s.timeout is not None:
        budget.append(f"timeout {s.timeout:g} s")
    lines = [
        f"study {study_file.name}: {', '.join(budget)}, {sampler}, {pruner},"
        f" {workers} worker{'s' if workers > 1 else ''}",
        f"storage: {storage}",
    ]
    if counts.finished or counts.waiting:
        queued = f", {counts.waiting} queued to run again" if counts.waiting else ""
        lines.append(
            f"resuming: {counts.finished} trials finished ({counts.complete} complete,"
            f" {counts.pruned} pruned, {counts.failed} failed){queued}"
        )
    return "\n".join(lines)


def _log_study(
    study: optuna.Study, study_file: StudyFile, study_dir: Path, console: Console
) -> None:
    import mixer_sweeps.tracking as tracking

    log_study = getattr(tracking, "log_study", None)
    if log_study is None:
        return
    try:
        log_study(
            study, results_dir=study_dir, study_name=study_file.name, spec=study_file.base_spec
        )
    except Exception as exc:
        console.print(f"[yellow]warning: logging the study failed: {type(exc).__name__}: {exc}")


class _ClaimLock:
    """The study's claim lock: an ``flock``, so a worker that dies never leaves it taken."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._held = False

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._held = True

    def release(self) -> None:
        if self._held:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._held = False

    def close(self) -> None:
        self.release()
        os.close(self._fd)

    def __enter__(self) -> _ClaimLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _requeue_abandoned(study: optuna.Study, trial: FrozenTrial) -> None:
    if trial.state == TrialState.FAIL and trial.user_attrs.get(ABANDONED_ATTR):
        requeue_trial(study, trial, max_retries=None)


def _work(
    config: _WorkerConfig,
    interrupt: Interrupt,
    *,
    stop: Any = None,
    callbacks: Sequence[Callback] = (),
    after_trial: Callable[[], None] = lambda: None,
) -> str | None:
    """A worker's loop: claim a trial, run it, repeat. Returns why it could not run, if so."""
    study_file = config.study_file
    storage = open_storage(config.storage_url, study_dir=config.study_dir)
    study = optuna.load_study(
        study_name=study_file.name,
        storage=storage,
        sampler=make_sampler(
            study_file.settings.sampler, study_file.space, seed=config.sampler_seed
        ),
        pruner=make_pruner(study_file.settings.pruner, max_epochs=study_file.max_epochs),
    )
    claim = _ClaimLock(config.study_dir / CLAIM_FILE)
    claim_delay = float(os.environ.get(CLAIM_DELAY_ENV) or 0)
    abandon_delay = float(os.environ.get(ABANDON_DELAY_ENV) or 0)
    try:
        with WorkerLock(config.study_dir) as worker:
            objective = Objective(
                study_file,
                study_dir=config.study_dir,
                data=DataCache(),
                worker=worker.info,
                interrupt=interrupt,
                on_suggested=claim.release,
                callbacks=callbacks,
            )

            def run_trial(trial: optuna.Trial) -> float:
                try:
                    return objective(trial)
                except TrialAbandoned:
                    if interrupt.requested:
                        time.sleep(abandon_delay)
                    raise

            while not (interrupt.requested or objective.fatal or (stop and stop.is_set())):
                if config.deadline is not None and time.time() >= config.deadline:
                    break
                with claim:
                    recover_abandoned_trials(study, storage, config.study_dir)
                    # Optuna fails heartbeat-stale trials only when asked for a new one; counted
                    # as running, they would stop a study that has no other trial left to run.
                    optuna.storages.fail_stale_trials(study)
                    if config.n_trials is not None:
                        counts = count_trials(study.get_trials(deepcopy=False))
                        if counts.finished + counts.running >= config.n_trials:
                            break
                    time.sleep(claim_delay)
                    study.optimize(
                        run_trial, n_trials=1, catch=(Exception,), callbacks=[_requeue_abandoned]
                    )
                after_trial()
    finally:
        claim.close()
    return objective.fatal


class _Poll(Callback):
    def __init__(self, poll: Callable[[], None], interrupt: Interrupt) -> None:
        self.poll = poll
        self.interrupt = interrupt

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> Stop | None:
        with self.interrupt.paused():
            self.poll()
        return None


def _run_here(
    config: _WorkerConfig, study: optuna.Study, monitor: StudyMonitor
) -> tuple[bool, str | None]:
    interrupt = Interrupt()

    def poll() -> None:
        monitor.update(study.get_trials(deepcopy=False))

    with interrupt.installed(), _optuna_quiet():
        fatal = _work(config, interrupt, callbacks=[_Poll(poll, interrupt)], after_trial=poll)
    return interrupt.requested, fatal


def _worker_main(config: _WorkerConfig, stop: Any, messages: Any) -> None:
    interrupt = Interrupt()
    with interrupt.installed(), _optuna_quiet():
        import torch

        if config.threads is not None:
            torch.set_num_threads(config.threads)
        try:
            fatal = _work(config, interrupt, stop=stop)
        except Exception:
            messages.put(("error", f"worker {config.index} crashed:\n{traceback.format_exc()}"))
            raise SystemExit(1) from None
        if fatal is not None:
            messages.put(("fatal", fatal))


def _run_processes(
    configs: list[_WorkerConfig], study: optuna.Study, monitor: StudyMonitor
) -> tuple[bool, str | None, list[str]]:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    messages = context.Queue()
    processes = [
        context.Process(
            target=_worker_main, args=(config, stop, messages), name=f"sweeps-worker-{config.index}"
        )
        for config in configs
    ]
    presses = 0

    def on_signal(signum: int, frame: object) -> None:
        nonlocal presses
        presses += 1

    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:
        # Workers start with SIGINT ignored and handle it once they can stop cleanly.
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in INTERRUPT_SIGNALS}
    try:
        for process in processes:
            process.start()
    finally:
        for s in previous:
            signal.signal(s, on_signal)

    fatal, errors, handled = None, [], 0
    try:
        while True:
            alive = [p for p in processes if p.is_alive()]
            if presses > handled:
                stop.set()
                # Presses are counted, not handled, between polls: two of them kill at once.
                if presses == 1:
                    monitor.note = "stopping: abandoning running trials (Ctrl-C again to kill)"
                    for process in alive:
                        os.kill(process.pid, signal.SIGINT)
                else:
                    monitor.note = "killing workers; their trials are recovered on the next run"
                    for process in alive:
                        process.kill()
                handled = presses
            monitor.update(study.get_trials(deepcopy=False))
            fatal = _drain(messages, errors) or fatal
            if not alive:
                break
            multiprocessing.connection.wait([p.sentinel for p in alive], timeout=POLL_INTERVAL_S)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for process in processes:
            process.join()
    fatal = _drain(messages, errors) or fatal
    for process, config in zip(processes, configs, strict=True):
        if process.exitcode not in (0, 1) and not presses:
            errors.append(f"worker {config.index} ended with exit code {process.exitcode}")
    return presses > 0, fatal, errors


def _drain(messages: Any, errors: list[str]) -> str | None:
    fatal = None
    while True:
        try:
            kind, text = messages.get_nowait()
        except queue.Empty:
            return fatal
        if kind == "fatal":
            fatal = text
        else:
            errors.append(text)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna's per-trial log lines and experimental warnings would garble the display."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
