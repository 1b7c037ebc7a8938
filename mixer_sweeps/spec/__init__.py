"""Run specs (and, in :mod:`mixer_sweeps.study`, study files) read from YAML."""

from mixer_sweeps.spec._errors import FieldError, Problem, SpecError
from mixer_sweeps.spec._load import (
    apply_overrides,
    load_run_spec,
    parse_run_spec,
    validate_model,
    with_overrides,
)
from mixer_sweeps.spec._run import (
    NAME_PATTERN,
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
from mixer_sweeps.spec._yaml import YamlDocument, parse_yaml, read_yaml

__all__ = [
    "NAME_PATTERN",
    "AugmentSpec",
    "DataSpec",
    "FieldError",
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
    "load_run_spec",
    "parse_run_spec",
    "parse_yaml",
    "read_yaml",
    "validate_model",
    "with_overrides",
]
