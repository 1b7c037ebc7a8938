"""Study files: a base run spec, values held fixed, and a search space over dotted spec paths.

.. code-block:: yaml

    study:
      name: width_depth
      base: ../specs/mixer_nano_cifar10.yaml   # relative to this file; or a top-level `run:`
      n_trials: 40
      sampler: {type: tpe, seed: 0}
      pruner: {type: hyperband, min_epochs: 3}
    fixed:
      optim.epochs: 60
    space:
      model.depth: {choices: [4, 8, 12]}
      optim.lr: {low: 1e-4, high: 3e-3, log: true}

Everything that can be known before a trial trains is checked when the file is loaded, and every
problem is reported at once as one :class:`~mixer_sweeps.spec.SpecError`: unknown paths, empty or
reversed ranges, and each choice (and each end of each range) applied alone to the base spec, so a
patch size that cannot divide the image stops the study before anything trains.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import math
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from mixer_sweeps.spec import (
    NAME_PATTERN,
    SEED_LIMIT,
    FieldError,
    Problem,
    RunSpec,
    SpecError,
    SpecSection,
    YamlDocument,
    apply_overrides,
    read_yaml,
    validate_model,
)
from mixer_sweeps.study._describe import describe_budget, describe_search
from mixer_sweeps.study._space import Choices, Range, SearchSpace, choice_label
from mixer_sweeps.training import HISTORY_COLUMNS

SamplerType = Literal["tpe", "random", "grid", "cmaes", "qmc"]
PrunerType = Literal["median", "hyperband", "successive_halving", "none"]

Metric = Literal[tuple(c for c in HISTORY_COLUMNS if c != "epoch")]  # type: ignore[misc]
Direction = Literal["maximize", "minimize"]
METRIC_DIRECTIONS: dict[str, Direction] = {
    "train_loss": "minimize",
    "val_loss": "minimize",
    "seconds": "minimize",
    "train_acc": "maximize",
    "val_acc": "maximize",
    "images_per_s": "maximize",
}
"""The direction a metric takes when ``study.direction`` is not given; ``lr`` has none. A
direction against the name (maximise a loss) is allowed: it is what the file says."""

# Every trial gets its own name, so searching or fixing these would be meaningless.
_RESERVED_PATHS = ("name",)

MAX_GRID_POINTS = 1_000_000
"""Most points a grid study may have: Optuna's grid sampler lists every one of them."""


class SamplerSettings(SpecSection):
    """How the next configuration is chosen."""

    type: SamplerType = Field(
        "tpe",
        description="tpe (multivariate TPE), random, grid (every point once), cmaes, qmc (Sobol).",
    )
    seed: int | None = Field(
        0,
        ge=0,
        lt=SEED_LIMIT,
        description="Seed of the sampler; null draws a fresh one. Each worker process derives"
        " its own seed from it and the number of its first trial, so workers never replay each"
        " other's draws; the worker that runs trial 0 uses the seed itself.",
    )
    startup_trials: int | None = Field(
        None,
        ge=0,
        description="tpe and cmaes only: random trials before the model takes over"
        " [default: 10 for tpe, 1 for cmaes].",
    )

    @model_validator(mode="after")
    def _startup_applies(self) -> SamplerSettings:
        if self.startup_trials is not None and self.type not in ("tpe", "cmaes"):
            raise FieldError(
                [
                    (
                        "sampler.startup_trials",
                        f"only applies to the tpe and cmaes samplers but the sampler is"
                        f" {self.type!r}",
                    )
                ]
            )
        return self


class PrunerSettings(SpecSection):
    """When a lagging trial is stopped, judged on its per-epoch validation accuracy."""

    type: PrunerType = Field("median", description="median, hyperband, successive_halving, none.")
    min_epochs: int = Field(
        1, ge=1, description="No trial is pruned before it has trained this many epochs."
    )
    startup_trials: int = Field(
        5, ge=0, description="median only: trials that finish before any trial is pruned."
    )
    reduction_factor: int = Field(
        3,
        ge=2,
        description="hyperband and successive_halving: 1/reduction_factor of the trials reaching"
        " a rung go on to the next.",
    )


class StudySettings(SpecSection):
    """The `study:` section."""

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=128,
        description="Study name in the storage; results go to <results>/<name>/.",
    )
    base: str | None = Field(
        None,
        description="Base run spec, relative to the study file; or give the spec inline as a"
        " top-level `run:` mapping.",
    )
    metric: Metric = Field(
        "val_acc",
        description="A per-epoch field of the trainer's history (val_acc, val_loss, train_loss,"
        " ...): reported every epoch for pruning; a trial's value is its best over the epochs"
        " (the mean over replicates).",
    )
    direction: Direction | None = Field(
        None,
        description="maximize or minimize the metric [default: by its name: minimize losses and"
        " seconds, maximize accuracies and images_per_s].",
    )
    n_trials: int | None = Field(
        None,
        ge=1,
        description="Trials in total, across all workers and runs [default for grid: the grid"
        " size].",
    )
    timeout: float | None = Field(
        None, gt=0, description="Seconds after which no new trial starts; null for no limit."
    )
    sampler: SamplerSettings = Field(default_factory=SamplerSettings)
    pruner: PrunerSettings = Field(default_factory=PrunerSettings)
    replicates: int = Field(
        1,
        ge=1,
        le=1000,
        description="Seeds per configuration (spec seed, seed + 1, ...); the objective is the"
        " mean of their best val accuracies.",
    )
    storage: str | None = Field(
        None,
        description="Optuna storage URL (sqlite:///..., postgresql://...) or journal:PATH;"
        " null keeps a journal file under <results>/<name>/.",
    )
    skip_duplicates: bool = Field(
        True,
        description="A configuration that an earlier trial completed or had pruned is not"
        " trained again: the trial takes that trial's outcome (and counts towards n_trials)."
        " One that an earlier trial is training now is waited for, then taken likewise (trained"
        " after all if that trial fails). Samplers often repeat points of a discrete space, and"
        " on a fixed seed a repeat only costs time.",
    )

    @model_validator(mode="after")
    def _direction_of_metric(self) -> StudySettings:
        if self.direction is None:
            direction = METRIC_DIRECTIONS.get(self.metric)
            if direction is None:
                raise FieldError(
                    [
                        (
                            "metric",
                            f"{self.metric!r} has no default direction; give study.direction:"
                            " maximize or minimize",
                        )
                    ]
                )
            # Frozen: filled once here, so every reader (fingerprint, runner) sees it set.
            object.__setattr__(self, "direction", direction)
        return self


class _StudyDocument(SpecSection):
    study: dict[str, Any]
    space: dict[str, Any] = Field(min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    run: dict[str, Any] | None = None
    enqueue: list[Any] = Field(default_factory=list)


class _Dimension(SpecSection):
    choices: list[Any] | None = None
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = Field(None, gt=0)

    @field_validator("low", "high", "step", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _is_consistent(self) -> _Dimension:
        problems: list[tuple[str, str]] = []
        if self.choices is not None:
            for key in ("low", "high", "step"):
                if getattr(self, key) is not None:
                    problems.append((key, "cannot be combined with choices"))
            if self.log:
                problems.append(("log", "cannot be combined with choices"))
            if not self.choices:
                problems.append(("choices", "must list at least one value but got []"))
            for i, choice in enumerate(self.choices):
                if choice in self.choices[:i]:
                    problems.append((f"choices.{i}", f"duplicate choice {choice!r}"))
        elif self.low is None or self.high is None:
            if self.low is None and self.high is None:
                problems.append(("choices", "give either choices or low and high"))
            else:
                missing = "low" if self.low is None else "high"
                problems.append((missing, "required with a range but missing"))
        else:
            if self.low > self.high:
                problems.append(("low", f"must not exceed high={self.high} but got {self.low}"))
            if self.log and self.low <= 0:
                problems.append(("low", f"must be > 0 with log: true but got {self.low}"))
            if self.log and self.step is not None:
                problems.append(("step", "cannot be combined with log: true"))
            elif self.step is not None and self.low <= self.high:
                ratio = (self.high - self.low) / self.step
                if abs(ratio - round(ratio)) > 1e-9:
                    problems.append(
                        (
                            "step",
                            f"must divide high - low = {self.high - self.low} but got {self.step}",
                        )
                    )
        if problems:
            raise FieldError(problems)
        return self


@dataclass(frozen=True)
class StudyFile:
    """A loaded, validated study file: what :func:`~mixer_sweeps.study.run_study` runs."""

    settings: StudySettings
    space: SearchSpace
    fixed: dict[str, Any]
    base_data: dict[str, Any]
    """The base run spec as written, with the fixed values applied."""
    base_spec: RunSpec
    """``base_data`` validated."""
    source: str
    enqueue: tuple[dict[str, Any], ...] = ()
    """Hand-picked configurations tried first, as Optuna params (choices by their labels); each
    may give only some of the searched paths, and the sampler picks the others."""

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def n_trials(self) -> int | None:
        """Trials in total; for a grid without ``n_trials``, every grid point once."""
        if self.settings.n_trials is None and self.settings.sampler.type == "grid":
            return self.space.grid_size()
        return self.settings.n_trials

    @property
    def seeds(self) -> list[int]:
        return [self.base_spec.seed + i for i in range(self.settings.replicates)]

    @property
    def max_epochs(self) -> int:
        """The most epochs any trial can train (the pruners' maximum resource)."""
        return _max_epochs(self.space, self.base_spec)

    def trial_spec(
        self, overrides: dict[str, Any], *, name: str, seed: int | None = None
    ) -> RunSpec:
        """The run spec of one trial: the base, then the fixed values, then ``overrides``."""
        extra: dict[str, Any] = {"name": name}
        if seed is not None:
            extra["seed"] = seed
        data = apply_overrides(self.base_data, {**overrides, **extra})
        return validate_model(RunSpec, data, YamlDocument(data, {}, f"trial {name}"))

    def variants(self) -> Iterator[tuple[str, RunSpec]]:
        """The base spec, then each choice (each end of each range) applied alone to it.

        Each with a label saying which (``studies/s.yaml with model.depth=12``): what ``sweeps
        run`` checks against the machine (device, memory) before any trial starts.
        """
        yield f"{self.source} (the base spec)", self.base_spec
        for dim in self.space.dims:
            values = dim.values if isinstance(dim, Choices) else (dim.low, dim.high)
            for value in values:
                spec = self.trial_spec({dim.path: value}, name=self.name)
                yield f"{self.source} with {dim.path}={value!r}", spec

    def fingerprint(self) -> str:
        """Hash of what makes trials comparable: base spec, fixed values, space, replicates.

        Where a trial trains (``train``) and what it reports to (``tracking``) are left out, so a
        study can move between machines.
        """
        base = self.base_spec.model_dump(mode="json", exclude={"name", "train", "tracking"})
        payload = {
            "base": base,
            "space": self.space.describe(),
            "replicates": self.settings.replicates,
            "metric": self.settings.metric,
        }
        # Only where it differs from val_acc's only direction, so older studies keep their hash.
        if self.settings.direction != "maximize":
            payload["direction"] = self.settings.direction
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def describe_study(study_file: StudyFile) -> str:
    """One line about a study, for ``sweeps validate``."""
    s = study_file.settings
    dims = len(study_file.space.dims)
    return (
        f"study {study_file.name}: {dims} dimension{'s' if dims != 1 else ''},"
        f" {describe_budget(study_file.n_trials, s.timeout)},"
        f" {describe_search(s.model_dump())}, base {study_file.base_spec.name}"
    )


def load_study_file(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    document: YamlDocument | None = None,
) -> StudyFile:
    """Read and check a study file; ``overrides`` sets dotted paths (``study.n_trials``).

    ``document``: the file as :func:`~mixer_sweeps.spec.read_yaml` read it already (a pipe, or
    ``<(...)``, can be read only once).

    Raises:
        SpecError: listing every problem, with its dotted path and line.
    """
    path = Path(path)
    doc = read_yaml(path) if document is None else document
    if not overrides:
        return _check(doc, path.parent)
    data = apply_overrides(doc.data, overrides)
    given = ", ".join(f"{key}={value!r}" for key, value in overrides.items())
    return _check(YamlDocument(data, doc.lines, f"{doc.source} with {given}"), path.parent)


def parse_study_file(
    text: str, *, source: str = "<string>", base_dir: Path = Path(".")
) -> StudyFile:
    """Like :func:`load_study_file` for text; ``base`` paths are relative to ``base_dir``."""
    from mixer_sweeps.spec import parse_yaml

    return _check(parse_yaml(text, source=source), base_dir)


def _check(doc: YamlDocument, base_dir: Path) -> StudyFile:
    # Every section is checked even when another has mistakes, so that one run of `sweeps
    # validate` lists them all: a broken study section does not hide a broken inline run.
    problems: list[Problem] = []
    document = _sections(doc, problems)
    settings = None
    if document.study is not None:
        settings = _collect(
            problems, lambda: validate_model(StudySettings, document.study, doc, prefix=("study",))
        )

    dims = {}
    for key, value in document.space.items():
        dim = _check_dimension(key, value, doc, problems)
        if dim is not None:
            dims[key] = dim
    fixed = {
        key: value
        for key, value in document.fixed.items()
        if _check_path(("fixed", key), doc, problems) is not None
    }

    base_raw, base_valid = _load_base(document, settings, doc, base_dir, problems)
    base_data = base_spec = None
    if base_raw is not None and base_valid:
        base_data = _collect(problems, lambda: apply_overrides(base_raw, fixed))
    elif base_raw is not None:
        base_data = _apply_where_possible(base_raw, fixed)
    if base_data is not None:
        if base_valid:
            base_spec = _collect(problems, lambda: _validate_fixed(base_data, fixed, doc))
        else:  # its own problems are listed; the fixed values' may still be found
            problems.extend(_fixed_problems(base_data, fixed, doc))
        for key, dim in dims.items():
            _check_dimension_values(key, dim, base_data, doc, problems, own_only=base_spec is None)

    space = SearchSpace(tuple(dims.values()))
    if settings is not None:
        _check_study_rules(settings, space, base_spec, doc, problems)
    enqueue = _check_enqueue(document, dims, settings, doc, problems)
    if problems:
        raise SpecError(doc.source, problems)
    assert settings is not None and base_data is not None and base_spec is not None
    return StudyFile(
        settings=settings,
        space=space,
        fixed=fixed,
        base_data=base_data,
        base_spec=base_spec,
        source=doc.source,
        enqueue=enqueue,
    )


@dataclass(frozen=True)
class _Sections:
    """The top-level sections of a study file; those with mistakes are left out."""

    study: dict[str, Any] | None
    space: dict[str, Any]
    fixed: dict[str, Any]
    run: dict[str, Any] | None
    run_given: bool
    enqueue: list[Any]
    """A top-level ``run:`` is there, even if it is not a valid mapping."""
    base: str | None
    """``study.base`` when it is a string, even if the rest of ``study:`` is not valid."""


def _sections(doc: YamlDocument, problems: list[Problem]) -> _Sections:
    try:
        document = validate_model(_StudyDocument, doc.data, doc)
    except SpecError as exc:
        problems.extend(exc.problems)
        bad = {p.path.split(".")[0] for p in exc.problems}
        raw = {k: v for k, v in doc.data.items() if k in _StudyDocument.model_fields}
        good = {k: v for k, v in raw.items() if k not in bad}
        study = good.get("study")
        base = study.get("base") if isinstance(study, dict) else None
        return _Sections(
            study=study,
            space=good.get("space") or {},
            fixed=good.get("fixed") or {},
            run=good.get("run"),
            enqueue=good.get("enqueue") or [],
            run_given=doc.data.get("run") is not None,
            base=base if isinstance(base, str) else None,
        )
    base = document.study.get("base")
    return _Sections(
        study=document.study,
        space=document.space,
        fixed=document.fixed,
        run=document.run,
        enqueue=document.enqueue,
        run_given=document.run is not None,
        base=base if isinstance(base, str) else None,
    )


def _collect(problems: list[Problem], call: typing.Callable[[], Any]) -> Any:
    try:
        return call()
    except SpecError as exc:
        problems.extend(exc.problems)
        return None


def _problem(doc: YamlDocument, path: tuple, message: str) -> Problem:
    return Problem(".".join(str(p) for p in path), message, doc.line_of(path))


def _check_dimension(
    key: str, value: Any, doc: YamlDocument, problems: list[Problem]
) -> Choices | Range | None:
    at = ("space", key)
    annotation = _check_path(at, doc, problems)
    if not isinstance(value, dict):
        problems.append(
            _problem(
                doc, at, f"expected {{choices: [...]}} or {{low: ..., high: ...}} but got {value!r}"
            )
        )
        return None
    dim = _collect(problems, lambda: validate_model(_Dimension, value, doc, prefix=at))
    if dim is None or annotation is None:
        return None
    if dim.choices is not None:
        return Choices(key, tuple(dim.choices))
    kind = _numeric_kind(annotation)
    if kind is None:
        problems.append(_problem(doc, at, "a range needs a numeric field; list choices instead"))
        return None
    if kind == "int":
        bad = [k for k in ("low", "high", "step") if not _is_integral(getattr(dim, k))]
        for k in bad:
            problems.append(
                _problem(doc, (*at, k), f"{key} is an integer but got {getattr(dim, k)!r}")
            )
        if bad:
            return None
        step = int(dim.step) if dim.step is not None else None
        return Range(key, int(dim.low), int(dim.high), log=dim.log, step=step, integer=True)
    return Range(key, float(dim.low), float(dim.high), log=dim.log, step=dim.step, integer=False)


def _is_integral(value: float | None) -> bool:
    return value is None or (not isinstance(value, bool) and float(value).is_integer())


def _check_path(at: tuple[str, str], doc: YamlDocument, problems: list[Problem]) -> Any:
    """The annotation of the run spec field that ``at[1]`` names, or None after a problem."""
    dotted = at[1]
    if dotted in _RESERVED_PATHS:
        problems.append(_problem(doc, at, f"{dotted!r} is set per trial and cannot be chosen"))
        return None
    model: type[BaseModel] = RunSpec
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            hint = difflib.get_close_matches(dotted, _all_paths(RunSpec), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            problems.append(_problem(doc, at, f"unknown run spec field {dotted!r}{suggestion}"))
            return None
        if i == len(parts) - 1:
            return field.annotation
        nested = _nested_model(field.annotation)
        if nested is None:
            prefix = ".".join(parts[: i + 1])
            problems.append(_problem(doc, at, f"{prefix!r} is a value, not a section"))
            return None
        model = nested
    return None


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _all_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        paths.append(prefix + name)
        nested = _nested_model(field.annotation)
        if nested is not None:
            paths.extend(_all_paths(nested, f"{prefix}{name}."))
    return paths


def _numeric_kind(annotation: Any) -> Literal["int", "float"] | None:
    args = typing.get_args(annotation)
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kinds = {a for a in (args if is_union else (annotation,)) if a is not type(None)}
    if kinds == {int}:
        return "int"
    if kinds and kinds <= {int, float}:
        return "float"
    return None


def _load_base(
    document: _Sections,
    settings: StudySettings | None,
    doc: YamlDocument,
    base_dir: Path,
    problems: list[Problem],
) -> tuple[dict[str, Any] | None, bool]:
    """The base run spec as written (None if there is none to read), and whether it is valid.

    Its problems are added to ``problems``: an inline ``run:`` is checked like a spec file, every
    mistake with its ``run.`` path and line, also when the ``study:`` section has mistakes.
    """
    raw_base = document.study.get("base") if document.study is not None else None
    if document.study is not None and (raw_base is None) == (not document.run_given):
        problems.append(
            _problem(
                doc,
                ("study", "base"),
                "give exactly one of study.base (a run spec file) and a top-level run: mapping",
            )
        )
        return None, False
    if document.run is not None:
        name = settings.name if settings is not None else "study"
        run = {"name": name, **document.run}
        try:
            validate_model(RunSpec, run, doc, prefix=("run",))
        except SpecError as exc:
            problems.extend(exc.problems)
            return run, False
        return run, True
    base = settings.base if settings is not None else document.base
    if base is None:  # missing, or not a string: study.base has a problem listed already
        return None, False
    path = base_dir / base
    try:
        # A regular file only: a device (/dev/zero) would be read forever and a named pipe
        # would block the open.
        base_doc = read_yaml(path, regular_only=True)
    except SpecError as exc:
        problems.extend(_base_problems(doc, exc))
        return None, False
    try:
        validate_model(RunSpec, base_doc.data, base_doc)
    except SpecError as exc:
        problems.extend(_base_problems(doc, exc))
        return base_doc.data, False
    return base_doc.data, True


def _apply_where_possible(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``data`` with those ``overrides`` that can be set: in a base with problems of its own
    (listed already), a section on an override's path may be no mapping."""
    for key, value in overrides.items():
        with contextlib.suppress(SpecError):
            data = apply_overrides(data, {key: value})
    return data


def _base_problems(doc: YamlDocument, exc: SpecError) -> list[Problem]:
    return [
        _problem(
            doc,
            ("study", "base"),
            f"{exc.source}: {p}"
            if p.path
            else f"{exc.source}{'' if p.line is None else f' (line {p.line})'}: {p.message}",
        )
        for p in exc.problems
    ]


def _fixed_problems(
    base_data: dict[str, Any], fixed: dict[str, Any], doc: YamlDocument
) -> list[Problem]:
    """The problems the fixed values themselves make in a base spec that has its own."""
    try:
        validate_model(RunSpec, base_data, YamlDocument(base_data, {}, doc.source))
    except SpecError as exc:
        return [
            _problem(doc, ("fixed", p.path), p.message) for p in exc.problems if p.path in fixed
        ]
    return []


def _validate_fixed(base_data: dict[str, Any], fixed: dict[str, Any], doc: YamlDocument) -> RunSpec:
    try:
        return validate_model(RunSpec, base_data, YamlDocument(base_data, {}, doc.source))
    except SpecError as exc:
        raise SpecError(
            doc.source,
            [
                _problem(doc, ("fixed", p.path), p.message)
                if p.path in fixed
                else Problem(p.path, f"{p.message} (the base spec with the fixed values)")
                for p in exc.problems
            ],
        ) from None


def _check_dimension_values(
    key: str,
    dim: Choices | Range,
    base_data: dict[str, Any],
    doc: YamlDocument,
    problems: list[Problem],
    *,
    own_only: bool = False,
) -> None:
    """Each choice (each end of a range) applied alone to the base; with ``own_only`` (the base
    has problems of its own, already listed) only the problems of the dimension's own field."""
    if isinstance(dim, Choices):
        candidates = [(("choices", i), value) for i, value in enumerate(dim.values)]
    else:
        candidates = [(("low",), dim.low), (("high",), dim.high)]
    for where, value in candidates:
        try:
            data = apply_overrides(base_data, {key: value})
        except SpecError:
            return  # a section on its path is no mapping in the base: a problem listed already
        try:
            validate_model(RunSpec, data, YamlDocument(data, {}, doc.source))
        except SpecError as exc:
            for p in exc.problems:
                if own_only and p.path != key:
                    continue
                problems.append(
                    _problem(doc, ("space", key, *where), f"{value!r} makes an invalid run: {p}")
                )


def _check_study_rules(
    settings: StudySettings,
    space: SearchSpace,
    base_spec: RunSpec | None,
    doc: YamlDocument,
    problems: list[Problem],
) -> None:
    if settings.sampler.type == "grid":
        for dim in space.dims:
            if isinstance(dim, Range) and dim.step is None:
                problems.append(
                    _problem(
                        doc,
                        ("space", dim.path),
                        "the grid sampler needs choices or a range with a step",
                    )
                )
        counts = _grid_counts(space)
        size = math.prod(counts.values())
        if counts and size > MAX_GRID_POINTS:
            biggest = max(counts, key=lambda path: counts[path])
            shown = " x ".join(f"{path}: {n:,}" for path, n in counts.items())
            problems.append(
                _problem(
                    doc,
                    ("space", biggest),
                    f"the grid has {size:,} points ({shown}), more than the"
                    f" {MAX_GRID_POINTS:,} a grid study may have; use fewer choices or"
                    " larger steps",
                )
            )
        elif settings.n_trials is not None and space.is_grid() and settings.n_trials > size:
            problems.append(
                _problem(
                    doc,
                    ("study", "n_trials"),
                    f"the grid has {size} points, so at most {size} trials"
                    f" but got {settings.n_trials}",
                )
            )
    elif settings.n_trials is None and settings.timeout is None:
        problems.append(_problem(doc, ("study", "n_trials"), "set n_trials or timeout (or both)"))
    if base_spec is not None and base_spec.seed + settings.replicates > SEED_LIMIT:
        problems.append(
            _problem(
                doc,
                ("study", "replicates"),
                f"the seeds of the replicates ({base_spec.seed} on) must stay below 2**32"
                f" but got {settings.replicates}",
            )
        )
    if settings.replicates > 1 and space.get("seed") is not None:
        problems.append(
            _problem(doc, ("space", "seed"), "cannot be searched with study.replicates > 1")
        )
    if base_spec is not None and settings.pruner.type != "none":
        epochs = _max_epochs(space, base_spec)
        if settings.pruner.min_epochs >= epochs:
            problems.append(
                _problem(
                    doc,
                    ("study", "pruner", "min_epochs"),
                    f"must be below the {epochs} epochs a trial trains (else nothing is pruned;"
                    f" use pruner type none) but got {settings.pruner.min_epochs}",
                )
            )


def _check_enqueue(
    document: _Sections,
    dims: dict[str, Choices | Range],
    settings: StudySettings | None,
    doc: YamlDocument,
    problems: list[Problem],
) -> tuple[dict[str, Any], ...]:
    """The ``enqueue:`` configurations as Optuna params; each value must be one of its
    dimension's choices, or inside its range (on its step)."""
    configurations = []
    for i, entry in enumerate(document.enqueue):
        at = ("enqueue", i)
        if not isinstance(entry, dict) or not entry:
            problems.append(
                _problem(doc, at, f"expected a mapping of space paths to values but got {entry!r}")
            )
            continue
        params = {}
        for key, value in entry.items():
            dim = dims.get(key)
            if dim is None:
                if key not in document.space:  # else the space entry has its problem listed
                    problems.append(
                        _problem(
                            doc,
                            (*at, key),
                            f"{key!r} is not one of the searched paths {list(document.space)}",
                        )
                    )
                continue
            label, message = _enqueued_value(dim, value)
            if message is not None:
                problems.append(_problem(doc, (*at, key), message))
            else:
                params[key] = label
        grid = settings is not None and settings.sampler.type == "grid"
        missing = [d for d in dims if d not in entry]
        if grid and missing:
            problems.append(
                _problem(doc, at, f"the grid sampler needs every searched path; missing {missing}")
            )
        configurations.append(params)
    return tuple(configurations)


def _enqueued_value(dim: Choices | Range, value: Any) -> tuple[Any, str | None]:
    """The Optuna param for ``value`` of ``dim``, or why it is not one of its values."""
    if isinstance(dim, Choices):
        label = choice_label(value)
        if any(type(k) is type(label) and k == label for k in dim.labels):
            return label, None
        return None, f"must be one of the choices {list(dim.values)!r} but got {value!r}"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or (dim.integer and not float(value).is_integer()):
        kind = "an integer" if dim.integer else "a number"
        return None, f"must be {kind} in [{dim.low}, {dim.high}] but got {value!r}"
    if not dim.low <= value <= dim.high:
        return None, f"must be in [{dim.low}, {dim.high}] but got {value!r}"
    if dim.step is not None:
        ratio = (value - dim.low) / dim.step
        if abs(ratio - round(ratio)) > 1e-9:
            return None, f"must be {dim.low} plus a multiple of step {dim.step} but got {value!r}"
    return (int(value) if dim.integer else float(value)), None


def _grid_counts(space: SearchSpace) -> dict[str, int]:
    """Points along each grid dimension, counted without listing them."""
    counts = {}
    for dim in space.dims:
        if isinstance(dim, Choices):
            counts[dim.path] = len(dim.values)
        elif dim.step is not None:
            counts[dim.path] = int(round((dim.high - dim.low) / dim.step)) + 1
    return counts


def _max_epochs(space: SearchSpace, base_spec: RunSpec) -> int:
    dim = space.get("optim.epochs")
    if isinstance(dim, Range):
        return int(dim.high)
    if isinstance(dim, Choices):
        epochs = [v for v in dim.values if isinstance(v, int) and not isinstance(v, bool)]
        if epochs:
            return max(epochs)
    return base_spec.optim.epochs
