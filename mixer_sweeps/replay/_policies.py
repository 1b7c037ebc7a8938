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

    @classmethod
    def from_settings(cls, name: str, section: dict[str, Any]) -> Policy:
        settings = StudySettings.model_validate({"name": "replay", **section})
        return cls(
            name=name,
            sampler=settings.sampler,
            pruner=settings.pruner,
            replicates=settings.replicates,
            skip_duplicates=settings.skip_duplicates,
            confirm=settings.confirm,
        )

    def describe(self) -> str:
        from mixer_sweeps.spec import describe_search

        sampler = self.sampler.model_copy(update={"seed": None})  # a replay draws its own
        settings = StudySettings(
            name="replay", sampler=sampler, pruner=self.pruner, confirm=self.confirm
        )
        text = describe_search(settings)
        return text if self.replicates == 1 else f"{text}, {self.replicates} replicates"


def named_policy(name: str) -> Policy:
    """A named policy (:data:`POLICIES`), or a study file's search settings."""
    if name in POLICIES:
        return Policy.from_settings(name, POLICIES[name])
    path = Path(name)
    if path.suffix.lower() in (".yaml", ".yml"):
        return _study_file_policy(path)
    raise PolicyError(
        f"--policy {name!r}: unknown policy; known: {', '.join(POLICIES)}, a peer, or a study"
        " file (.yaml) whose study.sampler and study.pruner are replayed"
    )


_SEARCH_KEYS = ("sampler", "pruner", "replicates", "skip_duplicates", "confirm")


def _study_file_policy(path: Path) -> Policy:
    from mixer_sweeps.spec import SpecError, read_yaml, validate_model

    try:
        doc = read_yaml(path)
    except SpecError as exc:
        raise PolicyError(f"--policy {path}: {exc}") from None
    study = doc.data.get("study")
    if not isinstance(study, dict):
        raise PolicyError(f"--policy {path}: not a study file (no study: mapping)")
    section = {"name": "replay", **{k: study[k] for k in _SEARCH_KEYS if k in study}}
    try:
        settings = validate_model(StudySettings, section, doc, prefix=("study",))
    except SpecError as exc:
        raise PolicyError(f"--policy {path}: {exc}") from None
    return Policy(
        name=path.stem,
        sampler=settings.sampler,
        pruner=settings.pruner,
        replicates=settings.replicates,
        skip_duplicates=settings.skip_duplicates,
        confirm=settings.confirm,
    )
