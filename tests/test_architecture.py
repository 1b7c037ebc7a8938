"""The package's import graph, read with ``ast``: no cycles, no reaching into another's privates,
a thin command line, and no module over 500 lines.

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions: a cycle
that only type checkers see still ties two modules together for the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = "mixer_sweeps"
ROOT = REPO / PACKAGE


def module_name(path: Path) -> str:
    parts = (
        path.relative_to(REPO).with_suffix("").parts if path.is_relative_to(REPO) else (path.stem,)
    )
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (``from a import b`` counts ``a.b`` if that
    is a module, else ``a``)."""
    name = module_name(path)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in modules else base for t in targets]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def private_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports of ``mixer_sweeps.X._y`` from a module outside ``mixer_sweeps.X``."""
    bad = []
    for source, targets in graph.items():
        for target in targets:
            parts = target.split(".")
            private = next((i for i, p in enumerate(parts) if p.startswith("_")), None)
            if private is None or private < 2:
                continue  # mixer_sweeps._cli and friends are top-level modules, not packages
            owner = ".".join(parts[:private])
            if source != owner and not source.startswith(owner + "."):
                bad.append(f"{source} imports {target}")
    return sorted(bad)


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_imports_another_packages_private_module() -> None:
    assert private_imports(import_graph()) == []


# The checks themselves must be able to fail.
@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_private_imports_are_found() -> None:
    graph = {
        "mixer_sweeps.report._load": {"mixer_sweeps.study._runner", "mixer_sweeps.study"},
        "mixer_sweeps.study._runner": {"mixer_sweeps.study._file"},
        "mixer_sweeps.study": {"mixer_sweeps.study._runner"},
        "mixer_sweeps._cli": {"mixer_sweeps._signals"},
    }
    assert private_imports(graph) == [
        "mixer_sweeps.report._load imports mixer_sweeps.study._runner"
    ]


def test_type_checking_and_function_imports_are_read(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mixer_sweeps.study import _runner\n"
        "def f():\n    import mixer_sweeps.report._load\n",
        encoding="utf-8",
    )
    modules = {"mixer_sweeps.study._runner", "mixer_sweeps.report._load"}
    assert imported_modules(source, modules) == modules


CLI = f"{PACKAGE}.cli"
MAX_MODULE_LINES = 500


def external_imports(path: Path) -> set[str]:
    """The top-level names of the libraries ``path`` imports (every import, as above)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def cli_modules() -> list[Path]:
    return sorted((ROOT / "cli").glob("*.py"))


def test_cli_modules_import_no_optuna() -> None:
    """Commands parse options, call the package and render: the study logic is elsewhere."""
    assert cli_modules(), "no mixer_sweeps/cli package"
    assert [p.name for p in cli_modules() if "optuna" in external_imports(p)] == []


def test_cli_modules_import_only_public_names_of_other_packages() -> None:
    """A CLI module reaches a package (``mixer_sweeps.results``) only through its ``__init__``."""
    graph = import_graph()
    bad = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        if source == CLI or source.startswith(CLI + ".")
        for target in targets
        if target.count(".") >= 2 and not target.startswith(CLI + ".")
    ]
    assert bad == []


@pytest.mark.parametrize("command", ["_status", "_best", "_dashboard"])
def test_status_best_and_dashboard_do_not_read_a_study_through_report(command: str) -> None:
    graph = import_graph()
    source = f"{CLI}.{command}"
    assert source in graph
    report = f"{PACKAGE}.report"
    assert sorted(t for t in graph[source] if t == report or t.startswith(report + ".")) == []


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in sorted(ROOT.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_external_imports_are_read(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    import optuna.trial\nfrom sqlalchemy import exc\n")
    assert external_imports(source) == {"optuna", "sqlalchemy"}
