"""Write a study's report, or a comparison of studies, to a folder.

A study's report goes to ``<results>/<study>/report/`` unless told otherwise: ``report.md``,
``report.html`` (self-contained), ``report.tex``, ``trials.csv`` and the plots' PNG files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from mixer_sweeps.report._frame import OBJECTIVE, trials_frame
from mixer_sweeps.report._front import FRONT_PNG, HYPERVOLUME_PNG, front_plots, front_table
from mixer_sweeps.report._importances import Importances, param_importances
from mixer_sweeps.report._plots import history_plot, study_plots
from mixer_sweeps.report._render import Report, print_report, to_html, to_latex, to_markdown
from mixer_sweeps.report._retrain import retrained_tables
from mixer_sweeps.report._tables import Table, ablation_tables, levels_frame, top_table
from mixer_sweeps.results import (
    StudyResults,
    best_per_objective,
    best_trial,
    ci95,
    count_trials,
    describe_best_per,
    describe_counts,
    format_count,
    format_metric,
    format_params,
    pareto_front,
    results_of,
    short_names,
)
from mixer_sweeps.spec import describe_search
from mixer_sweeps.training import SPEC_FILE, atomic_write_text

if TYPE_CHECKING:
    from rich.console import Console

    from mixer_sweeps.study import StudyRun

FORMATS = ("md", "csv", "latex", "html")
_FILES = {"md": "report.md", "latex": "report.tex", "html": "report.html"}
_DATA_FILES = ("trials.csv", "comparison.csv")
_PLOT_FILES = (
    "history.png",
    "intermediate_values.png",
    "parallel_coordinates.png",
    "importances.png",
    "pareto.png",
    "learning_curves.png",
    FRONT_PNG,
    HYPERVOLUME_PNG,
)


def report_folder_entry(name: str) -> Literal["file"] | None:
    """``"file"`` when a report (or a comparison) writes a file named ``name``, else None."""
    plot = name in _PLOT_FILES or (name.startswith("heatmap-") and name.endswith(".png"))
    return "file" if plot or name in (*_FILES.values(), *_DATA_FILES) else None


def parse_formats(values: Sequence[str] | None) -> tuple[str, ...]:
    """``md``, ``csv``, ``latex``, ``html`` or ``all``, repeated or comma-separated; none: all."""
    chosen: list[str] = []
    for value in values or ["all"]:
        for name in filter(None, (part.strip().lower() for part in value.split(","))):
            if name not in (*FORMATS, "all"):
                raise ValueError(
                    f"unknown report format {name!r}: expected md, csv, latex, html or all"
                )
            chosen.extend(FORMATS if name == "all" else [name])
    return tuple(f for f in FORMATS if f in chosen)


@dataclass(frozen=True)
class StudyData:
    """What every view of a study is made from, computed once: the trials and importances."""

    results: StudyResults
    frame: pd.DataFrame
    importances: Importances | None
    importances_note: str
    """Which method computed the importances, or why there are none."""


def study_data(results: StudyResults) -> StudyData:
    importances, note = param_importances(results)
    return StudyData(results, trials_frame(results), importances, note)


def build_report(data: StudyData, out: Path, *, plots: bool = True) -> Report:
    """The report of a study; ``plots`` draws the plots into ``out``."""
    results, frame, importances = data.results, data.frame, data.importances
    complete = (frame["state"] == "COMPLETE").any()
    tables = [top_table(results, frame)] if complete else []
    if complete and results.multi:
        tables.insert(0, front_table(results))
    tables[:0] = retrained_tables(results.study_dir)  # the number to quote comes first
    tables += ablation_tables(results, frame)
    if importances is not None:
        tables.append(
            Table("importances", importances.title, importances.frame, data.importances_note)
        )
    drawn = []
    if plots:
        levels = levels_frame(results, frame)
        drawn = study_plots(results, frame, levels, out, importances=importances)
        if results.multi and drawn:
            drawn[1:1] = front_plots(results, out)  # after the optimisation history
    summary = _summary(results, frame)
    if importances is None:
        summary.append(f"parameter importances: {data.importances_note}")
    return Report(
        title=f"Study {results.name}",
        summary=summary,
        tables=tables,
        plots=drawn,
        spec=_best_spec(results),
    )


def write_report(
    results: StudyResults,
    out: Path | None = None,
    *,
    formats: Sequence[str] = FORMATS,
    console: Console | None = None,
) -> list[Path]:
    """Write the report of a study in ``formats``; returns the files written."""
    return write_study_report(study_data(results), out, formats=formats, console=console)


def write_study_report(
    data: StudyData,
    out: Path | None = None,
    *,
    formats: Sequence[str] = FORMATS,
    console: Console | None = None,
) -> list[Path]:
    """:func:`write_report` from a study's data computed already."""
    out = Path(out) if out is not None else data.results.layout.report_dir
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(data, out, plots="md" in formats or "html" in formats)
    frame = data.frame
    written = [p.path for p in report.plots]
    if "csv" in formats:
        report.data_file = "trials.csv"
        written.append(_write(out / report.data_file, frame.to_csv(index=False)))
    written += _write_documents(report, out, formats)
    if console is not None:
        print_report(report, console)
        if data.importances is not None and data.importances.warning:
            _warn(console, data.importances.warning)
        _print_written(console, out, written)
    return written


def compare_studies(
    studies: Sequence[StudyResults],
    out: Path,
    *,
    formats: Sequence[str] = FORMATS,
    console: Console | None = None,
) -> list[Path]:
    """Side by side: trials by state, the best trial of each; one optimisation-history plot."""
    out.mkdir(parents=True, exist_ok=True)
    table = comparison_table(studies)
    plots = []
    drawn = "md" in formats or "html" in formats
    if drawn and any(best_trial(r.trials) for r in studies):
        from mixer_sweeps.report._plots import Plot

        path = history_plot(studies, out / "history.png")
        plots.append(Plot("Optimisation histories", path))
    report = Report(
        title=f"Studies {', '.join(r.name for r in studies)}",
        summary=[f"{r.name}: {r.study_dir}" for r in studies],
        tables=[table],
        plots=plots,
    )
    written = [p.path for p in plots]
    if "csv" in formats:
        report.data_file = "comparison.csv"
        report.data_label = "One row per study (the table above)"
        written.append(_write(out / report.data_file, table.frame.to_csv()))
    written += _write_documents(report, out, formats)
    if console is not None:
        print_report(report, console)
        _print_written(console, out, written)
    return written


def comparison_table(studies: Sequence[StudyResults]) -> Table:
    """The studies side by side: their counts and best trials. The best value is labelled by
    the studies' metric (``best val acc``, ``best val_loss``); ``best value`` when they differ."""
    metrics = {results.metric for results in studies}
    value = (
        "best value" if len(metrics) > 1 else f"best {metrics.pop()}".replace("val_acc", "val acc")
    )
    rows = []
    for results in studies:
        counts = count_trials(results.trials)
        best = best_trial(results.trials, results.record.direction)
        names = short_names([d.path for d in results.space])
        rows.append(
            {
                "study": results.name,
                "trials": counts.finished,
                "complete": counts.complete,
                "pruned": counts.pruned,
                "failed": counts.failed,
                value: best.value if best else None,
                "best trial": best.number if best else None,
                "best test acc": best.mean_test_acc if best else None,
                "best params": format_params(best.params, names) if best else None,
            }
        )
    frame = pd.DataFrame(rows).set_index("study")
    frame["best trial"] = frame["best trial"].astype("Int64")
    note = "Trials finished by state; the best complete trial of each study and its test acc."
    return Table("studies", "Studies side by side", frame, note, params=("best trial",))


def report_run(run: StudyRun, console: Console, *, view: bool = True) -> list[Path]:
    """The end of ``sweeps run``: the study's report and its W&B study run, from one
    :class:`StudyData`, and when that run went online (and ``view``), the study's saved W&B view
    once; a failure of any is a warning, never an error."""
    if run.fatal is not None or not run.trials:
        return []
    try:
        data = study_data(results_of(run.study, run.study_dir))
        written = [] if run.interrupted else write_study_report(data, console=console)
    except Exception as exc:
        _warn(console, f"the report failed: {type(exc).__name__}: {exc}")
        return []
    try:
        logged = log_study_run(data)
    except Exception as exc:
        _warn(console, f"logging the study to W&B failed: {type(exc).__name__}: {exc}")
        logged = None
    # An online run's folder is run-<time>-<id>; an offline one waits for `sweeps sync`.
    if view and logged is not None and logged.name.startswith("run-"):
        online_view(data.results, console)
    return written


def online_view(results: StudyResults, console: Console) -> None:
    """Save the study's W&B view once, after its runs went online; a failure warns."""
    from mixer_sweeps.report._wandb_view import make_study_view
    from mixer_sweeps.tracking import VIEW_TIMEOUT_S

    try:
        url, new = make_study_view(results, timeout=VIEW_TIMEOUT_S)
    except Exception as exc:
        _warn(console, f"the study's W&B view was not saved ({exc}); `sweeps sync` tries again")
        return
    if new:
        console.print(f"W&B view of the study: {url}", markup=False, highlight=False)


def log_study_run(data: StudyData) -> Path | None:
    """The study as one W&B run: its trials table, importances, best trial and, with several
    objectives, its front table."""
    from mixer_sweeps.spec import RunSpec
    from mixer_sweeps.tracking import log_study

    results = data.results
    best = best_trial(results.trials)
    return log_study(
        data.frame,
        study_name=results.name,
        objective=OBJECTIVE,
        direction=results.direction.name.lower(),
        importances={} if data.importances is None else data.importances.to_dict(),
        best=None
        if best is None
        else {"number": best.number, "value": best.value, "params": dict(best.params)},
        results_dir=results.study_dir,
        spec=RunSpec.model_validate(results.record.base),
        front=front_table(results).frame.reset_index() if results.multi else None,
    )


def _warn(console: Console, message: str) -> None:
    console.print(f"warning: {message}", style="yellow", markup=False)


def _write_documents(report: Report, out: Path, formats: Sequence[str]) -> list[Path]:
    render = {"md": to_markdown, "latex": to_latex, "html": to_html}
    return [
        _write(out / _FILES[f], render[f](report)) for f in FORMATS if f in render and f in formats
    ]


def _write(path: Path, text: str) -> Path:
    atomic_write_text(path, text)
    return path


def _print_written(console: Console, out: Path, written: list[Path]) -> None:
    names = ", ".join(p.name for p in written)
    console.print(f"report in {out}/: {names}", markup=False, highlight=False)


def _summary(results: StudyResults, frame: pd.DataFrame) -> list[str]:
    counts = count_trials(results.trials)
    line = f"{counts.finished} trials finished: {describe_counts(counts)}"
    for n, what in ((counts.running, "running"), (counts.waiting, "queued")):
        if n:
            line += f"; {n} {what}"
    if counts.retried:
        line += f"; {counts.retried} abandoned attempts ran again"
    settings = results.settings
    seeds = results.replicates
    how = [
        describe_search(settings),
        f"{seeds} seed{'s' if seeds > 1 else ''} per configuration",
        f"objective: best {settings.metric}" + (" (mean over seeds)" if seeds > 1 else ""),
    ]
    if results.multi:
        how[-1] = "objectives: " + ", ".join(str(o) for o in results.objectives)
    lines = [line, ", ".join(how)]
    best = best_trial(results.trials)
    if results.multi:
        lines += _front_summary(results)
    elif best is not None:
        row = frame.set_index("number").loc[best.number]
        value = f"{best.metric.replace('_', ' ')} "
        value += format_metric(best.value, ci95(best.best) if seeds > 1 else None)
        if seeds > 1:
            value += f" (mean ± 95% CI, n={seeds} seeds)"
        details = [value]
        if pd.notna(row["test_acc"]):
            details.append(f"test acc {format_metric(row['test_acc'])}")
        if pd.notna(row["num_params"]):
            details.append(f"{format_count(row['num_params'])} parameters")
        if pd.notna(row["epochs"]):
            details.append(f"{row['epochs']} epochs" + (" per seed" if seeds > 1 else ""))
        lines.append(f"best: trial {best.number}, {', '.join(details)}")
        lines.append(f"best params: {format_params(best.params)}")
    return lines


def _front_summary(results: StudyResults) -> list[str]:
    """``front: 3 configurations (trials 0, 1, 3); best val_acc 0.9000 (trial 3), ...``."""
    front = pareto_front(results.trials, results.objectives)
    if not front:
        return []
    best = describe_best_per(
        best_per_objective(results.trials, results.objectives), results.objectives
    )
    numbers = ", ".join(str(t.number) for t in front)
    plural = "s" * (len(front) != 1)
    return [f"front: {len(front)} configuration{plural} (trial{plural} {numbers}); {best}"]


def _best_spec(results: StudyResults) -> str | None:
    best = best_trial(results.trials)
    if best is None:
        return None
    trial_dir = results.trial_dir(best)
    for path in [trial_dir / SPEC_FILE, *sorted(trial_dir.glob(f"seed-*/{SPEC_FILE}"))]:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None
