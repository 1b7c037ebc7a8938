"""Trackers: training callbacks that tell a run's story elsewhere (in memory, Weights & Biases).

A tracker is a :class:`~mixer_sweeps.training.Callback`; :func:`make_trackers` picks a run's
trackers from its spec, and the caller hands them to the trainer with its other callbacks.
Besides runs: :func:`log_study` logs a whole study as one W&B run, :func:`offline_runs` finds
the offline runs that :func:`sync_offline_runs` uploads (``sweeps sync``),
:func:`describe_runs` tells people where a study's runs went, and :func:`build_workspace` /
:func:`save_study_view` make a study's saved W&B view (``wandb_workspaces``) once. Importing this
package imports neither wandb nor wandb_workspaces.
"""

from mixer_sweeps.tracking._factory import make_trackers
from mixer_sweeps.tracking._guard import TrackingWarning
from mixer_sweeps.tracking._memory import MemoryTracker
from mixer_sweeps.tracking._mode import has_wandb_credentials, resolve_mode, wandb_host
from mixer_sweeps.tracking._offline import describe_runs, offline_runs
from mixer_sweeps.tracking._study_log import log_study
from mixer_sweeps.tracking._sync import sync_offline_runs
from mixer_sweeps.tracking._view import StudyView, build_workspace, config_column, saved_view
from mixer_sweeps.tracking._view_save import VIEW_TIMEOUT_S, ViewError, save_study_view
from mixer_sweeps.tracking._wandb_tracker import WandbTracker

__all__ = [
    "MemoryTracker",
    "StudyView",
    "TrackingWarning",
    "VIEW_TIMEOUT_S",
    "ViewError",
    "WandbTracker",
    "build_workspace",
    "config_column",
    "describe_runs",
    "has_wandb_credentials",
    "log_study",
    "make_trackers",
    "offline_runs",
    "resolve_mode",
    "save_study_view",
    "saved_view",
    "sync_offline_runs",
    "wandb_host",
]
