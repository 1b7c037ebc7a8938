"""``sweeps best``: a study's best trial (or top K), its spread over seeds and its run spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mixer_sweeps._exit import EXIT_NOTHING
from mixer_sweeps.cli._checks import fail
from mixer_sweeps.cli._options import (
    ONLY_STUDY,
    Command,
    JsonOption,
    ResultsOption,
    StorageOption,
    load_or_fail,
    the_study,
)

if TYPE_CHECKING:
    from rich.console import Console

    from mixer_sweeps.results import StudyResults, TrialRecord

EXPORT_NAME = "best.yaml"
"""What ``--export`` without a file writes, in the study's results folder."""


class BestCommand(Command):
    """``sweeps best``, whose ``--export`` may come without its file: last, or before another
    option (Typer has no option with an optional value)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--":
                break
            following = args[i + 1] if i + 1 < len(args) else None
            if arg == "--export" and (following is None or following.startswith("--")):
                args[i] = "--export="
        return super().parse_args(ctx, args)


def best(
    study: Annotated[
        Path | None,
        typer.Argument(
            help=f"Study YAML file or results folder (results/<study>){ONLY_STUDY}.",
            show_default=False,
        ),
    ] = None,
    export: Annotated[
        str | None,
        typer.Option(
            metavar="[FILE]",
            help="Write the trial's run spec to FILE (or pipe, or device); without FILE to"
            f" <study results>/{EXPORT_NAME}. `sweeps train FILE` trains it again.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file --export names if it exists.")
    ] = False,
    top: Annotated[
        int | None,
        typer.Option(min=1, help="List the best K complete trials.", show_default=False),
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option(
            min=0, help="Show (and export) this trial instead of the best.", show_default=False
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="With replicates: the seed whose run spec is shown and exported (default: the"
            " first).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    results: ResultsOption = Path("results"),
    storage: StorageOption = None,
) -> None:
    """The best trial of a study: its value (mean ± 95% CI with replicates), params and full run
    spec; --export writes that spec for `sweeps train`.

    Best follows the study's direction (the highest val_acc, the lowest val_loss). A study of
    several objectives lists its front, each configuration with its objectives; --trial N shows
    (and --export writes) one of them.
    """
    from mixer_sweeps._progress import output_console
    from mixer_sweeps.results import (
        count_trials,
        describe_counts,
        ranked,
        study_base,
        trial_run_spec,
        trial_summary,
    )
    from mixer_sweeps.spec import SpecError

    found = load_or_fail(the_study(study, results), results, storage)
    try:
        base = study_base(found)
    except ValueError as exc:
        raise fail(str(exc)) from None
    direction = found.direction
    order = ranked(found.trials, direction)
    if trial is None:
        if not order:
            counts = count_trials(found.trials)
            raise fail(
                f"study {found.name} has no complete trial yet ({describe_counts(counts)},"
                f" {counts.running} running)",
                code=EXIT_NOTHING,
            )
        if found.multi:
            _front(found, len(order), export=export, as_json=as_json, top=top)
            if top is None:
                return
        chosen = order[0]
    else:
        chosen = next((t for t in found.trials if t.number == trial), None)
        if chosen is None:
            numbers = [t.number for t in found.trials]
            held = f"trials 0-{max(numbers)}" if numbers else "no trials"
            raise fail(f"--trial {trial}: study {found.name} has {held}")
    out = None if export is None else Path(export) if export else found.study_dir / EXPORT_NAME
    if out is not None and out.is_dir():
        raise fail(f"--export {out} is a folder; give a file name, e.g. {out / EXPORT_NAME}")
    try:
        spec = trial_run_spec(
            chosen,
            layout=found.layout,
            study_name=found.name,
            base=base,
            space=found.space,
            replicates=found.replicates,
            seed=seed,
        )
    except (ValueError, SpecError) as exc:
        raise fail(str(exc).strip()) from None
    written = None
    if out is not None:
        from mixer_sweeps.cli._write import write_or_fail
        from mixer_sweeps.training import spec_to_yaml

        written = write_or_fail(out, spec_to_yaml(spec.spec), force=force, option="--export")
    top_rows = [trial_summary(t) for t in order[:top]] if top is not None else None
    if as_json:
        payload = {
            "study": found.name,
            "metric": found.metric,
            "direction": direction.name.lower(),
            "replicates": found.replicates,
            "complete": len(order),
            "trial": trial_summary(chosen),
            "rank": order.index(chosen) + 1 if chosen in order else None,
            "seed": spec.seed,
            "spec": spec.spec.model_dump(mode="json"),
            "spec_source": spec.source,
            "notes": list(spec.notes),
            "exported": None if out is None else str(out),
        }
        if top_rows is not None:
            payload["top"] = top_rows
        if found.multi:
            from mixer_sweeps.cli._best_front import objectives_json, trial_objectives

            payload["objectives"] = objectives_json(found)
            payload["trial"].update(trial_objectives(found, chosen))
        typer.echo(json.dumps(payload, indent=2))
        return
    console = output_console()
    if top_rows is not None:
        console.print(_top_table(found, top_rows, len(order)))
    else:
        _print_trial(
            console,
            found,
            chosen,
            spec,
            rank=order.index(chosen) + 1 if chosen in order else None,
            complete=len(order),
        )
    if written is not None:
        again = f": `sweeps train {out}` trains it again" if written.stored else ""
        console.print(
            f"wrote trial {chosen.number}'s run spec to {written.where}{again}", markup=False
        )


def _front(
    found: StudyResults, complete: int, *, export: str | None, as_json: bool, top: int | None
) -> None:
    """A multi-objective study's front, unless ``--top`` asks for the best by the learning
    metric; ``--export`` needs one trial of it."""
    from mixer_sweeps.cli._best_front import front_payload, print_front

    if export is not None:
        raise fail(
            f"study {found.name} has several objectives and no single best trial: give"
            " --trial N (see `sweeps best` for its front) to export that trial"
        )
    if top is not None:
        return
    if as_json:
        typer.echo(json.dumps(front_payload(found, complete), indent=2))
        return
    from mixer_sweeps._progress import output_console

    print_front(output_console(), found, complete)


def _value_text(found: StudyResults, row: dict[str, Any]) -> str:
    from mixer_sweeps.results import format_metric

    return format_metric(row["value"], row["ci95"])


def _print_trial(
    console: Console,
    found: StudyResults,
    trial: TrialRecord,
    spec: Any,
    *,
    rank: int | None,
    complete: int,
) -> None:
    from rich.text import Text

    from mixer_sweeps.results import (
        format_count,
        format_metric,
        format_seconds,
        format_value,
        trial_summary,
    )
    from mixer_sweeps.training import spec_to_yaml

    row = trial_summary(trial)
    metric, direction = found.metric, found.direction.name.lower()
    where = (
        f"best of {complete} complete"
        if rank == 1
        else (f"rank {rank} of {complete} complete" if rank else trial.state.name.lower())
    )
    how = f"{metric}, {direction}"
    if found.multi:
        from mixer_sweeps.cli._best_front import describe_objectives, trial_objectives

        on_front = trial_objectives(found, trial)["on_front"]
        where = "on the front" if on_front else trial.state.name.lower()
        how = describe_objectives(found)
    console.print(Text(f"study {found.name}: trial {trial.number}, {where} ({how})", style="bold"))
    value = f"  {metric} {_value_text(found, row)}"
    if row["per_seed"] and len(row["per_seed"]) > 1:
        seeds = ", ".join(
            f"seed {s}: {format_metric(v)}"
            for s, v in zip(row["seeds"], row["per_seed"], strict=False)
        )
        value += f" (mean ± 95% CI, Student's t, over {len(row['per_seed'])} seeds; {seeds})"
    console.print(value, markup=False)
    if found.multi:
        from mixer_sweeps.cli._best_front import print_objectives

        print_objectives(console, found, trial)
    details = []
    if row["test_acc"] is not None:
        details.append(f"test acc {format_metric(row['test_acc'])}")
    if trial.epochs:
        details.append(f"{sum(trial.epochs)} epochs")
    if trial.num_params is not None:
        details.append(f"{format_count(trial.num_params)} parameters")
    if trial.seconds is not None:
        details.append(format_seconds(trial.seconds))
    if trial.duplicate_of is not None:
        details.append(f"same configuration as trial {trial.duplicate_of}")
    if details:
        console.print("  " + ", ".join(details), markup=False)
    console.print("  params:", markup=False)
    for path, val in trial.params.items():
        console.print(f"    {path}: {format_value(val)}", markup=False)
    if not trial.params:
        console.print("    (none)", markup=False)
    console.print(f"run spec (seed {spec.seed}, {spec.source}):", markup=False)
    for note in spec.notes:
        console.print(f"  set {note}", markup=False)
    console.print(spec_to_yaml(spec.spec).rstrip("\n"), markup=False)


def _top_table(found: StudyResults, rows: list[dict[str, Any]], complete: int) -> Any:
    from rich import box
    from rich.table import Table

    from mixer_sweeps.results import format_count, format_metric, format_value, short_names

    names = short_names([d.path for d in found.space])
    metric, direction = found.metric, found.direction.name.lower()
    ci = found.replicates > 1
    title = (
        f"study {found.name}: top {len(rows)} of {complete} complete trials ({direction} {metric}"
    )
    title += f", mean ± 95% CI over {found.replicates} seeds)" if ci else ")"
    table = Table(title=title, box=box.SIMPLE, title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("trial", justify="right")
    table.add_column(metric + (" ± 95% CI" if ci else ""), justify="right")
    for short in names.values():
        table.add_column(short, justify="right")
    table.add_column("test acc", justify="right")
    table.add_column("params", justify="right")
    for rank, row in enumerate(rows, 1):
        params = [format_value(row["params"].get(path, "")) for path in names]
        table.add_row(
            str(rank),
            str(row["number"]),
            _value_text(found, row),
            *params,
            format_metric(row["test_acc"]),
            format_count(row["num_params"]),
        )
    return table
