"""Which trackers a run gets, decided from its spec (the trainer never decides)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer_sweeps.tracking._mode import resolve_mode
from mixer_sweeps.tracking._wandb_tracker import WandbTracker

if TYPE_CHECKING:
    from mixer_sweeps.spec import RunSpec
    from mixer_sweeps.training import Callback


def make_trackers(
    spec: RunSpec,
    *,
    results_dir: Path,
    study_name: str | None = None,
    trial_number: int | None = None,
    params: dict[str, Any] | None = None,
    metric: str = "val_acc",
    direction: str | None = None,
) -> list[Callback]:
    """Trackers for one run: a standalone ``sweeps train`` run or one trial of a study.

    They are trainer callbacks: pass them to the trainer with the run's other callbacks.

    ``results_dir`` is the study's (or the run's) results folder; trackers keep their files
    under it (W&B: ``results_dir/wandb``). A trial's W&B run is grouped by study and named
    ``<study>-<trial number>``; a standalone run is grouped and named by the spec's name. A
    trial of a study of another ``metric`` than val_acc also keeps the best of it (lowest when
    ``direction`` is ``minimize``) in its summary as ``best_<metric>``.
    """
    trackers: list[Callback] = []
    wandb_spec = spec.tracking.wandb
    mode = resolve_mode(wandb_spec.mode)
    if mode != "disabled":
        if study_name is None:
            group, job_type, name, extra = spec.name, "train", spec.name, {}
        else:
            group, job_type = study_name, "trial"
            name = study_name if trial_number is None else f"{study_name}-{trial_number}"
            # Replicates of one trial (``<study>-<n>-seed<s>``) keep their spec's longer name.
            if spec.name.startswith(f"{name}-"):
                name = spec.name
            extra = {
                "study": study_name,
                "trial": {"number": trial_number, "params": dict(params or {})},
            }
        trackers.append(
            WandbTracker(
                mode=mode,
                results_dir=results_dir,
                wandb_spec=wandb_spec,
                group=group,
                job_type=job_type,
                name=name,
                extra_config=extra,
                objective=None
                if study_name is None or metric == "val_acc"
                else (metric, direction or "maximize"),
            )
        )
    return trackers
