from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mixer_sweeps.spec import RunSpec, apply_overrides

REPO = Path(__file__).resolve().parents[1]

# A run that trains in about a second on two CPU cores: the tests' workhorse.
TINY_RUN: dict[str, Any] = {
    "name": "tiny-digits",
    "seed": 0,
    "data": {"dataset": "digits", "val_size": 287},
    "model": {
        "patch_size": 2,
        "embed_dim": 16,
        "depth": 1,
        "token_mlp_dim": 8,
        "channel_mlp_dim": 32,
    },
    "augment": {
        "random_crop": True,
        "crop_padding": 1,
        "hflip": False,
        "randaugment": None,
        "mixup_alpha": 0.0,
        "random_erasing": 0.0,
        "label_smoothing": 0.1,
    },
    "optim": {
        "lr": 3e-3,
        "batch_size": 128,
        "epochs": 3,
        "warmup_epochs": 1,
        "min_lr": 1e-5,
        "early_stopping_patience": None,
    },
    "train": {"device": "cpu", "threads": 1},
    "tracking": {"wandb": {"mode": "disabled"}},
}


def tiny_spec(**overrides: Any) -> RunSpec:
    """The tiny run with dotted-path overrides: ``tiny_spec(**{"optim.lr": 0.1})``."""
    return RunSpec.model_validate(apply_overrides(TINY_RUN, overrides))


@pytest.fixture(scope="session")
def digits():
    from mixer_sweeps.data import load_dataset

    return load_dataset("digits", val_size=287)
