"""The W&B runs a results folder holds: offline ones waiting for ``sweeps sync``, and how to
find them again."""

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


def describe_runs(results: Path) -> list[str]:
    """Lines for people at the end of a study: where its W&B runs went and how to browse and
    upload them. None when the study wrote no W&B run (``tracking.wandb.mode: disabled``)."""
    wandb_dir = results / "wandb"
    pending, synced = offline_runs(results)
    online = [p for p in wandb_dir.glob("run-*") if p.is_dir()]
    lines = []
    if online:
        lines.append(f"W&B: {len(online)} online runs; their local copies are in {wandb_dir}/")
    if pending or synced:
        offline = len(pending) + synced
        state = f"{len(pending)} not uploaded" if pending else "all uploaded"
        lines.append(
            f"W&B: {offline} offline run{'s' * (offline != 1)} in {wandb_dir}/ ({state});"
            f" browse: wandb leet {wandb_dir}"
            + (f"; upload: sweeps sync {results}" if pending else "")
        )
    return lines
