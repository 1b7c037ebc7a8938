from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import REPO, tiny_spec
from mixer_sweeps.spec import load_run_spec
from mixer_sweeps.tracking import MemoryTracker
from mixer_sweeps.training import (
    HISTORY_COLUMNS,
    Callback,
    NonFiniteLossError,
    Stop,
    Trainer,
    warmup_cosine,
)

_TIMING = {"seconds", "images_per_s"}


def _curve(history) -> list[dict[str, float]]:
    return [{k: v for k, v in r.as_dict().items() if k not in _TIMING} for r in history]


def test_reaches_85_percent_on_digits(digits) -> None:
    spec = load_run_spec(REPO / "specs" / "digits.yaml", {"optim.epochs": 12, "train.threads": 2})
    result = Trainer(spec, data=digits).fit()
    assert result.best_val_acc >= 0.85, result.history
    assert result.test_acc is not None and result.test_acc >= 0.80


def test_same_seed_same_history_and_weights(digits) -> None:
    runs = [Trainer(tiny_spec(), data=digits) for _ in range(2)]
    results = [t.fit() for t in runs]
    assert _curve(results[0].history) == _curve(results[1].history)
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters(), strict=True):
        assert torch.equal(a, b)
    other = Trainer(tiny_spec(seed=1), data=digits).fit()
    assert _curve(other.history) != _curve(results[0].history)


def test_early_stopping_stops_a_run_that_stopped_improving(digits) -> None:
    # With a vanishing learning rate the weights barely move, so val acc never beats epoch 1.
    spec = tiny_spec(
        **{
            "optim.lr": 1e-12,
            "optim.min_lr": 0.0,
            "optim.epochs": 20,
            "optim.early_stopping_patience": 2,
        }
    )
    result = Trainer(spec, data=digits).fit()
    assert result.epochs_run == 3
    assert result.best_epoch == 1
    assert result.state == "completed"
    assert "early stopping" in result.reason


def test_without_patience_all_epochs_run(digits) -> None:
    spec = tiny_spec(**{"optim.lr": 1e-12, "optim.min_lr": 0.0, "optim.epochs": 4})
    assert Trainer(spec, data=digits).fit().epochs_run == 4


def test_test_accuracy_uses_the_best_validation_weights(digits) -> None:
    trainer = Trainer(tiny_spec(**{"optim.epochs": 4}), data=digits)
    result = trainer.fit()
    assert trainer.best_state is not None
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, trainer.best_state[name])
    assert result.test_acc == trainer.evaluate(trainer.data.test)[1]
    assert result.best_val_acc == max(r.val_acc for r in result.history)


class _StopAfter(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record.epoch == self.epoch:
            return Stop("pruned", f"pruned at epoch {record.epoch}")
        return None


def test_a_callback_can_stop_the_run_and_trackers_hear_it(digits) -> None:
    tracker = MemoryTracker()
    spec = tiny_spec(**{"optim.epochs": 5})
    result = Trainer(spec, data=digits, callbacks=[_StopAfter(2)], trackers=[tracker]).fit()
    assert (result.state, result.epochs_run, result.test_acc) == ("pruned", 2, None)
    assert [r.epoch for r in tracker.epochs] == [1, 2]
    assert (tracker.state, tracker.reason) == ("pruned", "pruned at epoch 2")
    assert tracker.summary["best_val_acc"] == result.best_val_acc
    assert tracker.meta["params"] == result.num_params


def test_non_finite_loss_stops_with_the_epoch_named(digits) -> None:
    tracker = MemoryTracker()
    spec = tiny_spec(**{"optim.lr": 1e30, "optim.warmup_epochs": 0, "optim.min_lr": 1.0})
    with pytest.raises(NonFiniteLossError, match=r"non-finite .* in epoch 1"):
        Trainer(spec, data=digits, trackers=[tracker]).fit()
    assert tracker.state == "failed"


def test_run_dir_holds_spec_history_metrics_and_curves(digits, tmp_path: Path) -> None:
    spec = tiny_spec()
    tracker = MemoryTracker()
    trainer = Trainer(spec, data=digits, run_dir=tmp_path, trackers=[tracker])
    result = trainer.fit()
    assert load_run_spec(tmp_path / "spec.yaml") == spec
    with open(tmp_path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == HISTORY_COLUMNS
    assert [float(r["val_acc"]) for r in rows] == [r.val_acc for r in result.history]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_acc"] == result.test_acc
    assert metrics["epochs"] == 3
    assert metrics["params"] == sum(p.numel() for p in trainer.model.parameters())
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert tracker.images == {"curves": tmp_path / "curves.png"}
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.1),  # first warm-up step
        (9, 1.0),  # end of warm-up
        (10, 1.0),  # cosine starts at the peak
        (60, 0.505),  # half-way through the cosine: (1 + 0.01) / 2
        (110, 0.01),  # the floor
        (500, 0.01),  # and it stays there
    ],
)
def test_warmup_cosine(step: int, expected: float) -> None:
    value = warmup_cosine(step, warmup_steps=10, total_steps=110, min_ratio=0.01)
    assert math.isclose(value, expected, rel_tol=1e-9)


def test_learning_rate_follows_the_schedule(digits) -> None:
    spec = tiny_spec(**{"optim.epochs": 4, "optim.warmup_epochs": 1, "optim.min_lr": 3e-5})
    result = Trainer(spec, data=digits).fit()
    lrs = [r.lr for r in result.history]
    assert lrs[0] == pytest.approx(3e-3)
    assert lrs[-1] == pytest.approx(3e-5)
    assert lrs == sorted(lrs, reverse=True)
