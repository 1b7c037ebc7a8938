"""Batched, on-device training augmentation.

Everything here works on WHOLE batches of tensors on the training device (CPU or CUDA): there is
no Python loop over samples, only short loops over ops / op groups.  All randomness is drawn from
torch's global RNG (so ``torch.manual_seed`` makes a run reproducible), per-sample draws are tensors
on the batch's device, and the image ops themselves are torchvision's ``transforms.v2`` kernels,
which accept batched ``(..., C, H, W)`` tensors.

Pipeline of :class:`BatchAugment` (per sample unless stated):

1. random crop: zero-pad by ``crop_padding``, crop back to ``H x W`` at a random offset (gather);
2. horizontal flip with probability 0.5 (``torch.where`` with a per-sample mask);
3. RandAugment (torchvision's op table and magnitude mapping), a different op / sign per sample:
   pixel-moving and value-mapping ops as tables applied to the whole batch at once, the ops that
   look at the image batched per (op, sign) (see :mod:`mixer_sweeps.data._randaugment`);
4. conversion to float32 in [0, 1] and normalisation with ``mean`` / ``std``;
5. random erasing with probability ``random_erasing``: one box per sample drawn like
   ``v2.RandomErasing`` (scale (0.02, 0.33), ratio (0.3, 3.3)), filled with 0 in normalised space;
6. per batch: ``v2.MixUp`` or ``v2.CutMix`` (one of the two with probability 0.5 when both are on);
7. label smoothing of the (possibly mixed) one-hot targets: ``t * (1 - eps) + eps / num_classes``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from mixer_sweeps.data._randaugment import BatchRandAugment

__all__ = ["RANDAUGMENT_OPS", "BatchAugment", "normalize"]

#: RandAugment op names, in torchvision's order (``v2.RandAugment._AUGMENTATION_SPACE``).
RANDAUGMENT_OPS: tuple[str, ...] = tuple(v2.RandAugment._AUGMENTATION_SPACE)

# torchvision's ``v2.RandomErasing`` defaults.
_ERASE_SCALE = (0.02, 0.33)
_ERASE_RATIO = (0.3, 3.3)
_ERASE_ATTEMPTS = 10


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 images ``(..., C, H, W)`` -> float32 in [0, 1] -> ``(x - mean) / std`` per channel.

    No augmentation; this is also what evaluation uses.  Float inputs are taken to be in [0, 1]
    already (only cast to float32).
    """
    x = F.to_dtype(images, torch.float32, scale=True)
    # As F.normalize computes it, without its check of std on the device (a host sync per batch);
    # tensors already on the images' device are used as they are, not copied there again.
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    return x.sub(mean_t).div_(std_t)


class BatchAugment(torch.nn.Module):
    """Per-sample random crop / flip / RandAugment / erasing + per-batch MixUp / CutMix.

    ``forward(images, labels)`` takes uint8 ``(B, C, H, W)`` images (C = 1 or 3, any device) and
    int64 ``(B,)`` labels and returns float32 normalised images and float32 soft targets
    ``(B, num_classes)`` whose rows sum to 1.

    ``randaugment_ops`` (optional) restricts RandAugment to a subset of :data:`RANDAUGMENT_OPS`
    (default: all of them, like ``v2.RandAugment``); mainly useful for tests and ablations.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        random_crop: bool = True,
        crop_padding: int = 4,
        hflip: bool = True,
        randaugment_num_ops: int | None = 2,
        randaugment_magnitude: int = 9,
        randaugment_num_magnitude_bins: int = 31,
        random_erasing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        label_smoothing: float = 0.0,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        randaugment_ops: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
        if not 0.0 <= random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability, got {random_erasing}")
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"alphas must be >= 0, got {mixup_alpha=}, {cutmix_alpha=}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if len(mean) != len(std) or len(mean) == 0:
            raise ValueError(f"mean and std must be non-empty and of equal length: {mean}, {std}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {std}")

        self.num_classes = int(num_classes)
        self.random_crop = bool(random_crop) and crop_padding > 0
        self.crop_padding = int(crop_padding)
        self.hflip = bool(hflip)
        self.random_erasing = float(random_erasing)
        self.label_smoothing = float(label_smoothing)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

        # RandAugment: keep a torchvision instance for its op table, its argument checks, its
        # op implementation (``_apply_image_or_video_transform``) and its fill / interpolation.
        num_ops = int(randaugment_num_ops or 0)
        self.randaugment: v2.RandAugment | None = None
        self._batch_randaugment: BatchRandAugment | None = None
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        if num_ops > 0:
            if not 0 <= randaugment_magnitude < randaugment_num_magnitude_bins:
                raise ValueError(
                    f"randaugment_magnitude must be in [0, {randaugment_num_magnitude_bins}), "
                    f"got {randaugment_magnitude}"
                )
            self.randaugment = v2.RandAugment(
                num_ops=num_ops,
                magnitude=int(randaugment_magnitude),
                num_magnitude_bins=int(randaugment_num_magnitude_bins),
            )
            ops = RANDAUGMENT_OPS if randaugment_ops is None else tuple(randaugment_ops)
            unknown = [op for op in ops if op not in RANDAUGMENT_OPS]
            if unknown or not ops:
                raise ValueError(f"unknown / empty randaugment_ops {ops}; known: {RANDAUGMENT_OPS}")
            self._batch_randaugment = BatchRandAugment(self.randaugment, ops)

        # Mixup / CutMix: torchvision's batch transforms (one lambda per batch, rolled pairing).
        mixers: list[torch.nn.Module] = []
        if mixup_alpha > 0:
            mixers.append(v2.MixUp(alpha=float(mixup_alpha), num_classes=self.num_classes))
        if cutmix_alpha > 0:
            mixers.append(v2.CutMix(alpha=float(cutmix_alpha), num_classes=self.num_classes))
        self.mix: torch.nn.Module | None
        if not mixers:
            self.mix = None
        elif len(mixers) == 1:
            self.mix = mixers[0]
        else:
            self.mix = v2.RandomChoice(mixers)  # p = 0.5 each

    # ------------------------------------------------------------------------------------------
    def forward(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(
                "expected uint8 images of shape (B, C, H, W), "
                f"got {images.dtype} {tuple(images.shape)}"
            )
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels shape {tuple(labels.shape)} != ({images.shape[0]},)")
        labels = labels.to(device=images.device, dtype=torch.int64)

        x = images
        if self.random_crop:
            x = _random_crop(x, self.crop_padding)
        if self.hflip:
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self._batch_randaugment is not None:
            x = self._batch_randaugment(x)

        x = normalize(x, *self._stats_on(x.device))
        if self.random_erasing > 0:
            x = x.masked_fill(_erase_mask(x, self.random_erasing), 0.0)

        if self.mix is not None:
            x, targets = self.mix(x, labels)
            targets = targets.to(torch.float32)
        else:
            targets = torch.nn.functional.one_hot(labels, self.num_classes).to(torch.float32)
        if self.label_smoothing > 0:
            eps = self.label_smoothing
            targets = targets * (1.0 - eps) + eps / self.num_classes
        return x, targets

    # ------------------------------------------------------------------------------------------
    def _stats_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``mean`` and ``std`` as tensors on ``device``, made once rather than every batch."""
        if device not in self._stats:
            self._stats[device] = (
                torch.tensor(self.mean, dtype=torch.float32, device=device),
                torch.tensor(self.std, dtype=torch.float32, device=device),
            )
        return self._stats[device]


def _random_crop(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Zero-pad by ``pad``, crop back to ``H x W`` at a per-sample random offset (two gathers)."""
    batch, channels, height, width = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # zeros
    dev = x.device
    off_y = torch.randint(0, 2 * pad + 1, (batch,), device=dev)
    off_x = torch.randint(0, 2 * pad + 1, (batch,), device=dev)
    rows = off_y[:, None] + torch.arange(height, device=dev)  # (B, H)
    cols = off_x[:, None] + torch.arange(width, device=dev)  # (B, W)
    out = padded.gather(2, rows[:, None, :, None].expand(batch, channels, height, width + 2 * pad))
    return out.gather(3, cols[:, None, None, :].expand(batch, channels, height, width))


def _erase_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Boolean mask ``(B, 1, H, W)``: one box per selected sample, drawn like v2.RandomErasing.

    Per sample: up to 10 attempts of (area fraction ~ U(scale), log aspect ~ U(log ratio)); the
    first attempt whose box fits strictly inside the image is used, otherwise nothing is erased
    (torchvision's behaviour); the box position is uniform over the valid offsets.
    """
    batch, _, height, width = x.shape
    dev = x.device
    area = height * width
    shape = (batch, _ERASE_ATTEMPTS)
    erase_area = area * torch.empty(shape, device=dev).uniform_(*_ERASE_SCALE)
    log_lo, log_hi = math.log(_ERASE_RATIO[0]), math.log(_ERASE_RATIO[1])
    aspect = torch.exp(torch.empty(shape, device=dev).uniform_(log_lo, log_hi))
    h = torch.sqrt(erase_area * aspect).round().long()
    w = torch.sqrt(erase_area / aspect).round().long()
    fits = (h < height) & (w < width)
    first = fits.long().argmax(dim=1, keepdim=True)  # first fitting attempt (0 if none)
    h = h.gather(1, first).squeeze(1)
    w = w.gather(1, first).squeeze(1)
    apply = (torch.rand(batch, device=dev) < p) & fits.any(dim=1)
    top = torch.minimum((torch.rand(batch, device=dev) * (height - h + 1)).long(), height - h)
    left = torch.minimum((torch.rand(batch, device=dev) * (width - w + 1)).long(), width - w)
    ys = torch.arange(height, device=dev)[None, :]
    xs = torch.arange(width, device=dev)[None, :]
    in_rows = (ys >= top[:, None]) & (ys < (top + h)[:, None])  # (B, H)
    in_cols = (xs >= left[:, None]) & (xs < (left + w)[:, None])  # (B, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]
    return mask[:, None]
