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

import math
import os
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import submitit

from mixer_sweeps.results import (
    StudyLayout,
)
from mixer_sweeps.spec import StudyFile
from mixer_sweeps.study._storage import (
    check_storage_url,
    describe_storage,
    journal_path,
    redact,
)

if TYPE_CHECKING:
    from mixer_sweeps.study._job import StudyJob

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
        # Imported here: a job imports the trainer (torch), which checking a launch never needs.
        from mixer_sweeps.study._job import StudyJob

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
