"""One launched job: a worker of the study, which checkpoints itself and is requeued on time-out."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import submitit
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps._progress import output_console
from mixer_sweeps._signals import Interrupt
from mixer_sweeps.results import print_summary, records, retried_numbers
from mixer_sweeps.spec import StudyFile
from mixer_sweeps.study._liveness import WorkerIdentity
from mixer_sweeps.study._runner import run_study
from mixer_sweeps.study._storage import redact


class StudyJob(submitit.helpers.Checkpointable):
    """One worker of a launched study: the callable each job runs (submitit pickles it).

    It holds no progress of its own (that is in the storage and the trial folders), so the job
    it checkpoints is itself, and a job that SLURM requeues from its first pickle is as good.
    """

    def __init__(
        self,
        study_file: StudyFile,
        *,
        index: int,
        results_dir: str,
        storage: str,
        environ: dict[str, str | None] | None = None,
    ) -> None:
        self.study_file = study_file
        self.index = index
        self.results_dir = results_dir
        self.storage = storage
        self.environ = dict(environ or {})
        """Environment variables set in the job before it runs (None: removed)."""
        self._reset()

    def _reset(self) -> None:
        self._signalled = False
        self._finished = False
        self._signum: int | None = None
        self._requeue: Callable[[int, Any], None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_signalled", "_finished", "_signum", "_requeue"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def __repr__(self) -> str:
        return (
            f"StudyJob({self.study_file.name!r}, index={self.index},"
            f" results_dir={self.results_dir!r}, storage={redact(self.storage)!r})"
        )

    def __call__(self) -> dict[str, Any]:
        self._reset()
        for name, value in self.environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        console = output_console()
        console.print(
            f"worker {self.index} of study {self.study_file.name}: process {os.getpid()}"
            f" on {socket.gethostname()}"
        )
        with self._job_signals():
            outcome = run_study(
                self.study_file,
                workers=1,
                results_dir=self.results_dir,
                storage=self.storage,
                console=console,
            )
            self._finished = True
        # run_study counts the trials that every worker finished meanwhile: the other jobs' too.
        outcome.added = _finished_by_this_process(outcome.trials)
        print_summary(outcome, console)
        if outcome.fatal is not None:
            raise RuntimeError(outcome.fatal)
        if self._signalled and outcome.interrupted and self._requeue is not None:
            console.print(
                "told to checkpoint: the running trial is queued again and resumes from its"
                " checkpoint; this job is requeued"
            )
            assert self._signum is not None
            self._requeue(self._signum, None)  # submitit: checkpoint(), requeue, exit
        return {
            "index": self.index,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "added": outcome.added,
            "finished": outcome.counts.finished,
            "interrupted": outcome.interrupted,
        }

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """The job to requeue: this worker again (its trial is queued again in the storage)."""
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    @contextlib.contextmanager
    def _job_signals(self) -> Iterator[None]:
        """The job's signals while its worker runs.

        - submitit's checkpoint signal goes through the worker's Ctrl-C handling: submitit's own
          handler would requeue the job at once, in the middle of a trial, leaving the trial
          RUNNING until its heartbeat goes stale. Here the worker first abandons the trial
          cleanly (FAIL, configuration queued again); the job is requeued after.
        - SIGTERM and SIGINT stop the job until the worker handles them itself (submitit ignores
          SIGTERM, and local jobs start with SIGINT ignored), so none is lost while it starts.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            signal.SIGTERM: signal.signal(signal.SIGTERM, signal.SIG_DFL),
            signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        }
        signum = getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG, None)
        requeue = signal.getsignal(signum) if signum is not None else None
        if signum is not None and callable(requeue):  # in a submitit job
            self._signum, self._requeue = signum, requeue
            previous[signum] = signal.signal(signum, self._on_checkpoint_signal)
        try:
            yield
        finally:
            for number, handler in previous.items():
                if handler is not None:
                    signal.signal(number, handler)

    def _on_checkpoint_signal(self, signum: int, frame: Any) -> None:
        if self._signalled:
            return
        self._signalled = True
        handler = signal.getsignal(signal.SIGINT)
        if isinstance(getattr(handler, "__self__", None), Interrupt):
            handler(signum, frame)  # the worker stops as on Ctrl-C, abandoning its trial
        elif not self._finished and self._requeue is not None:
            self._requeue(signum, frame)  # no trial runs yet: checkpoint and requeue at once


def _finished_by_this_process(trials: Sequence[FrozenTrial]) -> int:
    """The study's finished trials (as :func:`count_trials` counts them) that the worker of this
    process ran."""
    this = WorkerIdentity.of_this_process()
    items = records(trials)
    retried = retried_numbers(items)
    finished = 0
    for t in items:
        worker = WorkerIdentity.from_attr(t.worker)
        if worker is None or (worker.host, worker.pid, worker.start_time) != (
            this.host,
            this.pid,
            this.start_time,
        ):
            continue
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            t.state == TrialState.FAIL and t.number not in retried and not t.abandoned
        ):
            finished += 1
    return finished
