"""Where a study's workers run: in this process, or as spawned processes that it supervises.

Ctrl-C (or SIGTERM) stops training at once: the running trials are marked FAIL with the reason
``interrupted`` and their configurations queued again, so the next run redoes them first. With
worker processes, the first signal is passed on to them and a second one kills them; their trials
are recovered when the study next runs. Workers whose parent is killed outright (``kill -9``)
finish the trial they run and claim no other; running the study again finishes it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
from collections.abc import Callable, Iterator
from typing import Any

import optuna

from mixer_sweeps._signals import Counter, Interrupt, ignored
from mixer_sweeps.study._monitor import StudyMonitor
from mixer_sweeps.study._quiet import optuna_quiet
from mixer_sweeps.study._worker import WorkerConfig, work, worker_main
from mixer_sweeps.training import Callback, EpochRecord, Stop, Trainer

POLL_INTERVAL_S = 0.5
VISIBLE = "CUDA_VISIBLE_DEVICES"


class _Poll(Callback):
    """Refreshes the display after every epoch of a trial that runs in this process."""

    def __init__(self, poll: Callable[[], None], interrupt: Interrupt) -> None:
        self.poll = poll
        self.interrupt = interrupt

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> Stop | None:
        with self.interrupt.paused():
            self.poll()
        return None


def run_here(
    config: WorkerConfig, study: optuna.Study, monitor: StudyMonitor
) -> tuple[bool, str | None]:
    """One worker in this process. Returns (interrupted, why no trial could run)."""
    interrupt = Interrupt()

    def poll() -> None:
        monitor.update(study.get_trials(deepcopy=False))

    with interrupt.installed(), optuna_quiet():
        fatal = work(config, interrupt, callbacks=[_Poll(poll, interrupt)], after_trial=poll)
    return interrupt.requested, fatal


def run_processes(
    configs: list[WorkerConfig], study: optuna.Study, monitor: StudyMonitor
) -> tuple[bool, str | None, list[str]]:
    """One spawned process per config. Returns (interrupted, fatal, crashed workers' reports)."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    messages = context.Queue()
    processes = [
        context.Process(
            target=worker_main,
            args=(config, stop, messages, os.getpid()),
            name=f"sweeps-worker-{config.index}",
        )
        for config in configs
    ]
    counter = Counter()
    fatal, errors, handled = None, [], 0
    with counter.installed():
        # Workers start with the signals ignored and handle them once they can stop cleanly.
        with ignored():
            for process, config in zip(processes, configs, strict=True):
                gpu = None if config.placement is None else config.placement.gpu
                with _visible_gpu(gpu):
                    process.start()
        try:
            while True:
                alive = [p for p in processes if p.is_alive()]
                if counter.presses > handled:
                    stop.set()
                    # Presses are counted, not handled, between polls: two of them kill at once.
                    if counter.presses == 1:
                        monitor.note = "stopping: abandoning running trials (Ctrl-C again to kill)"
                        for process in alive:
                            os.kill(process.pid, signal.SIGINT)
                    else:
                        monitor.note = "killing workers; their trials are recovered on the next run"
                        for process in alive:
                            process.kill()
                    handled = counter.presses
                monitor.update(study.get_trials(deepcopy=False))
                fatal = _drain(messages, errors) or fatal
                if fatal is not None:
                    stop.set()  # a fault of the machine: the other workers start no new trial
                if not alive:
                    break
                sentinels = [p.sentinel for p in alive]
                multiprocessing.connection.wait(sentinels, timeout=POLL_INTERVAL_S)
        finally:
            for process in processes:
                process.join()
    fatal = _drain(messages, errors) or fatal
    for process, config in zip(processes, configs, strict=True):
        if process.exitcode not in (0, 1) and not counter.presses:
            errors.append(f"worker {config.index} ended with exit code {process.exitcode}")
    return counter.presses > 0, fatal, errors


@contextlib.contextmanager
def _visible_gpu(gpu: str | None) -> Iterator[None]:
    """``CUDA_VISIBLE_DEVICES`` as a process spawned in the block inherits it."""
    if gpu is None:
        yield
        return
    before = os.environ.get(VISIBLE)
    os.environ[VISIBLE] = gpu
    try:
        yield
    finally:
        if before is None:
            del os.environ[VISIBLE]
        else:
            os.environ[VISIBLE] = before


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
