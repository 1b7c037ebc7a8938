"""The shared Mixer trainer.

One loop for every run and every trial: AdamW, linear warm-up then cosine decay to ``min_lr``,
soft-target (label-smoothed, mixed) cross-entropy, batch augmentation on the training device,
early stopping on validation accuracy, and the best-validation weights used for the test number.

The whole dataset sits on the training device as uint8 and batches are cut by indexing, so no
DataLoader worker or PIL image is involved. The trainer knows nothing of Optuna or W&B: pruning,
progress display and trackers are all :class:`~mixer_sweeps.training.Callback` objects.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mixer_sweeps.data import DatasetSplits, load_data, normalize
from mixer_sweeps.spec import RunSpec, check_memory
from mixer_sweeps.training import _outputs as outputs
from mixer_sweeps.training._build import (
    build_augment,
    build_model,
    build_optimizer,
    optimizer_kernel,
    set_threads,
)
from mixer_sweeps.training._callbacks import Callback
from mixer_sweeps.training._checkpoint import (
    CheckpointError,
    load_checkpoint,
    remove_stale_temp_files,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from mixer_sweeps.training._device import resolve_device
from mixer_sweeps.training._outputs import BEST_WEIGHTS_FILE, CHECKPOINT_FILE
from mixer_sweeps.training._records import EpochRecord, TrainResult


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


class Trainer:
    """Trains one :class:`RunSpec`.

    Args:
        spec: the run.
        data: the dataset splits; loaded from ``spec.data`` when omitted (studies pass one
            copy to all their trials).
        callbacks: everything that hears the run (a pruner, a progress display, trackers),
            called in list order for each event (see :class:`Callback`).
        run_dir: where the resolved spec, ``history.csv``, ``metrics.json``, ``curves.png`` and
            the per-epoch checkpoint go; nothing is written when omitted.
        resume: continue from the checkpoint in ``run_dir`` (made with the same spec).
    """

    def __init__(
        self,
        spec: RunSpec,
        *,
        data: DatasetSplits | None = None,
        callbacks: Sequence[Callback] = (),
        run_dir: Path | None = None,
        resume: bool = False,
    ) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.callbacks = list(callbacks)
        self.device = resolve_device(spec.train.device)
        # Before anything is allocated: a run too big for the device is a SpecError, not a
        # minutes-long allocation that ends in an out-of-memory kill.
        check_memory(spec, self.device, source=f"run {spec.name}")
        set_threads(spec.train.threads)
        self.data = (data or load_data(spec.data)).to(self.device)
        info = self.data.info

        seed_everything(spec.seed)
        self.model = build_model(spec.model, info).to(self.device)
        self.num_params = sum(p.numel() for p in self.model.parameters())
        self.forward = torch.compile(self.model) if spec.train.compile else self.model
        self.augment = build_augment(spec.augment, info)
        self.steps_per_epoch = math.ceil(len(self.data.train) / spec.optim.batch_size)
        self.optimizer, self.scheduler = build_optimizer(
            spec.optim, self.model, steps_per_epoch=self.steps_per_epoch
        )
        use_bf16 = spec.train.precision == "bf16" or (
            spec.train.precision == "auto" and self.device.type == "cuda"
        )
        self.autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if use_bf16
            else contextlib.nullcontext()
        )

        self.epoch = 0
        self.history: list[EpochRecord] = []
        self.best_val_acc = -1.0
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epochs_since_best = 0

        if run_dir is not None:
            remove_stale_temp_files(run_dir)
        if resume:
            if run_dir is None:
                raise ValueError("resume needs a run_dir to find the checkpoint in")
            checkpoint = load_checkpoint(
                run_dir / CHECKPOINT_FILE,
                model=self.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                spec=spec,
                steps_per_epoch=self.steps_per_epoch,
            )
            self.load_state_dict(checkpoint)

    def fit(self) -> TrainResult:
        """Train until the epochs run out, early stopping fires or a callback stops the run.

        Effects, in order: ``spec.yaml``; ``on_fit_start``; per epoch ``history.csv``, the
        checkpoint and ``on_epoch_end``; then ``metrics.json``, ``best.pt``, ``curves.png`` and
        ``on_image``; ``on_fit_end`` last. An exception from a hook or the loop reaches every
        callback's ``on_fit_error`` and is raised again.
        """
        started = time.perf_counter()
        if self.epoch == 0:
            # Batch order and augmentation draw from a stream that does not depend on what
            # happened between construction and fit (another trainer built in between, say).
            seed_everything(self.spec.seed)
        if self.run_dir is not None:
            outputs.write_spec(self.run_dir, self.spec)
        try:
            for callback in self.callbacks:
                callback.on_fit_start(self)
            state, reason = self._loop()
            result = self._finish(state, reason, time.perf_counter() - started)
        except BaseException as exc:
            state = "stopped" if isinstance(exc, KeyboardInterrupt) else "failed"
            for callback in self.callbacks:
                callback.on_fit_error(self, state, f"{type(exc).__name__}: {exc}")
            raise
        if self.run_dir is not None:
            outputs.write_metrics(self.run_dir, result)
            if self.best_state is not None:
                save_checkpoint(self.run_dir / BEST_WEIGHTS_FILE, self.best_state)
            # A finished run has nothing to resume; its best weights are in best.pt.
            (self.run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
            curves = outputs.plot_curves(self.run_dir, self.history, title=self.spec.name)
            for callback in self.callbacks:
                callback.on_image(self, "curves", curves)
        for callback in self.callbacks:
            callback.on_fit_end(self, result)
        return result

    def _loop(self) -> tuple[str, str]:
        o = self.spec.optim
        while self.epoch < o.epochs:
            record = self.run_epoch()
            # Every callback hears the epoch, also those after one that stops the run.
            stops = [cb.on_epoch_end(self, record) for cb in self.callbacks]
            stop = next((s for s in stops if s is not None), None)
            if stop is not None:
                return stop.state, stop.reason
            patience = o.early_stopping_patience
            if patience is not None and self.epochs_since_best >= patience:
                return "completed", (
                    f"early stopping: no val_acc improvement for {patience} epochs"
                    f" after epoch {self.best_epoch}"
                )
        return "completed", f"ran all {o.epochs} epochs"

    def run_epoch(self) -> EpochRecord:
        """Train one epoch, evaluate on the validation split, and update the best weights."""
        self.epoch += 1
        started = time.perf_counter()
        train_loss, train_acc = self._train_one_epoch()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        train_seconds = time.perf_counter() - started
        if not math.isfinite(train_loss):
            raise NonFiniteLossError(
                f"training loss became non-finite ({train_loss}) in epoch {self.epoch}"
            )
        finite = torch.stack([p.isfinite().all() for p in self.model.parameters()]).all()
        if not finite:  # one device sync per epoch, not one per parameter
            raise NonFiniteLossError(f"weights became non-finite in epoch {self.epoch}")
        val_loss, val_acc = self.evaluate(self.data.val)
        if val_acc > self.best_val_acc:
            self.best_val_acc, self.best_epoch, self.epochs_since_best = val_acc, self.epoch, 0
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
            }
        else:
            self.epochs_since_best += 1
        record = EpochRecord(
            epoch=self.epoch,
            train_loss=train_loss,
            train_acc=train_acc,
            val_loss=val_loss,
            val_acc=val_acc,
            lr=self.optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - started,
            images_per_s=len(self.data.train) / train_seconds,
        )
        self.history.append(record)
        if self.run_dir is not None:
            outputs.write_history(self.run_dir, self.history)
            save_checkpoint(self.run_dir / CHECKPOINT_FILE, self.state_dict())
        return record

    def _train_one_epoch(self) -> tuple[float, float]:
        self.model.train()
        train = self.data.train
        batch_size = self.spec.optim.batch_size
        clip = self.spec.optim.grad_clip_norm
        order = torch.randperm(len(train), device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for start in range(0, len(train), batch_size):
            index = order[start : start + batch_size]
            images, targets = self.augment(train.images[index], train.labels[index])
            with self.autocast:
                logits = self.forward(images)
            loss = soft_cross_entropy(logits, targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += loss.detach() * len(index)
            correct += (logits.argmax(-1) == targets.argmax(-1)).sum()
        return loss_sum.item() / len(train), correct.item() / len(train)

    @torch.no_grad()
    def evaluate(self, split) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on ``split`` without augmentation."""
        if len(split) == 0:
            return float("nan"), float("nan")
        self.model.eval()
        info = self.data.info
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        step = self.spec.train.eval_batch_size
        for start in range(0, len(split), step):
            images = normalize(split.images[start : start + step], info.mean, info.std)
            labels = split.labels[start : start + step]
            with self.autocast:
                logits = self.forward(images)
            loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum")
            correct += (logits.argmax(-1) == labels).sum()
        return loss_sum.item() / len(split), correct.item() / len(split)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit: tensors and plain Python types only."""
        return {
            "format": 1,
            "spec": self.spec.model_dump(mode="json"),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": [r.as_dict() for r in self.history],
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "epochs_since_best": self.epochs_since_best,
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any], *, restore_rng: bool = True) -> None:
        if state["spec"] != self.spec.model_dump(mode="json"):
            raise CheckpointError(
                "the checkpoint was made with a different spec; resume with the spec.yaml"
                " saved beside it, or start a new run"
            )
        self.epoch = state["epoch"]
        self.model.load_state_dict(state["model"])
        # A checkpoint keeps the kernel flags of the device it was made on; take this device's
        # before loading, which places AdamW's step counts where the fused kernel needs them.
        saved, kernel = state["optimizer"], optimizer_kernel(self.model)
        groups = [{**group, **kernel} for group in saved["param_groups"]]
        self.optimizer.load_state_dict({**saved, "param_groups": groups})
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = [EpochRecord(**r) for r in state["history"]]
        self.best_val_acc = state["best_val_acc"]
        self.best_epoch = state["best_epoch"]
        self.best_state = state["best_state"]
        self.epochs_since_best = state["epochs_since_best"]
        if restore_rng:
            set_rng_state(state["rng"])

    def _finish(self, state: str, reason: str, seconds: float) -> TrainResult:
        test_loss = test_acc = None
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        if state == "completed":
            test_loss, test_acc = self.evaluate(self.data.test)
        return TrainResult(
            history=list(self.history),
            best_val_acc=self.best_val_acc,
            best_epoch=self.best_epoch,
            test_acc=test_acc,
            test_loss=test_loss,
            num_params=self.num_params,
            seconds=seconds,
            state=state,
            reason=reason,
        )
