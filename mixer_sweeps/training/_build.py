"""From a run spec's parts to the objects the trainer drives: one small builder per part.

Models and augmentation take plain arguments and never see a spec; these builders are where a
spec's sections are read, so they live with the trainer rather than in ``models`` or ``data``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mixer_sweeps.data import BatchAugment
from mixer_sweeps.models import MlpMixer

if TYPE_CHECKING:
    from mixer_sweeps.data import DatasetInfo
    from mixer_sweeps.spec import AugmentSpec, ModelSpec, OptimSpec


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cpu_quota() -> float | None:
    """The CPUs this process's cgroup may use (``docker run --cpus``, a Kubernetes CPU limit), or
    None without a quota. Affinity (``taskset``, cpusets) is what torch already counts."""
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads for a run (``train.threads``) and return them.

    None keeps torch's own count (the cores this process may use, or a study worker's share of
    them) but no more than a CPU quota grants: threads beyond the CPUs only wait for each other.
    How idle threads wait matters as much on a busy machine; see ``OMP_WAIT_POLICY`` in
    :mod:`mixer_sweeps`.
    """
    if threads is None:
        threads = torch.get_num_threads()
        quota = cpu_quota()
        if quota is not None:
            threads = max(1, min(threads, math.floor(quota)))
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


def build_model(spec: ModelSpec, info: DatasetInfo) -> MlpMixer:
    """The Mixer of ``spec`` (a preset is already filled in) for ``info``'s images and classes."""
    return MlpMixer(
        num_classes=info.num_classes,
        image_size=info.image_size,
        in_channels=info.in_channels,
        patch_size=spec.patch_size,
        embed_dim=spec.embed_dim,
        depth=spec.depth,
        token_mlp_dim=spec.token_mlp_dim,
        channel_mlp_dim=spec.channel_mlp_dim,
        dropout=spec.dropout,
        drop_path=spec.drop_path,
    )


def build_augment(spec: AugmentSpec, info: DatasetInfo) -> BatchAugment:
    """The batch augmentation of ``spec``, normalising with ``info``'s mean and std."""
    randaugment = spec.randaugment
    return BatchAugment(
        num_classes=info.num_classes,
        random_crop=spec.random_crop,
        crop_padding=spec.crop_padding,
        hflip=spec.hflip,
        randaugment_num_ops=randaugment.num_ops if randaugment else None,
        randaugment_magnitude=randaugment.magnitude if randaugment else 0,
        randaugment_num_magnitude_bins=randaugment.num_magnitude_bins if randaugment else 31,
        random_erasing=spec.random_erasing,
        mixup_alpha=spec.mixup_alpha,
        cutmix_alpha=spec.cutmix_alpha,
        label_smoothing=spec.label_smoothing,
        mean=info.mean,
        std=info.std,
    )


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    spec: OptimSpec, model: nn.Module, *, steps_per_epoch: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW and its per-step schedule: linear warm-up to ``spec.lr``, cosine to ``min_lr``.

    On CUDA the step is AdamW's fused kernel (a few launches for all tensors instead of several
    per tensor); elsewhere torch's default, so CPU runs stay as they were bit for bit.
    """
    optimizer = torch.optim.AdamW(
        _param_groups(model, spec.weight_decay),
        lr=spec.lr,
        weight_decay=spec.weight_decay,
        **optimizer_kernel(model),
    )
    total_steps = spec.epochs * steps_per_epoch
    warmup_steps = round(spec.warmup_epochs * steps_per_epoch)
    min_ratio = spec.min_lr / spec.lr
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine(
            step, warmup_steps=warmup_steps, total_steps=total_steps, min_ratio=min_ratio
        ),
    )
    return optimizer, scheduler


def optimizer_kernel(model: nn.Module) -> dict[str, bool | None]:
    """AdamW's ``fused`` / ``foreach`` flags for where ``model``'s parameters are."""
    on_cuda = all(p.is_cuda for p in model.parameters())
    return {"fused": True if on_cuda else None, "foreach": None}


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # Biases and LayerNorm gains are not decayed (as in the paper's and timm's recipes).
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
