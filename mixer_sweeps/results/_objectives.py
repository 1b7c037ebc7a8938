"""A study's objectives: one learning metric (reported every epoch, pruned on) and, in a
multi-objective study, costs known before a trial trains (``params``, ``flops``,
``images_per_s``).

The storage keeps them as the study user attr ``objectives`` in the order of Optuna's
``directions`` and of every complete trial's ``values``; a study stored before there were several
objectives has one, its metric and direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.study import StudyDirection

COST_METRICS = ("params", "flops", "images_per_s")
"""The objectives a trial's configuration fixes before it trains (user attr ``costs``)."""


def as_direction(name: StudyDirection | str) -> StudyDirection:
    """A direction by its name (``"minimize"``, as study files and trials keep it) as Optuna's
    type, the one type every ranking takes."""
    if isinstance(name, StudyDirection):
        return name
    try:
        return StudyDirection[str(name).upper()]
    except KeyError:
        raise ValueError(f"direction must be maximize or minimize but got {name!r}") from None


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: StudyDirection

    def __str__(self) -> str:
        """``maximize val_acc``: how reports and the terminal name it."""
        return f"{self.direction.name.lower()} {self.metric}"

    def as_json(self) -> dict[str, str]:
        """As the study attr ``objectives`` and ``--json`` outputs keep it."""
        return {"metric": self.metric, "direction": self.direction.name.lower()}

    @property
    def is_cost(self) -> bool:
        return self.metric in COST_METRICS

    @property
    def sign(self) -> float:
        """+1 when smaller is better: ``sign * value`` is minimised."""
        return -1.0 if self.direction == StudyDirection.MAXIMIZE else 1.0


def parse_objectives(
    stored: Any, directions: Sequence[str], metric: str | None
) -> tuple[Objective, ...]:
    """The objectives from the study attr ``stored``; without a usable one, ``metric`` (else
    ``val_acc``) for the first direction and ``objective <i>`` for any other."""
    if (
        isinstance(stored, list)
        and len(stored) == len(directions)
        and all(isinstance(o, dict) and isinstance(o.get("metric"), str) for o in stored)
    ):
        return tuple(
            Objective(o["metric"], as_direction(o.get("direction") or d))
            for o, d in zip(stored, directions, strict=True)
        )
    names = [metric or "val_acc", *(f"objective {i}" for i in range(1, len(directions)))]
    return tuple(Objective(n, as_direction(d)) for n, d in zip(names, directions, strict=True))


def learning_index(objectives: Sequence[Objective]) -> int:
    """Where the learning metric is among ``objectives``: the first that is not a cost."""
    return next((i for i, o in enumerate(objectives) if not o.is_cost), 0)
