"""Optuna samplers and pruners from a study file's settings."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from mixer_sweeps.spec import PrunerSettings, SamplerSettings, SearchSpace, StudySettings
from mixer_sweeps.study._front_pruner import FrontPruner


def make_sampler(
    settings: SamplerSettings,
    space: SearchSpace,
    *,
    seed: int | None,
    learning_direction: str | None = None,
) -> optuna.samplers.BaseSampler:
    """The sampler of one worker; ``seed`` is that worker's (see :func:`stream_seed`).

    The grid and QMC samplers take the study's own seed: every worker must walk the same grid
    order and the same low-discrepancy sequence, which they split between them by trial number.
    ``learning_direction``: in a study with several objectives, the direction of the metric
    its trials report each epoch (see :class:`PrunedTPESampler`).
    """
    kind = settings.type
    if kind == "tpe":
        startup = 10 if settings.startup_trials is None else settings.startup_trials
        if learning_direction is not None:
            return PrunedTPESampler(learning_direction, seed=seed, n_startup_trials=startup)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=settings.seed)
    if kind == "cmaes":
        startup = 1 if settings.startup_trials is None else settings.startup_trials
        return optuna.samplers.CmaEsSampler(
            seed=seed, n_startup_trials=startup, warn_independent_sampling=False
        )
    if kind == "qmc":
        return optuna.samplers.QMCSampler(seed=settings.seed, warn_independent_sampling=False)
    if kind == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise ValueError(f"unknown sampler type {kind!r}")


class PrunedTPESampler(optuna.samplers.TPESampler):
    """Optuna's TPE for a study with several objectives whose trials are pruned.

    TPE ranks a pruned trial by its last reported value and asks the study for ``direction``
    to do so, which a multi-objective study refuses (a RuntimeError in the first sampling after
    a trial was pruned: Optuna's pruning takes one objective). Here a pruned trial's reports are
    the learning metric's, so TPE is shown the study with that metric's direction; everything
    else it reads is the study itself.
    """

    def __init__(self, learning_direction: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.learning_direction = StudyDirection[learning_direction.upper()]

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        return super().sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return super().sample_independent(self._view(study), trial, param_name, param_distribution)

    def _view(self, study: optuna.Study) -> Any:
        return _WithDirection(study, self.learning_direction)


class _WithDirection:
    """``study`` with one ``direction``; every other attribute is the study's own."""

    def __init__(self, study: optuna.Study, direction: StudyDirection) -> None:
        self._study = study
        self.direction = direction

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


PER_WORKER_SEED = ("tpe", "random", "cmaes", "nsgaii")
"""The samplers that take a worker's own seed (grid and QMC walk the study's, see above)."""


def stream_seed(seed: int | None, *, first_trial: int) -> int | None:
    """The seed of a worker process whose first trial is number ``first_trial``.

    The storage hands out each trial number once, so no two worker processes of a study ever
    share a first trial, and each one draws a stream of its own: workers started together (N
    ``sweeps run`` on one storage, ``docker compose up --scale worker=N``) never draw alike, nor
    does a resumed run replay the draws of an earlier one. The worker that creates trial 0 (the
    single worker of a fresh study) uses ``seed`` itself, so that run draws what it always drew.
    """
    if seed is None:
        return None
    if first_trial == 0:
        return seed
    return int(np.random.SeedSequence([seed, first_trial]).generate_state(1)[0])


def stream_sampler(
    settings: SamplerSettings,
    space: SearchSpace,
    *,
    first_trial: int,
    learning_direction: str | None = None,
) -> optuna.samplers.BaseSampler | None:
    """The sampler a worker switches to at its first trial, ``first_trial``; None to keep the
    one it opened the study with (made with the study's seed).

    A worker learns its first trial's number only once the storage has created the trial, which
    is before the sampler draws anything for it (``before_trial`` of these samplers draws
    nothing), so switching there is as if the worker had started with that sampler.
    """
    seed = stream_seed(settings.seed, first_trial=first_trial)
    if settings.type not in PER_WORKER_SEED or seed == settings.seed:
        return None
    return make_sampler(settings, space, seed=seed, learning_direction=learning_direction)


def make_pruner(
    settings: PrunerSettings, *, max_epochs: int, study: StudySettings | None = None
) -> optuna.pruners.BasePruner:
    """The pruner; its steps are epochs trained (1, 2, ...), so ``min_epochs`` is in epochs.

    ``study``: the study's settings, which the front pruner needs (its costs and directions).
    """
    kind = settings.type
    if kind == "front":
        if study is None or not study.cost_metrics:
            raise ValueError("the front pruner needs a study with a cost among its objectives")
        return FrontPruner(
            study.cost_metrics,
            dict(study.objective_list),
            percentile=settings.percentile,
            min_epochs=settings.min_epochs,
            startup_trials=settings.startup_trials,
            learning_direction=study.direction or "maximize",
        )
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings.startup_trials, n_warmup_steps=settings.min_epochs
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=settings.min_epochs,
            max_resource=max_epochs,
            reduction_factor=settings.reduction_factor,
        )
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings.min_epochs, reduction_factor=settings.reduction_factor
        )
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner type {kind!r}")
