"""Run a study: open its storage, start its workers, show their progress, say what happened.

With one worker the trials run in this process; with more, each worker is a ``spawn``-ed process
placed on the machine by :func:`~mixer_sweeps.study._placement.place_workers` (a GPU each,
round-robin, and a disjoint share of the cores), and this process only shows progress (see
:mod:`~mixer_sweeps.study._processes`). How a worker claims exactly ``n_trials`` trials in total
is told in :mod:`~mixer_sweeps.study._worker`: a finished study gains no trials when run again,
and an interrupted one runs only what is left.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial
from rich.console import Console

from mixer_sweeps.results import (
    StudyAttr,
    StudyLayout,
    StudyRecord,
    TrialCounts,
    TrialRecord,
    best_trial,
    count_trials,
    describe_counts,
    records,
)
from mixer_sweeps.spec import StudyFile, describe_budget, describe_search
from mixer_sweeps.study._locks import FileLock
from mixer_sweeps.study._monitor import StudyMonitor
from mixer_sweeps.study._placement import Placement, place_workers, usable_cores, visible_gpus
from mixer_sweeps.study._processes import run_here, run_processes
from mixer_sweeps.study._quiet import optuna_quiet
from mixer_sweeps.study._storage import (
    check_storage_url,
    describe_storage,
    open_storage,
    resolve_storage,
)
from mixer_sweeps.study._worker import WorkerConfig, enqueue_configurations, requeue_failed
from mixer_sweeps.training import atomic_write_text


class StudyMismatchError(ValueError):
    """The storage holds a study of this name that was created from a different study file."""


@dataclass
class StudyRun:
    """What :func:`run_study` did."""

    study: optuna.Study
    layout: StudyLayout
    storage: str
    """The storage, for people (passwords hidden)."""
    trials: list[FrozenTrial]
    n_trials: int | None
    added: int
    """Trials that finished during this run."""
    interrupted: bool
    seconds: float
    fatal: str | None = None
    """Why no trial could run (a dataset that is not there), if so."""
    errors: list[str] = field(default_factory=list)
    """Workers that crashed, with their tracebacks."""

    @property
    def study_dir(self) -> Path:
        return self.layout.root

    @property
    def records(self) -> list[TrialRecord]:
        return records(self.trials)

    @property
    def counts(self) -> TrialCounts:
        return count_trials(self.records)

    @property
    def best_trial(self) -> TrialRecord | None:
        return best_trial(self.records)


def run_study(
    study_file: StudyFile,
    *,
    workers: int | None = 1,
    gpus: Sequence[str] | None = None,
    workers_per_gpu: int | None = None,
    results_dir: str | Path = "results",
    storage: str | None = None,
    console: Console | None = None,
    retry_failed: bool = False,
) -> StudyRun:
    """Run ``study_file`` until it has ``n_trials`` finished trials or its timeout passes.

    Args:
        study_file: from :func:`~mixer_sweeps.study.load_study_file`.
        workers: local worker processes; 1 runs the trials in this process. None: one per GPU
            times ``workers_per_gpu``.
        gpus: the GPUs to place workers on (``CUDA_VISIBLE_DEVICES`` names); None: those this
            process sees, when the base spec may use CUDA.
        workers_per_gpu: how many workers share one GPU.
        results_dir: the study's files go to ``<results_dir>/<name>/``.
        storage: storage URL; before ``SWEEPS_STORAGE`` and ``study.storage``.
        console: where progress goes; None shows nothing.
        retry_failed: queue the failed trials' configurations again; each takes its failed
            trial's place in ``n_trials``.

    Raises:
        ValueError: a bad ``workers`` or storage URL.
        StudyMismatchError: the stored study of that name came from a different study file.
    """
    placements = _place(study_file, workers, gpus, workers_per_gpu)
    started = time.monotonic()
    url = resolve_storage(storage, study_file.settings.storage)
    check_storage_url(url)
    layout = StudyLayout.of(results_dir, study_file.name)
    described = describe_storage(url, layout.root)
    shown = console is not None
    console = console or Console(quiet=True)

    with optuna_quiet():
        backend = open_storage(url, study_dir=layout.root)
        layout.root.mkdir(parents=True, exist_ok=True)
        study = _open_study(study_file, backend, described)
    _write_study_file(study_file, layout)
    # Quiet too: Optuna logs at INFO each enqueue: configuration that a re-run finds queued.
    with optuna_quiet(), contextlib.closing(FileLock(layout.claim_lock)) as claim, claim:
        enqueued = enqueue_configurations(study, study_file)
        retried = requeue_failed(study) if retry_failed else []
    before = study.get_trials(deepcopy=False)
    counts = count_trials(before)
    n_trials = study_file.n_trials
    console.print(_header(study_file, len(placements), described, counts))
    if enqueued:
        console.print(f"queued {enqueued} configurations of enqueue: to run first")
    if retried:
        console.print(f"queued again to retry: failed trials {', '.join(map(str, retried))}")

    deadline = time.time() + study_file.settings.timeout if study_file.settings.timeout else None
    if len(placements) > 1:
        console.print("\n".join(p.describe() for p in placements))
    configs = [
        WorkerConfig(
            study_file=study_file,
            storage_url=url,
            layout=layout,
            index=i,
            n_trials=n_trials,
            deadline=deadline,
            placement=placements[i] if len(placements) > 1 else None,
        )
        for i in range(len(placements))
    ]
    monitor = StudyMonitor(
        study_file.name,
        n_trials=n_trials,
        param_paths=[d.path for d in study_file.space],
        console=console,
        live=None if shown else False,
    )
    monitor.begin(before)
    interrupted, fatal, errors = False, None, []
    if n_trials is not None and counts.finished >= n_trials:
        console.print(f"nothing to run: {counts.finished} of {n_trials} trials have finished")
    else:
        with monitor:
            if len(configs) == 1:
                interrupted, fatal = run_here(configs[0], study, monitor)
            else:
                interrupted, fatal, errors = run_processes(configs, study, monitor)
            monitor.update(study.get_trials(deepcopy=False))

    trials = study.get_trials(deepcopy=False)
    return StudyRun(
        study=study,
        layout=layout,
        storage=described,
        trials=trials,
        n_trials=n_trials,
        added=count_trials(trials).finished - counts.finished,
        interrupted=interrupted,
        seconds=time.monotonic() - started,
        fatal=fatal,
        errors=errors,
    )


def _place(
    study_file: StudyFile,
    workers: int | None,
    gpus: Sequence[str] | None,
    workers_per_gpu: int | None,
) -> list[Placement]:
    if gpus is None:
        on_cpu = study_file.base_spec.train.device == "cpu"
        gpus = [] if on_cpu or workers == 1 else visible_gpus()
    return place_workers(
        workers, gpus=list(gpus), cores=usable_cores(), workers_per_gpu=workers_per_gpu
    )


def _open_study(
    study_file: StudyFile, storage: optuna.storages.BaseStorage, described: str
) -> optuna.Study:
    objectives = study_file.settings.objective_list
    study = optuna.create_study(
        storage=storage,
        study_name=study_file.name,
        directions=[direction for _, direction in objectives],
        load_if_exists=True,
    )
    fingerprint = study_file.fingerprint()
    stored = StudyRecord.from_study(study).fingerprint
    if stored is None:
        record = StudyRecord(
            direction=study.directions[0],
            fingerprint=fingerprint,
            metric=study_file.settings.metric,
            replicates=study_file.settings.replicates,
            space=study_file.space,
            base=study_file.base_spec.model_dump(mode="json"),
        )
        for key, value in record.to_attrs().items():
            study.set_user_attr(key, value)
        study.set_user_attr(
            StudyAttr.OBJECTIVES, [{"metric": m, "direction": d} for m, d in objectives]
        )
        with warnings.catch_warnings():
            # Experimental in Optuna: its warning would reach whoever opens the study.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric for metric, _ in objectives])
    elif stored != fingerprint:
        changes = _changes(study, study_file)
        shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if changes[5:] else "")
        raise StudyMismatchError(
            f"study {study_file.name!r} in {described} was made from a different base spec,"
            " fixed values, space or replicates ("
            + (shown or f"fingerprint {stored}, the file gives {fingerprint}")
            + "); rename the study or use other --results or --storage"
        )
    return study


def _changes(study: optuna.Study, study_file: StudyFile) -> list[str]:
    """What the file changed in the stored study's definition: ``key: stored → file``."""
    import json

    stored = StudyRecord.from_study(study)
    if stored.base is None or stored.space is None:
        return []  # stored by an older version

    def flat(base: dict, space: dict, items: dict[str, object]) -> dict[str, object]:
        kept = {k: v for k, v in base.items() if k not in ("name", "train", "tracking")}
        stack = [("base", kept)]
        while stack:
            at, node = stack.pop()
            for key, value in node.items():
                if isinstance(value, dict) and value:
                    stack.append((f"{at}.{key}", value))
                else:
                    items[f"{at}.{key}"] = value
        for path, dim in space.items():  # dotted paths: one level, so they stay whole
            items.update({f"space.{path}: {key}": value for key, value in dim.items()})
        return items

    settings = study_file.settings
    old = flat(
        stored.base,
        stored.space.describe(),
        {
            "replicates": stored.replicates,
            "metric": stored.metric,
            "direction": study.directions[0].name.lower(),
            "objectives": _stored_objectives(study),
        },
    )
    new = flat(
        study_file.base_spec.model_dump(mode="json"),
        study_file.space.describe(),
        {
            "replicates": settings.replicates,
            "metric": settings.metric,
            "direction": settings.direction,
            "objectives": ", ".join(f"{m} ({d})" for m, d in settings.objective_list),
        },
    )
    changes = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key not in new:
            changes.append(f"{key} {json.dumps(old[key])} removed")
        elif key not in old:
            changes.append(f"{key} {json.dumps(new[key])} added")
        elif old[key] != new[key]:
            separator = " " if ": " in key else ": "
            changes.append(f"{key}{separator}{json.dumps(old[key])} → {json.dumps(new[key])}")
    return changes


def _stored_objectives(study: optuna.Study) -> str:
    """The stored study's objectives as ``_changes`` shows them: ``val_acc (maximize), ...``."""
    stored = study.user_attrs.get(StudyAttr.OBJECTIVES)
    if isinstance(stored, list):
        return ", ".join(f"{o.get('metric')} ({o.get('direction')})" for o in stored)
    names = study.metric_names or [None] * len(study.directions)
    return ", ".join(
        f"{n} ({d.name.lower()})" for n, d in zip(names, study.directions, strict=True)
    )


def _write_study_file(study_file: StudyFile, layout: StudyLayout) -> None:
    settings = study_file.settings
    # Written as read back: with objectives, metric and direction only mirror the learning one,
    # and a percentile is the front pruner's alone (a study file may not give either).
    exclude: dict[str, Any] = {}
    if settings.objectives is not None:
        exclude |= {"metric": True, "direction": True}
    if settings.pruner.type != "front":
        exclude["pruner"] = {"percentile"}
    resolved = {
        "study": settings.model_dump(mode="json", exclude=exclude),
        "fixed": study_file.fixed,
        "space": study_file.space.describe(),
        "base": study_file.base_spec.model_dump(mode="json"),
    }
    atomic_write_text(layout.study_file, yaml.safe_dump(resolved, sort_keys=False))


def _header(study_file: StudyFile, workers: int, storage: str, counts: TrialCounts) -> str:
    s = study_file.settings
    parts = [
        describe_budget(study_file.n_trials, s.timeout),
        describe_search(s),
        f"{workers} worker{'s' if workers > 1 else ''}",
    ]
    lines = [
        f"study {study_file.name}: {', '.join(p for p in parts if p)}",
        f"storage: {storage}",
    ]
    if counts.finished or counts.waiting:
        queued = f", {counts.waiting} queued to run again" if counts.waiting else ""
        lines.append(
            f"resuming: {counts.finished} trials finished ({describe_counts(counts)}){queued}"
        )
    return "\n".join(lines)
