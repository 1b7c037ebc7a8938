"""Weights & Biases for one training run (``sweeps train`` or one trial), offline-first.

Tracking must never cost a result: every wandb call is bounded in time and a failure warns once
and lets training go on (see :class:`._guarded_run._GuardedRun`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer_sweeps.tracking._guarded_run import _clean, _GuardedRun
from mixer_sweeps.training import Callback

if TYPE_CHECKING:
    from mixer_sweeps.spec import WandbSpec
    from mixer_sweeps.training import EpochRecord, TrainerView, TrainResult


class WandbTracker(Callback):
    """One W&B run for one training run: config, per-epoch metrics, curves, final summary.

    Each epoch is logged under the :class:`~mixer_sweeps.training.EpochRecord` field names,
    the columns of ``history.csv`` (``train_loss``, ``val_acc``, ..., step ``epoch``); the
    summary is ``metrics.json`` plus ``state`` and ``reason``, and for a trial of a study of
    another metric than val_acc (``objective``: the metric and its direction), the best of that
    metric over the epochs as ``best_<metric>``, the key the study's W&B view plots.

    Build it with :func:`~mixer_sweeps.tracking.make_trackers`. Once the run started,
    :attr:`mode` is what the run really got (online may have become offline or disabled) and
    :attr:`path` is its folder.
    """

    def __init__(
        self,
        *,
        mode: str,
        results_dir: Path,
        wandb_spec: WandbSpec,
        group: str,
        job_type: str,
        name: str,
        extra_config: dict[str, Any] | None = None,
        objective: tuple[str, str] | None = None,
    ) -> None:
        self._run = _GuardedRun(
            mode=mode,
            root=Path(results_dir),
            wandb_spec=wandb_spec,
            group=group,
            job_type=job_type,
            name=name,
            id_parts=(name,),
        )
        self.extra_config = dict(extra_config or {})
        self.objective = objective
        self._last_epoch = 0
        self._path: Path | None = None
        self._url: str | None = None

    @property
    def mode(self) -> str:
        return self._run.mode

    @property
    def name(self) -> str:
        return self._run.name

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def url(self) -> str | None:
        return self._url

    # ----------------------------------------------------------------------- trainer events

    def on_fit_start(self, trainer: TrainerView) -> None:
        config = trainer.spec.model_dump(mode="json")
        config.update(self.extra_config)
        if trainer.run_dir is not None:
            config["run_dir"] = str(trainer.run_dir)
        config["device"] = str(trainer.device)
        if not self._run.open(config):
            return
        self._path = self._run.path
        self._url = self._run.url

        def define(run: Any) -> None:
            run.define_metric("epoch")
            run.define_metric("*", step_metric="epoch")

        self._run.call("define_metric", define)
        # A resumed run tells W&B the whole story, not just the part after resuming.
        for record in trainer.history:
            self._log_epoch(record)

    def on_epoch_end(self, trainer: TrainerView, record: EpochRecord) -> None:
        self._log_epoch(record)

    def on_image(self, trainer: TrainerView, name: str, path: Path) -> None:
        def log(run: Any) -> None:
            import wandb

            run.log({name: wandb.Image(str(path)), "epoch": self._last_epoch})

        self._run.call("log_image", log)

    def on_fit_end(self, trainer: TrainerView, result: TrainResult) -> None:
        summary = dataclasses.asdict(result.metrics())
        self._finish(
            {**summary, **self._best(result.history)}, state=result.state, reason=result.reason
        )

    def on_fit_error(self, trainer: TrainerView, state: str, reason: str) -> None:
        summary = {"num_params": trainer.num_params, "epochs": trainer.epoch}
        self._finish({**summary, **self._best(trainer.history)}, state=state, reason=reason)

    # ------------------------------------------------------------------------------ helpers

    def _log_epoch(self, record: EpochRecord) -> None:
        self._last_epoch = record.epoch
        row = record.as_dict()  # the history.csv columns, step "epoch" among them
        self._run.call("log", lambda run: run.log(row))

    def _best(self, history: Sequence[EpochRecord]) -> dict[str, float]:
        if self.objective is None or not history:
            return {}
        metric, direction = self.objective
        values = [getattr(record, metric) for record in history]
        return {f"best_{metric}": min(values) if direction == "minimize" else max(values)}

    def _finish(self, summary: dict[str, Any], *, state: str, reason: str) -> None:
        values = {k: _clean(v) for k, v in summary.items() if v is not None}
        values.update(state=state, reason=reason)
        self._run.call("summary", lambda run: run.summary.update(values))
        self._run.finish(exit_code=1 if state in ("failed", "stopped") else 0)
