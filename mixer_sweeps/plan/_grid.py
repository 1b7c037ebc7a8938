"""The configurations a study's space holds: all of them, or a seeded sample when too many."""

from __future__ import annotations

import itertools
import math
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mixer_sweeps.plan._cost import Configuration, model_cost
from mixer_sweeps.results import format_params
from mixer_sweeps.spec import Choices, Range, SpecError, StudyFile

MAX_CONFIGURATIONS = 2000
"""Most points of a space that are listed; a larger space is judged on a sample of this many."""


def describe_dimension(dim: Choices | Range) -> dict[str, Any]:
    if isinstance(dim, Choices):
        return {
            "path": dim.path,
            "kind": "choices",
            "values": list(dim.labels),
            "text": ", ".join(map(str, dim.labels)),
            "points": dim.count(),
        }
    kind = ("int" if dim.integer else "float") + " range" + (", log" if dim.log else "")
    text = f"{dim.low:g} to {dim.high:g}" + (f", step {dim.step:g}" if dim.step else "")
    return {
        "path": dim.path,
        "kind": kind,
        "low": dim.low,
        "high": dim.high,
        "log": dim.log,
        "step": dim.step,
        "text": text,
        "points": None if dim.step is None else dim.count(),
    }


@dataclass(frozen=True)
class _Axis:
    """The values of a dimension a plan looks at (as Optuna labels), by index, never listed (a
    range of step 1 up to 1e9 has a billion): a grid's points, else a range's two ends."""

    dim: Choices | Range

    @property
    def size(self) -> int:
        if isinstance(self.dim, Choices) or self.dim.step is not None:
            return self.dim.count()
        return 2 if self.dim.low != self.dim.high else 1

    def __getitem__(self, index: int) -> Any:
        if isinstance(self.dim, Choices) or self.dim.step is not None:
            return self.dim.point(index)
        return (self.dim.low, self.dim.high)[index]


def list_configurations(study_file: StudyFile) -> tuple[list[Configuration], list[str], bool]:
    """Every point of the space (a seeded sample when there are too many), the combinations
    that make no valid run, and whether it is a sample."""
    dims = study_file.space.dims
    axes = [_Axis(d) for d in dims]
    size = math.prod(a.size for a in axes)  # a Python int: ten stepped ranges pass 2**63
    sampled = size > MAX_CONFIGURATIONS
    if sampled:
        chosen = _sample(size, MAX_CONFIGURATIONS, random.Random(0))
        points: Iterator[tuple[Any, ...]] = (_unrank(i, axes) for i in chosen)
    else:
        points = itertools.product(*([a[i] for i in range(a.size)] for a in axes))
    configurations, invalid = [], []
    for point in points:
        params = {d.path: label for d, label in zip(dims, point, strict=True)}
        overrides = study_file.space.overrides(params)
        try:
            spec = study_file.trial_spec(overrides, name=f"{study_file.name}-plan")
        except SpecError as exc:
            problem = exc.problems[0] if exc.problems else str(exc)
            invalid.append(f"{format_params(params)} makes no valid run: {problem}")
            continue
        cost = model_cost(spec)
        configurations.append(Configuration(params, spec.optim.epochs, cost, spec))
    return configurations, invalid, sampled


def _sample(size: int, count: int, rng: random.Random) -> list[int]:
    """``count`` distinct indices below ``size`` (> ``count``), drawn by ``rng``, in order."""
    if size <= sys.maxsize:
        return sorted(rng.sample(range(size), count))
    # range() cannot tell its length past 2**63; among so many, a repeat is all but impossible.
    chosen: set[int] = set()
    while len(chosen) < count:
        chosen.add(rng.randrange(size))
    return sorted(chosen)


def _unrank(index: int, axes: Sequence[_Axis]) -> tuple[Any, ...]:
    """The ``index``-th point of the product of ``axes``, without listing the others."""
    point = []
    for axis in reversed(axes):
        index, i = divmod(index, axis.size)
        point.append(axis[i])
    return tuple(reversed(point))
