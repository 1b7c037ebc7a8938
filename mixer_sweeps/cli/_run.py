"""``sweeps run``: a study run here by local workers, then its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mixer_sweeps._crash import summarize
from mixer_sweeps._exit import EXIT_ERROR, EXIT_INTERRUPTED
from mixer_sweeps.cli._checks import MAX_LOCAL_WORKERS, check_study, fail


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
    no_view: Annotated[
        bool,
        typer.Option(
            "--no-view",
            help="Save no W&B workspace view of the study (made once, when its runs are online).",
        ),
    ] = False,
) -> None:
    """Run an Optuna study; running it again resumes it (a finished study adds no trials).

    Ctrl-C abandons the running trials and queues them again for the next run. A study whose
    n_trials have finished is left as it is: no trial, report or W&B run is added.
    """
    from mixer_sweeps.results import all_failed
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
    from mixer_sweeps.study import finished_study

    finished = finished_study(
        study_file, results_dir=results, storage=storage, retry_failed=retry_failed
    )
    if finished is not None:
        _say_finished(finished, study_file.settings.metric)
        return
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

    report_run(outcome, console, view=not no_view)
    from mixer_sweeps.tracking import describe_runs

    for line in describe_runs(outcome.study_dir):
        console.print(line, markup=False)
    if outcome.fatal is not None:
        raise fail(outcome.fatal)
    if outcome.errors:
        raise fail(summarize(outcome.errors), code=EXIT_ERROR)  # tracebacks go to a log file
    if outcome.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    failed = all_failed(outcome.records)
    if failed:
        raise fail(failed, code=EXIT_ERROR)


def _say_finished(finished, metric: str) -> None:
    from mixer_sweeps.results import describe_counts

    c, root = finished.counts, finished.layout.root
    typer.echo(
        f"study {root.name} is finished; nothing to run: {c.finished} of {finished.n_trials}"
        f" trials have finished ({describe_counts(c)})"
    )
    typer.echo("nothing added: no trial, report or W&B run")
    if finished.best is not None and finished.best.value is not None:
        typer.echo(f"best: trial {finished.best.number}, {metric} {finished.best.value:.4f}")
    report = finished.layout.report_dir
    if report.is_dir():
        typer.echo(f"report: {report}/ (`sweeps report {root}` writes it again)")
    else:
        typer.echo(f"no report yet: `sweeps report {root}` writes it")
    typer.echo("more trials: --n-trials N (the total)")
