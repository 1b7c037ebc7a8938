"""A strict YAML reader: safe tags only, duplicate keys refused, line numbers kept per key path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mixer_sweeps.spec._errors import Problem, SpecError

KeyPath = tuple[str | int, ...]

_FLOAT_TAG = "tag:yaml.org,2002:float"

# YAML 1.1 (PyYAML) reads `1e-3` as a string because it wants a dot; YAML 1.2 and every
# researcher read it as a float.
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))


class YamlDocument:
    """A parsed YAML mapping plus the line (1-based) where each key path starts."""

    def __init__(self, data: dict[str, Any], lines: dict[KeyPath, int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path`` or of its nearest ancestor that the document has."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def read_yaml(path: str | Path) -> YamlDocument:
    """Read one YAML mapping from ``path``; raise :class:`SpecError` for anything else."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(str(path), [Problem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), [Problem("", f"cannot be read: {exc}")]) from None
    return parse_yaml(text, source=str(path))


def parse_yaml(text: str, *, source: str = "<string>") -> YamlDocument:
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise SpecError(source, [Problem("", "the document is empty; expected a mapping")])
        lines: dict[KeyPath, int] = {}
        problems: list[Problem] = []
        _index(node, (), lines, problems)
        if problems:
            raise SpecError(source, problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        raise SpecError(source, [Problem("", f"invalid YAML: {message}", line)]) from None
    except yaml.YAMLError as exc:
        message = str(exc).splitlines()[0]
        raise SpecError(source, [Problem("", f"invalid YAML: {message}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise SpecError(
            source, [Problem("", f"expected a mapping at the top level, got {kind}", 1)]
        )
    return YamlDocument(data, lines, source)


def _index(node: yaml.Node, path: KeyPath, lines: dict, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                dotted = ".".join(str(p) for p in (*path, key))
                problems.append(
                    Problem(dotted, f"duplicate key (first defined on line {seen[key]})", line)
                )
                continue
            seen[key] = line
            lines[(*path, key)] = line
            _index(value_node, (*path, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), lines, problems)
