"""Turn YAML into validated specs, and Pydantic's errors into one :class:`SpecError`."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mixer_sweeps.spec._errors import FieldError, Problem, SpecError
from mixer_sweeps.spec._run import RunSpec
from mixer_sweeps.spec._yaml import KeyPath, YamlDocument, parse_yaml, read_yaml

M = TypeVar("M", bound=BaseModel)


def load_run_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> RunSpec:
    """Read and validate a run spec; ``overrides`` sets dotted paths (``optim.epochs``)."""
    doc = read_yaml(path)
    data = apply_overrides(doc.data, overrides or {})
    return validate_model(RunSpec, data, doc)


def parse_run_spec(text: str, *, source: str = "<string>") -> RunSpec:
    doc = parse_yaml(text, source=source)
    return validate_model(RunSpec, doc.data, doc)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted path set; intermediate mappings are created."""
    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {} if child is None else child
            if not isinstance(child, dict):
                raise SpecError("<overrides>", [Problem(dotted, f"{key} is not a mapping")])
            node = child
        node[leaf] = value
    return data


def with_overrides(spec: RunSpec, overrides: dict[str, Any], *, source: str) -> RunSpec:
    """Re-validate ``spec`` with dotted-path overrides (used by studies and CLI flags)."""
    data = apply_overrides(spec.model_dump(mode="json", exclude={"model": {"preset"}}), overrides)
    return validate_model(RunSpec, data, YamlDocument(data, {}, source))


def validate_model(model: type[M], data: Any, doc: YamlDocument, prefix: KeyPath = ()) -> M:
    """Validate ``data`` as ``model``; on failure raise one SpecError listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc, model, doc, prefix)
        raise SpecError(doc.source, problems) from None


def problems_from(
    exc: ValidationError, model: type[BaseModel], doc: YamlDocument, prefix: KeyPath = ()
) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FieldError):
            for dotted, message in cause.problems:
                path = (*prefix, *_split(dotted))
                problems.append(Problem(_dotted(path), message, doc.line_of(path)))
            continue
        loc = tuple(error["loc"])
        path = (*prefix, *loc)
        problems.append(Problem(_dotted(path), _message(error, model, loc), doc.line_of(path)))
    return problems


def _message(error: dict[str, Any], model: type[BaseModel], loc: tuple) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; known keys: {', '.join(known)}"
        return f"unknown key{suggestion}"
    if kind == "missing":
        return "required but missing"
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if not isinstance(value, dict | list):
        message += f" but got {value!r}"
    return message


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    for key in loc:
        field = model.model_fields.get(str(key))
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _split(dotted: str) -> KeyPath:
    return tuple(int(p) if p.isdigit() else p for p in dotted.split("."))


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)
