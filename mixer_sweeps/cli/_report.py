"""``sweeps report``: a study's (or several studies') report written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mixer_sweeps.cli._checks import check_writable, fail
from mixer_sweeps.cli._options import ONLY_STUDY, ResultsOption, StorageOption, the_study


def report(
    studies: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Study YAML files or results folders (results/<study>); two or more are"
            f" compared{ONLY_STUDY}.",
            show_default=False,
        ),
    ] = None,
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
    results: ResultsOption = Path("results"),
    storage: StorageOption = None,
) -> None:
    """Ablation tables and plots of a study: Markdown, CSV, LaTeX and a self-contained HTML page.

    `sweeps run` writes the report when the study ends; this writes it again, at any time.
    """
    from mixer_sweeps._progress import output_console
    from mixer_sweeps.report import compare_studies, parse_formats, write_report
    from mixer_sweeps.results import load_results

    studies = studies or [the_study(None, results)]
    if out is not None:
        from mixer_sweeps.cli._write import check_folder_or_fail
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
