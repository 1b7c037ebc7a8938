"""Specs read from YAML: run specs, and study files (a base run spec and a space over it).

Modules: ``_errors`` (one error naming every bad key, file and line), ``_yaml`` (bounded YAML with
line numbers), ``_run`` (the run spec's sections), ``_load`` (a run spec loaded, overrides
applied), ``_resources`` (what a run needs of memory), ``_space`` (a search space's dimensions),
``_study`` (a study file's sections and the checked study file) and ``_study_load`` (a study
file read and checked).

Each name imports its module on first use (see ``mixer_sweeps._lazy``).
"""

from mixer_sweeps._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "._errors": [
            "FieldError",
            "Problem",
            "SpecError",
        ],
        "._load": [
            "apply_overrides",
            "load_run_spec",
            "parse_run_spec",
            "validate_model",
            "with_overrides",
        ],
        "._resources": [
            "WORKER_PROCESS_BYTES",
            "MemoryEstimate",
            "WorkersFit",
            "available_memory",
            "check_memory",
            "estimate_memory",
            "format_bytes",
            "workers_that_fit",
        ],
        "._run": [
            "DEVICE_PATTERN",
            "NAME_PATTERN",
            "SEED_LIMIT",
            "AugmentSpec",
            "DataSpec",
            "ModelSpec",
            "OptimSpec",
            "RandAugmentSpec",
            "RunSpec",
            "SpecSection",
            "TrackingSpec",
            "TrainSpec",
            "WandbSpec",
        ],
        "._space": [
            "Choices",
            "Dimension",
            "Range",
            "SearchSpace",
            "choice_label",
            "dimension",
        ],
        "._study": [
            "COST_DIRECTIONS",
            "ConfirmSettings",
            "ObjectiveSettings",
            "PrunerSettings",
            "SamplerSettings",
            "StudyFile",
            "StudySettings",
            "describe_budget",
            "describe_search",
            "describe_study",
        ],
        "._study_load": [
            "load_saved_study",
            "load_study_file",
            "parse_study_file",
        ],
        "._yaml": [
            "MAX_DEPTH",
            "MAX_FILE_BYTES",
            "MAX_NODES",
            "YamlDocument",
            "parse_yaml",
            "read_yaml",
        ],
    },
)
