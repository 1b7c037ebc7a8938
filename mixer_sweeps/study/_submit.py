"""A launch carried out: the study prepared, its jobs submitted, and waited for."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
from rich.console import Console

from mixer_sweeps._signals import ignored
from mixer_sweeps.results import (
    TrialRecord,
    count_trials,
    describe_counts,
    records,
)
from mixer_sweeps.study._launch import MAX_REQUEUES, LaunchError, LaunchPlan
from mixer_sweeps.study._monitor import StudyMonitor
from mixer_sweeps.study._quiet import optuna_quiet
from mixer_sweeps.study._runner import _open_study, _write_study_file
from mixer_sweeps.study._storage import (
    journal_path,
    open_storage,
    redact,
)

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
