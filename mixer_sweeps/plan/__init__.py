"""A study's dry run (``sweeps plan``): what it will train, how big its models are, how long.

Modules: ``_cost`` (what one configuration costs: parameters, FLOPs, a pruner's saving, its
measured time) and ``_plan`` (the plan of a whole study built from them).

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._cost": [
            "ModelCost",
            "expected_run",
            "measure_images_per_s",
            "model_cost",
        ],
        "._plan": [
            "StudyPlan",
            "plan_study",
        ],
    },
)
