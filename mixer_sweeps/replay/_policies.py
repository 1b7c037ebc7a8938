"""Policies: the study-file settings a replay searches with (sampler, pruner, replicates).

A policy is what a study file's ``study:`` section says about how to search, validated by the
same :class:`~mixer_sweeps.study.StudySettings` that ``sweeps run`` reads, so ``default`` is
exactly what a study file gets when it says nothing, and a study file itself can be replayed
(``--policy studies/quickstart.yaml``). The other named policies spell out every value, so they
stay put when the defaults change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixer_sweeps.spec import ConfirmSettings, PrunerSettings, SamplerSettings, StudySettings

POLICIES: dict[str, dict[str, Any]] = {
    "default": {},
    "random": {"sampler": {"type": "random"}, "pruner": {"type": "none"}},
    "tpe": {"sampler": {"type": "tpe", "startup_trials": 10}, "pruner": {"type": "none"}},
    "tpe-median": {
        "sampler": {"type": "tpe", "startup_trials": 10},
        "pruner": {"type": "median", "min_epochs": 1, "startup_trials": 5},
    },
    "tpe-hyperband": {
        "sampler": {"type": "tpe", "startup_trials": 10},
        "pruner": {"type": "hyperband", "min_epochs": 1, "reduction_factor": 3},
    },
    "random-asha": {
        "sampler": {"type": "random"},
        "pruner": {"type": "successive_halving", "min_epochs": 1, "reduction_factor": 3},
    },
    "random-hyperband": {
        "sampler": {"type": "random"},
        "pruner": {"type": "hyperband", "min_epochs": 1, "reduction_factor": 3},
    },
}
"""Named policies: ``study:`` settings (``default`` is the empty section)."""

FRONT_POLICIES: dict[str, dict[str, Any]] = {
    "mo-tpe": {"sampler": {"type": "tpe", "startup_trials": 10}, "pruner": {"type": "none"}},
    "mo-tpe-front": {
        "sampler": {"type": "tpe", "startup_trials": 10},
        "pruner": {"type": "front", "percentile": 50, "min_epochs": 1, "startup_trials": 5},
    },
    "mo-random": {"sampler": {"type": "random"}, "pruner": {"type": "none"}},
    "mo-nsgaii": {"sampler": {"type": "nsgaii"}, "pruner": {"type": "none"}},
}
"""Named policies of multi-objective replays (``--objectives`` with a cost): the same settings,
validated with the replay's objectives."""

SINGLE = (("val_acc", "maximize"),)


class PolicyError(ValueError):
    """An unknown policy name, or a study file whose settings are invalid."""


@dataclass(frozen=True)
class Policy:
    """How a replay searches: the settings a study file would give ``sweeps run``."""

    name: str
    sampler: SamplerSettings
    pruner: PrunerSettings
    replicates: int = 1
    skip_duplicates: bool = True
    confirm: ConfirmSettings | None = None
    objectives: tuple[tuple[str, str], ...] = SINGLE
    """(metric, direction) in the study's order; the first is the per-epoch learning metric."""
    study: StudySettings | None = None
    """The ``study:`` section as validated (with the objectives)."""

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @classmethod
    def from_settings(
        cls,
        name: str,
        section: dict[str, Any],
        objectives: tuple[tuple[str, str], ...] = SINGLE,
    ) -> Policy:
        settings = StudySettings.model_validate(_with_objectives(section, objectives))
        return cls._of(name, settings, objectives)

    @classmethod
    def _of(
        cls, name: str, settings: StudySettings, objectives: tuple[tuple[str, str], ...]
    ) -> Policy:
        if len(objectives) > 1 and settings.pruner.type not in ("none", "front"):
            raise PolicyError(
                f"--policy {name}: the {settings.pruner.type} pruner judges one objective; a"
                " replay with several objectives takes pruner type none or front"
            )
        return cls(
            name=name,
            sampler=settings.sampler,
            pruner=settings.pruner,
            replicates=settings.replicates,
            skip_duplicates=settings.skip_duplicates,
            confirm=settings.confirm,
            objectives=objectives,
            study=settings,
        )

    def describe(self) -> str:
        from mixer_sweeps.spec import describe_search

        sampler = self.sampler.model_copy(update={"seed": None})  # a replay draws its own
        section = {"sampler": sampler, "pruner": self.pruner, "confirm": self.confirm}
        settings = StudySettings.model_validate(_with_objectives(section, self.objectives))
        text = describe_search(settings)
        return text if self.replicates == 1 else f"{text}, {self.replicates} replicates"


def _with_objectives(
    section: dict[str, Any], objectives: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """The ``study:`` section a study file with these objectives would have."""
    section = {"name": "replay", **section}
    if len(objectives) > 1 and "objectives" in StudySettings.model_fields:
        section["objectives"] = [{"metric": m, "direction": d} for m, d in objectives]
    return section


def named_policy(name: str, objectives: tuple[tuple[str, str], ...] = SINGLE) -> Policy:
    """A named policy (:data:`POLICIES`, :data:`FRONT_POLICIES`), or a study file's search
    settings, searching for ``objectives``."""
    named = {**POLICIES, **FRONT_POLICIES}
    if name in named:
        try:
            return Policy.from_settings(name, named[name], objectives)
        except PolicyError:
            raise
        except ValueError as exc:
            raise PolicyError(f"--policy {name}: {exc}") from None
    path = Path(name)
    if path.suffix.lower() in (".yaml", ".yml"):
        return _study_file_policy(path, objectives)
    raise PolicyError(
        f"--policy {name!r}: unknown policy; known: {', '.join(named)}, a peer, or a study"
        " file (.yaml) whose study.sampler and study.pruner are replayed"
    )


_SEARCH_KEYS = ("sampler", "pruner", "replicates", "skip_duplicates", "confirm")


def _study_file_policy(path: Path, objectives: tuple[tuple[str, str], ...]) -> Policy:
    from mixer_sweeps.spec import SpecError, read_yaml, validate_model

    try:
        doc = read_yaml(path)
    except SpecError as exc:
        raise PolicyError(f"--policy {path}: {exc}") from None
    study = doc.data.get("study")
    if not isinstance(study, dict):
        raise PolicyError(f"--policy {path}: not a study file (no study: mapping)")
    section = _with_objectives({k: study[k] for k in _SEARCH_KEYS if k in study}, objectives)
    try:
        settings = validate_model(StudySettings, section, doc, prefix=("study",))
    except SpecError as exc:
        raise PolicyError(f"--policy {path}: {exc}") from None
    return Policy._of(path.stem, settings, objectives)
