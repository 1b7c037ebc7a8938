"""The search space: suggest a configuration from an Optuna trial and turn it into spec overrides.

Optuna's categorical choices must be ``None``, ``bool``, ``int``, ``float`` or ``str``, while a
study may choose any YAML value (``augment.randaugment: {choices: [null, {num_ops: 2}]}``).
Such choices are given to Optuna as readable labels (``"{num_ops: 2}"``) and translated back to
the values as written when the trial's spec is built.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import optuna

_SCALARS = (type(None), bool, int, float, str)


def choice_label(value: Any) -> None | bool | int | float | str:
    """The Optuna-safe, readable stand-in for a choice: scalars as they are, else flow YAML."""
    if isinstance(value, _SCALARS):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip()


@dataclass(frozen=True)
class Choices:
    """One of a list of values (any YAML values)."""

    path: str
    values: tuple[Any, ...]
    labels: tuple[Any, ...] = field(init=False)

    def __post_init__(self) -> None:
        labels = tuple(choice_label(v) for v in self.values)
        if len(set(map(repr, labels))) != len(labels):
            raise ValueError(f"choices of {self.path} must have distinct labels: {labels!r}")
        object.__setattr__(self, "labels", labels)

    def suggest(self, trial: optuna.Trial) -> Any:
        return trial.suggest_categorical(self.path, self.labels)

    def value(self, label: Any) -> Any:
        for known, value in zip(self.labels, self.values, strict=True):
            if type(known) is type(label) and known == label:
                return copy.deepcopy(value)
        raise ValueError(f"{label!r} is not one of the choices of {self.path}: {self.labels!r}")

    def grid(self) -> list[Any]:
        return list(self.labels)

    def count(self) -> int:
        return len(self.values)

    def point(self, index: int) -> Any:
        return self.labels[index]

    def describe(self) -> dict[str, Any]:
        return {"choices": list(self.values)}


@dataclass(frozen=True)
class Range:
    """A number between ``low`` and ``high`` (both included), on a log scale or on a step."""

    path: str
    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = None
    integer: bool = False

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"low must not exceed high={self.high} but got {self.low}")
        if self.log and self.low <= 0:
            raise ValueError(f"low must be > 0 with log=True but got {self.low}")
        if self.log and self.step is not None:
            raise ValueError(f"step cannot be combined with log=True but got {self.step}")

    def suggest(self, trial: optuna.Trial) -> int | float:
        if self.integer:
            return trial.suggest_int(
                self.path, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.path, self.low, self.high, step=self.step, log=self.log)

    def value(self, label: Any) -> int | float:
        return label

    def grid(self) -> list[int | float]:
        return [self.point(i) for i in range(self.count())]

    def count(self) -> int:
        """Points of the grid, counted without listing them (a range may have billions)."""
        if self.step is None:
            raise ValueError(f"{self.path} has no step, so it has no grid")
        span = (self.high - self.low) / self.step
        if math.isinf(span):  # two huge ends: their difference overflows a float
            span = (Fraction(self.high) - Fraction(self.low)) / Fraction(self.step)
        return round(span) + 1

    def point(self, index: int) -> int | float:
        """The ``index``-th point of the grid."""
        if self.step is None:
            raise ValueError(f"{self.path} has no step, so it has no grid")
        if self.integer:
            return int(self.low + index * self.step)
        # Rounded so that grid values print as written (0.1 + 2 * 0.1 is not 0.3).
        return round(self.low + index * self.step, 12)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            described["step"] = self.step
        described["type"] = "int" if self.integer else "float"
        return described


Dimension = Choices | Range


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions of a study, each named by its dotted run-spec path."""

    dims: tuple[Dimension, ...]

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self.dims)

    def get(self, path: str) -> Dimension | None:
        return next((d for d in self.dims if d.path == path), None)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ask ``trial`` for a value of every dimension; returns Optuna's params (labels)."""
        return {dim.path: dim.suggest(trial) for dim in self.dims}

    def overrides(self, params: dict[str, Any]) -> dict[str, Any]:
        """Spec overrides (dotted path -> value as written in the study file) for ``params``."""
        missing = [d.path for d in self.dims if d.path not in params]
        if missing:
            raise ValueError(f"params lack {missing}: {params!r}")
        return {dim.path: dim.value(params[dim.path]) for dim in self.dims}

    def is_grid(self) -> bool:
        return all(isinstance(d, Choices) or d.step is not None for d in self.dims)

    def grid(self) -> dict[str, list[Any]]:
        """For :class:`optuna.samplers.GridSampler`: every dimension's values (as labels)."""
        return {dim.path: dim.grid() for dim in self.dims}

    def grid_size(self) -> int:
        return math.prod(dim.count() for dim in self.dims)

    def grid_points(self) -> list[dict[str, Any]]:
        """Every point of the grid, as params."""
        grid = self.grid()
        return [dict(zip(grid, point, strict=True)) for point in itertools.product(*grid.values())]

    def describe(self) -> dict[str, dict[str, Any]]:
        """JSON-ready description (stored with the study, used for its fingerprint)."""
        return {dim.path: dim.describe() for dim in self.dims}

    @classmethod
    def from_description(cls, described: dict[str, dict[str, Any]]) -> SearchSpace:
        """The space that :meth:`describe` described (as stored with a study)."""
        return cls(tuple(_dimension(path, d) for path, d in described.items()))


def _dimension(path: str, described: dict[str, Any]) -> Dimension:
    if "choices" in described:
        return Choices(path, tuple(described["choices"]))
    return Range(
        path,
        described["low"],
        described["high"],
        log=described.get("log", False),
        step=described.get("step"),
        integer=described.get("type") == "int",
    )
