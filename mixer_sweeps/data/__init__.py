"""Datasets as uint8 tensors, and augmentation of whole batches on the training device.

What is known of a dataset without loading it (``DATASETS``) loads at once; the rest (and torch)
on first use, so checking a spec stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from mixer_sweeps.data._catalog import DATASETS, DatasetInfo

_LAZY = {
    "BatchAugment": "mixer_sweeps.data._augment",
    "normalize": "mixer_sweeps.data._augment",
    "DatasetSplits": "mixer_sweeps.data._datasets",
    "DatasetUnavailable": "mixer_sweeps.data._datasets",
    "Split": "mixer_sweeps.data._datasets",
    "load_dataset": "mixer_sweeps.data._datasets",
    "DataSource": "mixer_sweeps.data._load",
    "load_data": "mixer_sweeps.data._load",
}

__all__ = ["DATASETS", "DatasetInfo", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mixer_sweeps.data' has no attribute {name!r}")
