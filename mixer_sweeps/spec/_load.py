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


def load_run_spec(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    document: YamlDocument | None = None,
) -> RunSpec:
    """Read and validate a run spec; ``overrides`` sets dotted paths (``optim.epochs``).

    ``document``: the file as :func:`read_yaml` read it already (a pipe, or ``<(...)``, can be
    read only once).
    """
    doc = read_yaml(path) if document is None else document
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
        problems += _cross_field_problems(model, data, problems, doc, prefix)
        raise SpecError(doc.source, problems) from None


_PASSES = 4
"""Cross-field rules run section by section, the whole spec's last: a pass per level at most."""


def _cross_field_problems(
    model: type[BaseModel], data: Any, found: list[Problem], doc: YamlDocument, prefix: KeyPath
) -> list[Problem]:
    """The cross-field problems that the keys already at fault hid.

    Pydantic runs a model's cross-field rules only once all of its fields are valid, and the
    whole spec's rules only once every section is, so a bad ``optim.lr`` would hide a
    ``patch_size`` that cannot divide the image. Without the keys at fault (their defaults, if
    any, take their place), and then without each section whose own rules fail, the rules run;
    a problem that mentions something removed is left out, as it may be about a default rather
    than the user's value.
    """
    removed = {p.path for p in found}
    more: list[Problem] = []
    for _ in range(_PASSES):
        data = _without(data, [_split(path)[len(prefix) :] for path in removed])
        try:
            model.model_validate(data)
        except ValidationError as exc:
            failed = problems_from(exc, model, doc, prefix)
        else:
            return more
        new = [
            p for p in failed if p.message != "required but missing" and not _under(p.path, removed)
        ]
        more += [p for p in new if not any(f"{path}=" in p.message for path in removed)]
        # Also the sections whose rules a default broke (a removed warmup_epochs of 5 exceeds
        # epochs: 3): they would hide the whole spec's rules from every later pass.
        grown = removed | {_section(p.path, prefix) for p in failed}
        if grown == removed:
            return more
        removed = grown
    return more


def _section(path: str, prefix: KeyPath) -> str:
    """The section that holds the key at ``path``; a top-level key is its own."""
    parent = path.rpartition(".")[0]
    return parent if parent and len(_split(parent)) > len(prefix) else path


def _under(path: str, paths: set[str]) -> bool:
    return any(path == p or path.startswith(f"{p}.") for p in paths)


def _without(data: Any, paths: list[KeyPath]) -> Any:
    """A copy of ``data`` without the keys at ``paths`` (those that are there)."""
    data = copy.deepcopy(data)
    for path in paths:
        node = data
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if path and isinstance(node, dict):
            node.pop(path[-1], None)
    return data


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
    return tuple(int(p) if p.isascii() and p.isdigit() else p for p in dotted.split("."))


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)
