"""Offline W&B runs waiting for ``sweeps sync``."""

from __future__ import annotations

from pathlib import Path


def offline_runs(path: Path) -> tuple[list[Path], int]:
    """Offline run folders under ``path`` (a results folder or its ``wandb/``) not yet uploaded,
    and how many were already uploaded."""
    wandb_dir = path / "wandb" if (path / "wandb").is_dir() else path
    pending: list[Path] = []
    synced = 0
    for run_dir in sorted(wandb_dir.glob("offline-run-*")):
        logs = list(run_dir.glob("*.wandb"))
        if not logs:
            continue
        if all(log.with_suffix(".wandb.synced").exists() for log in logs):
            synced += 1
        else:
            pending.append(run_dir)
    return pending, synced
