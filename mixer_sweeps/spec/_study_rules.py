"""The rules a study file's parts must keep together: each value on the base spec, the grid's size,
the pruner against the epochs, and the configurations queued first."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mixer_sweeps.spec._errors import Problem, SpecError
from mixer_sweeps.spec._load import apply_overrides, validate_model
from mixer_sweeps.spec._run import SEED_LIMIT, RunSpec
from mixer_sweeps.spec._space import Choices, Range, SearchSpace, choice_label
from mixer_sweeps.spec._study import MAX_GRID_POINTS, StudySettings, most_epochs
from mixer_sweeps.spec._yaml import YamlDocument


@dataclass(frozen=True)
class Sections:
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


def problem_at(doc: YamlDocument, path: tuple, message: str) -> Problem:
    return Problem(".".join(str(p) for p in path), message, doc.line_of(path))


_RESERVED_PATHS = ("name",)


def check_dimension_values(
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
        candidates = [(("choices", i), value) for i, value in enumerate(dim.choices)]
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
                    problem_at(doc, ("space", key, *where), f"{value!r} makes an invalid run: {p}")
                )


def check_study_rules(
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
                    problem_at(
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
                problem_at(
                    doc,
                    ("space", biggest),
                    f"the grid has {size:,} points ({shown}), more than the"
                    f" {MAX_GRID_POINTS:,} a grid study may have; use fewer choices or"
                    " larger steps",
                )
            )
        elif settings.n_trials is not None and space.is_grid() and settings.n_trials > size:
            problems.append(
                problem_at(
                    doc,
                    ("study", "n_trials"),
                    f"the grid has {size} points, so at most {size} trials"
                    f" but got {settings.n_trials}",
                )
            )
    elif settings.n_trials is None and settings.timeout is None:
        problems.append(problem_at(doc, ("study", "n_trials"), "set n_trials or timeout (or both)"))
    if base_spec is not None and base_spec.seed + settings.replicates > SEED_LIMIT:
        problems.append(
            problem_at(
                doc,
                ("study", "replicates"),
                f"the seeds of the replicates ({base_spec.seed} on) must stay below 2**32"
                f" but got {settings.replicates}",
            )
        )
    if settings.replicates > 1 and space.get("seed") is not None:
        problems.append(
            problem_at(doc, ("space", "seed"), "cannot be searched with study.replicates > 1")
        )
    check_objective_rules(settings, doc, problems)
    if base_spec is not None and settings.pruner.type != "none":
        epochs = most_epochs(space, base_spec)
        if settings.pruner.min_epochs >= epochs:
            problems.append(
                problem_at(
                    doc,
                    ("study", "pruner", "min_epochs"),
                    f"must be below the {epochs} epochs a trial trains (else nothing is pruned;"
                    f" use pruner type none) but got {settings.pruner.min_epochs}",
                )
            )


SINGLE_OBJECTIVE_PRUNERS = ("median", "hyperband", "successive_halving")
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes",)


def check_objective_rules(
    settings: StudySettings, doc: YamlDocument, problems: list[Problem]
) -> None:
    """The sampler, pruner and confirmation against the number of objectives."""
    pruner, sampler = settings.pruner.type, settings.sampler.type
    count = len(settings.objective_list)
    if settings.multi_objective:
        if pruner in SINGLE_OBJECTIVE_PRUNERS:
            problems.append(
                problem_at(
                    doc,
                    ("study", "pruner", "type"),
                    f"the {pruner} pruner judges one objective but study.objectives has {count};"
                    " use front (compares a trial with those that cost no more) or none",
                )
            )
        if sampler in SINGLE_OBJECTIVE_SAMPLERS:
            problems.append(
                problem_at(
                    doc,
                    ("study", "sampler", "type"),
                    f"the {sampler} sampler takes one objective but study.objectives has"
                    f" {count}; use nsgaii, tpe, random, grid or qmc",
                )
            )
        if settings.confirm is not None:
            problems.append(
                problem_at(
                    doc,
                    ("study", "confirm"),
                    "confirms the contenders for one best value, but study.objectives has"
                    f" {count}: a front has no one best; leave confirm out",
                )
            )
    elif pruner == "front":
        problems.append(
            problem_at(
                doc,
                ("study", "pruner", "type"),
                "the front pruner compares trials that cost no more, so it needs a cost among"
                " several study.objectives (e.g. [{metric: val_acc}, {metric: params}]); with one"
                " objective use median",
            )
        )
    if pruner != "front" and "percentile" in settings.pruner.model_fields_set:
        problems.append(
            problem_at(
                doc,
                ("study", "pruner", "percentile"),
                f"only applies to the front pruner but the pruner is {pruner!r}",
            )
        )


def check_enqueue(
    document: Sections,
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
                problem_at(
                    doc, at, f"expected a mapping of space paths to values but got {entry!r}"
                )
            )
            continue
        params = {}
        for key, value in entry.items():
            dim = dims.get(key)
            if dim is None:
                if key not in document.space:  # else the space entry has its problem listed
                    problems.append(
                        problem_at(
                            doc,
                            (*at, key),
                            f"{key!r} is not one of the searched paths {list(document.space)}",
                        )
                    )
                continue
            label, message = _enqueued_value(dim, value)
            if message is not None:
                problems.append(problem_at(doc, (*at, key), message))
            else:
                params[key] = label
        grid = settings is not None and settings.sampler.type == "grid"
        missing = [d for d in dims if d not in entry]
        if grid and missing:
            problems.append(
                problem_at(
                    doc, at, f"the grid sampler needs every searched path; missing {missing}"
                )
            )
        configurations.append(params)
    return tuple(configurations)


def _enqueued_value(dim: Choices | Range, value: Any) -> tuple[Any, str | None]:
    """The Optuna param for ``value`` of ``dim``, or why it is not one of its values."""
    if isinstance(dim, Choices):
        label = choice_label(value)
        if any(type(k) is type(label) and k == label for k in dim.labels):
            return label, None
        return None, f"must be one of the choices {list(dim.choices)!r} but got {value!r}"
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
    return {d.path: d.count() for d in space.dims if isinstance(d, Choices) or d.step is not None}
