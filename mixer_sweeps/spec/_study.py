"""Study files: a base run spec, values held fixed, and a search space over dotted spec paths.

.. code-block:: yaml

    study:
      name: width_depth
      base: ../specs/mixer_nano_cifar10.yaml   # relative to this file; or a top-level `run:`
      n_trials: 40
      sampler: {type: tpe, seed: 0}
      pruner: {type: hyperband, min_epochs: 3}
    fixed:
      optim.epochs: 60
    space:
      model.depth: {choices: [4, 8, 12]}
      optim.lr: {low: 1e-4, high: 3e-3, log: true}

Everything that can be known before a trial trains is checked when the file is loaded, and every
problem is reported at once as one :class:`~mixer_sweeps.spec.SpecError`: unknown paths, empty or
reversed ranges, and each choice (and each end of each range) applied alone to the base spec, so a
patch size that cannot divide the image stops the study before anything trains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mixer_sweeps.spec._errors import FieldError
from mixer_sweeps.spec._load import apply_overrides, validate_model
from mixer_sweeps.spec._run import NAME_PATTERN, SEED_LIMIT, RunSpec, SpecSection
from mixer_sweeps.spec._space import Choices, Range, SearchSpace
from mixer_sweeps.spec._yaml import YamlDocument
from mixer_sweeps.training import HISTORY_COLUMNS

SamplerType = Literal["tpe", "random", "grid", "cmaes", "qmc", "nsgaii"]
PrunerType = Literal["median", "hyperband", "successive_halving", "front", "none"]

Metric = Literal[tuple(c for c in HISTORY_COLUMNS if c != "epoch")]  # type: ignore[misc]
Direction = Literal["maximize", "minimize"]
METRIC_DIRECTIONS: dict[str, Direction] = {
    "train_loss": "minimize",
    "val_loss": "minimize",
    "seconds": "minimize",
    "train_acc": "maximize",
    "val_acc": "maximize",
    "images_per_s": "maximize",
}
"""The direction a metric takes when ``study.direction`` is not given; ``lr`` has none. A
direction against the name (maximise a loss) is allowed: it is what the file says."""

COST_DIRECTIONS: dict[str, Direction] = {
    "params": "minimize",
    "flops": "minimize",
    "images_per_s": "maximize",
}
"""The costs an objective may name, known before a trial trains, and their default directions:
parameters and forward FLOPs per image as ``sweeps plan`` counts them, and training images per
second measured in a few steps on the study's device. As an objective ``images_per_s`` is this
cost, not the per-epoch field of the same name."""

LEARNING_METRICS = tuple(c for c in HISTORY_COLUMNS if c not in ("epoch", *COST_DIRECTIONS))
"""The per-epoch fields an objective may name: reported every epoch and pruned on."""

# Every trial gets its own name, so searching or fixing these would be meaningless.

MAX_GRID_POINTS = 1_000_000
"""Most points a grid study may have: Optuna's grid sampler lists every one of them."""


class SamplerSettings(SpecSection):
    """How the next configuration is chosen."""

    type: SamplerType = Field(
        "tpe",
        description="tpe (multivariate TPE), random, grid (every point once), cmaes, qmc (Sobol),"
        " nsgaii (NSGA-II, for several objectives; tpe, random, grid and qmc take several too).",
    )
    seed: int | None = Field(
        0,
        ge=0,
        lt=SEED_LIMIT,
        description="Seed of the sampler; null draws a fresh one. Each worker process derives"
        " its own seed from it and the number of its first trial, so workers never replay each"
        " other's draws; the worker that runs trial 0 uses the seed itself.",
    )
    startup_trials: int | None = Field(
        None,
        ge=0,
        description="tpe and cmaes only: random trials before the model takes over"
        " [default: 10 for tpe, 1 for cmaes].",
    )

    @model_validator(mode="after")
    def _startup_applies(self) -> SamplerSettings:
        if self.startup_trials is not None and self.type not in ("tpe", "cmaes"):
            raise FieldError(
                [
                    (
                        "sampler.startup_trials",
                        f"only applies to the tpe and cmaes samplers but the sampler is"
                        f" {self.type!r}",
                    )
                ]
            )
        return self


class PrunerSettings(SpecSection):
    """When a lagging trial is stopped, judged on its per-epoch validation accuracy."""

    type: PrunerType = Field(
        "median",
        description="median, hyperband, successive_halving, none; front (several objectives"
        " only, and their default there): see mixer_sweeps.study.FrontPruner.",
    )
    min_epochs: int = Field(
        1, ge=1, description="No trial is pruned before it has trained this many epochs."
    )
    startup_trials: int = Field(
        5,
        ge=0,
        description="median: trials that finish before any trial is pruned; front: that too,"
        " and the fewest peers that cost no more than a trial before it can be pruned.",
    )
    percentile: float = Field(
        50.0,
        ge=0,
        le=100,
        description="front only: a trial is pruned when its metric at an epoch is worse than"
        " this percentile of its peers' (the trials that cost no more) at that epoch.",
    )
    reduction_factor: int = Field(
        3,
        ge=2,
        description="hyperband and successive_halving: 1/reduction_factor of the trials reaching"
        " a rung go on to the next.",
    )


class ConfirmSettings(SpecSection):
    """More seeds for a contender before it can be named the winner.

    A single run's best val accuracy varies by about a point from seed to seed on small
    validation splits, more than the gaps between the leading configurations, so the first seed's
    score alone often names the wrong winner. A trial whose first seed ends unpruned within
    ``within`` of the best value the study has so far (or above it) trains ``seeds - 1`` more
    seeds (spec seed + 1, ...); its value is the mean over them. Trials further behind keep their
    one seed: they cannot be named, as the best value never falls below a confirmed mean.
    """

    seeds: int = Field(
        3, ge=2, le=1000, description="Seeds a contender trains in all (the first included)."
    )
    within: float = Field(
        0.01,
        ge=0,
        description="How far behind the study's best value (in the metric's units: 0.01 is a"
        " point of accuracy) a first seed may end and still be confirmed.",
    )


class ObjectiveSettings(SpecSection):
    """One of ``study.objectives``: a per-epoch metric or a cost, and its direction."""

    metric: str = Field(
        description="A per-epoch field (val_acc, val_loss, ...) or a cost known before training:"
        " params, flops (per image, forward), images_per_s (measured before training)."
    )
    direction: Direction | None = Field(
        None,
        description="maximize or minimize [default: by its name: minimize losses, params and"
        " flops, maximize accuracies and images_per_s].",
    )

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in (*LEARNING_METRICS, *COST_DIRECTIONS):
            raise ValueError(
                f"must be a per-epoch metric {list(LEARNING_METRICS)} or a cost"
                f" {list(COST_DIRECTIONS)}"
            )
        return metric

    @model_validator(mode="after")
    def _default_direction(self) -> ObjectiveSettings:
        if self.direction is None:
            direction = COST_DIRECTIONS.get(self.metric) or METRIC_DIRECTIONS.get(self.metric)
            if direction is None:
                raise FieldError(
                    [("direction", f"{self.metric!r} has no default direction; give one")]
                )
            object.__setattr__(self, "direction", direction)
        return self

    @property
    def is_cost(self) -> bool:
        return self.metric in COST_DIRECTIONS


class StudySettings(SpecSection):
    """The `study:` section."""

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=128,
        description="Study name in the storage; results go to <results>/<name>/.",
    )
    base: str | None = Field(
        None,
        description="Base run spec, relative to the study file; or give the spec inline as a"
        " top-level `run:` mapping.",
    )
    metric: Metric = Field(
        "val_acc",
        description="A per-epoch field of the trainer's history (val_acc, val_loss, train_loss,"
        " ...): reported every epoch for pruning; a trial's value is its best over the epochs"
        " (the mean over replicates).",
    )
    direction: Direction | None = Field(
        None,
        description="maximize or minimize the metric [default: by its name: minimize losses and"
        " seconds, maximize accuracies and images_per_s].",
    )
    objectives: tuple[ObjectiveSettings, ...] | None = Field(
        None,
        min_length=1,
        description="Instead of metric and direction: several objectives, e.g. [{metric:"
        " val_acc}, {metric: params}]; exactly one is a per-epoch metric (reported every epoch"
        " and pruned on), the others costs known before training. Null: the one metric.",
    )
    n_trials: int | None = Field(
        None,
        ge=1,
        description="Trials in total, across all workers and runs [default for grid: the grid"
        " size].",
    )
    timeout: float | None = Field(
        None, gt=0, description="Seconds after which no new trial starts; null for no limit."
    )
    sampler: SamplerSettings = Field(default_factory=SamplerSettings)
    pruner: PrunerSettings = Field(default_factory=PrunerSettings)
    replicates: int = Field(
        1,
        ge=1,
        le=1000,
        description="Seeds per configuration (spec seed, seed + 1, ...); the objective is the"
        " mean of their best val accuracies.",
    )
    confirm: ConfirmSettings | None = Field(
        None,
        description="Contenders get more seeds before they are named (replicates: 1 only);"
        " null: every trial trains one seed.",
    )
    storage: str | None = Field(
        None,
        description="Optuna storage URL (sqlite:///..., postgresql://...) or journal:PATH;"
        " null keeps a journal file under <results>/<name>/.",
    )
    skip_duplicates: bool = Field(
        True,
        description="A configuration that an earlier trial completed or had pruned is not"
        " trained again: the trial takes that trial's outcome (and counts towards n_trials)."
        " One that an earlier trial is training now is waited for, then taken likewise (trained"
        " after all if that trial fails). Samplers often repeat points of a discrete space, and"
        " on a fixed seed a repeat only costs time.",
    )

    @model_validator(mode="after")
    def _confirm_needs_one_replicate(self) -> StudySettings:
        if self.confirm is not None and self.replicates > 1:
            raise FieldError(
                [
                    (
                        "confirm",
                        f"confirms contenders with more seeds, but replicates is"
                        f" {self.replicates}: every trial already trains that many; use one",
                    )
                ]
            )
        return self

    @model_validator(mode="after")
    def _objectives_agree(self) -> StudySettings:
        if self.objectives is None:
            return self
        given = [k for k in ("metric", "direction") if k in self.model_fields_set]
        if given:
            message = f"give either study.objectives or study.{given[0]}, not both"
            raise FieldError([("objectives", message)])
        problems = []
        metrics = [o.metric for o in self.objectives]
        for i, metric in enumerate(metrics):
            if metric in metrics[:i]:
                problems.append((f"objectives.{i}.metric", f"{metric!r} is given twice"))
        learning = [o for o in self.objectives if not o.is_cost]
        if len(learning) != 1:
            found = [o.metric for o in learning]
            message = "exactly one objective must be a per-epoch metric (it is reported every"
            problems.append(("objectives", f"{message} epoch and pruned on) but got {found}"))
        if problems:
            raise FieldError(problems)
        # Frozen: the learning metric stands in for ``metric``, so code that reports, prunes
        # and records per-epoch values reads it where it always did.
        object.__setattr__(self, "metric", learning[0].metric)
        object.__setattr__(self, "direction", learning[0].direction)
        if len(self.objectives) > 1 and "type" not in self.pruner.model_fields_set:
            object.__setattr__(self, "pruner", self.pruner.model_copy(update={"type": "front"}))
        return self

    @model_validator(mode="after")
    def _direction_of_metric(self) -> StudySettings:
        if self.direction is None:
            direction = METRIC_DIRECTIONS.get(self.metric)
            if direction is None:
                raise FieldError(
                    [
                        (
                            "metric",
                            f"{self.metric!r} has no default direction; give study.direction:"
                            " maximize or minimize",
                        )
                    ]
                )
            # Frozen: filled once here, so every reader (fingerprint, runner) sees it set.
            object.__setattr__(self, "direction", direction)
        return self

    @property
    def objective_list(self) -> list[tuple[str, str]]:
        """``[(metric, direction)]`` in the order of the values Optuna stores; one for a
        single-objective study."""
        if self.objectives is None:
            return [(self.metric, self.direction or "maximize")]
        return [(o.metric, o.direction or "maximize") for o in self.objectives]

    @property
    def learning_metric(self) -> str:
        """The per-epoch metric: reported every epoch, pruned on."""
        return self.metric

    @property
    def multi_objective(self) -> bool:
        return len(self.objective_list) > 1

    @property
    def cost_metrics(self) -> list[str]:
        """The objectives that are costs (params, flops, images_per_s), in objectives order."""
        return [m for m, _ in self.objective_list if m in COST_DIRECTIONS]


@dataclass(frozen=True)
class StudyFile:
    """A loaded, validated study file: what :func:`~mixer_sweeps.study.run_study` runs."""

    settings: StudySettings
    space: SearchSpace
    fixed: dict[str, Any]
    base_data: dict[str, Any]
    """The base run spec as written, with the fixed values applied."""
    base_spec: RunSpec
    """``base_data`` validated."""
    source: str
    enqueue: tuple[dict[str, Any], ...] = ()
    """Hand-picked configurations tried first, as Optuna params (choices by their labels); each
    may give only some of the searched paths, and the sampler picks the others."""

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def n_trials(self) -> int | None:
        """Trials in total; for a grid without ``n_trials``, every grid point once."""
        if self.settings.n_trials is None and self.settings.sampler.type == "grid":
            return self.space.grid_size()
        return self.settings.n_trials

    @property
    def seeds(self) -> list[int]:
        return [self.base_spec.seed + i for i in range(self.settings.replicates)]

    @property
    def confirm_seeds(self) -> list[int]:
        """The seeds a confirmed contender trains (``study.confirm``), its first included."""
        confirm = self.settings.confirm
        count = 1 if confirm is None else confirm.seeds
        return [self.base_spec.seed + i for i in range(count)]

    @property
    def max_epochs(self) -> int:
        """The most epochs any trial can train (the pruners' maximum resource)."""
        return most_epochs(self.space, self.base_spec)

    def trial_spec(
        self, overrides: dict[str, Any], *, name: str, seed: int | None = None
    ) -> RunSpec:
        """The run spec of one trial: the base, then the fixed values, then ``overrides``."""
        extra: dict[str, Any] = {"name": name}
        if seed is not None:
            extra["seed"] = seed
        data = apply_overrides(self.base_data, {**overrides, **extra})
        return validate_model(RunSpec, data, YamlDocument(data, {}, f"trial {name}"))

    def variants(self) -> Iterator[tuple[str, RunSpec]]:
        """The base spec, then each choice (each end of each range) applied alone to it.

        Each with a label saying which (``studies/s.yaml with model.depth=12``): what ``sweeps
        run`` checks against the machine (device, memory) before any trial starts.
        """
        yield f"{self.source} (the base spec)", self.base_spec
        for dim in self.space.dims:
            values = dim.choices if isinstance(dim, Choices) else (dim.low, dim.high)
            for value in values:
                spec = self.trial_spec({dim.path: value}, name=self.name)
                yield f"{self.source} with {dim.path}={value!r}", spec

    def fingerprint(self) -> str:
        """Hash of what makes trials comparable: base spec, fixed values, space, replicates.

        Where a trial trains (``train``) and what it reports to (``tracking``) are left out, so a
        study can move between machines.
        """
        base = self.base_spec.model_dump(mode="json", exclude={"name", "train", "tracking"})
        payload = {
            "base": base,
            "space": self.space.describe(),
            "replicates": self.settings.replicates,
            "metric": self.settings.metric,
        }
        # Only where it differs from val_acc's only direction, so older studies keep their hash.
        if self.settings.direction != "maximize":
            payload["direction"] = self.settings.direction
        if self.settings.multi_objective:
            payload["objectives"] = self.settings.objective_list
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def describe_study(study_file: StudyFile) -> str:
    """One line about a study, for ``sweeps validate``."""
    s = study_file.settings
    dims = len(study_file.space.dims)
    return (
        f"study {study_file.name}: {dims} dimension{'s' if dims != 1 else ''},"
        f" {describe_budget(study_file.n_trials, s.timeout)},"
        f" {describe_search(s)}, base {study_file.base_spec.name}"
    )


def describe_search(settings: StudySettings) -> str:
    """``tpe sampler (seed 0), median pruner`` from a study's settings."""
    text = ""
    if settings.multi_objective:
        shown = ", ".join(f"{m} ({d})" for m, d in settings.objective_list)
        text = f"objectives {shown}, "
    text += f"{settings.sampler.type} sampler"
    if settings.sampler.seed is not None:
        text += f" (seed {settings.sampler.seed})"
    kind = settings.pruner.type
    text += ", no pruner" if kind == "none" else f", {kind} pruner"
    confirm = settings.confirm
    if confirm is not None:
        text += f", {confirm.seeds} seeds for trials within {confirm.within:g} of the best"
    return text


def describe_budget(n_trials: int | None, timeout: float | None) -> str:
    """``16 trials, timeout 600 s``."""
    budget = [] if n_trials is None else [f"{n_trials} trials"]
    if timeout is not None:
        budget.append(f"timeout {timeout:g} s")
    return ", ".join(budget)


def most_epochs(space: SearchSpace, base_spec: RunSpec) -> int:
    dim = space.get("optim.epochs")
    if isinstance(dim, Range):
        return int(dim.high)
    if isinstance(dim, Choices):
        epochs = [v for v in dim.choices if isinstance(v, int) and not isinstance(v, bool)]
        if epochs:
            return max(epochs)
    return base_spec.optim.epochs
