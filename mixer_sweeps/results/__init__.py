"""A study read back: its trials, settings and files, and the words and numbers that tell them.

Modules, bottom up: ``_attrs`` (the keys a trial keeps in storage), ``_record`` (what a trial is,
typed, and the counts of a study's trials), ``_layout`` (where a study keeps its files),
``_describe`` (a study told in words), ``_load`` (a study found and read back from a study file
or results folder), ``_status`` (where a study stands), ``_best`` (a trial's run spec rebuilt)
and ``_summary`` (``sweeps run``'s closing summary). ``report``, ``status``, ``best``, ``retrain``
and ``dashboard`` read a study through here.

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._attrs": [
            "TrialAttr",
        ],
        "._best": [
            "TrialSpec",
            "trial_run_spec",
            "trial_seeds",
        ],
        "._describe": [
            "describe_counts",
            "format_epochs",
            "format_outcome",
            "format_params",
            "format_value",
            "short_names",
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
        ],
        "._record": [
            "TrialCounts",
            "TrialRecord",
            "best_trial",
            "count_trials",
            "is_surplus",
            "records",
            "retried_numbers",
        ],
        "._status": [
            "StudyStatus",
            "find_studies",
            "format_duration",
            "ranked",
            "study_status",
        ],
        "._summary": [
            "print_summary",
        ],
    },
)
