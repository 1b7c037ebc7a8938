"""Which trackers a run gets, decided from its spec (the trainer never decides)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer_sweeps.tracking._base import Tracker

if TYPE_CHECKING:
    from mixer_sweeps.spec import RunSpec


def make_trackers(
    spec: RunSpec,
    *,
    results_dir: Path,
    study_name: str | None = None,
    trial_number: int | None = None,
    params: dict[str, Any] | None = None,
) -> list[Tracker]:
    """Trackers for one run: a standalone ``sweeps train`` run or one trial of a study.

    ``results_dir`` is the study's (or the run's) results folder; trackers keep their files
    under it (W&B: ``results_dir/wandb``).
    """
    return []
