"""Per-sample RandAugment on a whole uint8 batch, with a fixed number of ops per batch.

Each sample draws one (op, sign) per round, like ``v2.RandAugment`` per image; the magnitude is
fixed, so every (op, sign) pair is one fixed transformation. Most of them are tabulated once per
image shape and device, by running torchvision's own op on a probe image:

* ops that only move pixels (Identity, ShearX/Y, TranslateX/Y, Rotate; NEAREST interpolation,
  zero fill) become a source-pixel index per output pixel, from an image of pixel numbers;
* ops that map each pixel value on its own (Brightness, Posterize, Solarize) become a 256-entry
  lookup table, from an image holding 0..255.

A round then applies every sample's table with one gather and one lookup, whatever the ops. Ops
that look at the image (Color, Contrast, Sharpness, AutoContrast, Equalize) run batched per op
on the samples that drew them, gathered once per round, with what does not depend on the sign
(gray image, mean, blur) computed once for both signs; finding those groups is the one host sync
per batch. On the CPU the result is bit for bit torchvision's op per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2.functional import _color as tvc

__all__ = ["BatchRandAugment"]

_MOVE_OPS = frozenset({"Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"})
_VALUE_OPS = frozenset({"Brightness", "Posterize", "Solarize"})


@dataclass(frozen=True)
class _Tables:
    signed: torch.Tensor  # (n_ops,) bool: the op's sign is drawn
    coords: torch.Tensor  # (n_keys, H * W) int64 source pixel, H * W for the zero fill
    lut: torch.Tensor  # (n_keys, 256) uint8
    rank: torch.Tensor  # (n_keys,) int64: image ops' keys first, in key order
    image_keys: tuple[int, ...]  # keys whose op looks at the image: both signs, in key order
    magnitudes: tuple[float, ...]  # signed magnitude per key


class BatchRandAugment:
    """``v2.RandAugment``'s ops, magnitudes and sign draws applied per sample to a batch.

    Key ``2 * i + s`` is op ``ops[i]`` with its magnitude negated when ``s`` is 1.
    """

    def __init__(self, ra: v2.RandAugment, ops: tuple[str, ...]) -> None:
        if InterpolationMode(ra.interpolation) != InterpolationMode.NEAREST:
            raise ValueError("pixel-moving ops are tabulated, which needs NEAREST interpolation")
        self.ra = ra
        self.ops = ops
        self._tables: dict[tuple[int, int, int, torch.device], _Tables] = {}
        self._sharpen: dict[torch.device, torch.Tensor] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        t = self._tables_for(channels, height, width, x.device)
        n_ops, n_keys = len(self.ops), 2 * len(self.ops)
        keys = []
        for _ in range(self.ra.num_ops):
            op_idx = torch.randint(n_ops, (batch,), device=x.device)
            # torchvision: ``if signed and torch.rand(()) <= 0.5: magnitude *= -1``
            negative = (torch.rand(batch, device=x.device) <= 0.5) & t.signed[op_idx]
            keys.append(op_idx * 2 + negative.long())
        counts: list[list[int]] = [[0] * n_keys for _ in keys]
        if t.image_keys:
            rounds = torch.arange(len(keys), device=x.device)[:, None] * n_keys
            flat = (torch.stack(keys) + rounds).flatten()
            counts_all = torch.bincount(flat, minlength=len(keys) * n_keys).tolist()
            counts = [counts_all[r * n_keys : (r + 1) * n_keys] for r in range(len(keys))]
        for key, count in zip(keys, counts, strict=True):
            x = self._round(x, key, count, t)
        return x

    def _round(
        self, x: torch.Tensor, key: torch.Tensor, counts: list[int], t: _Tables
    ) -> torch.Tensor:
        batch, channels, height, width = x.shape
        flat = x.reshape(batch, channels, height * width)
        source = torch.cat([flat, flat.new_zeros(batch, channels, 1)], dim=2)
        coords = t.coords.index_select(0, key)[:, None, :].expand(batch, channels, -1)
        moved = source.gather(2, coords)
        lut = t.lut.index_select(0, key)[:, None, :].expand(batch, channels, -1)
        out = lut.gather(2, moved.long()).reshape(x.shape)
        n_image = sum(counts[k] for k in t.image_keys)
        if n_image == 0:
            return out
        # Stable: within a key, samples keep their batch order, as torchvision would see them.
        order = torch.argsort(t.rank[key], stable=True)[:n_image]
        grouped = x[order]
        results: list[torch.Tensor] = []
        start = 0
        for k in t.image_keys[::2]:
            sizes = (counts[k], counts[k + 1])
            if sum(sizes):
                part = grouped[start : start + sum(sizes)]
                magnitudes = (t.magnitudes[k], t.magnitudes[k + 1])
                results += self._image_op(part, self.ops[k // 2], sizes, magnitudes)
                start += sum(sizes)
        return out.index_copy_(0, order, torch.cat(results) if len(results) > 1 else results[0])

    def _image_op(
        self, x: torch.Tensor, op: str, sizes: tuple[int, int], magnitudes: tuple[float, float]
    ) -> list[torch.Tensor]:
        """``op`` on ``x``: its first ``sizes[0]`` samples with ``magnitudes[0]``, the rest with
        ``magnitudes[1]``. What does not depend on the sign is computed once for both."""
        signs = [(x[: sizes[0]], magnitudes[0]), (x[sizes[0] :], magnitudes[1])]
        if op == "Sharpness":
            return [self._sharpness(x, sizes[0], [1.0 + m for m in magnitudes])]
        if op == "AutoContrast":
            return [_autocontrast(x)]
        if op == "Contrast" or (op == "Color" and x.shape[-3] == 3):
            # ``F.adjust_contrast`` / ``F.adjust_saturation`` (a no-op on one channel) for uint8
            if x.shape[-3] == 3:
                other = tvc._rgb_to_grayscale_image(x, preserve_dtype=False).floor_()
            else:
                other = x.to(torch.float32)
            if op == "Contrast":
                other = torch.mean(other, dim=(-3, -2, -1), keepdim=True)
            others = (other[: sizes[0]], other[sizes[0] :])
            return [
                tvc._blend(part, o, 1.0 + m)
                for (part, m), o in zip(signs, others, strict=True)
                if len(part)
            ]
        return [self._apply(part, op, m) for part, m in signs if len(part)]

    def _sharpness(self, image: torch.Tensor, n_first: int, factors: list[float]) -> torch.Tensor:
        # ``F.adjust_sharpness`` for uint8: the first ``n_first`` samples with ``factors[0]``,
        # the rest with ``factors[1]``; the kernel is made once per device.
        channels, height, width = image.shape[-3:]
        if image.numel() == 0 or height <= 2 or width <= 2:
            return image
        kernel = self._sharpen.get(image.device)
        if kernel is None:
            a, b = 1.0 / 13.0, 5.0 / 13.0
            kernel = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], dtype=torch.float32)
            kernel = self._sharpen.setdefault(image.device, kernel.to(image.device))
        output = image.to(dtype=torch.float32, copy=True)
        blurred = torch.nn.functional.conv2d(
            output, kernel.expand(channels, 1, 3, 3), groups=channels
        ).round_()
        view = output[..., 1:-1, 1:-1]
        diff = blurred.sub_(view)
        for part, factor in ((slice(0, n_first), factors[0]), (slice(n_first, None), factors[1])):
            if len(view[part]):
                view[part].add_(diff[part], alpha=(1.0 - factor))
        return output.clamp_(0, 255).to(image.dtype)

    def _tables_for(self, channels: int, height: int, width: int, device: torch.device) -> _Tables:
        cache_key = (channels, height, width, device)
        if cache_key not in self._tables:
            self._tables[cache_key] = self._build_tables(channels, height, width, device)
        return self._tables[cache_key]

    def _build_tables(
        self, channels: int, height: int, width: int, device: torch.device
    ) -> _Tables:
        ra = self.ra
        pixels = height * width
        numbered = torch.arange(1, pixels + 1, dtype=torch.float32).reshape(1, 1, height, width)
        values = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 1, 256)
        values = values.expand(1, channels, 1, 256).contiguous()
        identity_coords = torch.arange(pixels)
        identity_lut = torch.arange(256, dtype=torch.uint8)
        signed, coords, luts, magnitudes, image_keys = [], [], [], [], []
        for i, op in enumerate(self.ops):
            magnitudes_fn, is_signed = ra._AUGMENTATION_SPACE[op]
            mags = magnitudes_fn(ra.num_magnitude_bins, height, width)
            magnitude = 0.0 if mags is None else float(mags[ra.magnitude])
            signed.append(bool(is_signed) and mags is not None)
            for sign in (1.0, -1.0):
                magnitudes.append(sign * magnitude if signed[-1] else magnitude)
                coords.append(identity_coords)
                luts.append(identity_lut)
                if op in _MOVE_OPS:
                    moved = self._apply(numbered, op, magnitudes[-1]).reshape(pixels)
                    # pixel numbers start at 1; 0 is the fill, read from the zero column
                    coords[-1] = torch.where(moved == 0, pixels, moved.long() - 1)
                elif op in _VALUE_OPS:
                    luts[-1] = self._apply(values, op, magnitudes[-1])[0, 0, 0]
                else:
                    image_keys.append(2 * i + (sign < 0))
        rank = torch.full((2 * len(self.ops),), len(image_keys), dtype=torch.long)
        rank[image_keys] = torch.arange(len(image_keys))
        return _Tables(
            signed=torch.tensor(signed, device=device),
            coords=torch.stack(coords).to(device),
            lut=torch.stack(luts).to(device),
            rank=rank.to(device),
            image_keys=tuple(image_keys),
            magnitudes=tuple(magnitudes),
        )

    def _apply(self, image: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
        ra = self.ra
        return ra._apply_image_or_video_transform(
            image, op, magnitude, interpolation=ra.interpolation, fill=ra._fill
        )


def _autocontrast(image: torch.Tensor) -> torch.Tensor:
    # ``F.autocontrast`` for uint8, with masked fills instead of boolean indexing (a host sync).
    float_image = image.to(torch.float32)
    minimum = float_image.amin(dim=(-2, -1), keepdim=True)
    maximum = float_image.amax(dim=(-2, -1), keepdim=True)
    flat = maximum == minimum
    inv_scale = maximum.sub_(minimum).mul_(1.0 / 255).masked_fill_(flat, 1.0)
    minimum = minimum.masked_fill_(flat, 0.0)
    return float_image.sub_(minimum).div_(inv_scale).clamp_(0, 255).to(image.dtype)
