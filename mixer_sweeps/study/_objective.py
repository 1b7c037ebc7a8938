"""One trial: build its run spec, train it once per replicate seed, and record how it ended.

A trial's value is the best of its study's metric over the epochs (``study.metric``, val_acc by
default; the lowest for a metric it minimises), averaged over the replicate seeds. Pruning is
decided on the first seed alone: it reports its metric every epoch (step = epochs trained), and
the other seeds only train once it has finished unpruned. Averaging per-epoch reports over seeds
would need every seed trained in lockstep; judging on one seed costs one seed's noise in the
pruning decision and never trains a pruned configuration more than once.

What a trial keeps is a :class:`~mixer_sweeps.results._record.TrialRecord`, stored as user attrs.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps._signals import Interrupt
from mixer_sweeps.data import DatasetSplits, load_data
from mixer_sweeps.results import StudyLayout, TrialRecord, as_direction
from mixer_sweeps.results import TrialAttr as attr
from mixer_sweeps.spec import DataSpec, RunSpec, SpecError, StudyFile
from mixer_sweeps.study._faults import machine_fault
from mixer_sweeps.study._liveness import why_abandoned
from mixer_sweeps.tracking import make_trackers
from mixer_sweeps.training import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    Callback,
    CheckpointError,
    EpochRecord,
    Stop,
    Trainer,
    TrainResult,
    atomic_write_text,
)

ERROR_FILE = "error.txt"
TWIN_POLL_S = 1.0
"""How often a trial waiting for a running twin looks whether it has finished."""


class TrialAbandoned(Exception):
    """The trial stopped for a reason that is not its configuration's fault (Ctrl-C, no data).

    Optuna records it as FAIL; the worker queues the same configuration again.
    """


class PruningCallback(Callback):
    """Reports each epoch's ``metric`` to the trial; stops the run when the pruner says so."""

    def __init__(
        self, trial: optuna.Trial, *, prune: bool, interrupt: Interrupt, metric: str = "val_acc"
    ) -> None:
        self.trial = trial
        self.prune = prune
        self.interrupt = interrupt
        self.metric = metric

    def on_fit_start(self, trainer: Trainer) -> None:
        # A resumed run reports the epochs it restored, so the pruner sees its whole curve.
        with self.interrupt.paused():
            for record in trainer.history:
                self._report(getattr(record, self.metric), record.epoch)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> Stop | None:
        with self.interrupt.paused():
            value = getattr(record, self.metric)
            self._report(value, record.epoch)
            should_prune = self.prune and self._should_prune()
        if should_prune:
            pruner = type(self.trial.study.pruner).__name__
            return Stop(
                "pruned",
                f"pruned by {pruner} after epoch {record.epoch} ({self.metric} {value:.4f})",
            )
        return None

    # Optuna's Trial.report and should_prune refuse a study with several objectives (its
    # pruners judge one); the learning metric is stored and judged the same way here.
    def _report(self, value: float, step: int) -> None:
        study = self.trial.study
        if len(study.directions) == 1:
            self.trial.report(value, step=step)
        else:
            study._storage.set_trial_intermediate_value(self.trial._trial_id, step, float(value))

    def _should_prune(self) -> bool:
        study = self.trial.study
        if len(study.directions) == 1:
            return self.trial.should_prune()
        return study.pruner.prune(study, study._storage.get_trial(self.trial._trial_id))


class DataCache:
    """Datasets loaded once per worker process and shared by every trial with the same data."""

    def __init__(self) -> None:
        self._splits: dict[DataSpec, DatasetSplits] = {}

    def get(self, data: DataSpec) -> DatasetSplits:
        if data not in self._splits:
            self._splits[data] = load_data(data)
        return self._splits[data]


class Objective:
    """The objective of a study: trains one trial and returns its value.

    Args:
        study_file: the study.
        layout: the study's folder; trial ``n`` writes to ``trials/<n>/`` in it.
        data: the worker's dataset cache.
        worker: who runs the trial, the ``worker`` attr (see
            :class:`~mixer_sweeps.study._liveness.WorkerIdentity`).
        interrupt: the worker's SIGINT state.
        on_suggested: called once the trial's params are in the storage (the worker then lets
            the next worker claim a trial).
        callbacks: more trainer callbacks for every run (progress display).
    """

    def __init__(
        self,
        study_file: StudyFile,
        *,
        layout: StudyLayout,
        data: DataCache,
        worker: dict[str, Any],
        interrupt: Interrupt,
        on_suggested: Callable[[], None] = lambda: None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.study_file = study_file
        self.layout = layout
        self.data = data
        self.worker = worker
        self.interrupt = interrupt
        self.on_suggested = on_suggested
        self.callbacks = list(callbacks)
        self.fatal: str | None = None
        """Set when no trial of this worker can succeed: a fault of the machine (see
        :func:`~mixer_sweeps.study._faults.machine_fault`)."""

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        trial.set_user_attr(attr.WORKER, self.worker)
        trial.set_user_attr(attr.METRIC, self.study_file.settings.metric)  # for live displays
        trial.set_user_attr(attr.RUN_DIR, self.layout.run_dir(trial.number))
        trial_dir = self.layout.trial_dir(trial.number)
        try:
            params = self.study_file.space.suggest(trial)
            self.on_suggested()
            if self.study_file.settings.skip_duplicates:
                twin = self._twin(trial, params)
                if twin is not None:
                    return _reuse(trial, twin)
            with self.interrupt.armed():
                if not self.study_file.settings.multi_objective:
                    return self._train(trial, params)
                costs = self._costs(trial, params)
                with self.interrupt.paused():
                    trial.set_user_attr(attr.COSTS, costs)
                value = self._train(trial, params)
                return _values(self.study_file, value, costs)
        except (optuna.TrialPruned, UpdateFinishedTrialError):
            # UpdateFinishedTrialError: another worker took this one for dead and ended the
            # trial; nothing more can be stored in it (the worker says so and goes on).
            raise
        except KeyboardInterrupt:
            self._abandon(trial, "interrupted (Ctrl-C); its configuration is queued again")
            raise TrialAbandoned("interrupted") from None
        except SpecError as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            trial.set_user_attr(attr.REASON, f"invalid run spec: {problems}")
            raise
        except Exception as exc:
            # A full disk, a missing dataset, no GPU: no trial can succeed until it is fixed.
            fault = machine_fault(exc)
            if fault is not None:
                self.fatal = fault
                with contextlib.suppress(Exception):  # the storage may be on the full disk
                    self._abandon(trial, fault)
                raise TrialAbandoned(fault) from None
            trial.set_user_attr(attr.REASON, f"{type(exc).__name__}: {exc}")
            trial_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(trial_dir / ERROR_FILE, traceback.format_exc())
            raise

    def _twin(self, trial: optuna.Trial, params: dict[str, Any]) -> FrozenTrial | None:
        """The trial with the same ``params`` whose outcome ``trial`` takes, if any.

        A finished (COMPLETE or PRUNED) twin is taken at once. A twin that an earlier-numbered
        trial is training now is waited for (Ctrl-C stops the wait), then taken; only earlier
        ones, so two trials never wait for each other. If the twin fails or its worker is found
        dead, ``trial`` trains the configuration itself.
        """
        while True:
            twin = _twin(trial, params)
            if twin is None or twin.state.is_finished():
                return twin
            with self.interrupt.armed():
                time.sleep(TWIN_POLL_S)

    def _costs(self, trial: optuna.Trial, params: dict[str, Any]) -> dict[str, Any]:
        """What the trial's configuration costs, known before it trains: parameters and forward
        FLOPs per image as ``sweeps plan`` counts them, and training images/s measured on the
        study's device when an objective needs them."""
        from mixer_sweeps.plan import measure_images_per_s, model_cost

        study_file = self.study_file
        spec = study_file.trial_spec(
            study_file.space.overrides(params), name=f"{study_file.name}-{trial.number}"
        )
        cost = model_cost(spec)
        costs: dict[str, Any] = {"params": cost.parameters, "flops": cost.flops}
        if "images_per_s" in study_file.settings.cost_metrics:
            speed = measure_images_per_s(spec, self.data.get(spec.data))
            costs["images_per_s"] = round(speed, 1)
        return costs

    def _abandon(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr(attr.ABANDONED, True)
        trial.set_user_attr(attr.REASON, reason)

    def _train(self, trial: optuna.Trial, params: dict[str, Any]) -> float:
        study_file = self.study_file
        overrides = study_file.space.overrides(params)
        seeds = study_file.seeds
        replicated = len(seeds) > 1
        # A configuration queued again keeps the name of its first attempt: a checkpoint only
        # resumes under the very same spec.
        first = trial.user_attrs.get(attr.FIRST_ATTEMPT, trial.number)
        previous = trial.user_attrs.get(attr.RETRY_OF)
        results: list[TrainResult] = []
        i = 0
        while i < len(seeds):
            seed = seeds[i]
            # The first seed of an unreplicated study runs in the trial's own folder; seeds a
            # confirmation adds go beside it, as replicates' do.
            run_seed = seed if replicated or i > 0 else None
            name = f"{study_file.name}-{first}" + (f"-seed{seed}" if run_seed is not None else "")
            spec = study_file.trial_spec(overrides, name=name, seed=run_seed)
            # Trackers first: an epoch is logged before a held Ctrl-C can end the run.
            callbacks = make_trackers(
                spec,
                results_dir=self.layout.root,
                study_name=study_file.name,
                trial_number=trial.number,
                params=params,
                metric=study_file.settings.metric,
                direction=study_file.settings.direction,
            )
            if i == 0:
                prune = study_file.settings.pruner.type != "none"
                callbacks.append(
                    PruningCallback(
                        trial,
                        prune=prune,
                        interrupt=self.interrupt,
                        metric=study_file.settings.metric,
                    )
                )
            callbacks += self.callbacks
            resume_from = None
            if previous is not None:
                resume_from = self.layout.trial_dir(previous, run_seed)
            trainer = self._trainer(
                trial,
                spec,
                self.layout.trial_dir(trial.number, run_seed),
                resume_from,
                data=self.data.get(spec.data),
                callbacks=callbacks,
            )
            result = trainer.fit()
            results.append(result)
            if result.state == "pruned":
                with self.interrupt.paused():
                    _record(trial, study_file, results, seeds, result.reason)
                raise optuna.TrialPruned(result.reason)
            if i == 0 and not replicated and _contender(trial, study_file, result):
                seeds = study_file.confirm_seeds
            i += 1
        value = statistics.fmean(_best(study_file, r) for r in results)
        with self.interrupt.paused():
            _record(trial, study_file, results, seeds, results[0].reason)
        if replicated:
            _write_replicate_metrics(self.layout.trial_dir(trial.number), seeds, results, value)
        return value

    def _trainer(
        self,
        trial: optuna.Trial,
        spec: RunSpec,
        run_dir: Path,
        resume_from: Path | None,
        **kwargs: Any,
    ) -> Trainer:
        """A trainer that continues from the checkpoint in ``resume_from``, if there is one.

        The checkpoint is moved, not copied: it belongs to whichever attempt runs on from it.
        """
        checkpoint = None if resume_from is None else resume_from / CHECKPOINT_FILE
        if checkpoint is not None and checkpoint.is_file():
            run_dir.mkdir(parents=True, exist_ok=True)
            os.replace(checkpoint, run_dir / CHECKPOINT_FILE)
            try:
                trainer = Trainer(spec, run_dir=run_dir, resume=True, **kwargs)
            except CheckpointError:
                pass
            else:
                resumed = {"trial": trial.user_attrs[attr.RETRY_OF], "epoch": trainer.epoch}
                with self.interrupt.paused():
                    trial.set_user_attr(attr.RESUMED, resumed)
                return trainer
        return Trainer(spec, run_dir=run_dir, **kwargs)


def _twin(trial: optuna.Trial, params: dict[str, Any]) -> FrozenTrial | None:
    """The first finished trial with ``params``; else the first earlier one running them, alive."""
    trials = trial.study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    )
    same = [t for t in trials if t.params == params and t.number != trial.number]
    finished = next((t for t in same if t.state != TrialState.RUNNING), None)
    if finished is not None:
        return finished
    now = time.time()
    running = (t for t in same if t.number < trial.number and why_abandoned(t, now=now) is None)
    return next(running, None)


def _values(study_file: StudyFile, value: float, costs: dict[str, Any]) -> tuple[float, ...]:
    """A multi-objective trial's values in objectives order: the learning metric's ``value``,
    the others from ``costs``."""
    learning = study_file.settings.learning_metric
    return tuple(
        value if metric == learning else float(costs[metric])
        for metric, _ in study_file.settings.objective_list
    )


def _reuse(trial: optuna.Trial, twin: FrozenTrial) -> float | tuple[float, ...]:
    """End ``trial`` as its finished ``twin`` (same params) ended, without training."""
    taken = TrialRecord.from_trial(twin)
    record = TrialRecord(
        number=trial.number,
        state=twin.state,
        metric=taken.metric,
        direction=taken.direction,
        run_dir=taken.run_dir,
        duplicate_of=twin.number,
        reason=f"same configuration as trial {twin.number}, not trained again",
    )
    _store(trial, record)
    costs = twin.user_attrs.get(attr.COSTS)
    if costs is not None:
        trial.set_user_attr(attr.COSTS, costs)
    if twin.state == TrialState.PRUNED:
        raise optuna.TrialPruned(record.reason)
    assert twin.values is not None
    return twin.values[0] if len(twin.values) == 1 else tuple(twin.values)


def _best(study_file: StudyFile, result: TrainResult) -> float:
    """The best of the study's metric over the epochs of one run."""
    metric, direction = study_file.settings.metric, study_file.settings.direction
    if metric == "val_acc":
        return result.best_val_acc  # the trainer's own, which early stopping also follows
    values = [getattr(record, metric) for record in result.history]
    return min(values) if direction == "minimize" else max(values)


def _contender(trial: optuna.Trial, study_file: StudyFile, first: TrainResult) -> bool:
    """Whether ``first``, a trial's first seed, ended near enough the study's best value so far
    (or beyond it) that ``study.confirm`` trains its confirming seeds."""
    confirm = study_file.settings.confirm
    if confirm is None:
        return False
    values = [
        t.value
        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None
    ]
    if not values:
        return True
    value = _best(study_file, first)
    if study_file.settings.direction == "minimize":
        return value <= min(values) + confirm.within
    return value >= max(values) - confirm.within


def _record(
    trial: optuna.Trial,
    study_file: StudyFile,
    results: list[TrainResult],
    seeds: Sequence[int],
    reason: str,
) -> None:
    record = TrialRecord(
        number=trial.number,
        state=TrialState.RUNNING,
        metric=study_file.settings.metric,
        direction=as_direction(study_file.settings.direction or "maximize"),
        best=tuple(_best(study_file, r) for r in results),
        seeds=tuple(seeds[: len(results)]),
        val_acc=()
        if study_file.settings.metric == "val_acc"
        else tuple(r.best_val_acc for r in results),
        test_acc=tuple(r.test_acc for r in results),
        epochs=tuple(r.epochs_run for r in results),
        num_params=results[0].num_params,
        seconds=round(sum(r.seconds for r in results), 3),
        reason=reason,
    )
    _store(trial, record)


def _store(trial: optuna.Trial, record: TrialRecord) -> None:
    for key, value in record.to_attrs().items():
        trial.set_user_attr(key, value)


def _spread(values: list[float | None], seeds: list[int]) -> dict[str, Any]:
    known = [v for v in values if v is not None]
    return {
        "mean": statistics.fmean(known) if known else None,
        "std": statistics.stdev(known) if len(known) > 1 else None,
        "seeds": {str(s): v for s, v in zip(seeds, values, strict=True)},
    }


def _write_replicate_metrics(
    trial_dir: Path, seeds: list[int], results: list[TrainResult], value: float
) -> None:
    metrics = {
        "state": "completed",
        "value": value,
        "replicates": len(results),
        "best_val_acc": _spread([r.best_val_acc for r in results], seeds),
        "test_acc": _spread([r.test_acc for r in results], seeds),
        "num_params": results[0].num_params,
        "epochs": {str(s): r.epochs_run for s, r in zip(seeds, results, strict=True)},
        "seconds": round(sum(r.seconds for r in results), 3),
    }
    atomic_write_text(trial_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
