"""The search space: one typed object per dimension, from the study file to storage and back.

A dimension is a frozen Pydantic model that checks itself when it is read (from a study file's
``space:`` mapping, or from what a stored study kept), suggests a value from an Optuna trial,
lists its grid, and serialises itself (:meth:`Choices.describe`, :meth:`Range.describe`) into the
mapping that a study stores and fingerprints. :func:`dimension` reads either back.

Optuna's categorical choices must be ``None``, ``bool``, ``int``, ``float`` or ``str``, while a
study may choose any YAML value (``augment.randaugment: {choices: [null, {num_ops: 2}]}``).
Such choices are given to Optuna as readable labels (``"{num_ops: 2}"``) and translated back to
the values as written when the trial's spec is built.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from mixer_sweeps.spec._errors import FieldError
from mixer_sweeps.spec._run import SpecSection

if TYPE_CHECKING:
    import optuna

_SCALARS = (type(None), bool, int, float, str)
_RANGE_KEYS = ("low", "high", "step")


def choice_label(value: Any) -> None | bool | int | float | str:
    """The Optuna-safe, readable stand-in for a choice: scalars as they are, else flow YAML."""
    if isinstance(value, _SCALARS):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip()


class Choices(SpecSection):
    """One of a list of values (any YAML values)."""

    path: str = Field(exclude=True, description="The run spec field it sets (``optim.lr``).")
    choices: tuple[Any, ...] = Field(description="The values, as written in the study file.")

    @field_validator("choices", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("Input should be a valid list")  # as YAML calls it, not "tuple"
        return tuple(value)

    @model_validator(mode="before")
    @classmethod
    def _alone(cls, data: Any) -> Any:
        """Range keys beside ``choices`` are mistakes, named one by one; left empty, ignored."""
        if not isinstance(data, Mapping):
            return data
        given = [k for k in _RANGE_KEYS if data.get(k) is not None]
        problems = [(k, "cannot be combined with choices") for k in given]
        if data.get("log"):
            problems.append(("log", "cannot be combined with choices"))
        choices = data.get("choices")
        if isinstance(choices, list | tuple):
            if not choices:
                problems.append(("choices", "must list at least one value but got []"))
            for i, choice in enumerate(choices):
                if choice in choices[:i]:
                    problems.append((f"choices.{i}", f"duplicate choice {choice!r}"))
        if problems:
            raise FieldError(problems)
        return {k: v for k, v in data.items() if k not in (*_RANGE_KEYS, "log") or v}

    @model_validator(mode="after")
    def _distinct_labels(self) -> Choices:
        if len(set(map(repr, self.labels))) != len(self.labels):
            raise FieldError(
                [("choices", f"must have distinct labels but got {list(self.labels)!r}")]
            )
        return self

    @cached_property
    def labels(self) -> tuple[Any, ...]:
        """What Optuna is given for each choice (:func:`choice_label`)."""
        return tuple(choice_label(v) for v in self.choices)

    def suggest(self, trial: optuna.Trial) -> Any:
        return trial.suggest_categorical(self.path, self.labels)

    def value(self, label: Any) -> Any:
        for known, value in zip(self.labels, self.choices, strict=True):
            if type(known) is type(label) and known == label:
                return copy.deepcopy(value)
        raise ValueError(f"{label!r} is not one of the choices of {self.path}: {self.labels!r}")

    def grid(self) -> list[Any]:
        return list(self.labels)

    def count(self) -> int:
        return len(self.choices)

    def point(self, index: int) -> Any:
        return self.labels[index]

    def describe(self) -> dict[str, Any]:
        """The mapping a study stores (and fingerprints): ``{choices: [...]}``."""
        return {"choices": list(self.choices)}


class Range(SpecSection):
    """A number between ``low`` and ``high`` (both included), on a log scale or on a step."""

    path: str = Field(exclude=True, description="The run spec field it sets (``optim.lr``).")
    low: int | float = Field(description="The smallest value.")
    high: int | float = Field(description="The largest value.")
    log: bool = Field(False, description="Sample on a log scale (``low`` must then be > 0).")
    step: int | float | None = Field(None, gt=0, description="Only ``low`` plus multiples of it.")
    type: Literal["int", "float"] = Field(
        description="The run spec field's type: an ``int`` range suggests integers."
    )

    @model_validator(mode="before")
    @classmethod
    def _ends(cls, data: Any) -> Any:
        """Both ends named (or why not); integral ends of an ``int`` range as ints, a ``float``
        range's ends as floats, so that a study stores (and fingerprints) the same numbers."""
        if not isinstance(data, Mapping):
            return data
        missing = [k for k in ("low", "high") if data.get(k) is None]
        if len(missing) == 2:
            raise FieldError([("choices", "give either choices or low and high")])
        if missing:
            raise FieldError([(missing[0], "required with a range but missing")])
        data = {k: v for k, v in data.items() if k != "choices"}
        for key in _RANGE_KEYS if data.get("type") == "int" else ("low", "high"):
            value = data.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                if data.get("type") == "float":
                    data[key] = float(value)
                elif math.isfinite(value) and float(value).is_integer():
                    data[key] = int(value)
        return data

    @field_validator("low", "high", "step", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Range:
        problems: list[tuple[str, str]] = []
        if self.type == "int":
            for key in _RANGE_KEYS:
                value = getattr(self, key)
                if value is not None and not isinstance(value, int):
                    problems.append((key, f"{self.path} is an integer but got {value!r}"))
            if problems:
                raise FieldError(problems)
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
                    ("step", f"must divide high - low = {self.high - self.low} but got {self.step}")
                )
        if problems:
            raise FieldError(problems)
        return self

    @property
    def integer(self) -> bool:
        return self.type == "int"

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
        """The mapping a study stores (and fingerprints): ``low``, ``high``, ``log``, ``step``
        when there is one, and ``type``."""
        return self.model_dump(exclude={"step"} if self.step is None else set())


Dimension = Choices | Range


def dimension_kind(described: Mapping[str, Any]) -> type[Choices] | type[Range]:
    """Which dimension the mapping ``described`` is: choices if it lists any, else a range."""
    return Choices if described.get("choices") is not None else Range


def dimension(path: str, described: Mapping[str, Any], *, type: str | None = None) -> Dimension:
    """The dimension at ``space.<path>`` that ``described`` gives: a study file's mapping (a
    range's ``type`` then comes from its run spec field) or what :meth:`Choices.describe` and
    :meth:`Range.describe` wrote.

    Raises:
        pydantic.ValidationError: naming each key at fault.
        TypeError: ``described`` is no mapping.
    """
    if not isinstance(described, Mapping):
        raise TypeError(f"a dimension is a mapping but {path} has {described!r}")
    given = {"type": type} if type is not None and dimension_kind(described) is Range else {}
    return dimension_kind(described).model_validate({**described, **given, "path": path})


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
        """JSON-ready: each path's :meth:`Choices.describe` or :meth:`Range.describe` (stored with
        the study, in its ``study.yaml`` and used for its fingerprint)."""
        return {dim.path: dim.describe() for dim in self.dims}

    @classmethod
    def from_description(cls, described: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        """The space that :meth:`describe` described (as stored with a study).

        Raises:
            pydantic.ValidationError: a dimension is damaged.
            TypeError: ``described`` or a dimension in it is no mapping.
        """
        if not isinstance(described, Mapping):
            raise TypeError(f"a space is a mapping of paths to dimensions but got {described!r}")
        return cls(tuple(dimension(path, d) for path, d in described.items()))
