"""Optuna samplers and pruners from a study file's settings."""

from __future__ import annotations

import numpy as np
import optuna

from mixer_sweeps.study._file import PrunerSettings, SamplerSettings
from mixer_sweeps.study._space import SearchSpace


def make_sampler(
    settings: SamplerSettings, space: SearchSpace, *, seed: int | None
) -> optuna.samplers.BaseSampler:
    """The sampler of one worker; ``seed`` is that worker's (see :func:`worker_seed`).

    The grid and QMC samplers take the study's own seed: every worker must walk the same grid
    order and the same low-discrepancy sequence, which they split between them by trial number.
    """
    kind = settings.type
    if kind == "tpe":
        startup = 10 if settings.startup_trials is None else settings.startup_trials
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
    raise ValueError(f"unknown sampler type {kind!r}")


def worker_seed(seed: int | None, *, trials_before: int, worker: int) -> int | None:
    """A seed for worker ``worker`` of a run that starts with ``trials_before`` trials stored.

    A fresh study run by one worker uses ``seed`` itself. Otherwise the seed is derived, so that
    workers started together never draw the same configurations, nor does a resumed run replay
    the draws of the run it resumes.
    """
    if seed is None:
        return None
    if trials_before == 0 and worker == 0:
        return seed
    return int(np.random.SeedSequence([seed, trials_before, worker]).generate_state(1)[0])


def make_pruner(settings: PrunerSettings, *, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner; its steps are epochs trained (1, 2, ...), so ``min_epochs`` is in epochs."""
    kind = settings.type
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
