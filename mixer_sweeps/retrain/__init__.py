"""The final number (``sweeps retrain``): a study's best configurations, or one run spec, trained
again with fresh seeds and each run tested once.

Module: ``_retrain`` (the plan of the runs, their checks and running them).

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._retrain": [
            "RETRAIN_DIR",
            "RetrainError",
            "RetrainPlan",
            "RunOutcome",
            "check_retrain",
            "config_number",
            "format_epochs_range",
            "plan_retrain",
            "plan_spec_retrain",
            "run_retrain",
        ],
    },
)
