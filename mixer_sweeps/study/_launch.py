"""Launch a study's workers as batch jobs through submitit: a SLURM job array, or local processes.

Each job runs one worker of the study (:func:`~mixer_sweeps.study.run_study` with one worker)
against a storage every job reaches, so the jobs share the study as the workers of
``sweeps run --workers N`` do: together they run exactly ``n_trials`` trials. The local executor
runs the very same jobs as processes of this machine; it is how the tests exercise the whole path.

Before submitting, the study is opened once from here (its storage reached, the study created or
checked against the study file, ``study.yaml`` written), so a wrong URL or a changed study file
fails at once rather than in every job. Each job's log and submitit's files are in
``<results>/<study>/launch/<job id>/``; the folder is private to its owner, because the jobs'
pickles hold the storage URL with its password. Nothing printed ever shows that password.

Time limits and preemption: a job is sent SIGUSR2 ``SIGNAL_DELAY_S`` before its time limit (and
on preemption, with submitit's signal). Its worker then stops as on Ctrl-C: the running trial is
marked FAIL and its configuration queued again, and whichever worker claims it next resumes it
from the checkpoint of its last finished epoch in the trial folder (so ``--results`` must be on a
filesystem the nodes share). Then the job checkpoints itself (:meth:`StudyJob.checkpoint`) and
submitit requeues it: ``scontrol requeue`` on SLURM, a restarted process locally. SIGTERM
(``scancel``) stops a worker the same way, without requeueing its job.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import submitit
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from mixer_sweeps._signals import Interrupt, ignored
from mixer_sweeps.study._describe import describe_counts
from mixer_sweeps.study._file import StudyFile
from mixer_sweeps.study._layout import StudyLayout
from mixer_sweeps.study._liveness import WorkerIdentity
from mixer_sweeps.study._monitor import StudyMonitor
from mixer_sweeps.study._quiet import optuna_quiet
from mixer_sweeps.study._record import TrialRecord, count_trials, records, retried_numbers
from mixer_sweeps.study._runner import _open_study, _write_study_file, run_study
from mixer_sweeps.study._storage import (
    check_storage_url,
    describe_storage,
    journal_path,
    open_storage,
    redact,
)
from mixer_sweeps.study._summary import print_summary

EXECUTORS = ("slurm", "local")
DEFAULT_TIME = "4:00:00"
SIGNAL_DELAY_S = 120
"""Seconds before its time limit that a job is told to checkpoint (SLURM ``--signal``)."""
MAX_REQUEUES = 10
"""How often one job may be requeued at its time limit (preemptions do not count)."""
MAX_GPUS_PER_WORKER = 64
"""More than any one node has; locally every one of them is named in CUDA_VISIBLE_DEVICES."""
MAX_TIME_MIN = 366 * 24 * 60
"""Longest --time: a year."""
LAUNCH_DIR = "launch"
CUDA_DEVICES_ENV = "CUDA_VISIBLE_DEVICES"

# sbatch options that submitit sets itself for its job arrays and logs, or that checkpointing needs.
_RESERVED_SBATCH = {"array", "output", "error", "signal", "open-mode", "wrap"}
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class LaunchError(ValueError):
    """A launch that cannot work as asked; the message names the option to change."""


# ----------------------------------------------------------------------------------- options


def parse_time_limit(text: str) -> int:
    """``--time`` in whole minutes: ``HH:MM:SS``, ``D-HH:MM:SS`` or minutes (``240``)."""
    given = text.strip()
    too_long = LaunchError(
        f"--time {text!r} is longer than a year ({MAX_TIME_MIN:,} minutes); SLURM sites allow"
        " far less"
    )
    if any(len(digits) > 9 for digits in re.findall(r"\d+", given)):
        raise too_long  # before int(): Python refuses to convert 4,300 digits and more
    if re.fullmatch(r"\d+", given):
        minutes = int(given)
    else:
        match = re.fullmatch(r"(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)", given)
        if match is None:
            raise LaunchError(
                f"--time {text!r}: give HH:MM:SS (or D-HH:MM:SS) or whole minutes,"
                " e.g. --time 4:00:00 or --time 240"
            )
        days, hours, mins, secs = (int(g or 0) for g in match.groups())
        minutes = math.ceil((((days * 24 + hours) * 60 + mins) * 60 + secs) / 60)
    if minutes > MAX_TIME_MIN:
        raise too_long
    if minutes * 60 <= SIGNAL_DELAY_S:
        raise LaunchError(
            f"--time {text!r} is too short: a job is told to checkpoint"
            f" {SIGNAL_DELAY_S // 60} minutes before its limit; give at least"
            f" {SIGNAL_DELAY_S // 60 + 1} minutes"
        )
    return minutes


def parse_memory(text: str) -> str:
    """``--mem`` as SLURM writes it: ``16G``, ``500M`` (``16GB`` and ``16GiB`` also read)."""
    # 12 digits at most: more is no machine's memory, and int() refuses 4,300 digits.
    match = re.fullmatch(r"(\d{1,12})\s*([KMGT])(?:i?B)?", text.strip(), flags=re.IGNORECASE)
    if match is None or int(match[1]) == 0:
        raise LaunchError(
            f"--mem {text!r}: give a whole amount with its unit, e.g. --mem 16G or --mem 500M"
        )
    return f"{int(match[1])}{match[2].upper()}"


def parse_sbatch_options(items: Sequence[str]) -> dict[str, str]:
    """``--sbatch KEY=VALUE`` items as sbatch options (``account=proj`` -> ``--account=proj``)."""
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-").replace("_", "-")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", key) or not value.strip():
            raise LaunchError(
                f"--sbatch {item!r}: give KEY=VALUE, an sbatch option without its dashes,"
                " e.g. --sbatch account=myproject --sbatch qos=normal"
            )
        if key in _RESERVED_SBATCH:
            raise LaunchError(
                f"--sbatch {item!r}: sweeps launch sets --{key} itself (job arrays, logs and"
                " the checkpoint signal depend on it)"
            )
        options[key] = value.strip()
    return options


def check_launch_storage(url: str | None, executor: str, study_dir: Path) -> list[str]:
    """Refuse a storage the jobs cannot all share; return notes about one they may not.

    ``url`` is the resolved storage (None: the default journal file in ``study_dir``).
    """
    check_storage_url(url)
    if executor == "local":
        return []
    journal = journal_path(url, study_dir)
    if url is None:
        assert journal is not None
        raise LaunchError(
            f"--storage: the default storage is a journal file in {study_dir}/, and jobs on"
            " other nodes may not see it. Pass --storage postgresql://USER:PASSWORD@HOST/DB"
            " (a database server every node reaches) or, if that folder is on a filesystem every"
            f" node mounts, --storage journal:{journal}"
        )
    if url.startswith("journal:"):
        given = os.path.expanduser(url.removeprefix("journal:"))
        if not os.path.isabs(given):
            raise LaunchError(
                f"--storage {url!r}: give the journal file's absolute path"
                f" (journal:{journal}), the same on every node"
            )
        return [
            f"journal file {journal}: it must be on a filesystem every node mounts"
            " (NFS, Lustre, ...) with working file locks"
        ]
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme == "sqlite":
        raise LaunchError(
            f"--storage {redact(url)!r}: SQLite over a network filesystem is unsafe (its locks"
            " do not hold across machines, and the database can be corrupted); use a database"
            " server every node reaches: --storage postgresql://USER:PASSWORD@HOST/DB (or"
            " mysql://...)"
        )
    host = urlsplit(url).hostname
    if not host or host in _LOCAL_HOSTS:
        where = f"host {host}" if host else "no host (a local socket)"
        return [
            f"the storage URL names {where}: on a compute node that is the node itself;"
            " give the database server's host name unless it runs on every node"
        ]
    return []


# -------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class LaunchPlan:
    """What ``sweeps launch`` submits, checked; make it with :func:`plan_launch`."""

    study_file: StudyFile
    study_path: Path
    """The study file, absolute (shown; the jobs get ``study_file`` itself)."""
    results_dir: Path
    """Absolute."""
    storage: str
    """The storage URL the jobs use, password included: never print it, see :attr:`shown`."""
    executor: str
    workers: int
    time_min: int
    gpus_per_worker: int | None = None
    """None: none on SLURM; locally, the GPUs this process sees."""
    cpus_per_worker: int | None = None
    partition: str | None = None
    mem: str | None = None
    sbatch: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.study_file.name

    @property
    def layout(self) -> StudyLayout:
        return StudyLayout.of(self.results_dir, self.name)

    @property
    def log_dir(self) -> Path:
        """``<results>/<study>/launch``: one folder per job in it."""
        return self.layout.root / LAUNCH_DIR

    @property
    def folder(self) -> Path:
        """submitit's folder; ``%j`` is the job id."""
        return self.log_dir / "%j"

    @property
    def shown(self) -> str:
        """The storage, for people (password hidden)."""
        return describe_storage(self.storage, self.layout.root)

    def run_command(self) -> str:
        """What each job does, as the ``sweeps run`` command it amounts to (password hidden)."""
        return shlex.join(
            [
                "sweeps",
                "run",
                str(self.study_path),
                "--workers",
                "1",
                "--results",
                str(self.results_dir),
                "--storage",
                redact(self.storage),
            ]
        )

    def job_command(self) -> str:
        """The command submitit starts in each job; it runs the job's pickled :class:`StudyJob`."""
        python = shlex.quote(sys.executable)
        return f"{python} -u -m submitit.core._submit {shlex.quote(str(self.folder))}"

    def parameters(self) -> dict[str, Any]:
        """The submitit executor's parameters (SLURM's own names for SLURM)."""
        if self.executor == "local":
            local: dict[str, Any] = {
                "timeout_min": self.time_min,
                "signal_delay_s": SIGNAL_DELAY_S,
                "stderr_to_stdout": True,
            }
            if self.gpus_per_worker is not None:
                local["gpus_per_node"] = self.gpus_per_worker
            return local
        params: dict[str, Any] = {
            "job_name": f"sweeps-{self.name}",
            "time": self.time_min,
            "signal_delay_s": SIGNAL_DELAY_S,
            "stderr_to_stdout": True,
            "setup": [
                f"# sweeps launch: one worker of study {self.name} ({self.workers} jobs in all);"
                " each job runs the equivalent of",
                f"#   {self.run_command()}",
            ],
            "additional_parameters": {"requeue": True, **self.sbatch},
        }
        if self.workers > 1:
            params["array_parallelism"] = self.workers
        if self.partition:
            params["partition"] = self.partition
        if self.gpus_per_worker:
            params["gpus_per_node"] = self.gpus_per_worker
        if self.cpus_per_worker:
            params["cpus_per_task"] = self.cpus_per_worker
        if self.mem:
            params["mem"] = self.mem
        return params

    def batch_script(self) -> str:
        """The sbatch script submitit writes for these jobs (it holds no password)."""
        if self.executor != "slurm":
            raise ValueError("only SLURM jobs have a batch script")
        executor = _ScriptOnlySlurmExecutor(self.folder, max_num_timeout=MAX_REQUEUES)
        executor.update_parameters(**self.parameters())
        if self.workers > 1:
            # As submitit does for a job array (SlurmExecutor._internal_process_submissions).
            executor.parameters["map_count"] = self.workers
        return executor._make_submission_file_text(executor._submitit_command_str, "dry-run")

    def jobs(self) -> list[StudyJob]:
        environ: dict[str, str | None] = {}
        if self.executor == "local" and self.gpus_per_worker is None:
            # submitit shows a local job only the GPUs it asks for (none: no GPU at all); without
            # --gpus-per-worker, a local job sees the GPUs this process sees.
            environ[CUDA_DEVICES_ENV] = os.environ.get(CUDA_DEVICES_ENV)
        return [
            StudyJob(
                self.study_file,
                index=i,
                results_dir=str(self.results_dir),
                storage=self.storage,
                environ=environ,
            )
            for i in range(self.workers)
        ]

    def dry_run_text(self) -> str:
        """What ``--dry-run`` prints: the jobs, the command each runs and the batch script."""
        where = "a SLURM job array" if self.executor == "slurm" else "local processes"
        if self.workers == 1:
            where = "a SLURM job" if self.executor == "slurm" else "a local process"
        lines = [
            f"dry run, nothing submitted: {self.workers} worker job(s) of study {self.name}"
            f" as {where}",
            f"storage: {self.shown}",
            f"logs: {self.log_dir}/<job id>/",
            "each job runs one worker, the equivalent of:",
            f"  {self.run_command()}",
            "started in the job by submitit as:",
            f"  {self.job_command()}",
            "(the storage URL reaches the jobs in submitit's pickle, in that private log folder)",
        ]
        if self.executor == "slurm":
            lines += ["batch script (sbatch):", "", self.batch_script().rstrip("\n")]
        return "\n".join(lines)


class _ScriptOnlySlurmExecutor(submitit.SlurmExecutor):
    """SLURM's executor where there is no SLURM: it writes scripts, never submits them."""

    @classmethod
    def affinity(cls) -> int:
        return 1


def plan_launch(
    study_file: StudyFile,
    study_path: str | Path,
    *,
    executor: str = "slurm",
    workers: int = 1,
    time_limit: str = DEFAULT_TIME,
    gpus_per_worker: int | None = None,
    cpus_per_worker: int | None = None,
    partition: str | None = None,
    mem: str | None = None,
    sbatch: Sequence[str] = (),
    storage: str | None = None,
    results_dir: str | Path = "results",
) -> LaunchPlan:
    """Check the options of ``sweeps launch`` and resolve the storage; writes nothing.

    ``storage`` is the ``--storage`` option; else ``$SWEEPS_STORAGE``, else ``study.storage``.

    Raises:
        LaunchError: naming the option that is wrong.
    """
    from mixer_sweeps.study._storage import resolve_storage

    if executor not in EXECUTORS:
        raise LaunchError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise LaunchError(f"--workers {workers}: give at least 1")
    if gpus_per_worker is not None and not 0 <= gpus_per_worker <= MAX_GPUS_PER_WORKER:
        raise LaunchError(
            f"--gpus-per-worker {gpus_per_worker}: give 0 to {MAX_GPUS_PER_WORKER}, the GPUs of"
            " one node"
        )
    if cpus_per_worker is not None and cpus_per_worker < 1:
        raise LaunchError(f"--cpus-per-worker {cpus_per_worker}: give at least 1")
    if partition is not None and not re.fullmatch(r"[\w.,-]+", partition):
        raise LaunchError(f"--partition {partition!r}: not a partition name")
    time_min = parse_time_limit(time_limit)
    memory = parse_memory(mem) if mem is not None else None
    options = parse_sbatch_options(sbatch)
    results = Path(os.path.abspath(Path(results_dir).expanduser()))
    layout = StudyLayout.of(results, study_file.name)
    url = resolve_storage(storage, study_file.settings.storage)
    try:
        notes = check_launch_storage(url, executor, layout.root)
    except LaunchError:
        raise
    except ValueError as exc:
        raise LaunchError(f"--storage: {exc}") from None
    if url is None or url.startswith("journal:"):
        journal = journal_path(url, layout.root)
        url = f"journal:{journal}"
    if executor == "local":
        ignored = [
            name
            for name, value in (
                ("--partition", partition),
                ("--mem", mem),
                ("--cpus-per-worker", cpus_per_worker),
                ("--sbatch", list(sbatch) or None),
            )
            if value is not None
        ]
        if ignored:
            notes.append(f"{', '.join(ignored)}: for SLURM only, ignored by --executor local")
        if gpus_per_worker and workers > 1:
            notes.append(
                f"--gpus-per-worker {gpus_per_worker}: local jobs all see the same GPUs"
                f" 0 to {gpus_per_worker - 1}"
            )
    else:
        notes.append(
            f"results in {results}/: every node must see this folder (trial checkpoints, the"
            " claim lock, the jobs' pickles and logs), and the Python that runs them"
            f" ({sys.executable})"
        )
    return LaunchPlan(
        study_file=study_file,
        study_path=Path(os.path.abspath(Path(study_path).expanduser())),
        results_dir=results,
        storage=url,
        executor=executor,
        workers=workers,
        time_min=time_min,
        gpus_per_worker=gpus_per_worker,
        cpus_per_worker=cpus_per_worker,
        partition=partition,
        mem=memory,
        sbatch=options,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------- job


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
        console = Console(highlight=False, soft_wrap=True)
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


# ---------------------------------------------------------------------------------- launching


@dataclass
class JobOutcome:
    """How one local job ended."""

    job_id: str
    index: int
    result: dict[str, Any] | None
    error: str | None
    log: Path


@dataclass
class Launched:
    """Jobs that :func:`launch_study` submitted."""

    plan: LaunchPlan
    jobs: list[Any]
    """submitit jobs, in worker order."""

    @property
    def job_ids(self) -> list[str]:
        return [job.job_id for job in self.jobs]

    @property
    def array_id(self) -> str:
        """The SLURM job id that ``squeue -j`` and ``scancel`` take (the array's, for several)."""
        return self.job_ids[0].split("_", 1)[0]

    def log(self, job: Any) -> Path:
        return Path(job.paths.stdout)

    def describe(self, *, study_arg: str | None = None) -> str:
        """What was submitted and how to follow it, for people (password hidden).

        ``study_arg``: the study file as the user gave it.
        """
        plan = self.plan
        study_arg = study_arg or str(plan.study_path)
        ids = self.job_ids
        if plan.executor == "slurm":
            what = f"job {ids[0]}"
            if len(ids) > 1:
                what = f"job array {self.array_id} ({ids[0]} to {ids[-1]})"
            head = f"submitted {len(ids)} worker job(s) of study {plan.name} to SLURM: {what}"
        else:
            head = (
                f"started {len(ids)} worker job(s) of study {plan.name} as local processes:"
                f" {', '.join(ids)}"
            )
        first_log = self.log(self.jobs[0])
        logs = f"logs: {first_log}"
        if len(ids) > 1:
            logs += f" (each job's in {plan.log_dir}/<job id>/)"
        follow: list[tuple[str, str]] = []
        if plan.executor == "slurm":
            follow.append(("queued and running jobs", f"squeue -j {self.array_id}"))
        follow.append(("a job's log", f"tail -f {shlex.quote(str(first_log))}"))
        where = ["--results", str(plan.results_dir)]
        if not _is_default_journal(plan):
            where += ["--storage", redact(plan.storage)]
        hidden = redact(plan.storage) != plan.storage
        password = " (put the password in)" if hidden else ""
        for what, command in (
            (f"the study's trials and workers{password}", "status"),
            (f"tables and plots so far{password}", "report"),
            (f"live dashboard{password}", "dashboard"),
        ):
            follow.append((what, shlex.join(["sweeps", command, study_arg, *where])))
        lines = [head, f"storage: {plan.shown}", logs, "follow them:"]
        lines += [f"  {label}: {command}" for label, command in follow]
        if plan.executor == "slurm":
            lines.append(
                f"stop them: scancel {self.array_id} (their running trials are queued again)"
            )
        else:
            lines.append("Ctrl-C stops them (their running trials are queued again)")
        return "\n".join(lines)

    def trial_records(self) -> list[TrialRecord]:
        """The study's trials as they are now in the storage."""
        plan = self.plan
        with optuna_quiet():
            import optuna

            study = optuna.load_study(
                study_name=plan.name, storage=open_storage(plan.storage, study_dir=plan.layout.root)
            )
            return records(study.get_trials(deepcopy=False))

    def describe_outcomes(self, outcomes: Sequence[JobOutcome]) -> list[str]:
        """A line per job and one for the study, once local jobs have ended."""
        lines = []
        errors: dict[str, list[JobOutcome]] = {}
        for o in outcomes:
            if o.result is not None:
                added = o.result.get("added", 0)
                stop = ", interrupted" if o.result.get("interrupted") else ""
                lines.append(
                    f"job {o.job_id} (worker {o.index}): ended, {added} trial(s) finished"
                    f" by it{stop}"
                )
            else:
                errors.setdefault(o.error or "", []).append(o)
        for error, failed in errors.items():
            jobs = ", ".join(o.job_id for o in failed)
            logs = " ".join(str(o.log) for o in failed[:1])
            lines.append(f"job(s) {jobs} failed: {error} (log: {logs})")
        plan = self.plan
        with optuna_quiet():
            import optuna

            study = optuna.load_study(
                study_name=plan.name, storage=open_storage(plan.storage, study_dir=plan.layout.root)
            )
            counts = count_trials(study.get_trials(deepcopy=False))
        total = "" if plan.study_file.n_trials is None else f" of {plan.study_file.n_trials}"
        lines.append(
            f"{plan.name}: {counts.finished}{total} trials finished ({describe_counts(counts)}),"
            f" {counts.running} running, {counts.waiting} queued"
        )
        return lines


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


def _is_default_journal(plan: LaunchPlan) -> bool:
    return journal_path(plan.storage, plan.layout.root) == journal_path(None, plan.layout.root)


def _make_executor(plan: LaunchPlan) -> Any:
    if plan.executor == "slurm":
        try:
            executor = submitit.SlurmExecutor(folder=plan.folder, max_num_timeout=MAX_REQUEUES)
        except RuntimeError:
            raise LaunchError(
                "--executor slurm: no SLURM here (`srun` is not on PATH). Launch from a machine"
                " of the cluster, see the job script with --dry-run, or run the same jobs here"
                " with --executor local"
            ) from None
    else:
        executor = submitit.LocalExecutor(folder=plan.folder, max_num_timeout=MAX_REQUEUES)
    executor.update_parameters(**plan.parameters())
    return executor


def prepare_study(plan: LaunchPlan) -> None:
    """Open the study once before any job does: reach the storage, create or check the study.

    Raises:
        ValueError: the storage cannot be opened.
        StudyMismatchError: the stored study was made from a different study file.
    """
    layout = plan.layout
    with optuna_quiet():
        storage = open_storage(plan.storage, study_dir=layout.root)
        layout.root.mkdir(parents=True, exist_ok=True)
        _open_study(plan.study_file, storage, plan.shown)
    _write_study_file(plan.study_file, layout)
    plan.log_dir.mkdir(parents=True, exist_ok=True)
    plan.log_dir.chmod(0o700)  # the jobs' pickles hold the storage URL with its password


def launch_study(plan: LaunchPlan) -> Launched:
    """Submit the plan's jobs (after :func:`prepare_study`); returns at once.

    Raises:
        LaunchError: no SLURM here, or sbatch refused the jobs.
        ValueError, StudyMismatchError: from :func:`prepare_study`.
    """
    executor = _make_executor(plan)
    prepare_study(plan)
    # Local jobs start with SIGINT ignored: a Ctrl-C in the terminal reaches every process of its
    # group, and submitit's controllers would die of it with a traceback, before their job has
    # stopped. The worker in each job handles SIGINT itself; the controllers stop on SIGTERM.
    starting = ignored() if plan.executor == "local" else contextlib.nullcontext()
    try:
        with starting:
            jobs = executor.submit_array(plan.jobs())
    except submitit.core.utils.FailedJobError as exc:
        raise LaunchError(f"sbatch refused the jobs: {str(exc).strip()}") from None
    return Launched(plan, list(jobs))


def wait_for_jobs(
    launched: Launched, console: Console | None = None, *, poll_s: float = 1.0
) -> list[JobOutcome]:
    """Wait until local jobs end, showing the study's trials as they finish.

    Ctrl-C (KeyboardInterrupt) stops the jobs, as Ctrl-C stops ``sweeps run``, and is raised again.
    """
    plan = launched.plan
    console = console or Console(quiet=True)
    with optuna_quiet():
        import optuna

        study = optuna.load_study(
            study_name=plan.name, storage=open_storage(plan.storage, study_dir=plan.layout.root)
        )
    monitor = StudyMonitor(
        plan.name,
        n_trials=plan.study_file.n_trials,
        param_paths=[d.path for d in plan.study_file.space],
        console=console,
    )
    monitor.begin(study.get_trials(deepcopy=False))
    try:
        with monitor:
            while not all(job.done() for job in launched.jobs):
                monitor.update(study.get_trials(deepcopy=False))
                time.sleep(poll_s)
            monitor.update(study.get_trials(deepcopy=False))
    except KeyboardInterrupt:
        for job in launched.jobs:
            with contextlib.suppress(OSError, ValueError):
                # The controller passes SIGTERM on to its job, whose worker stops as on Ctrl-C.
                os.kill(int(job.job_id), signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not all(job.done() for job in launched.jobs) and time.monotonic() < deadline:
            time.sleep(0.2)
        raise
    with contextlib.suppress(OSError):
        # The local executor's controllers make the literal folder of submitit's "%j"; empty.
        plan.folder.rmdir()
    return [_outcome(launched, i, job) for i, job in enumerate(launched.jobs)]


def _outcome(launched: Launched, index: int, job: Any) -> JobOutcome:
    log = launched.log(job)
    if not Path(job.paths.result_pickle).exists():
        return JobOutcome(job.job_id, index, None, f"ended without a result; see {log}", log)
    try:
        result = job.result()
    except Exception as exc:  # submitit's FailedJobError holds the job's traceback
        return JobOutcome(job.job_id, index, None, _last_error(str(exc)), log)
    return JobOutcome(job.job_id, index, result, None, log)


def _last_error(text: str) -> str:
    """The exception line of a job's traceback as submitit reports it (``RuntimeError: ...``)."""
    body = text.split("You can check full logs", 1)[0]
    lines = [
        line
        for line in body.splitlines()
        if line.strip() and not line[0].isspace() and not line.startswith("---")
    ]
    return lines[-1].strip() if lines else text.strip()
