"""Model definitions: MLP-Mixer and its named presets.

The presets load at once; the model (and torch) on first use, so checking a spec stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from mixer_sweeps.models._presets import PRESETS, list_presets

_MODEL = ("MixerBlock", "Mlp", "MlpMixer", "create_model")

__all__ = ["PRESETS", "list_presets", *_MODEL]


def __getattr__(name: str) -> Any:
    if name in _MODEL:
        return getattr(importlib.import_module("mixer_sweeps.models._mixer"), name)
    raise AttributeError(f"module 'mixer_sweeps.models' has no attribute {name!r}")
