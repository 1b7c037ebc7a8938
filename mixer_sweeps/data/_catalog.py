"""What is known about each dataset without loading it: sizes, shapes, normalisation.

Kept free of torch so that checking a spec (``sweeps validate``, a bad value refused at once)
never waits for torch to import.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset, known without loading it (used by spec validation).

    ``mean`` / ``std`` are per channel, of the training images scaled to [0, 1].
    """

    name: str
    image_size: int
    in_channels: int
    num_classes: int
    train_size: int
    test_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


# Digits: the 1437-image training split (values scaled 0..16 -> 0..255 -> [0, 1]).
_DIGITS_MEAN = (0.3054,)
_DIGITS_STD = (0.3760,)

# Synthetic: measured on the generated 50 000 training images.
_SYNTHETIC_MEAN = (0.4960, 0.5030, 0.5008)
_SYNTHETIC_STD = (0.1582, 0.1586, 0.1580)

DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(
        name="cifar10",
        image_size=32,
        in_channels=3,
        num_classes=10,
        train_size=50_000,
        test_size=10_000,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
    ),
    "cifar100": DatasetInfo(
        name="cifar100",
        image_size=32,
        in_channels=3,
        num_classes=100,
        train_size=50_000,
        test_size=10_000,
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
    ),
    "digits": DatasetInfo(
        name="digits",
        image_size=8,
        in_channels=1,
        num_classes=10,
        train_size=1_437,
        test_size=360,
        mean=_DIGITS_MEAN,
        std=_DIGITS_STD,
    ),
    "synthetic": DatasetInfo(
        name="synthetic",
        image_size=32,
        in_channels=3,
        num_classes=10,
        train_size=50_000,
        test_size=10_000,
        mean=_SYNTHETIC_MEAN,
        std=_SYNTHETIC_STD,
    ),
}
