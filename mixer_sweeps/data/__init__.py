"""Datasets as uint8 tensors, and augmentation of whole batches on the training device."""

from mixer_sweeps.data._augment import BatchAugment, normalize
from mixer_sweeps.data._datasets import (
    DATASETS,
    DatasetInfo,
    DatasetSplits,
    DatasetUnavailable,
    Split,
    load_dataset,
)
from mixer_sweeps.data._load import DataSource, load_data

__all__ = [
    "DATASETS",
    "BatchAugment",
    "DatasetInfo",
    "DatasetSplits",
    "DatasetUnavailable",
    "DataSource",
    "Split",
    "load_data",
    "load_dataset",
    "normalize",
]
