"""A study's saved W&B view, described from its results: what ``sweeps sync`` and the end of an
online ``sweeps run`` save once per study."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mixer_sweeps.results import study_base
from mixer_sweeps.spec import Range, RunSpec

if TYPE_CHECKING:
    from mixer_sweeps.results import StudyResults
    from mixer_sweeps.tracking import StudyView


def study_view(results: StudyResults) -> StudyView:
    """The view of ``results``' study: its searched params, metric and direction, in the W&B
    project and entity of its base spec, showing every trial run it has so far.

    Raises:
        ValueError: the study keeps no base spec (see :func:`~mixer_sweeps.results.study_base`).
    """
    from mixer_sweeps.tracking import StudyView

    wandb_spec = RunSpec.model_validate(study_base(results)).tracking.wandb
    dims = list(results.space)
    return StudyView(
        study=results.name,
        project=wandb_spec.project,
        entity=wandb_spec.entity,
        params=tuple(d.path for d in dims),
        log_params=frozenset(d.path for d in dims if isinstance(d, Range) and d.log),
        metric=results.metric,
        direction=results.record.direction.name.lower(),
        runs=len(results.trials) * results.replicates,
    )


def make_study_view(results: StudyResults, *, timeout: float | None) -> tuple[str, bool]:
    """Save the study's W&B view unless it has one: its URL, and whether it is new.

    Raises:
        ViewError: it could not be saved (one line; nothing else was touched).
        ValueError: the study keeps no base spec.
    """
    from mixer_sweeps.tracking import save_study_view, saved_view

    earlier = saved_view(results.study_dir)
    if earlier is not None:
        return str(earlier.get("url", "")), False
    return save_study_view(study_view(results), Path(results.study_dir), timeout=timeout), True
