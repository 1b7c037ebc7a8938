"""A study read back: its trials, settings and files, and the words and numbers that tell them.

Modules, bottom up: ``_attrs`` (the keys a study and its trials keep in storage),
``_objectives`` (a study's objectives: a learning metric and, with several, costs), ``_record``
(what a study and a trial are, typed, and the counts of a study's trials), ``_rank`` (the one
ranking of trials and configurations), ``_front`` (a multi-objective study's front and
hypervolume), ``_stats`` (the one 95% CI), ``_layout`` (where a study keeps its files),
``_numbers`` (how every number is written), ``_describe`` (a study told in words), ``_load`` (a
study found and read back from a study file or a results folder), ``_status`` (where a study
stands), ``_watch`` (studies read side by side, each bounded by the storage timeout), ``_best`` (a
trial's run spec rebuilt, its spread over seeds) and ``_summary`` (``sweeps run``'s closing
summary). ``report``, ``status``, ``best``, ``retrain`` and ``dashboard`` read a study through here.

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._attrs": [
            "StudyAttr",
            "TrialAttr",
        ],
        "._best": [
            "TrialSpec",
            "study_base",
            "trial_spread",
            "trial_summary",
            "trial_run_spec",
            "trial_seeds",
        ],
        "._describe": [
            "all_failed",
            "describe_best",
            "describe_counts",
            "format_epochs",
            "format_outcome",
            "format_params",
            "short_names",
        ],
        "._front": [
            "Box",
            "best_per_objective",
            "describe_best_per",
            "dominates",
            "format_objective",
            "front_configurations",
            "hypervolume_box",
            "hypervolume_history",
            "objective_values",
            "objectives_summary",
            "pareto_front",
        ],
        "._layout": [
            "StudyLayout",
        ],
        "._load": [
            "ReportError",
            "StudyResults",
            "find_study",
            "load_results",
            "read_resolved",
            "results_of",
            "stored_best",
        ],
        "._objectives": [
            "COST_METRICS",
            "Objective",
            "as_direction",
            "learning_index",
            "parse_objectives",
        ],
        "._numbers": [
            "MISSING",
            "format_cell",
            "format_count",
            "format_metric",
            "format_seconds",
            "format_value",
            "is_missing",
        ],
        "._rank": [
            "best_configurations",
            "best_trial",
            "ranked",
        ],
        "._record": [
            "StudyRecord",
            "TrialCounts",
            "TrialRecord",
            "count_trials",
            "is_surplus",
            "records",
            "retried_numbers",
        ],
        "._stats": [
            "ci95",
        ],
        "._status": [
            "StudyStatus",
            "find_studies",
            "format_duration",
            "study_status",
        ],
        "._watch": [
            "Watched",
            "refresh",
            "status_of",
        ],
        "._summary": [
            "print_summary",
        ],
    },
)
