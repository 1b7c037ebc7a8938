"""Reading a study file: every problem in it found and reported at once, line by line."""

from __future__ import annotations

import contextlib
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from mixer_sweeps.spec._errors import Problem, SpecError
from mixer_sweeps.spec._load import apply_overrides, validate_model
from mixer_sweeps.spec._run import RunSpec, SpecSection
from mixer_sweeps.spec._space import Choices, Range, SearchSpace, dimension_kind
from mixer_sweeps.spec._study import StudyFile, StudySettings
from mixer_sweeps.spec._study_rules import (
    Sections,
    check_dimension_values,
    check_enqueue,
    check_study_rules,
    problem_at,
)
from mixer_sweeps.spec._yaml import YamlDocument, read_yaml

_RESERVED_PATHS = ("name",)


class _StudyDocument(SpecSection):
    study: dict[str, Any]
    space: dict[str, Any] = Field(min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    run: dict[str, Any] | None = None
    enqueue: list[Any] = Field(default_factory=list)


_DIMENSION_KEYS = ("choices", "low", "high", "log", "step")
"""What a study file may give under ``space.<path>``; a range's ``type`` comes from the field."""


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


def load_saved_study(path: str | Path) -> StudyFile:
    """The study ``sweeps run`` saved as ``<results>/<name>/study.yaml`` (its resolved base spec
    under ``base``, each range's ``type``), read back as the study file it was run from.

    Raises:
        SpecError: the file is not such a study, or is damaged.
    """
    path = Path(path)
    doc = read_yaml(path)
    data = doc.data
    settings, space = data.get("study"), data.get("space")
    if not isinstance(settings, dict) or not isinstance(space, dict):
        return _check(doc, path.parent)  # names what is missing
    study = {k: v for k, v in settings.items() if v is not None and k != "base"}
    dims = {
        key: {k: v for k, v in dim.items() if k != "type"} if isinstance(dim, dict) else dim
        for key, dim in space.items()
    }
    document = {
        "study": study,
        "fixed": data.get("fixed") or {},
        "space": dims,
        "run": data.get("base"),
    }
    return _check(YamlDocument(document, doc.lines, doc.source), path.parent)


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
            check_dimension_values(key, dim, base_data, doc, problems, own_only=base_spec is None)

    space = SearchSpace(tuple(dims.values()))
    if settings is not None:
        check_study_rules(settings, space, base_spec, doc, problems)
    enqueue = check_enqueue(document, dims, settings, doc, problems)
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


def _sections(doc: YamlDocument, problems: list[Problem]) -> Sections:
    try:
        document = validate_model(_StudyDocument, doc.data, doc)
    except SpecError as exc:
        problems.extend(exc.problems)
        bad = {p.path.split(".")[0] for p in exc.problems}
        raw = {k: v for k, v in doc.data.items() if k in _StudyDocument.model_fields}
        good = {k: v for k, v in raw.items() if k not in bad}
        study = good.get("study")
        base = study.get("base") if isinstance(study, dict) else None
        return Sections(
            study=study,
            space=good.get("space") or {},
            fixed=good.get("fixed") or {},
            run=good.get("run"),
            enqueue=good.get("enqueue") or [],
            run_given=doc.data.get("run") is not None,
            base=base if isinstance(base, str) else None,
        )
    base = document.study.get("base")
    return Sections(
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


def _check_dimension(
    key: str, value: Any, doc: YamlDocument, problems: list[Problem]
) -> Choices | Range | None:
    at = ("space", key)
    annotation = _check_path(at, doc, problems)
    if not isinstance(value, dict):
        problems.append(
            problem_at(
                doc, at, f"expected {{choices: [...]}} or {{low: ..., high: ...}} but got {value!r}"
            )
        )
        return None
    for unknown in (k for k in value if k not in _DIMENSION_KEYS):
        hint = difflib.get_close_matches(str(unknown), _DIMENSION_KEYS, n=1)
        known = ", ".join(_DIMENSION_KEYS)
        message = f"did you mean {hint[0]!r}?" if hint else f"known keys: {known}"
        problems.append(problem_at(doc, (*at, unknown), f"unknown key; {message}"))
    given = {k: v for k, v in value.items() if k in _DIMENSION_KEYS}
    kind = None if annotation is None else _numeric_kind(annotation)
    model = dimension_kind(given)
    # A field that is no number still has its range's own mistakes listed.
    data = {**given, "path": key, **({"type": kind or "float"} if model is Range else {})}
    dim = _collect(problems, lambda: validate_model(model, data, doc, prefix=at))
    if dim is None or annotation is None or len(given) < len(value):
        return None
    if isinstance(dim, Range) and kind is None:
        problems.append(problem_at(doc, at, "a range needs a numeric field; list choices instead"))
        return None
    return dim


def _check_path(at: tuple[str, str], doc: YamlDocument, problems: list[Problem]) -> Any:
    """The annotation of the run spec field that ``at[1]`` names, or None after a problem."""
    dotted = at[1]
    if dotted in _RESERVED_PATHS:
        problems.append(problem_at(doc, at, f"{dotted!r} is set per trial and cannot be chosen"))
        return None
    model: type[BaseModel] = RunSpec
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            hint = difflib.get_close_matches(dotted, _all_paths(RunSpec), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            problems.append(problem_at(doc, at, f"unknown run spec field {dotted!r}{suggestion}"))
            return None
        if i == len(parts) - 1:
            return field.annotation
        nested = _nested_model(field.annotation)
        if nested is None:
            prefix = ".".join(parts[: i + 1])
            problems.append(problem_at(doc, at, f"{prefix!r} is a value, not a section"))
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
    document: Sections,
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
            problem_at(
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
        problem_at(
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
            problem_at(doc, ("fixed", p.path), p.message) for p in exc.problems if p.path in fixed
        ]
    return []


def _validate_fixed(base_data: dict[str, Any], fixed: dict[str, Any], doc: YamlDocument) -> RunSpec:
    try:
        return validate_model(RunSpec, base_data, YamlDocument(base_data, {}, doc.source))
    except SpecError as exc:
        raise SpecError(
            doc.source,
            [
                problem_at(doc, ("fixed", p.path), p.message)
                if p.path in fixed
                else Problem(p.path, f"{p.message} (the base spec with the fixed values)")
                for p in exc.problems
            ],
        ) from None
