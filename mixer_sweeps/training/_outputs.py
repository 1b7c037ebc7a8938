"""Files a run leaves in its directory: spec.yaml, history.csv, metrics.json, curves.png.

Every file is written atomically (temp file in the same directory, fsync, ``os.replace``), so a
crash never leaves half a file where a whole one stood.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from mixer_sweeps.training._records import HISTORY_COLUMNS, EpochRecord, TrainResult

if TYPE_CHECKING:
    from mixer_sweeps.spec import RunSpec

SPEC_FILE = "spec.yaml"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"
BEST_WEIGHTS_FILE = "best.pt"
CURVES_FILE = "curves.png"
_RUN_FILES = {
    SPEC_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    CHECKPOINT_FILE,
    BEST_WEIGHTS_FILE,
    CURVES_FILE,
}
_RUN_FOLDERS = {"wandb", "retrain"}  # W&B's files; `sweeps retrain SPEC`'s runs


def run_folder_entry(name: str) -> Literal["file", "folder"] | None:
    """What ``name`` is in a run's folder: one of its files, its folders, or None (not a run's)."""
    return "file" if name in _RUN_FILES else "folder" if name in _RUN_FOLDERS else None


def atomic_write_bytes(path: Path, payload: bytes, *, mode: int | None = None) -> None:
    """``payload`` as the file ``path``; ``mode``: its permissions (default: as a new file's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        exc.filename = str(path)  # the file it was for, not the temp name it tried
        raise
    try:
        # mkstemp's 0600 would hide results from co-workers
        os.fchmod(fd, 0o666 & ~_umask() if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a full disk's error then says which file it stopped
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def spec_to_yaml(spec: RunSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def write_spec(run_dir: Path, spec: RunSpec) -> None:
    atomic_write_text(run_dir / SPEC_FILE, spec_to_yaml(spec))


def write_history(run_dir: Path, history: Sequence[EpochRecord]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(record.as_dict() for record in history)
    atomic_write_text(run_dir / HISTORY_FILE, buffer.getvalue())


def write_metrics(run_dir: Path, result: TrainResult) -> None:
    atomic_write_text(run_dir / METRICS_FILE, result.metrics().to_json())


def plot_curves(run_dir: Path, history: Sequence[EpochRecord], *, title: str) -> Path:
    """Accuracy and loss, train and val, per epoch; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.epoch for r in history]
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    acc_ax.plot(epochs, [r.train_acc for r in history], label="train")
    acc_ax.plot(epochs, [r.val_acc for r in history], label="val")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    loss_ax.plot(epochs, [r.train_loss for r in history], label="train")
    loss_ax.plot(epochs, [r.val_loss for r in history], label="val")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    path = run_dir / CURVES_FILE
    atomic_write_bytes(path, buffer.getvalue())
    return path
