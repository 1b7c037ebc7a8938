"""Reports of studies: the trials as a DataFrame, ablation tables, importances and plots.

``sweeps report`` and the end of ``sweeps run`` write them as Markdown, CSV, LaTeX and a
self-contained HTML page.
"""

from mixer_sweeps.report._frame import OBJECTIVE, trials_frame, value_label
from mixer_sweeps.report._importances import param_importances
from mixer_sweeps.report._load import ReportError, StudyResults, load_results, results_of
from mixer_sweeps.report._plots import Plot, pareto_front
from mixer_sweeps.report._render import Report, display_frame, to_html, to_latex, to_markdown
from mixer_sweeps.report._tables import (
    Table,
    ablation_tables,
    ci95,
    component_table,
    factor_table,
    pivot_table,
    top_table,
)
from mixer_sweeps.report._write import (
    FORMATS,
    StudyData,
    build_report,
    compare_studies,
    comparison_table,
    log_study_run,
    parse_formats,
    report_run,
    study_data,
    write_report,
    write_study_report,
)

__all__ = [
    "FORMATS",
    "OBJECTIVE",
    "Plot",
    "Report",
    "ReportError",
    "StudyData",
    "StudyResults",
    "Table",
    "ablation_tables",
    "build_report",
    "ci95",
    "compare_studies",
    "comparison_table",
    "component_table",
    "display_frame",
    "factor_table",
    "log_study_run",
    "load_results",
    "param_importances",
    "pareto_front",
    "parse_formats",
    "pivot_table",
    "report_run",
    "results_of",
    "study_data",
    "to_html",
    "to_latex",
    "to_markdown",
    "top_table",
    "trials_frame",
    "value_label",
    "write_report",
    "write_study_report",
]
