"""One trial: build its run spec, train it once per replicate seed, and record how it ended.

A trial's value is its best validation accuracy, averaged over the replicate seeds. Pruning is
decided on the first seed alone: it reports its val_acc every epoch (step = epochs trained), and
the other seeds only train once it has finished unpruned. Averaging per-epoch reports over seeds
would need every seed trained in lockstep; judging on one seed costs one seed's noise in the
pruning decision and never trains a pruned configuration more than once.

Each trial keeps, as user attrs: ``seeds``, ``best_val_accs``, ``test_accs``, ``epochs`` (per seed),
``num_params``, ``seconds``, ``run_dir`` (relative to the study folder) and ``reason`` (how it
ended; for a failure, the exception).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from mixer_sweeps.data import DatasetSplits, DatasetUnavailable, load_dataset
from mixer_sweeps.spec import DataSpec, RunSpec, SpecError
from mixer_sweeps.study._file import StudyFile
from mixer_sweeps.study._recovery import (
    FIRST_ATTEMPT_ATTR,
    REASON_ATTR,
    RETRY_OF_ATTR,
    WORKER_ATTR,
)
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

TRIALS_DIR = "trials"
ERROR_FILE = "error.txt"
ABANDONED_ATTR = "abandoned"
DUPLICATE_OF_ATTR = "duplicate_of"
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrialAbandoned(Exception):
    """The trial stopped for a reason that is not its configuration's fault (Ctrl-C, no data).

    Optuna records it as FAIL; the worker queues the same configuration again.
    """


class Interrupt:
    """Ctrl-C (or SIGTERM) in a worker: it stops training at once, elsewhere it asks to stop.

    Optuna's storage writes and the claim of the next trial are never cut in half: outside
    :meth:`armed` blocks a Ctrl-C is only recorded, and the worker loop stops at its next check.
    Later Ctrl-Cs are ignored while the worker cleans up.
    """

    def __init__(self) -> None:
        self.requested = False
        self._armed = False

    def handle(self, signum: int, frame: object) -> None:
        if self.requested:
            return
        self.requested = True
        if self._armed:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupt]:
        """Handle SIGINT and SIGTERM with this object in the block (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self.handle) for s in INTERRUPT_SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        """A Ctrl-C inside the block raises KeyboardInterrupt there."""
        if self.requested:
            raise KeyboardInterrupt
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Inside an armed block: hold a Ctrl-C back until the block ends."""
        armed, self._armed = self._armed, False
        try:
            yield
        finally:
            self._armed = armed
        if armed and self.requested:
            raise KeyboardInterrupt


class PruningCallback(Callback):
    """Reports each epoch's val_acc to the trial; stops the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial, *, prune: bool, interrupt: Interrupt) -> None:
        self.trial = trial
        self.prune = prune
        self.interrupt = interrupt

    def on_fit_start(self, trainer: Trainer) -> None:
        # A resumed run reports the epochs it restored, so the pruner sees its whole curve.
        with self.interrupt.paused():
            for record in trainer.history:
                self.trial.report(record.val_acc, step=record.epoch)

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> Stop | None:
        with self.interrupt.paused():
            self.trial.report(record.val_acc, step=record.epoch)
            should_prune = self.prune and self.trial.should_prune()
        if should_prune:
            pruner = type(self.trial.study.pruner).__name__
            return Stop(
                "pruned",
                f"pruned by {pruner} after epoch {record.epoch} (val_acc {record.val_acc:.4f})",
            )
        return None


class DataCache:
    """Datasets loaded once per worker process and shared by every trial with the same data."""

    def __init__(self) -> None:
        self._splits: dict[DataSpec, DatasetSplits] = {}

    def get(self, data: DataSpec) -> DatasetSplits:
        if data not in self._splits:
            self._splits[data] = load_dataset(
                data.dataset,
                root=data.root,
                val_size=data.val_size,
                split_seed=data.split_seed,
                download=data.download,
            )
        return self._splits[data]


class Objective:
    """The objective of a study: trains one trial and returns its value.

    Args:
        study_file: the study.
        study_dir: ``<results>/<name>``; trial ``n`` writes to ``trials/<n>/`` in it.
        data: the worker's dataset cache.
        worker: the worker's id (see :class:`~mixer_sweeps.study._recovery.WorkerLock`).
        interrupt: the worker's SIGINT state.
        on_suggested: called once the trial's params are in the storage (the worker then lets
            the next worker claim a trial).
        callbacks: more trainer callbacks for every run (progress display).
    """

    def __init__(
        self,
        study_file: StudyFile,
        *,
        study_dir: Path,
        data: DataCache,
        worker: dict[str, Any],
        interrupt: Interrupt,
        on_suggested: Callable[[], None] = lambda: None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.study_file = study_file
        self.study_dir = study_dir
        self.data = data
        self.worker = worker
        self.interrupt = interrupt
        self.on_suggested = on_suggested
        self.callbacks = list(callbacks)
        self.fatal: str | None = None
        """Set when no trial of this worker can succeed (the dataset is missing)."""

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, self.worker)
        trial_dir = self.study_dir / TRIALS_DIR / str(trial.number)
        trial.set_user_attr("run_dir", f"{TRIALS_DIR}/{trial.number}")
        try:
            params = self.study_file.space.suggest(trial)
            self.on_suggested()
            if self.study_file.settings.skip_duplicates:
                twin = _finished_twin(trial, params)
                if twin is not None:
                    return _reuse(trial, twin)
            with self.interrupt.armed():
                return self._train(trial, params, trial_dir)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            self._abandon(trial, "interrupted (Ctrl-C); its configuration is queued again")
            raise TrialAbandoned("interrupted") from None
        except DatasetUnavailable as exc:
            self.fatal = str(exc)
            self._abandon(trial, f"DatasetUnavailable: {exc}")
            raise TrialAbandoned(str(exc)) from None
        except SpecError as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            trial.set_user_attr(REASON_ATTR, f"invalid run spec: {problems}")
            raise
        except Exception as exc:
            trial.set_user_attr(REASON_ATTR, f"{type(exc).__name__}: {exc}")
            trial_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(trial_dir / ERROR_FILE, traceback.format_exc())
            raise

    def _abandon(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr(ABANDONED_ATTR, True)
        trial.set_user_attr(REASON_ATTR, reason)

    def _train(self, trial: optuna.Trial, params: dict[str, Any], trial_dir: Path) -> float:
        study_file = self.study_file
        overrides = study_file.space.overrides(params)
        seeds = study_file.seeds
        replicated = len(seeds) > 1
        # A configuration queued again keeps the name of its first attempt: a checkpoint only
        # resumes under the very same spec.
        first = trial.user_attrs.get(FIRST_ATTEMPT_ATTR, trial.number)
        previous = trial.user_attrs.get(RETRY_OF_ATTR)
        results: list[TrainResult] = []
        for i, seed in enumerate(seeds):
            name = f"{study_file.name}-{first}" + (f"-seed{seed}" if replicated else "")
            spec = study_file.trial_spec(overrides, name=name, seed=seed if replicated else None)
            seed_dir = f"seed-{seed}" if replicated else ""
            run_dir = trial_dir / seed_dir
            callbacks = list(self.callbacks)
            if i == 0:
                prune = study_file.settings.pruner.type != "none"
                callbacks.insert(0, PruningCallback(trial, prune=prune, interrupt=self.interrupt))
            trackers = make_trackers(
                spec,
                results_dir=self.study_dir,
                study_name=study_file.name,
                trial_number=trial.number,
                params=params,
            )
            resume_from = None
            if previous is not None:
                resume_from = self.study_dir / TRIALS_DIR / str(previous) / seed_dir
            trainer = self._trainer(
                trial,
                spec,
                run_dir,
                resume_from,
                data=self.data.get(spec.data),
                callbacks=callbacks,
                trackers=trackers,
            )
            result = trainer.fit()
            results.append(result)
            if result.state == "pruned":
                with self.interrupt.paused():
                    _record(trial, seeds, results, result.reason)
                raise optuna.TrialPruned(result.reason)
        value = statistics.fmean(r.best_val_acc for r in results)
        with self.interrupt.paused():
            _record(trial, seeds, results, results[0].reason)
        if replicated:
            _write_replicate_metrics(trial_dir, seeds, results, value)
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
                resumed = {"trial": trial.user_attrs[RETRY_OF_ATTR], "epoch": trainer.epoch}
                with self.interrupt.paused():
                    trial.set_user_attr("resumed", resumed)
                return trainer
        return Trainer(spec, run_dir=run_dir, **kwargs)


def _finished_twin(trial: optuna.Trial, params: dict[str, Any]) -> FrozenTrial | None:
    finished = trial.study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
    )
    return next((t for t in finished if t.params == params), None)


def _reuse(trial: optuna.Trial, twin: FrozenTrial) -> float:
    """End ``trial`` as its finished ``twin`` (same params) ended, without training."""
    trial.set_user_attr(DUPLICATE_OF_ATTR, twin.number)
    trial.set_user_attr("run_dir", twin.user_attrs.get("run_dir"))
    trial.set_user_attr("epochs", [])
    reason = f"same configuration as trial {twin.number}, not trained again"
    trial.set_user_attr(REASON_ATTR, reason)
    if twin.state == TrialState.PRUNED:
        raise optuna.TrialPruned(reason)
    assert twin.value is not None
    return twin.value


def _record(trial: optuna.Trial, seeds: list[int], results: list[TrainResult], reason: str) -> None:
    best = [r.best_val_acc for r in results]
    trial.set_user_attr("seeds", seeds[: len(results)])
    trial.set_user_attr("best_val_accs", best)
    trial.set_user_attr("test_accs", [r.test_acc for r in results])
    trial.set_user_attr("epochs", [r.epochs_run for r in results])
    trial.set_user_attr("num_params", results[0].num_params)
    trial.set_user_attr("seconds", round(sum(r.seconds for r in results), 3))
    if len(best) > 1:
        trial.set_user_attr("best_val_acc_std", statistics.stdev(best))
    trial.set_user_attr(REASON_ATTR, reason)


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
        "params": results[0].num_params,
        "epochs": {str(s): r.epochs_run for s, r in zip(seeds, results, strict=True)},
        "seconds": round(sum(r.seconds for r in results), 3),
    }
    atomic_write_text(trial_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
