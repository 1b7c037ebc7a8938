"""The ``sweeps`` command line.

Heavy libraries (torch, optuna, wandb, pandas) are imported inside the commands, so that
``sweeps --help`` answers at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mixer_sweeps import _cmd_dashboard, _cmd_plan, _cmd_retrain, _cmd_status
from mixer_sweeps._checks import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    MAX_JOBS,
    MAX_LOCAL_WORKERS,
    StorageOption,
    check_machine,
    check_study,
    check_writable,
    fail,
)
from mixer_sweeps._crash import GuardedGroup, run_guarded, summarize

app = typer.Typer(
    cls=GuardedGroup,  # Ctrl-C anywhere: one line, exit code 130
    help="Run and understand hyper-parameter studies of MLP-Mixer image classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from mixer_sweeps import __version__

        typer.echo(f"mixer-sweeps {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run and understand hyper-parameter studies of MLP-Mixer image classifiers."""


@app.command()
def train(
    spec_file: Annotated[Path, typer.Argument(help="Run spec YAML.", show_default=False)],
    epochs: Annotated[int | None, typer.Option(help="Override optim.epochs.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory [default: results/<name>].")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Override train.device.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run in the run directory.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Start afresh even if the run directory has results.")
    ] = False,
) -> None:
    """Train one run and write spec, history, curves and metrics to its directory.

    Every epoch is checkpointed; after a crash or Ctrl-C, --resume continues where it stopped.
    """
    from mixer_sweeps.spec import SpecError, load_run_spec, with_overrides

    try:
        spec = load_run_spec(spec_file)
        overrides: dict[str, object] = {}
        if epochs is not None:
            # A short smoke run keeps its warm-up inside the epochs it has.
            overrides["optim.epochs"] = epochs
            overrides["optim.warmup_epochs"] = min(spec.optim.warmup_epochs, epochs)
        if device is not None:
            overrides["train.device"] = device
        spec = with_overrides(spec, overrides, source=f"{spec_file} with command-line options")
    except SpecError as exc:
        raise fail(str(exc)) from None
    run_dir = out if out is not None else Path("results") / spec.name
    check_machine([(str(spec_file), spec)])
    _check_run_dir(run_dir, resume=resume, force=force)
    if resume:
        _check_resumable(spec, run_dir)

    from mixer_sweeps._progress import EpochProgress
    from mixer_sweeps._signals import graceful_interrupts
    from mixer_sweeps.data import DatasetUnavailable
    from mixer_sweeps.tracking import make_trackers
    from mixer_sweeps.training import (
        CheckpointError,
        DeviceUnavailable,
        NonFiniteLossError,
        Trainer,
    )

    progress = EpochProgress(spec.optim.epochs)
    trackers = make_trackers(spec, results_dir=run_dir)
    try:
        trainer = Trainer(spec, run_dir=run_dir, callbacks=[progress, *trackers], resume=resume)
    except (DatasetUnavailable, DeviceUnavailable, CheckpointError) as exc:
        if not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise fail(str(exc)) from None
    try:
        with graceful_interrupts(), progress:
            result = trainer.fit()
    except KeyboardInterrupt:
        import shlex

        # The same overrides, or the resumed spec would differ from the checkpoint's.
        again = [str(spec_file), "--resume"]
        for flag, value in (("--out", out), ("--epochs", epochs), ("--device", device)):
            if value is not None:
                again += [flag, str(value)]
        typer.echo(
            f"interrupted after epoch {trainer.epoch}; the checkpoint is kept."
            f" Continue with: sweeps train {shlex.join(again)}",
            err=True,
        )
        raise typer.Exit(130) from None
    except (NonFiniteLossError, CheckpointError) as exc:
        raise fail(str(exc), code=1) from None
    typer.echo(
        f"{spec.name}: best val acc {result.best_val_acc:.4f} (epoch {result.best_epoch}),"
        f" test acc {result.test_acc:.4f}, {result.epochs_run} epochs, {result.reason}."
    )
    typer.echo(f"results in {run_dir}/")
    _echo_wandb(trackers, run_dir)


def _echo_wandb(trackers: list, run_dir: Path) -> None:
    from mixer_sweeps.tracking import WandbTracker

    for tracker in trackers:
        if not isinstance(tracker, WandbTracker) or tracker.path is None:
            continue
        if tracker.mode == "online":
            typer.echo(f"W&B run: {tracker.url}")
        else:
            typer.echo(f"W&B offline run in {tracker.path}/")
            typer.echo(f"  browse: wandb leet {tracker.path}    upload: sweeps sync {run_dir}")


def _check_resumable(spec, run_dir: Path) -> None:
    """Exit 2 if the checkpoint in ``run_dir`` cannot resume ``spec`` (before data is loaded)."""
    from mixer_sweeps.training import CHECKPOINT_FILE, CheckpointError, check_resumable

    try:
        check_resumable(spec, run_dir / CHECKPOINT_FILE)
    except CheckpointError as exc:
        raise fail(str(exc)) from None


def _check_run_dir(run_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to overwrite results by accident, and to start in a folder we cannot write."""
    from mixer_sweeps._write import check_folder_or_fail
    from mixer_sweeps.training import CHECKPOINT_FILE, METRICS_FILE, run_folder_entry

    check_folder_or_fail(run_dir, owns=run_folder_entry, what="a run's files")
    if resume and not (run_dir / CHECKPOINT_FILE).exists():
        finished = (run_dir / METRICS_FILE).exists()
        raise fail(
            f"{run_dir} holds a finished run; nothing to resume"
            if finished
            else f"no checkpoint to resume in {run_dir}"
        )
    if not resume and not force:
        for name, what in ((CHECKPOINT_FILE, "an interrupted run"), (METRICS_FILE, "results")):
            if (run_dir / name).exists():
                raise fail(
                    f"{run_dir} already holds {what}; use --resume to continue it, --force to"
                    " start afresh, or --out for another folder"
                )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise fail(f"cannot write to the results directory {run_dir}: {exc.strerror}") from None


@app.command()
def run(
    study_file: Annotated[Path, typer.Argument(help="Study YAML.", show_default=False)],
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_LOCAL_WORKERS,
            help="Local worker processes, each on its own share of the cores (and, with GPUs,"
            " on one GPU, round-robin). Default: 1, or one per GPU times --workers-per-gpu.",
            show_default=False,
        ),
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            help="GPUs for the workers, as CUDA_VISIBLE_DEVICES names them: 0,2,3."
            " Default: every visible GPU when there are several workers.",
            show_default=False,
        ),
    ] = None,
    workers_per_gpu: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_LOCAL_WORKERS,
            help="Workers sharing one GPU (small Mixers use a small part of it).",
        ),
    ] = None,
    n_trials: Annotated[
        int | None, typer.Option(min=1, help="Override study.n_trials (total, all workers).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Override study.timeout: seconds until no new trial.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL (sqlite:///..., postgresql://..., journal:PATH);"
            " else $SWEEPS_STORAGE, else study.storage, else a journal file in the results.",
            show_default=False,
        ),
    ] = None,
    results: Annotated[Path, typer.Option(help="Results folder.")] = Path("results"),
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Queue the failed trials' configurations again; each retry takes its failed"
            " trial's place in n_trials.",
        ),
    ] = False,
) -> None:
    """Run an Optuna study; running it again resumes it (a finished study adds no trials).

    Ctrl-C abandons the running trials and queues them again for the next run.
    """
    from mixer_sweeps.spec import SpecError, load_study_file

    overrides: dict[str, object] = {}
    if n_trials is not None:
        overrides["study.n_trials"] = n_trials
    if timeout is not None:
        overrides["study.timeout"] = timeout
    try:
        study_file = load_study_file(study_file, overrides)
    except SpecError as exc:
        raise fail(str(exc)) from None
    if workers is None and workers_per_gpu is None:
        workers = 1
    # With --workers-per-gpu alone, at least as many processes (that many on each GPU).
    spawned = workers or workers_per_gpu or 1
    option = "--workers" if workers else "--workers-per-gpu"
    check_study(study_file, results, None if spawned == 1 else spawned, option)

    from mixer_sweeps._progress import output_console
    from mixer_sweeps.results import print_summary
    from mixer_sweeps.study import StudyMismatchError, machine_fault, run_study

    console = output_console()  # in a log: a line per trial, tables at full width
    try:
        from mixer_sweeps.study import parse_gpus

        outcome = run_study(
            study_file,
            workers=workers,
            gpus=None if gpus is None else parse_gpus(gpus),
            workers_per_gpu=workers_per_gpu,
            results_dir=results,
            storage=storage,
            console=console,
            retry_failed=retry_failed,
        )
    except (ValueError, StudyMismatchError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # the storage's or the results' folder: full, read-only, ...
        raise fail(machine_fault(exc) or f"{exc.strerror or exc}: {exc.filename}") from None
    print_summary(outcome, console)
    from mixer_sweeps.report import report_run

    report_run(outcome, console)
    from mixer_sweeps.tracking import describe_runs

    for line in describe_runs(outcome.study_dir):
        console.print(line, markup=False)
    if outcome.fatal is not None:
        raise fail(outcome.fatal)
    if outcome.errors:
        raise fail(summarize(outcome.errors), code=1)  # tracebacks go to a log file
    if outcome.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    failed = _all_failed(outcome.records)
    if failed:
        raise fail(failed, code=1)


def _all_failed(trials: list) -> str | None:
    """One line when every trial of the study failed (re-queued attempts aside), else None."""
    from optuna.trial import TrialState

    from mixer_sweeps.results import count_trials, retried_numbers

    counts = count_trials(trials)
    if not counts.finished or counts.failed < counts.finished:
        return None
    retried = retried_numbers(trials)
    last = [t for t in trials if t.state == TrialState.FAIL and t.number not in retried][-1]
    reason = (last.reason or "no reason recorded").strip().splitlines()[0]
    return (
        f"all {counts.failed} trials failed; trial {last.number}: {reason[:300]}"
        " (every trial's reason is in the report's trials.csv)"
    )


@app.command()
def launch(
    study_file: Annotated[Path, typer.Argument(help="Study YAML.", show_default=False)],
    executor: Annotated[
        str,
        typer.Option(help="slurm: a SLURM job array; local: the same jobs as local processes."),
    ] = "slurm",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_JOBS,
            help="Worker jobs; together they run the study's n_trials.",
        ),
    ] = 1,
    gpus_per_worker: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="GPUs per job (sbatch --gpus-per-node); default none on SLURM, and locally the"
            " GPUs this machine shows.",
            show_default=False,
        ),
    ] = None,
    cpus_per_worker: Annotated[
        int | None,
        typer.Option(min=1, help="CPUs per job (sbatch --cpus-per-task).", show_default=False),
    ] = None,
    partition: Annotated[
        str | None, typer.Option(help="SLURM partition.", show_default=False)
    ] = None,
    time_limit: Annotated[
        str,
        typer.Option(
            "--time",
            help="Time limit per job, HH:MM:SS or minutes; at it a job checkpoints and requeues.",
        ),
    ] = "4:00:00",
    mem: Annotated[
        str | None,
        typer.Option(help="Memory per job, e.g. 16G (sbatch --mem).", show_default=False),
    ] = None,
    sbatch: Annotated[
        list[str] | None,
        typer.Option(
            "--sbatch",
            help="Another sbatch option as KEY=VALUE (account=proj, qos=high); repeat for more.",
            show_default=False,
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL every job reaches (postgresql://USER:PASSWORD@HOST/DB, or"
            " journal:/shared/ABS/PATH); else $SWEEPS_STORAGE, else study.storage.",
            show_default=False,
        ),
    ] = None,
    results: Annotated[
        Path, typer.Option(help="Results folder; for SLURM, on a filesystem every node shares.")
    ] = Path("results"),
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the batch script and each job's command; submit nothing."
        ),
    ] = False,
) -> None:
    """Run a study's workers as batch jobs: a SLURM job array, or local processes (submitit).

    Each job runs one worker; at its time limit its trial is queued again and the job requeues.
    """
    from mixer_sweeps.spec import SpecError, load_study_file

    try:
        loaded = load_study_file(study_file)
    except SpecError as exc:
        raise fail(str(exc)) from None
    if executor == "local":  # its jobs are worker processes of this machine, as run's are
        check_study(loaded, results, workers)

    from rich.console import Console

    from mixer_sweeps.study import (
        LaunchError,
        StudyMismatchError,
        launch_study,
        plan_launch,
        wait_for_jobs,
    )

    try:
        plan = plan_launch(
            loaded,
            study_file,
            executor=executor,
            workers=workers,
            time_limit=time_limit,
            gpus_per_worker=gpus_per_worker,
            cpus_per_worker=cpus_per_worker,
            partition=partition,
            mem=mem,
            sbatch=sbatch or (),
            storage=storage,
            results_dir=results,
        )
    except LaunchError as exc:
        raise fail(str(exc)) from None
    console = Console(highlight=False, soft_wrap=True)
    for note in plan.notes:
        console.print(f"note: {note}", markup=False)
    if dry_run:
        console.print(plan.dry_run_text(), markup=False)
        return
    try:
        launched = launch_study(plan)
    except (ValueError, StudyMismatchError) as exc:  # LaunchError is a ValueError
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{exc.strerror or exc}: {exc.filename}") from None
    console.print(launched.describe(study_arg=str(study_file)), markup=False)
    if executor != "local":
        return
    try:
        outcomes = wait_for_jobs(launched, console)
    except KeyboardInterrupt:
        del launched  # submitit's jobs are let go of now, not at interpreter exit
        typer.echo("interrupted: the jobs were stopped; launch again to finish the study", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    for line in launched.describe_outcomes(outcomes):
        console.print(line, markup=False)
    trials = launched.trial_records()
    del launched
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise fail(f"{len(failed)} of {len(outcomes)} jobs failed", code=1)
    if any(o.result and o.result.get("interrupted") for o in outcomes):
        typer.echo("interrupted: launch again to finish the study", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    every_trial = _all_failed(trials)  # the exit codes of `sweeps run`
    if every_trial:
        raise fail(every_trial, code=1)


@app.command()
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="Run spec or study YAML files.", show_default=False)
    ],
) -> None:
    """Check run specs and study files without running anything; exit 2 if any is invalid.

    A YAML file with a top-level `study:` key is a study file; any other is a run spec.
    """
    from mixer_sweeps.spec import SpecError, load_run_spec, read_yaml

    failed = False
    for path in files:
        try:
            document = read_yaml(path)  # once: a pipe (/dev/stdin, <(...)) reads only once
            if "study" in document.data:
                from mixer_sweeps.spec import describe_study, load_study_file

                summary = describe_study(load_study_file(path, document=document))
            else:
                spec = load_run_spec(path, document=document)
                summary = f"run spec {spec.name}"
        except SpecError as exc:
            failed = True
            typer.echo(str(exc), err=True)
        else:
            typer.echo(f"{path}: ok ({summary})")
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def schema(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write to this file (or pipe, or device), not stdout.", show_default=False
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file --out names if it exists.")
    ] = False,
) -> None:
    """Print the JSON schema of a run spec (for editor completion of YAML)."""
    from mixer_sweeps.spec import RunSpec

    text = json.dumps(RunSpec.model_json_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        from mixer_sweeps._write import write_or_fail

        written = write_or_fail(out, text, force=force, option="--out")
        typer.echo(f"wrote the JSON schema of a run spec to {written.where}", err=True)


@app.command()
def sync(
    results: Annotated[
        Path, typer.Argument(help="A study's (or run's) results folder.", show_default=False)
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be uploaded; upload nothing.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Give up after this many seconds (0: never).", min=0)
    ] = 600,
) -> None:
    """Upload the offline W&B runs under RESULTS/wandb/ with `wandb sync`; never prompts.

    It says which server it waits for, and for how long. The time-out, Ctrl-C or SIGTERM end
    `wandb sync` and the wandb-core service it started; the runs stay on disk to sync later.
    """
    import subprocess

    from mixer_sweeps._signals import graceful_interrupts
    from mixer_sweeps.tracking import has_wandb_credentials, offline_runs, wandb_host

    if not results.is_dir():
        raise fail(f"{results} is not a folder")
    pending, synced = offline_runs(results)
    if not pending:
        done = f" ({synced} already uploaded)" if synced else ""
        typer.echo(f"nothing to sync: no offline W&B runs under {results}{done}")
        return
    if not dry_run and not has_wandb_credentials():
        raise fail("no W&B API key found: set WANDB_API_KEY or run `wandb login`, then sync again")
    command = [sys.executable, "-m", "wandb", "sync", "--yes"]
    runs = f"{len(pending)} offline run(s)"
    host = wandb_host()
    if dry_run:
        command.append("--dry-run")
        typer.echo(f"would upload {runs} to {host}")
    else:
        limit = f"up to {timeout:g} s (--timeout)" if timeout else "with no time limit"
        typer.echo(
            f"uploading {runs} to {host} with `wandb sync`: waiting for that server {limit};"
            " Ctrl-C stops, the runs stay on disk"
        )
    # Its own session and process group, so that stopping it ends wandb-core as well.
    process = subprocess.Popen(
        [*command, *map(str, pending)], stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        with graceful_interrupts():  # SIGTERM too raises KeyboardInterrupt
            code = _wait_for_sync(process, timeout, host)
    except KeyboardInterrupt:
        typer.echo("sync stopped; the runs stay on disk, sync again later", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        _end_process_group(process)
    if code is None:
        raise fail(
            f"wandb sync gave up after {timeout:g} s (is {host} reachable?);"
            " the runs stay on disk, sync again later",
            code=1,
        )
    if code:
        raise fail(f"wandb sync failed (exit code {code})", code=1)


SYNC_NOTE_S = 30.0
"""While `wandb sync` runs, a line this often says that it still waits."""


def _wait_for_sync(process, timeout: float, host: str) -> int | None:
    """``process``'s exit code, or None when ``timeout`` seconds (0: never) passed first."""
    import subprocess
    import time

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
                typer.echo(f"still waiting for {host} ({waited:.0f} s)")


def _end_process_group(process) -> None:
    """Kill what is left of ``process``'s group (the process, the wandb-core it started)."""
    import contextlib
    import os
    import signal

    with contextlib.suppress(ProcessLookupError):  # all gone already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@app.command()
def report(
    studies: Annotated[
        list[Path],
        typer.Argument(
            help="Study YAML files or results folders (results/<study>); two or more are compared.",
            show_default=False,
        ),
    ],
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            "-f",
            help="md, csv, latex, html or all; repeat for several (default: all).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder (default: <study results>/report; for several studies"
            " <results>/compare-<a>-<b>).",
            show_default=False,
        ),
    ] = None,
    results: Annotated[
        Path, typer.Option(help="Results folder, where study files' results are.")
    ] = Path("results"),
    storage: StorageOption = None,
) -> None:
    """Ablation tables and plots of a study: Markdown, CSV, LaTeX and a self-contained HTML page.

    `sweeps run` writes the report when the study ends; this writes it again, at any time.
    """
    from mixer_sweeps._progress import output_console
    from mixer_sweeps.report import compare_studies, parse_formats, write_report
    from mixer_sweeps.results import load_results

    if out is not None:
        from mixer_sweeps._write import check_folder_or_fail
        from mixer_sweeps.report import report_folder_entry

        check_folder_or_fail(out, owns=report_folder_entry, what="a report's files", option="--out")
        check_writable(out, "report folder")
    try:
        chosen = parse_formats(formats)
        found = [load_results(s, results_dir=results, storage=storage) for s in studies]
    except ValueError as exc:  # ReportError, SpecError, a bad format or storage URL
        raise fail(str(exc)) from None
    console = output_console()
    try:
        if len(found) == 1:
            write_report(found[0], out, formats=chosen, console=console)
        else:
            out = out or results / "-".join(["compare", *(r.name for r in found)])
            compare_studies(found, out, formats=chosen, console=console)
    except OSError as exc:  # the report folder: full, read-only, gone
        from mixer_sweeps.study import machine_fault

        fault = machine_fault(exc, elsewhere="--out", trials=False)
        raise fail(fault or f"{exc.strerror or exc}: {exc.filename}") from None


app.command()(_cmd_plan.plan)
app.command()(_cmd_status.status)
app.command()(_cmd_status.best)
app.command()(_cmd_retrain.retrain)
app.command()(_cmd_dashboard.dashboard)


def main() -> None:
    run_guarded(app)  # an unexpected error: one line, the traceback in a log file
