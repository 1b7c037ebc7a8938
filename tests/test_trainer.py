from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import REPO, tiny_spec
from mixer_sweeps.data import normalize
from mixer_sweeps.spec import load_run_spec
from mixer_sweeps.tracking import MemoryTracker
from mixer_sweeps.training import (
    BEST_WEIGHTS_FILE,
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


class _ScriptedVal(Trainer):
    """A real trainer whose validation accuracy follows a script, one value per epoch.

    Training, the test split and the validation loss stay real; only the number that the
    best-epoch bookkeeping reads is chosen by the test.
    """

    def __init__(self, spec, val_accs: list[float], **kwargs) -> None:
        super().__init__(spec, **kwargs)
        self.val_accs = list(val_accs)

    def evaluate(self, split) -> tuple[float, float]:
        loss, acc = super().evaluate(split)
        if split is self.data.val:
            return loss, self.val_accs[self.epoch - 1]
        return loss, acc


class _WeightsAtEpochEnd(Callback):
    def __init__(self) -> None:
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_end(self, trainer, record):
        self.weights[record.epoch] = {
            k: v.detach().clone() for k, v in trainer.model.state_dict().items()
        }
        return None

    def epochs_with(self, weights: dict[str, torch.Tensor]) -> list[int]:
        """The epochs whose end-of-epoch weights are exactly ``weights``."""
        return [
            epoch
            for epoch, seen in self.weights.items()
            if seen.keys() == weights.keys() and all(torch.equal(seen[k], weights[k]) for k in seen)
        ]


def _test_accuracy(spec, digits, weights: dict[str, torch.Tensor]) -> float:
    """Accuracy of ``weights`` on the test split, computed here rather than by the trainer."""
    model = Trainer(spec, data=digits).model
    model.load_state_dict(weights)
    model.eval()
    test, info = digits.test, digits.info
    with torch.no_grad():
        logits = model(normalize(test.images, info.mean, info.std))
    return (logits.argmax(-1) == test.labels).sum().item() / len(test)


def test_patience_counts_from_the_last_best(digits) -> None:
    # Patience 2 over val accs 0.2 0.5 0.4 0.6 0.55 0.5 0.7 0.8: new bests at epochs 1, 2 and
    # 4; epochs 5 and 6 do not improve on epoch 4, so the run stops after epoch 6 and never
    # sees 0.7. A counter that is not reset at epoch 4 would already reach 2 at epoch 5.
    spec = tiny_spec(**{"optim.epochs": 8, "optim.early_stopping_patience": 2})
    val_accs = [0.2, 0.5, 0.4, 0.6, 0.55, 0.5, 0.7, 0.8]
    result = _ScriptedVal(spec, val_accs, data=digits).fit()
    assert [r.val_acc for r in result.history] == val_accs[:6]
    assert (result.epochs_run, result.best_epoch, result.best_val_acc) == (6, 4, 0.6)
    assert result.state == "completed"
    assert result.reason == "early stopping: no val_acc improvement for 2 epochs after epoch 4"


def test_test_number_uses_the_best_validation_weights(digits, tmp_path: Path) -> None:
    # Val acc peaks at epoch 2 and the run goes on for two more epochs, so the best weights
    # and the last weights are different tensors.
    spec = tiny_spec(**{"optim.epochs": 4})
    captured = _WeightsAtEpochEnd()
    trainer = _ScriptedVal(
        spec, [0.3, 0.6, 0.4, 0.5], data=digits, callbacks=[captured], run_dir=tmp_path
    )
    result = trainer.fit()
    assert result.best_epoch == 2 and result.epochs_run == 4
    assert captured.epochs_with(captured.weights[2]) == [2], "the weights must move every epoch"

    assert captured.epochs_with(trainer.model.state_dict()) == [2]
    saved = torch.load(tmp_path / BEST_WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert captured.epochs_with(saved) == [2]

    best_acc = _test_accuracy(spec, digits, captured.weights[2])
    last_acc = _test_accuracy(spec, digits, captured.weights[4])
    assert best_acc != last_acc, "the test split must tell the two epochs apart"
    assert result.test_acc == best_acc
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_acc"] == best_acc and metrics["best_epoch"] == 2


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
    result = Trainer(spec, data=digits, callbacks=[_StopAfter(2), tracker]).fit()
    assert (result.state, result.epochs_run, result.test_acc) == ("pruned", 2, None)
    assert [r.epoch for r in tracker.epochs] == [1, 2]
    assert (tracker.state, tracker.reason) == ("pruned", "pruned at epoch 2")
    assert tracker.summary["best_val_acc"] == result.best_val_acc
    assert tracker.meta["num_params"] == result.num_params


def test_non_finite_loss_stops_with_the_epoch_named(digits) -> None:
    tracker = MemoryTracker()
    spec = tiny_spec(**{"optim.lr": 1e30, "optim.warmup_epochs": 0, "optim.min_lr": 1.0})
    with pytest.raises(NonFiniteLossError, match=r"non-finite .* in epoch 1"):
        Trainer(spec, data=digits, callbacks=[tracker]).fit()
    assert tracker.state == "failed"
    assert tracker.reason.startswith("NonFiniteLossError")
    assert tracker.summary == {"num_params": tracker.meta["num_params"], "epochs": 1}


def test_run_dir_holds_spec_history_metrics_and_curves(digits, tmp_path: Path) -> None:
    spec = tiny_spec()
    tracker = MemoryTracker()
    trainer = Trainer(spec, data=digits, run_dir=tmp_path, callbacks=[tracker])
    result = trainer.fit()
    assert load_run_spec(tmp_path / "spec.yaml") == spec
    with open(tmp_path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == HISTORY_COLUMNS
    assert [float(r["val_acc"]) for r in rows] == [r.val_acc for r in result.history]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_acc"] == result.test_acc
    assert metrics["epochs"] == 3
    assert metrics["num_params"] == sum(p.numel() for p in trainer.model.parameters())
    assert "params" not in metrics
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert tracker.images == {"curves": tmp_path / "curves.png"}
    assert not list(tmp_path.glob(".*.tmp"))


def test_adamw_on_cpu_is_torch_s_default(digits) -> None:
    # CPU runs must stay bit-identical to those made before the fused kernel came in on CUDA.
    default = torch.optim.AdamW([torch.zeros(1)]).param_groups[0]
    trainer = Trainer(tiny_spec(**{"train.device": "cpu"}), data=digits)
    for group in trainer.optimizer.param_groups:
        assert (group["fused"], group["foreach"]) == (default["fused"], default["foreach"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_adamw_is_fused_also_after_loading_a_cpu_state(digits) -> None:
    cpu = Trainer(tiny_spec(**{"optim.epochs": 1, "train.device": "cpu"}), data=digits)
    cpu.fit()
    cuda = Trainer(tiny_spec(**{"optim.epochs": 2, "train.device": "cuda"}), data=digits)
    assert all(group["fused"] for group in cuda.optimizer.param_groups)
    cuda.load_state_dict({**cpu.state_dict(), "spec": cuda.spec.model_dump(mode="json")})
    assert all(group["fused"] for group in cuda.optimizer.param_groups)
    result = cuda.fit()
    assert len(result.history) == 2 and math.isfinite(result.history[-1].train_loss)


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
