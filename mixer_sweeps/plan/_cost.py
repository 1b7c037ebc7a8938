"""What a configuration costs: parameters, FLOPs, a pruner's saving, its measured time."""

from __future__ import annotations

import functools
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixer_sweeps.spec import (
    PrunerSettings,
    RunSpec,
    StudyFile,
)

TRAINING_FLOPS_FACTOR = 3
"""Training FLOPs per image over forward FLOPs: the forward pass and a backward pass of twice."""

MIN_STEPS = 3
"""Fewest timed training steps per calibrated model."""

STEP_BUDGET_S = 1.0
"""About how long the timed steps of one model may take (never fewer than MIN_STEPS)."""

MEDIAN_PRUNED_SHARE = 0.5
"""The share of a median pruner's trials after its startup trials assumed stopped at min_epochs."""


@dataclass(frozen=True)
class ModelCost:
    """The size of one Mixer."""

    parameters: int
    flops: int
    """FLOPs of one forward pass of one image (matrix products and convolutions)."""

    @property
    def training_flops(self) -> int:
        return TRAINING_FLOPS_FACTOR * self.flops


@dataclass(frozen=True)
class Configuration:
    """One point of the space: Optuna's params, its run spec's epochs and its model's size."""

    params: dict[str, Any]
    epochs: int
    cost: ModelCost
    spec: RunSpec

    @property
    def train_images(self) -> int:
        return _info(self.spec).train_size - self.spec.data.val_size

    @property
    def val_images(self) -> int:
        return self.spec.data.val_size

    @property
    def test_images(self) -> int:
        return _info(self.spec).test_size


@dataclass(frozen=True)
class Timing:
    """Training steps of one model timed on this machine."""

    which: str
    cost: ModelCost
    device: str
    threads: int
    batch_size: int
    steps: int
    train_s_per_image: float
    eval_s_per_image: float
    epoch_overhead_s: float
    """Per epoch besides the images: the weights' finiteness check, the best weights' copy and
    the checkpoint written."""


def model_cost(spec: RunSpec) -> ModelCost:
    """Parameters and forward FLOPs per image of ``spec``'s model."""
    m = spec.model
    one, two = (
        _block_cost(
            spec.data.dataset, m.patch_size, m.embed_dim, m.token_mlp_dim, m.channel_mlp_dim, depth
        )
        for depth in (1, 2)
    )
    # Blocks are alike, so both numbers grow linearly with depth: two shallow models tell any
    # depth without building (and initialising) a deep one.
    return ModelCost(
        parameters=one[0] + (m.depth - 1) * (two[0] - one[0]),
        flops=one[1] + (m.depth - 1) * (two[1] - one[1]),
    )


@functools.lru_cache(maxsize=4096)
def _block_cost(
    dataset: str,
    patch_size: int,
    embed_dim: int,
    token_mlp_dim: int,
    channel_mlp_dim: int,
    depth: int,
) -> tuple[int, int]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mixer_sweeps.data import DATASETS
    from mixer_sweeps.models import MlpMixer

    info = DATASETS[dataset]
    model = MlpMixer(
        num_classes=info.num_classes,
        image_size=info.image_size,
        in_channels=info.in_channels,
        patch_size=patch_size,
        embed_dim=embed_dim,
        depth=depth,
        token_mlp_dim=token_mlp_dim,
        channel_mlp_dim=channel_mlp_dim,
    ).to("meta")
    model.eval()
    image = torch.empty(1, info.in_channels, info.image_size, info.image_size, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(image)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops()


def _info(spec: RunSpec) -> Any:
    from mixer_sweeps.data import DATASETS

    return DATASETS[spec.data.dataset]


# ------------------------------------------------------------------------------------------------
# Epochs
# ------------------------------------------------------------------------------------------------


def expected_run(pruner: PrunerSettings, epochs: int, max_epochs: int) -> tuple[float, float]:
    """Expected epochs of a pruned trial's first seed, and the chance that it completes.

    For trials after the pruner's start: the median (and the front) pruner is assumed to stop
    :data:`MEDIAN_PRUNED_SHARE` of them at ``min_epochs``; successive halving lets
    1/``reduction_factor`` of the trials reaching a rung (``min_epochs`` times a power of the
    factor) go on; hyperband is successive halving in brackets that start at later rungs, each
    taking its share of the trials as Optuna's ``HyperbandPruner`` allots them.
    """
    if pruner.type == "none" or pruner.min_epochs >= epochs:
        return float(epochs), 1.0
    if pruner.type in ("median", "front"):
        share = MEDIAN_PRUNED_SHARE
        return share * pruner.min_epochs + (1 - share) * epochs, 1 - share
    r = pruner.reduction_factor
    if pruner.type == "successive_halving":
        return _halving(pruner.min_epochs, r, epochs, first_rung=0)
    # Hyperband, with Optuna's brackets and their budgets.
    brackets = math.floor(math.log(max_epochs / pruner.min_epochs, r)) + 1
    budgets = [
        math.ceil(brackets * r ** (brackets - 1 - b) / (brackets - b)) for b in range(brackets)
    ]
    runs = [_halving(pruner.min_epochs, r, epochs, first_rung=b) for b in range(brackets)]
    total = sum(budgets)
    return (
        sum(w * e for w, (e, _) in zip(budgets, runs, strict=True)) / total,
        sum(w * p for w, (_, p) in zip(budgets, runs, strict=True)) / total,
    )


def _halving(min_epochs: int, r: int, epochs: int, *, first_rung: int) -> tuple[float, float]:
    expected, reach, trained = 0.0, 1.0, 0
    rung = min_epochs * r**first_rung
    while rung < epochs:
        expected += reach * (rung - trained)
        trained, reach, rung = rung, reach / r, rung * r
    return expected + reach * (epochs - trained), reach


# ------------------------------------------------------------------------------------------------
# Time
# ------------------------------------------------------------------------------------------------


def worker_threads(study_file: StudyFile, workers: int) -> int:
    """Torch threads of one of ``workers`` workers, as ``sweeps run`` places them."""
    from mixer_sweeps.study import place_workers, usable_cores

    given = study_file.base_spec.train.threads
    if given is not None:
        return given
    return place_workers(workers, gpus=[], cores=usable_cores())[0].threads


def measure_steps(which: str, config: Configuration, threads: int) -> Timing:
    """Time a few real training steps of ``config``'s run (after a warm-up step), an evaluation
    batch and a checkpoint; nothing is written but a temporary file."""
    import torch

    from mixer_sweeps.data import DatasetSplits
    from mixer_sweeps.training import Trainer, save_checkpoint

    spec = config.spec
    data = _data(spec.data)
    batch = spec.optim.batch_size
    eval_split = data.val if len(data.val) else data.test
    eval_split = _head(eval_split, spec.train.eval_batch_size)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        warm = DatasetSplits(data.info, _head(data.train, batch), eval_split, eval_split)
        trainer = Trainer(spec, data=warm)  # no run_dir: the trainer writes nothing
        record = trainer.run_epoch()  # warm-up: one step and one evaluation batch
        step_s = min(batch, len(data.train)) / record.images_per_s
        most = math.ceil(len(data.train) / batch)
        steps = max(MIN_STEPS, min(most, math.ceil(STEP_BUDGET_S / max(step_s, 1e-6))))
        steps = min(steps, most)
        trainer.data = DatasetSplits(
            data.info, _head(data.train, steps * batch), eval_split, eval_split
        ).to(trainer.device)
        record = trainer.run_epoch()
        train_s = len(trainer.data.train) / record.images_per_s
        started = time.perf_counter()
        trainer.evaluate(trainer.data.val)
        eval_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="sweeps-plan-") as folder:
            started = time.perf_counter()
            save_checkpoint(Path(folder) / "checkpoint.pt", trainer.state_dict())
            checkpoint_s = time.perf_counter() - started
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    return Timing(
        which=which,
        cost=config.cost,
        device=str(trainer.device),
        threads=used,
        batch_size=batch,
        steps=steps,
        train_s_per_image=train_s / len(trainer.data.train),
        eval_s_per_image=eval_s / len(eval_split),
        epoch_overhead_s=max(0.0, record.seconds - train_s - eval_s) + checkpoint_s,
    )


SPEED_BUDGET_S = 0.5
"""About how long the timed steps of :func:`measure_images_per_s` may take."""


def measure_images_per_s(spec: RunSpec, data: Any) -> float:
    """Training images per second of ``spec``'s run on its device, in this process's threads:
    one warm-up step, then at least :data:`MIN_STEPS` timed steps (about
    :data:`SPEED_BUDGET_S`) on the head of ``data``'s training split. Nothing is written."""
    from mixer_sweeps.data import DatasetSplits
    from mixer_sweeps.training import Trainer

    batch = spec.optim.batch_size
    eval_split = _head(data.val if len(data.val) else data.test, 1)
    warm = DatasetSplits(data.info, _head(data.train, batch), eval_split, eval_split)
    trainer = Trainer(spec, data=warm)
    record = trainer.run_epoch()
    step_s = min(batch, len(data.train)) / record.images_per_s
    most = max(1, math.ceil(len(data.train) / batch))
    steps = min(most, max(MIN_STEPS, math.ceil(SPEED_BUDGET_S / max(step_s, 1e-6))))
    trainer.data = DatasetSplits(
        data.info, _head(data.train, steps * batch), eval_split, eval_split
    ).to(trainer.device)
    return trainer.run_epoch().images_per_s


@functools.lru_cache(maxsize=4)
def _data(data_spec: Any) -> Any:
    from mixer_sweeps.data import load_data

    return load_data(data_spec)


def _head(split: Any, count: int) -> Any:
    from mixer_sweeps.data import Split

    return Split(split.images[:count], split.labels[:count])


def _interpolate(config: Configuration, timings: Sequence[Timing], field: str) -> float:
    """``field`` of ``timings`` at ``config``'s training FLOPs, on the line through the
    smallest and the largest timed model (their value alone when only one was timed)."""
    low, high = timings[0], timings[-1]
    f_low, f_high = low.cost.training_flops, high.cost.training_flops
    v_low, v_high = getattr(low, field), getattr(high, field)
    if f_high <= f_low:
        return v_low
    share = (config.cost.training_flops - f_low) / (f_high - f_low)
    return max(0.0, v_low + share * (v_high - v_low))


def epoch_seconds(config: Configuration, timings: Sequence[Timing]) -> float:
    return (
        config.train_images * _interpolate(config, timings, "train_s_per_image")
        + config.val_images * _interpolate(config, timings, "eval_s_per_image")
        + _interpolate(config, timings, "epoch_overhead_s")
    )


def trial_seconds(
    config: Configuration, timings: Sequence[Timing], study_file: StudyFile, *, pruned: bool
) -> float:
    replicates = study_file.settings.replicates
    if pruned:
        first, completes = expected_run(
            study_file.settings.pruner, config.epochs, study_file.max_epochs
        )
    else:
        first, completes = float(config.epochs), 1.0
    epochs = first + completes * config.epochs * (replicates - 1)
    tests = completes * replicates
    test_s = config.test_images * _interpolate(config, timings, "eval_s_per_image")
    return epochs * epoch_seconds(config, timings) + tests * test_s
