"""mixer-sweeps: hyper-parameter studies of MLP-Mixer image classifiers.

The public names below are imported on first use, so ``import mixer_sweeps`` (and the ``sweeps``
command's ``--help``) stays fast: torch, optuna and wandb load only when a command needs them.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# Idle OpenMP threads sleep rather than spin: on a busy machine torch's spinning threads took a
# digits run from 46 s to 5 minutes. OpenMP reads this once, when torch loads: set it here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_EXPORTS = {
    "RunSpec": "mixer_sweeps.spec",
    "SpecError": "mixer_sweeps.spec",
    "load_run_spec": "mixer_sweeps.spec",
    "MlpMixer": "mixer_sweeps.models",
    "create_model": "mixer_sweeps.models",
    "load_dataset": "mixer_sweeps.data",
    "Trainer": "mixer_sweeps.training",
    "Callback": "mixer_sweeps.training",
    "MemoryTracker": "mixer_sweeps.tracking",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mixer_sweeps' has no attribute {name!r}")
