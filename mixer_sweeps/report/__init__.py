"""Reports of studies: the trials as a DataFrame, ablation tables, importances and plots.

``sweeps report`` and the end of ``sweeps run`` write them as Markdown, CSV, LaTeX and a
self-contained HTML page.

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._frame": [
            "OBJECTIVE",
            "trials_frame",
            "value_label",
        ],
        "._importances": [
            "Importances",
            "param_importances",
            "study_importances",
        ],
        "._plots": [
            "Plot",
            "heatmap_figure",
        ],
        "._plots_trials": [
            "history_figure",
            "intermediate_figure",
            "parallel_figure",
            "pareto_figure",
            "pareto_front",
            "trial_values",
        ],
        "._render": [
            "Report",
            "display_frame",
            "print_report",
            "to_html",
            "to_latex",
            "to_markdown",
        ],
        "._retrain": [
            "retrain_folder_entry",
            "retrain_title",
            "retrained_tables",
            "write_summary",
        ],
        "._tables": [
            "Table",
            "ablation_tables",
            "component_table",
            "factor_table",
            "pivot_table",
            "top_table",
        ],
        "._wandb_view": [
            "make_study_view",
            "study_view",
        ],
        "._write": [
            "FORMATS",
            "StudyData",
            "build_report",
            "compare_studies",
            "comparison_table",
            "log_study_run",
            "online_view",
            "parse_formats",
            "report_folder_entry",
            "report_run",
            "study_data",
            "write_report",
            "write_study_report",
        ],
    },
)
