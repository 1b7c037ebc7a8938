"""The one way a run's dataset is loaded: from the ``data`` section of its spec."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mixer_sweeps.data._datasets import DatasetSplits, load_dataset


class DataSource(Protocol):
    """The fields of :class:`mixer_sweeps.spec.DataSpec` that say which images to load.

    A protocol rather than an import: ``mixer_sweeps.spec`` checks its specs against this
    package's :data:`DATASETS`, so importing the spec here would tie the two in a cycle.
    """

    @property
    def dataset(self) -> str: ...
    @property
    def root(self) -> Path: ...
    @property
    def val_size(self) -> int: ...
    @property
    def split_seed(self) -> int: ...
    @property
    def download(self) -> bool: ...


def load_data(spec: DataSource) -> DatasetSplits:
    """The train / val / test splits a run spec's ``data`` section describes.

    Raises what :func:`load_dataset` raises (``DatasetUnavailable`` when CIFAR is missing).
    """
    return load_dataset(
        spec.dataset,
        root=spec.root,
        val_size=spec.val_size,
        split_seed=spec.split_seed,
        download=spec.download,
    )
