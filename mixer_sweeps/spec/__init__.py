"""Run specs (and, in :mod:`mixer_sweeps.study`, study files) read from YAML."""

from mixer_sweeps.spec._errors import FieldError, Problem, SpecError
from mixer_sweeps.spec._load import (
    apply_overrides,
    load_run_spec,
    parse_run_spec,
    validate_model,
    with_overrides,
)
from mixer_sweeps.spec._resources import (
    MemoryEstimate,
    available_memory,
    check_memory,
    estimate_memory,
)
from mixer_sweeps.spec._run import (
    DEVICE_PATTERN,
    NAME_PATTERN,
    SEED_LIMIT,
    AugmentSpec,
    DataSpec,
    ModelSpec,
    OptimSpec,
    RandAugmentSpec,
    RunSpec,
    SpecSection,
    TrackingSpec,
    TrainSpec,
    WandbSpec,
)
from mixer_sweeps.spec._yaml import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    YamlDocument,
    parse_yaml,
    read_yaml,
)

__all__ = [
    "DEVICE_PATTERN",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "NAME_PATTERN",
    "SEED_LIMIT",
    "AugmentSpec",
    "DataSpec",
    "FieldError",
    "MemoryEstimate",
    "ModelSpec",
    "OptimSpec",
    "Problem",
    "RandAugmentSpec",
    "RunSpec",
    "SpecError",
    "SpecSection",
    "TrackingSpec",
    "TrainSpec",
    "WandbSpec",
    "YamlDocument",
    "apply_overrides",
    "available_memory",
    "check_memory",
    "estimate_memory",
    "load_run_spec",
    "parse_run_spec",
    "parse_yaml",
    "read_yaml",
    "validate_model",
    "with_overrides",
]
