"""A strict YAML reader: safe tags only, duplicate keys refused, line numbers kept per key path.

It is also a guarded one, since a spec or study file may come from anywhere: a file is at most
:data:`MAX_FILE_BYTES` long, a document expands (aliases included) to at most
:data:`MAX_NODES` values nested at most :data:`MAX_DEPTH` deep, and an alias inside the node it
names is refused. A "billion laughs" file, or one that refers to itself, is one
:class:`SpecError` naming the line, found while the file is read, before anything is built.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from mixer_sweeps.spec._errors import Problem, SpecError

KeyPath = tuple[str | int, ...]

MAX_FILE_BYTES = 1 << 20
"""Largest spec or study file read (1 MiB); real ones are a few KiB."""
MAX_NODES = 10_000
"""Most values (scalars, lists, mappings) a document may expand to, aliases counted each time
they are used; real specs have a few hundred. Pure-Python YAML builds some 50,000 per second,
so this also bounds the time a file takes to read."""
MAX_DEPTH = 64
"""Deepest nesting of lists and mappings; real specs nest five deep."""

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


class _TooBig(yaml.MarkedYAMLError):
    """The document is too large, too deep, or refers to itself; ``problem`` says which."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts what it composes, aliases expanded, and stops at the limits."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded = 0
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._anchor_sizes: dict[str, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        anchor = event.anchor
        if isinstance(event, yaml.AliasEvent):
            if anchor in self._open_anchors:
                raise _TooBig(
                    None,
                    None,
                    f"the alias *{anchor} refers to a value that contains it",
                    event.start_mark,
                )
            self._count(self._anchor_sizes.get(anchor, 1), event.start_mark)
            return super().compose_node(parent, index)
        self._count(1, event.start_mark)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooBig(
                None,
                None,
                f"values are nested more than {MAX_DEPTH} levels deep",
                event.start_mark,
            )
        before = self._expanded
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.discard(anchor)
                self._anchor_sizes[anchor] = self._expanded - before + 1

    def _count(self, values: int, mark: Any) -> None:
        self._expanded += values
        if self._expanded > MAX_NODES:
            raise _TooBig(
                None,
                None,
                f"the document expands to more than {MAX_NODES:,} values"
                " (aliases count each time they are used)",
                mark,
            )


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:  # Python converts at most 4,300 digits (sys.get_int_max_str_digits)
        raise yaml.constructor.ConstructorError(
            None, None, f"a number of {len(node.value):,} digits", node.start_mark
        ) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
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


def read_yaml(path: str | Path, *, regular_only: bool = False) -> YamlDocument:
    """Read one YAML mapping from ``path``; raise :class:`SpecError` for anything else.

    Args:
        regular_only: refuse anything but a regular file, before opening it. Files a spec
            names (a study's ``base``) are read so; a file given on the command line may also
            be a pipe (``<(...)``) or a device, read up to the size limit.
    """
    path = Path(path)
    source = str(path)

    def fail(message: str) -> SpecError:
        return SpecError(source, [Problem("", message)])

    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise fail("file not found") from None
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise fail("is a folder, not a YAML file")
    if not stat.S_ISREG(info.st_mode):
        if regular_only:
            raise fail(f"is a {_kind(info.st_mode)}, not a regular file")
    elif info.st_size > MAX_FILE_BYTES:
        raise fail(_too_long(f"{info.st_size:,} bytes"))
    try:
        raw = _read_at_most(path, MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise fail(_too_long(f"more than {MAX_FILE_BYTES:,} bytes"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"is not UTF-8 text (byte {exc.start})") from None
    return parse_yaml(text, source=source)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _too_long(size: str) -> str:
    return f"is {size}; a spec or study file is at most 1 MiB ({MAX_FILE_BYTES:,} bytes)"


def _read_at_most(path: Path, limit: int) -> bytes:
    # Non-blocking open: a named pipe nobody writes to reads as empty instead of hanging.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(1 << 16, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_yaml(text: str, *, source: str = "<string>") -> YamlDocument:
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(source, [Problem("", _too_long(f"{len(text):,} characters"))])
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
    except _TooBig as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise SpecError(source, [Problem("", f"refused: {exc.problem}", line)]) from None
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
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                dotted = ".".join(str(p) for p in path) or "(document)"
                problems.append(Problem(dotted, "a key must be a plain value", line))
                continue
            key = key_node.value
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
