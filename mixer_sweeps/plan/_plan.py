"""A study's dry run: what it will train, how big its models are, and about how long it takes.

Everything here is known before any trial trains. The counts are exact: the dimensions, the grid's
size, the trials and, for a grid, the configurations it runs. The sizes are measured on the models
themselves: parameters, and FLOPs counted by torch's ``FlopCounterMode`` on one forward pass of one
image (matrix products and convolutions, on the meta device, so nothing is computed); training
takes about 3 times that (the forward pass, and two products in the backward pass for each one in
the forward pass). Two numbers are estimates, and :class:`StudyPlan` says on what they rest:

- the epochs a pruner saves, from its settings (:func:`expected_run`);
- the time, from a few real training steps of the smallest and the largest model on this machine
  (its device, its threads, the spec's batch size and augmentation, after a warm-up step),
  scaled to a whole trial and interpolated by training FLOPs for the models in between.

A space too large to list (more than :data:`MAX_CONFIGURATIONS` points) is judged on a seeded
sample of its points; ranges that are not a grid contribute their two ends.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from mixer_sweeps.plan._cost import (
    MEDIAN_PRUNED_SHARE,
    TRAINING_FLOPS_FACTOR,
    Configuration,
    Timing,
    epoch_seconds,
    expected_run,
    measure_steps,
    trial_seconds,
    worker_threads,
)
from mixer_sweeps.plan._grid import describe_dimension, list_configurations
from mixer_sweeps.results import format_params, short_names
from mixer_sweeps.spec import (
    StudyFile,
    describe_search,
)

SHOWN_CONFIGURATIONS = 50
"""Configurations printed in the table; ``--json`` lists them all."""


@dataclass(frozen=True)
class PlanBudget:
    trials: int | None
    """Trials that train: ``n_trials``, less repeats of a finite space's points when
    ``skip_duplicates`` takes their outcome from the first."""
    epochs: float | None
    """Epochs of all trials and replicates without pruning (early stopping may end sooner)."""
    expected_epochs: float | None
    assumption: str


@dataclass(frozen=True)
class StudyPlan:
    """What :func:`plan_study` found; :meth:`to_json` and :meth:`renderables` show it."""

    study: StudyFile
    dimensions: list[dict[str, Any]]
    grid_size: int | None
    """Points of the grid; None when a range has no step (the space is not a grid)."""
    configurations: list[Configuration]
    sampled: bool
    """Whether ``configurations`` is a sample of a larger space."""
    invalid: list[str]
    """Combinations of values that make no valid run (each value alone does): one line each."""
    budget: PlanBudget
    timings: list[Timing]
    seconds: float | None
    """Estimated training time of the whole study, all workers' together."""
    workers: int

    @property
    def is_grid(self) -> bool:
        return self.study.settings.sampler.type == "grid"

    @property
    def models(self) -> dict[str, Configuration]:
        """The smallest, median and largest model by training FLOPs (then parameters)."""
        ranked = sorted(
            self.configurations, key=lambda c: (c.cost.training_flops, c.cost.parameters)
        )
        if not ranked:
            return {}
        return {
            "smallest": ranked[0],
            "median": ranked[(len(ranked) - 1) // 2],
            "largest": ranked[-1],
        }

    @property
    def seconds_per_trial(self) -> float | None:
        """Estimated training time of a trial, on average over the configurations."""
        if not self.timings:
            return None
        return statistics.fmean(self.config_seconds(c) for c in self.configurations)

    @property
    def wall_seconds(self) -> float | None:
        if self.seconds is None:
            return None
        parallel = min(self.workers, self.budget.trials or self.workers)
        return self.seconds / max(1, parallel)

    def config_seconds(self, config: Configuration) -> float | None:
        """Estimated training time of one trial of ``config`` (pruning expected as planned)."""
        if not self.timings:
            return None
        startup = _startup_share(self.study, self.budget.trials)
        full = trial_seconds(config, self.timings, self.study, pruned=False)
        pruned = trial_seconds(config, self.timings, self.study, pruned=True)
        return startup * full + (1 - startup) * pruned

    def to_json(self) -> dict[str, Any]:
        s = self.study.settings
        listed = self.configurations if self.is_grid else []
        return {
            "study": self.study.name,
            "source": self.study.source,
            "sampler": s.sampler.type,
            "pruner": s.pruner.type,
            "replicates": s.replicates,
            "dimensions": self.dimensions,
            "grid_size": self.grid_size,
            "n_trials": self.study.n_trials,
            "timeout": s.timeout,
            "configurations": [self._config_json(c) for c in listed] if self.is_grid else None,
            "sampled": self.sampled,
            "invalid": self.invalid,
            "models": {k: self._config_json(c) for k, c in self.models.items()},
            "budget": asdict(self.budget),
            "calibration": [asdict(t) for t in self.timings] or None,
            "seconds": self.seconds,
            "seconds_per_trial": self.seconds_per_trial,
            "workers": self.workers,
            "wall_seconds": self.wall_seconds,
        }

    def _config_json(self, config: Configuration) -> dict[str, Any]:
        return {
            "params": config.params,
            "epochs": config.epochs,
            "parameters": config.cost.parameters,
            "flops": config.cost.flops,
            "training_flops": config.cost.training_flops,
            "seconds": self.config_seconds(config),
        }

    def renderables(self) -> Iterator[Any]:
        """Rich tables (and lines of text) telling the plan, in reading order."""
        from rich.table import Table
        from rich.text import Text

        s = self.study.settings
        trials = "no n_trials" if self.study.n_trials is None else f"{self.study.n_trials} trials"
        if s.timeout is not None:
            trials += f", timeout {s.timeout:g} s"
        if s.replicates > 1:
            trials += f", {s.replicates} seeds each"
        yield Text(
            f"study {self.study.name}: {trials}, {describe_search(s)},"
            f" base {self.study.base_spec.name} ({self.study.source})",
            style="bold",
        )

        space = Table(title="Search space", title_justify="left", show_edge=False)
        for column in ("dimension", "kind", "values", "points"):
            space.add_column(column, justify="right" if column == "points" else "left")
        for dim in self.dimensions:
            points = "-" if dim["points"] is None else f"{dim['points']:,}"
            space.add_row(dim["path"], dim["kind"], dim["text"], points)
        yield space
        if self.grid_size is None:
            yield Text("grid size: none (a range without a step is continuous)")
        else:
            yield Text(f"grid size: {self.grid_size:,} points")
        for line in self.invalid[:5]:
            yield Text(f"note: {line}")
        if len(self.invalid) > 5:
            yield Text(f"note: and {len(self.invalid) - 5} more invalid combinations")

        if self.is_grid:
            yield self._configurations_table()

        models = Table(
            title="Models" + (" (of a sample of the space)" if self.sampled else ""),
            title_justify="left",
            show_edge=False,
        )
        for column in ("model", "parameters", "FLOPs / image", "training FLOPs / image"):
            models.add_column(column, justify="left" if column == "model" else "right")
        models.add_column("shape")
        for which, config in self.models.items():
            m = config.spec.model
            models.add_row(
                which,
                f"{config.cost.parameters:,}",
                _si(config.cost.flops),
                _si(config.cost.training_flops),
                f"patch {m.patch_size}, dim {m.embed_dim}, depth {m.depth},"
                f" token MLP {m.token_mlp_dim}, channel MLP {m.channel_mlp_dim}",
            )
        yield models
        yield Text(
            "FLOPs: matrix products and convolutions of one forward pass of one image (torch's"
            f" FlopCounterMode); training takes about {TRAINING_FLOPS_FACTOR}x (forward and"
            " backward)."
        )

        budget = Table(
            title="Epoch budget", title_justify="left", show_edge=False, show_header=False
        )
        budget.add_column("")
        budget.add_column("", justify="right")
        b = self.budget
        budget.add_row("trials that train", "-" if b.trials is None else f"{b.trials:,}")
        budget.add_row("epochs without pruning", _count(b.epochs))
        pruning = "" if s.pruner.type == "none" else f" with the {s.pruner.type} pruner"
        budget.add_row(f"epochs expected{pruning}", _count(b.expected_epochs))
        yield budget
        yield Text(f"assumption: {b.assumption}")

        if not self.timings:
            yield Text("time: not estimated (--no-calibrate)")
            return
        timing = Table(title="Time", title_justify="left", show_edge=False)
        for column in (
            "model",
            "device",
            "threads",
            "batch",
            "timed steps",
            "train images/s",
            "s / epoch",
        ):
            timing.add_column(column, justify="left" if column in ("model", "device") else "right")
        for t in self.timings:
            config = self.models[t.which]
            timing.add_row(
                t.which,
                t.device,
                str(t.threads),
                str(t.batch_size),
                str(t.steps),
                f"{1 / t.train_s_per_image:,.0f}",
                f"{epoch_seconds(config, self.timings):.3g}",
            )
        yield timing
        per_trial = self.seconds_per_trial
        if self.seconds is not None:
            line = f"estimated training time: {_duration(self.seconds)}"
            line += f" ({_duration(per_trial)} per trial on average)"
            if self.workers > 1:
                line += f"; {_duration(self.wall_seconds)} with {self.workers} workers side by side"
        else:  # a timeout and no n_trials
            fit = s.timeout * self.workers / per_trial if per_trial else math.inf
            line = (
                f"estimated training time per trial: {_duration(per_trial)}; about {fit:,.0f}"
                f" trials fit in the timeout of {s.timeout:g} s"
            )
        yield Text(line)
        yield Text(
            "  from the timed steps, scaled to each trial's epochs, validation, checkpoints and"
            " test evaluation, and interpolated by training FLOPs between the timed models;"
            " not counted: loading the data, tracking, plots and the report"
            + (", torch.compile" if self.study.base_spec.train.compile else "")
        )

    def _configurations_table(self) -> Any:
        from rich.table import Table

        names = short_names([d["path"] for d in self.dimensions])
        shown = self.configurations[:SHOWN_CONFIGURATIONS]
        title = f"Configurations ({len(self.configurations):,}"
        title += " sampled)" if self.sampled else ")"
        table = Table(title=title, title_justify="left", show_edge=False)
        for column in ("#", "params", "epochs", "parameters", "training FLOPs", "est. time"):
            table.add_column(column, justify="left" if column == "params" else "right")
        for i, config in enumerate(shown):
            seconds = self.config_seconds(config)
            table.add_row(
                str(i),
                format_params(config.params, names),
                str(config.epochs),
                f"{config.cost.parameters:,}",
                _si(config.cost.training_flops),
                "-" if seconds is None else _duration(seconds),
            )
        if len(self.configurations) > len(shown):
            more = len(self.configurations) - len(shown)
            table.caption = f"... and {more:,} more (--json lists them all)"
        return table


def plan_study(study_file: StudyFile, *, calibrate: bool = True, workers: int = 1) -> StudyPlan:
    """The dry run of ``study_file``; with ``calibrate``, a few training steps are timed.

    Raises:
        SpecError: a timed model does not fit the device's memory.
        DeviceUnavailable, DatasetUnavailable: from the trainer, when calibrating.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1 but got {workers}")
    space = study_file.space
    grid_size = space.grid_size() if space.is_grid() else None
    configurations, invalid, sampled = list_configurations(study_file)
    if not configurations:
        raise ValueError(
            f"{study_file.source}: no combination of the space's values makes a valid run;"
            f" {invalid[0]}"
        )
    budget = _budget(study_file, configurations, grid_size)
    plan = StudyPlan(
        study=study_file,
        dimensions=[describe_dimension(d) for d in space.dims],
        grid_size=grid_size,
        configurations=configurations,
        sampled=sampled,
        invalid=invalid,
        budget=budget,
        timings=[],
        seconds=None,
        workers=workers,
    )
    if not calibrate:
        return plan
    models = plan.models
    timed = {"smallest": models["smallest"]}
    if models["largest"].cost != models["smallest"].cost:
        timed["largest"] = models["largest"]
    threads = worker_threads(study_file, workers)
    timings = [measure_steps(which, config, threads) for which, config in timed.items()]
    plan = dataclasses.replace(plan, timings=timings)
    if budget.trials is None:
        return plan
    per_trial = statistics.fmean(plan.config_seconds(c) for c in configurations)
    return dataclasses.replace(plan, seconds=budget.trials * per_trial)


# ------------------------------------------------------------------------------------------------
# The space
# ------------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------------
# Model sizes
# ------------------------------------------------------------------------------------------------


def _describe_assumption(study_file: StudyFile) -> str:
    p = study_file.settings.pruner
    if p.type == "none":
        return "no pruner: every trial trains all its epochs (early stopping may end it sooner)"
    if p.type in ("median", "front"):
        return (
            f"the first {p.startup_trials} trials train all their epochs; of the later ones about"
            f" {MEDIAN_PRUNED_SHARE:.0%} are stopped at epoch {p.min_epochs} (min_epochs) and the"
            " rest train all theirs; early stopping may end trials sooner"
        )
    rungs = f"epochs {p.min_epochs}, {p.min_epochs * p.reduction_factor}, ..."
    what = "each bracket's rungs" if p.type == "hyperband" else "each rung"
    return (
        f"at {what} ({rungs}) 1/{p.reduction_factor} of the trials go on and the rest stop;"
        " early stopping may end trials sooner"
    )


def _trained_trials(study_file: StudyFile, grid_size: int | None) -> int | None:
    n_trials = study_file.n_trials
    if n_trials is None:
        return None
    if grid_size is not None and study_file.settings.skip_duplicates:
        # A repeat of a finite space's point takes the first one's outcome and trains nothing.
        return min(n_trials, grid_size)
    return n_trials


def _startup_share(study_file: StudyFile, trials: int | None) -> float:
    """The share of the trials that no pruner judges (a median or front pruner's startup
    trials)."""
    p = study_file.settings.pruner
    if p.type not in ("median", "front") or not trials:
        return 0.0  # without a count of trials, the long run: the startup trials are few
    return min(p.startup_trials, trials) / trials


def _budget(
    study_file: StudyFile, configurations: list[Configuration], grid_size: int | None
) -> PlanBudget:
    trials = _trained_trials(study_file, grid_size)
    assumption = _describe_assumption(study_file)
    if trials is None:
        return PlanBudget(None, None, None, assumption)
    replicates = study_file.settings.replicates
    pruner, max_epochs = study_file.settings.pruner, study_file.max_epochs
    startup = _startup_share(study_file, trials)
    full, pruned = [], []
    for config in configurations:
        first, completes = expected_run(pruner, config.epochs, max_epochs)
        full.append(config.epochs * replicates)
        pruned.append(first + completes * config.epochs * (replicates - 1))
    epochs = trials * statistics.fmean(full)
    expected = trials * (
        startup * statistics.fmean(full) + (1 - startup) * statistics.fmean(pruned)
    )
    return PlanBudget(trials, _tidy(epochs), _tidy(expected), assumption)


def _tidy(value: float) -> float:
    """Whole numbers as ints in JSON (exact counts stay exact), the rest to 0.1 epoch."""
    return int(round(value)) if abs(value - round(value)) < 1e-9 else round(value, 1)


def _si(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g}"


def _count(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
