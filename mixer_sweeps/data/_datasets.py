"""Image classification datasets as whole uint8 tensors.

Every dataset is loaded once into memory as ``uint8`` tensors of shape ``(N, C, H, W)`` plus
``int64`` labels, split into train / val / test. Batching, augmentation and normalisation
happen later on whole tensors (see ``_augment.py``), so a :class:`DatasetSplits` can be moved
to the accelerator once with :meth:`DatasetSplits.to` and the data path stays there.

Datasets:

* ``cifar10`` / ``cifar100`` -- through ``torchvision.datasets.CIFAR10/100``. Found under
  ``root`` either extracted (``root/cifar-10-batches-py/``, torchvision's layout) or as the
  original archive (``root/cifar-10-python.tar.gz``, extracted here), else downloaded when
  ``download=True``. Anything missing raises :class:`DatasetUnavailable` telling the user
  what to put where.
* ``digits`` -- scikit-learn's bundled 8x8 handwritten digits (works offline); a fixed
  stratified 360-image test split.
* ``synthetic`` -- generated, CIFAR-shaped, deterministic and learnable; for throughput work.

The validation split is always carved out of the training split, class-stratified and seeded
by ``split_seed``; the test split never depends on ``split_seed``.
"""

from __future__ import annotations

import socket
import tarfile
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mixer_sweeps.data._catalog import DATASETS, DatasetInfo

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetSplits",
    "DatasetUnavailable",
    "Split",
    "load_dataset",
]

#: Socket timeout (seconds) applied while downloading; bounds every connect/read.
DOWNLOAD_TIMEOUT_S = 30.0


class DatasetUnavailable(Exception):
    """A dataset is not on disk and could not be obtained; the message says what to do."""


@dataclass(frozen=True, eq=False)
class Split:
    """One split: ``images`` uint8 ``(N, C, H, W)`` contiguous, ``labels`` int64 ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise ValueError(
                f"labels must be int64 (N,), got {self.labels.dtype} {tuple(self.labels.shape)}"
            )
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A loaded dataset: its static :class:`DatasetInfo` and the three splits."""

    info: DatasetInfo
    train: Split
    val: Split
    test: Split

    def to(self, device: torch.device | str) -> DatasetSplits:
        """Return a copy with every tensor moved to ``device`` (done once, up front)."""
        return DatasetSplits(
            self.info, self.train.to(device), self.val.to(device), self.test.to(device)
        )


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def load_dataset(
    name: str,
    *,
    root: str | Path = "data",
    val_size: int,
    split_seed: int = 0,
    download: bool = True,
) -> DatasetSplits:
    """Load dataset ``name`` into memory as train / val / test uint8 tensors.

    Args:
        name: one of :data:`DATASETS` (``cifar10``, ``cifar100``, ``digits``, ``synthetic``).
        root: folder holding downloaded datasets (CIFAR only).
        val_size: number of training images held out for validation (may be 0).
        split_seed: seeds the (class-stratified) train/val split.
        download: allow fetching CIFAR from the internet when it is not under ``root``.

    Raises:
        ValueError: unknown ``name``, or ``val_size`` not in ``[0, train_size)``.
        DatasetUnavailable: CIFAR is neither under ``root`` nor downloadable.
    """
    key = name.strip().lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    info = DATASETS[key]
    if isinstance(val_size, bool) or not isinstance(val_size, int):
        raise TypeError(f"val_size must be an int, got {val_size!r}")
    if val_size < 0 or val_size >= info.train_size:
        raise ValueError(
            f"val_size={val_size} must be >= 0 and smaller than the {key} training set "
            f"(train_size={info.train_size})"
        )

    if key in ("cifar10", "cifar100"):
        train, test = _load_cifar(key, Path(root).expanduser(), download=download)
    elif key == "digits":
        train, test = _load_digits()
    else:
        train, test = _generate_synthetic(info.train_size, info.test_size)

    if len(train) != info.train_size or len(test) != info.test_size:  # pragma: no cover
        raise RuntimeError(
            f"{key}: loaded {len(train)}/{len(test)} train/test images, "
            f"expected {info.train_size}/{info.test_size}"
        )
    train, val = _split_off_val(train, val_size, split_seed, info.num_classes)
    return DatasetSplits(info=info, train=train, val=val, test=test)


# --------------------------------------------------------------------------------------------
# Train / val split
# --------------------------------------------------------------------------------------------


def _split_indices(
    labels: np.ndarray, test_size: int, seed: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(len(labels))`` into (keep, held_out) sorted index arrays.

    Class-stratified when every class can be represented on both sides, otherwise a plain
    seeded random permutation.
    """
    n = len(labels)
    if test_size == 0:
        return np.arange(n), np.arange(0)
    counts = np.bincount(labels, minlength=num_classes)
    present = counts[counts > 0]
    stratifiable = min(test_size, n - test_size) >= len(present) and present.min(initial=n) >= 2
    if stratifiable:
        from sklearn.model_selection import train_test_split

        keep, held = train_test_split(
            np.arange(n), test_size=test_size, stratify=labels, random_state=seed
        )
    else:
        perm = np.random.default_rng(seed).permutation(n)
        keep, held = perm[: n - test_size], perm[n - test_size :]
    return np.sort(keep), np.sort(held)


def _split_off_val(train: Split, val_size: int, seed: int, num_classes: int) -> tuple[Split, Split]:
    keep, held = _split_indices(train.labels.numpy(), val_size, seed, num_classes)
    keep_t, held_t = torch.from_numpy(keep), torch.from_numpy(held)
    return (
        Split(train.images[keep_t].contiguous(), train.labels[keep_t].contiguous()),
        Split(train.images[held_t].contiguous(), train.labels[held_t].contiguous()),
    )


# --------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 (torchvision)
# --------------------------------------------------------------------------------------------

_CIFAR_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def _cifar_class(key: str) -> type:
    from torchvision.datasets import CIFAR10, CIFAR100

    return CIFAR10 if key == "cifar10" else CIFAR100


def _cifar_folder_ok(cls: type, root: Path) -> bool:
    """torchvision's own integrity check (MD5 of every batch file) of the extracted folder."""
    from torchvision.datasets.utils import check_integrity

    return all(
        check_integrity(root / cls.base_folder / fname, md5)
        for fname, md5 in cls.train_list + cls.test_list
    )


def _cifar_help(key: str, cls: type, root: Path) -> str:
    return (
        f"Download {cls.url} and put it at {root / cls.filename} "
        f"(or extract it there as {root / cls.base_folder}/)."
    )


def _ensure_cifar_files(key: str, root: Path, *, download: bool) -> type:
    """Make ``root/<base_folder>`` hold a verified copy of the dataset, or raise."""
    from torchvision.datasets.utils import (
        check_integrity,
        download_and_extract_archive,
        extract_archive,
    )

    cls = _cifar_class(key)
    title = _CIFAR_TITLES[key]
    if _cifar_folder_ok(cls, root):
        return cls

    archive = root / cls.filename
    archive_note = ""
    if archive.is_file():
        if check_integrity(archive, cls.tgz_md5):
            try:
                extract_archive(str(archive), str(root))
            except (OSError, EOFError, tarfile.TarError) as exc:
                raise DatasetUnavailable(
                    f"{title}: could not extract {archive} into {root}/ ({exc}). "
                    + _cifar_help(key, cls, root)
                ) from exc
            if _cifar_folder_ok(cls, root):
                return cls
            archive_note = f"; extracting {archive} did not give a valid {cls.base_folder}/"
        else:
            archive_note = f"; {archive} exists but its MD5 is not {cls.tgz_md5} (corrupted?)"

    if not download:
        raise DatasetUnavailable(
            f"{title} not found under {root}/{archive_note} and download=False. "
            + _cifar_help(key, cls, root)
        )

    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)
    except (urllib.error.URLError, OSError, RuntimeError, EOFError, tarfile.TarError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetUnavailable(
            f"{title} not found under {root}/{archive_note} and could not be downloaded "
            f"from {cls.url} ({type(exc).__name__}: {reason}). " + _cifar_help(key, cls, root)
        ) from exc
    finally:
        socket.setdefaulttimeout(previous_timeout)

    if not _cifar_folder_ok(cls, root):
        raise DatasetUnavailable(
            f"{title}: downloaded {cls.url} to {archive} but {root / cls.base_folder}/ "
            "is still missing or corrupted. " + _cifar_help(key, cls, root)
        )
    return cls


def _load_cifar(key: str, root: Path, *, download: bool) -> tuple[Split, Split]:
    cls = _ensure_cifar_files(key, root, download=download)
    splits = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=False)
        except RuntimeError as exc:  # e.g. the meta file is missing or corrupted
            raise DatasetUnavailable(
                f"{_CIFAR_TITLES[key]} under {root}/ could not be read ({exc}). "
                + _cifar_help(key, cls, root)
            ) from exc
        images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        labels = torch.as_tensor(np.asarray(ds.targets, dtype=np.int64))
        splits.append(Split(images, labels))
    return splits[0], splits[1]


# --------------------------------------------------------------------------------------------
# scikit-learn digits
# --------------------------------------------------------------------------------------------

_DIGITS_TEST_SIZE = 360
_DIGITS_TEST_SEED = 0


def _load_digits() -> tuple[Split, Split]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are the integers 0..16; rescale to the full uint8 range.
    images = np.rint(bunch.data * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = _split_indices(labels, _DIGITS_TEST_SIZE, _DIGITS_TEST_SEED, 10)

    def take(idx: np.ndarray) -> Split:
        return Split(
            torch.from_numpy(np.ascontiguousarray(images[idx])),
            torch.from_numpy(np.ascontiguousarray(labels[idx])),
        )

    return take(train_idx), take(test_idx)


# --------------------------------------------------------------------------------------------
# Synthetic CIFAR-shaped data
# --------------------------------------------------------------------------------------------

SYNTHETIC_SEED = 20_240_601
#: Low-frequency grid of each class template before upsampling to 32x32.
SYNTHETIC_TEMPLATE_GRID = 4
#: Std of a class template, in uint8 units.
SYNTHETIC_TEMPLATE_STD = 8.0
#: Each image is its class template circularly shifted by up to this many pixels (x and y).
SYNTHETIC_MAX_SHIFT = 4
#: Per-pixel noise is uniform in [-SYNTHETIC_NOISE, SYNTHETIC_NOISE).
SYNTHETIC_NOISE = 64
#: Per-image brightness offset is uniform in [-SYNTHETIC_BRIGHTNESS, SYNTHETIC_BRIGHTNESS].
SYNTHETIC_BRIGHTNESS = 24
_SYNTHETIC_CHUNK = 8192


def _generate_synthetic(
    train_size: int, test_size: int, *, seed: int = SYNTHETIC_SEED, num_classes: int = 10
) -> tuple[Split, Split]:
    """Deterministic, learnable CIFAR-shaped images (3x32x32 uint8).

    Each class owns a smooth random colour template (random values on a 4x4 grid, bicubically
    upsampled). An image is ``128 + shift(template[label]) + brightness + noise``, clipped to
    0..255, where the circular shift (up to 4 px each way), brightness offset and per-pixel
    uniform noise are drawn per image. Everything is integer arithmetic on small chunks, so
    60 000 images take about a second on two CPU cores.
    """
    size = 32
    n = train_size + test_size
    gen = torch.Generator().manual_seed(seed)

    grid = torch.randn(
        num_classes, 3, SYNTHETIC_TEMPLATE_GRID, SYNTHETIC_TEMPLATE_GRID, generator=gen
    )
    templates = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
    templates = templates - templates.mean(dim=(1, 2, 3), keepdim=True)
    templates = templates * (SYNTHETIC_TEMPLATE_STD / templates.std(dim=(1, 2, 3), keepdim=True))
    # All shifted copies up front: index = (label * n_shifts + shift_index).
    shifts = range(-SYNTHETIC_MAX_SHIFT, SYNTHETIC_MAX_SHIFT + 1)
    shifted = torch.stack(
        [torch.roll(templates, shifts=(dy, dx), dims=(2, 3)) for dy in shifts for dx in shifts],
        dim=1,
    )  # (classes, n_shifts, 3, H, W)
    n_shifts = shifted.shape[1]
    bank = (shifted.round() + 128).to(torch.int16).reshape(num_classes * n_shifts, 3, size, size)

    labels = torch.randint(0, num_classes, (n,), generator=gen, dtype=torch.int64)
    shift_idx = torch.randint(0, n_shifts, (n,), generator=gen, dtype=torch.int64)
    brightness = torch.randint(
        -SYNTHETIC_BRIGHTNESS,
        SYNTHETIC_BRIGHTNESS + 1,
        (n, 1, 1, 1),
        generator=gen,
        dtype=torch.int16,
    )
    bank_idx = labels * n_shifts + shift_idx

    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    for start in range(0, n, _SYNTHETIC_CHUNK):
        stop = min(start + _SYNTHETIC_CHUNK, n)
        chunk = torch.randint(
            -SYNTHETIC_NOISE,
            SYNTHETIC_NOISE,
            (stop - start, 3, size, size),
            generator=gen,
            dtype=torch.int16,
        )
        chunk += bank[bank_idx[start:stop]]
        chunk += brightness[start:stop]
        images[start:stop] = chunk.clamp_(0, 255)

    return (
        Split(images[:train_size], labels[:train_size]),
        Split(images[train_size:], labels[train_size:]),
    )
