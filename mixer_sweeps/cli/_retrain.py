"""``sweeps retrain``: the best configurations trained again with fresh seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mixer_sweeps._exit import EXIT_ERROR, EXIT_INTERRUPTED
from mixer_sweeps.cli._options import ONLY_STUDY, StorageOption, the_study

MAX_TOP = 1000
"""Most configurations retrained at once: each is trained again --seeds times."""
MAX_SEEDS = 1000
"""Most seeds per configuration, as many as a study's replicates may be."""


def retrain(
    study_file: Annotated[
        Path | None,
        typer.Argument(
            help=f"Study YAML or results folder, or a run spec YAML{ONLY_STUDY}.",
            show_default=False,
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="Best distinct configurations to retrain.")] = 3,
    front: Annotated[
        bool,
        typer.Option(
            "--front",
            help="Retrain every configuration of a multi-objective study's front (instead of"
            " --top); the summary gives each one's objectives, the learning metric ± 95% CI.",
        ),
    ] = False,
    seeds: Annotated[int, typer.Option(help="Fresh seeds per configuration (seed + 1000 on).")] = 5,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Override optim.epochs (default: as the study or spec says). Other epochs than"
            " the search's make numbers that are not comparable with it: retrain warns, and the"
            " report says so.",
            show_default=False,
        ),
    ] = None,
    results: Annotated[Path, typer.Option(help="Results folder.")] = Path("results"),
    storage: StorageOption = None,
) -> None:
    """Train the best configurations (--front: a multi-objective study's front) again with fresh
    seeds; test accuracy as mean ± 95% CI.

    The search's best val score is optimistic (the best of N on the split that chose it); this
    is the number to quote. Early stopping is off unless the spec sets it. Results go to
    <results>/<study>/retrain/ and into the study's report; running it again skips the finished
    seeds and resumes an interrupted one. A run spec file is retrained the same way, under
    <results>/<spec name>/retrain/.
    """
    from mixer_sweeps.cli._checks import check_machine, check_option, check_writable, fail

    check_option("--top", top, 1, MAX_TOP)
    check_option("--seeds", seeds, 1, MAX_SEEDS, "as study.replicates")
    if epochs is not None and epochs < 1:
        raise fail(f"--epochs must be at least 1 but got {epochs}")
    study_file = the_study(study_file, results)

    from mixer_sweeps.retrain import RetrainError, check_retrain
    from mixer_sweeps.spec import SpecError, read_yaml

    try:
        is_study = study_file.is_dir() or "study" in read_yaml(study_file).data
        if is_study:
            plan = _plan_study(study_file, top, seeds, epochs, results, storage, front=front)
        else:
            if front:
                raise RetrainError(f"--front needs a study; {study_file} is a run spec")
            from mixer_sweeps.retrain import plan_spec_retrain

            plan = plan_spec_retrain(study_file, seeds=seeds, epochs=epochs, results_dir=results)
        check_retrain(plan)
    except (SpecError, RetrainError) as exc:
        raise fail(str(exc)) from None
    first = [
        (f"{plan.source} ({c.id})", spec) for c, s, spec, _ in plan.runs() if s == plan.seeds[0]
    ]
    check_machine(first)
    from mixer_sweeps.cli._write import check_folder_or_fail
    from mixer_sweeps.report import retrain_folder_entry

    check_folder_or_fail(plan.root, owns=retrain_folder_entry, what="a retrain's runs")
    warning = plan.epochs_warning()
    if warning is not None:
        typer.echo(f"warning: {warning}", err=True)
    check_writable(plan.root, "results folder")
    again = ["sweeps", "retrain", str(study_file), "--seeds", str(seeds)]
    again[3:3] = ["--front"] if front else ["--top", str(top)]
    if epochs is not None:
        again += ["--epochs", str(epochs)]
    if storage is not None:
        again += ["--storage", "URL"]  # its password is never printed
    if results != Path("results"):
        again += ["--results", str(results)]
    _train(plan, again)
    if is_study:
        _update_report(plan, results, storage)


def _plan_study(
    study_file: Path, top: int, seeds: int, epochs, results: Path, storage, *, front: bool
):
    from mixer_sweeps.results import ReportError, StudyLayout, load_results
    from mixer_sweeps.retrain import RetrainError, plan_retrain
    from mixer_sweeps.spec import load_saved_study, load_study_file, read_yaml

    saved = StudyLayout(study_file).study_file if study_file.is_dir() else study_file
    if study_file.is_dir() or isinstance(read_yaml(saved).data.get("base"), dict):
        loaded = load_saved_study(saved)  # what `sweeps run` saved in the results folder
    else:
        loaded = load_study_file(study_file)
    try:
        found = load_results(study_file, results_dir=results, storage=storage)
    except ReportError as exc:
        raise RetrainError(str(exc)) from None
    stored = found.record.fingerprint
    if stored is not None and stored != loaded.fingerprint():
        raise RetrainError(
            f"study {loaded.name!r} was run from a different base spec, fixed values, space or"
            f" replicates than {study_file} says now (fingerprint {stored}, the file gives"
            f" {loaded.fingerprint()}); retrain with the study file it was run with"
        )
    if front and not found.multi:
        raise RetrainError(
            f"--front needs a study of several objectives; {found.name} has one"
            f" ({found.metric}): retrain its best with --top"
        )
    return plan_retrain(
        loaded,
        found.trials,
        direction=found.record.direction,
        top=top,
        seeds=seeds,
        epochs=epochs,
        results_dir=results,
        objectives=found.objectives if front else (),
    )


def _train(plan, again: list[str]) -> None:
    """Train the plan's runs, showing each; then its summary. ``again``: the command line that
    continues an interrupted retrain."""
    import shlex

    from mixer_sweeps._progress import EpochProgress, output_console
    from mixer_sweeps._signals import graceful_interrupts
    from mixer_sweeps.data import DatasetUnavailable
    from mixer_sweeps.report import print_report, retrain_title, write_summary
    from mixer_sweeps.retrain import run_retrain
    from mixer_sweeps.tracking import make_trackers
    from mixer_sweeps.training import DeviceUnavailable

    console = output_console()
    configs, seeds = len(plan.configurations), len(plan.seeds)
    ids = ", ".join(c.id for c in plan.configurations)
    console.print(
        f"retrain {plan.name}: {configs} configuration{'s' if configs > 1 else ''} ({ids})"
        f" x {seeds} seed{'s' if seeds > 1 else ''} ({plan.seeds[0]}–{plan.seeds[-1]}),"
        f" in {plan.root}/",
        markup=False,
    )
    progress: list[EpochProgress] = []

    def callbacks(spec, run_dir):
        bar = EpochProgress(spec.optim.epochs, console)
        progress[:] = [bar]
        bar.__enter__()
        return [*make_trackers(spec, results_dir=plan.study_dir), bar]

    def on_outcome(outcome) -> None:
        for bar in progress:
            bar.__exit__(None, None, None)
        progress.clear()
        if outcome.state != "completed":
            console.print(f"  {outcome.config} seed {outcome.seed}: failed: {outcome.reason}")
            return
        how = "finished before" if outcome.reused else f"{outcome.seconds:.1f} s"
        console.print(
            f"  {outcome.config} seed {outcome.seed}: test acc {outcome.test_acc:.4f}, best val"
            f" acc {outcome.best_val_acc:.4f} (epoch {outcome.best_epoch} of {outcome.epochs}),"
            f" {how}",
            markup=False,
        )

    try:
        with graceful_interrupts():
            outcomes = run_retrain(plan, callbacks=callbacks, on_outcome=on_outcome)
    except KeyboardInterrupt:
        for bar in progress:
            bar.__exit__(None, None, None)
        typer.echo(
            "interrupted: the finished seeds and the running one's checkpoint are kept."
            f" Continue with: {shlex.join(again)}",
            err=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (DatasetUnavailable, DeviceUnavailable) as exc:
        from mixer_sweeps.cli._checks import fail

        raise fail(str(exc)) from None
    table, written = write_summary(plan, outcomes)
    from mixer_sweeps.report import Report

    print_report(Report(title=retrain_title(plan), summary=[], tables=[table]), console)
    console.print(f"retrain in {plan.root}/: {', '.join(p.name for p in written)}", markup=False)
    if any(o.state != "completed" for o in outcomes):
        from mixer_sweeps.cli._checks import fail

        failed = sum(o.state != "completed" for o in outcomes)
        raise fail(
            f"{failed} of {len(outcomes)} retrain runs failed (see runs.csv)", code=EXIT_ERROR
        )


def _update_report(plan, results: Path, storage: str | None) -> None:
    """The study's report gains (or updates) its Retrained section; a failure only warns."""
    from mixer_sweeps.report import write_report
    from mixer_sweeps.results import load_results

    try:
        write_report(load_results(plan.study_dir, results_dir=results, storage=storage))
    except Exception as exc:
        typer.echo(f"warning: the study's report failed: {type(exc).__name__}: {exc}", err=True)
        return
    typer.echo(f"report updated: {plan.study_dir / 'report'}/")
