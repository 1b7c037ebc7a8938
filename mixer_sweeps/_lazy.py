"""Packages whose public names import on first use.

``sweeps validate`` and every refusal of bad input need only the spec; importing torch, optuna
and wandb for them would cost seconds. A package lists where each of its names lives, and the
module behind a name is imported when the name is first read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` for ``package``.

    ``exports`` maps a submodule (relative, as ``"._trainer"``) to the names it provides.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name], package), name)

    return list(where), __getattr__
