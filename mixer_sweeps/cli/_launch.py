"""``sweeps launch``: a study's workers as SLURM or local batch jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mixer_sweeps._exit import EXIT_ERROR, EXIT_INTERRUPTED
from mixer_sweeps.cli._checks import MAX_JOBS, check_study, fail


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
    from mixer_sweeps.results import all_failed
    from mixer_sweeps.spec import SpecError, load_study_file

    try:
        loaded = load_study_file(study_file)
    except SpecError as exc:
        raise fail(str(exc)) from None
    if executor == "local":  # its jobs are worker processes of this machine, as run's are
        check_study(loaded, results, workers)

    from mixer_sweeps._progress import output_console
    from mixer_sweeps.study import LaunchError, plan_launch

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
    console = output_console()
    for note in plan.notes:
        console.print(f"note: {note}", markup=False)
    if dry_run:
        console.print(plan.dry_run_text(), markup=False)
        return
    # Imported once the launch is checked: the jobs' modules import torch, a refusal never does.
    from mixer_sweeps.study import StudyMismatchError, launch_study, wait_for_jobs

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
        raise fail(f"{len(failed)} of {len(outcomes)} jobs failed", code=EXIT_ERROR)
    if any(o.result and o.result.get("interrupted") for o in outcomes):
        typer.echo("interrupted: launch again to finish the study", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    every_trial = all_failed(trials)  # the exit codes of `sweeps run`
    if every_trial:
        raise fail(every_trial, code=EXIT_ERROR)
