"""The final number: a study's best configurations, or one hand-set run spec, trained again with
fresh seeds and each run tested once.

A search's best value is optimistic: it is the best of N noisy scores on the very validation split
that chose it. Training the chosen configurations again with seeds the search never used, and
scoring every run on the test split, gives a number with its spread over seeds: the one to quote.

What is retrained:

- from a study, its ``top`` best distinct configurations among the COMPLETE trials, ranked by the
  objective in the study's direction (trials with the same params, replicates or duplicates, are
  one configuration whose value is their mean). Each run spec is built as the objective built it
  (:meth:`~mixer_sweeps.study.StudyFile.trial_spec`: base, fixed values, the trial's params);
- from a run spec file, that spec.

Three things change, no more: the seed (``seed + 1000 + i`` for the i-th run: never a seed of the
search, whose replicates use ``seed`` to ``seed + 999`` at most), ``optim.epochs`` when asked, and
early stopping, which is turned off unless the spec itself (its file, the study's fixed values or
the trial's params) sets ``optim.early_stopping_patience``: a final run trains its whole budget,
and its test number still comes from the best-validation weights.

Files, beside the study (``<results>/<study>/retrain/``) or a spec's runs
(``<results>/<spec name>/retrain/``)::

    retrain/<config>/seed-<s>/   one run: the trainer's spec.yaml, history.csv, metrics.json, ...
    retrain/summary.csv, summary.md, runs.csv    (``mixer_sweeps.report``)

``<config>`` is ``trial-<n>`` (the first trial with that configuration) or ``spec``. Runs are
checkpointed every epoch, so running retrain again skips the finished seeds and resumes the
interrupted one; a folder holding a run of another spec is refused before anything trains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from optuna.study import StudyDirection

from mixer_sweeps.results import (
    Objective,
    StudyLayout,
    TrialRecord,
    best_configurations,
    count_trials,
    front_configurations,
    pareto_front,
)
from mixer_sweeps.spec import (
    SEED_LIMIT,
    RunSpec,
    StudyFile,
    YamlDocument,
    apply_overrides,
    read_yaml,
    validate_model,
)
from mixer_sweeps.training import CHECKPOINT_FILE, METRICS_FILE, SPEC_FILE, Callback, RunMetrics

RETRAIN_DIR = "retrain"
CONFIG_PREFIX = "trial-"
"""A study's configuration is retrained in ``retrain/trial-<n>/``, n its first trial."""


SEED_OFFSET = 1000
"""Retrain seeds start at the spec's seed + 1000, past every seed a study's replicates use."""
PATIENCE = "optim.early_stopping_patience"


class RetrainError(ValueError):
    """Nothing to retrain, or a retrain folder that holds runs of another spec."""


@dataclass(frozen=True)
class Configuration:
    """One configuration to retrain: a base run spec as written and the overrides it gets."""

    id: str
    """``trial-<n>`` or ``spec``: its folder under ``retrain/``."""
    base_data: Mapping[str, Any]
    overrides: Mapping[str, Any]
    """The trial's params as spec overrides, then the retrain changes (epochs, early stopping)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The trial's params as Optuna stores them; empty for a spec."""
    trials: tuple[int, ...] = ()
    """The COMPLETE trials with these params."""
    search_value: float | None = None
    """Their mean objective value."""
    search_epochs: int | None = None
    """The epochs the trials (or the spec) trained, before ``--epochs``."""
    costs: Mapping[str, float] = field(default_factory=dict)
    """A front configuration's cost objectives (``params``, ``flops``, ``images_per_s``), which
    fresh seeds do not change."""

    def spec(self, *, name: str, seed: int) -> RunSpec:
        data = apply_overrides(dict(self.base_data), {**self.overrides, "name": name, "seed": seed})
        return validate_model(RunSpec, data, YamlDocument(data, {}, f"retrain run {name}"))


@dataclass(frozen=True)
class RetrainPlan:
    """What ``sweeps retrain`` trains, and where."""

    name: str
    """The study's name, or the spec's."""
    root: Path
    """``<results>/<name>/retrain``."""
    configurations: tuple[Configuration, ...]
    seeds: tuple[int, ...]
    source: str
    """The study or spec file, for people."""
    metric: str | None = None
    direction: StudyDirection | None = None
    """The study's direction (None for a spec)."""
    distinct: int = 0
    """Distinct complete configurations the study had to choose from."""
    search_seeds: tuple[int, ...] = ()
    epochs: int | None = None
    """``--epochs``, if given."""
    objectives: tuple[Objective, ...] = ()
    """With ``--front``, the study's objectives: the configurations are its front."""

    @property
    def front(self) -> bool:
        return bool(self.objectives)

    @property
    def search_epochs(self) -> tuple[int, ...]:
        """The distinct epochs the retrained trials (or the spec) trained, in order."""
        return tuple(sorted({c.search_epochs for c in self.configurations if c.search_epochs}))

    @property
    def other_protocol(self) -> bool:
        """``--epochs`` changes what a configuration trained: the retrained numbers are not
        comparable with the search's."""
        return self.epochs is not None and any(e != self.epochs for e in self.search_epochs)

    def epochs_warning(self) -> str | None:
        """What ``sweeps retrain`` warns of when :attr:`other_protocol`; else None."""
        if not self.other_protocol:
            return None
        trained = format_epochs_range(self.search_epochs)
        epochs = f"{self.epochs} epoch{'s' * (self.epochs != 1)}"
        if self.direction is None:
            return (
                f"retraining for {epochs}; the spec says {trained}: these numbers are"
                " not comparable with the spec's"
            )
        return (
            f"retraining for {epochs}; the search trained {trained}: these numbers"
            " are not comparable with the search's"
        )

    @property
    def study_dir(self) -> Path:
        return self.root.parent

    def run_dir(self, config: Configuration, seed: int) -> Path:
        return self.root / config.id / f"seed-{seed}"

    def runs(self) -> Iterator[tuple[Configuration, int, RunSpec, Path]]:
        """Every run, configuration by configuration, seed by seed."""
        for config in self.configurations:
            for seed in self.seeds:
                spec = config.spec(name=f"{self.name}-{config.id}-seed{seed}", seed=seed)
                yield config, seed, spec, self.run_dir(config, seed)


@dataclass(frozen=True)
class RunOutcome:
    """How one retrain run ended; ``reused`` when an earlier retrain had finished it."""

    config: str
    seed: int
    state: str
    """``completed`` or ``failed`` (a non-finite loss)."""
    test_acc: float | None = None
    best_val_acc: float | None = None
    best_epoch: int | None = None
    epochs: int | None = None
    num_params: int | None = None
    seconds: float | None = None
    reason: str = ""
    reused: bool = False


def format_epochs_range(epochs: Sequence[int]) -> str:
    """``12``, or ``6–12`` when the configurations trained several budgets."""
    low, high = min(epochs), max(epochs)
    return f"{low}" if low == high else f"{low}–{high}"


def retrain_seeds(seed: int, count: int) -> tuple[int, ...]:
    """The ``count`` fresh seeds of a spec whose seed is ``seed``."""
    first = seed + SEED_OFFSET
    if first + count > SEED_LIMIT:
        raise RetrainError(f"the retrain seeds ({first} on) must stay below 2**32 but got {count}")
    return tuple(first + i for i in range(count))


def plan_retrain(
    study_file: StudyFile,
    trials: Sequence[TrialRecord],
    *,
    direction: StudyDirection,
    top: int,
    seeds: int,
    epochs: int | None,
    results_dir: Path,
    objectives: tuple[Objective, ...] = (),
) -> RetrainPlan:
    """Retrain the ``top`` best configurations of a study's ``trials`` with ``seeds`` seeds;
    with ``objectives`` (``--front``), every configuration of the study's front instead.

    Raises:
        RetrainError: the study has no complete trial.
        SpecError: a configuration with the retrain changes is not a valid run spec.
    """
    costs: dict[int, dict[str, float]] = {}
    if objectives:
        best, distinct = front_configurations(trials, objectives)
        for trial in pareto_front(trials, objectives):
            costs[trial.number] = {
                o.metric: v for o, v in zip(objectives, trial.values, strict=True) if o.is_cost
            }
    else:
        best, distinct = best_configurations(trials, direction=direction, top=top)
    if not best:
        counts = count_trials(trials)
        raise RetrainError(
            f"study {study_file.name!r} has no complete trial to retrain"
            f" ({counts.finished} finished: {counts.pruned} pruned, {counts.failed} failed;"
            f" {counts.running} running)"
        )
    configurations = []
    for params, value, numbers in best:
        overrides = study_file.space.overrides(params)
        config = Configuration(
            id=f"{CONFIG_PREFIX}{min(numbers)}",
            base_data=study_file.base_data,
            overrides=overrides,
            params=params,
            trials=numbers,
            search_value=value,
            costs=next((costs[n] for n in numbers if n in costs), {}),
        )
        configurations.append(_with_retrain_changes(config, epochs))
    return RetrainPlan(
        name=study_file.name,
        root=StudyLayout.of(results_dir, study_file.name).root / RETRAIN_DIR,
        configurations=tuple(configurations),
        seeds=retrain_seeds(study_file.base_spec.seed, seeds),
        source=study_file.source,
        metric=study_file.settings.metric,
        direction=direction,
        distinct=distinct,
        search_seeds=tuple(study_file.seeds),
        epochs=epochs,
        objectives=tuple(objectives),
    )


def plan_spec_retrain(
    spec_file: Path, *, seeds: int, epochs: int | None, results_dir: Path
) -> RetrainPlan:
    """Retrain the run spec in ``spec_file`` with ``seeds`` seeds (``<results>/<name>/retrain``).

    Raises:
        SpecError: the file is not a valid run spec, or not with the retrain changes.
    """
    doc = read_yaml(spec_file)
    spec = validate_model(RunSpec, doc.data, doc)
    config = _with_retrain_changes(
        Configuration(id="spec", base_data=doc.data, overrides={}), epochs
    )
    return RetrainPlan(
        name=spec.name,
        root=Path(results_dir) / spec.name / RETRAIN_DIR,
        configurations=(config,),
        seeds=retrain_seeds(spec.seed, seeds),
        source=str(spec_file),
        search_seeds=(spec.seed,),
        epochs=epochs,
    )


def _with_retrain_changes(config: Configuration, epochs: int | None) -> Configuration:
    data = apply_overrides(dict(config.base_data), dict(config.overrides))
    asked = _lookup(data, PATIENCE) is not None
    overrides = dict(config.overrides)
    if not asked:
        overrides[PATIENCE] = None
    spec = validate_model(RunSpec, data, YamlDocument(data, {}, f"configuration {config.id}"))
    if epochs is not None:
        # As `sweeps train --epochs`: a short run keeps its warm-up inside the epochs it has.
        overrides["optim.epochs"] = epochs
        overrides["optim.warmup_epochs"] = min(spec.optim.warmup_epochs, epochs)
    changed = Configuration(
        id=config.id,
        base_data=config.base_data,
        overrides=overrides,
        params=config.params,
        trials=config.trials,
        search_value=config.search_value,
        search_epochs=spec.optim.epochs,
        costs=config.costs,
    )
    changed.spec(name="retrain-check", seed=0)  # a SpecError now, before anything trains
    return changed


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def check_retrain(plan: RetrainPlan) -> None:
    """Refuse, before anything trains, a run folder holding a run of another spec, or a
    checkpoint that cannot be resumed.

    Raises:
        RetrainError: naming the folder and what differs.
    """
    for _config, _seed, spec, run_dir in plan.runs():
        saved = _saved_spec(run_dir)
        if saved is not None and saved != spec.model_dump(mode="json"):
            differs = ", ".join(_differences(saved, spec.model_dump(mode="json"))[:3])
            raise RetrainError(
                f"{run_dir} holds a run of another spec ({differs}); remove {plan.root} (or that"
                " folder) to retrain afresh, or retrain with the options it was made with"
            )
        checkpoint = run_dir / CHECKPOINT_FILE
        if saved is not None and checkpoint.is_file():
            from mixer_sweeps.training import CheckpointError, check_resumable

            try:
                check_resumable(spec, checkpoint)
            except CheckpointError as exc:
                raise RetrainError(f"{exc}; remove {run_dir} to train that seed afresh") from None


def _saved_spec(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / SPEC_FILE
    if not path.is_file():
        return None
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {}
    return saved if isinstance(saved, dict) else {}


def _differences(saved: Any, wanted: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(wanted, dict):
        found = []
        for key in [*wanted, *(k for k in saved if k not in wanted)]:
            found += _differences(saved.get(key), wanted.get(key), f"{prefix}{key}.")
        return found
    if saved == wanted:
        return []
    return [f"{prefix.rstrip('.')}: {saved!r} there, {wanted!r} now"]


def finished_outcome(config: Configuration, seed: int, run_dir: Path) -> RunOutcome | None:
    """The outcome of a run an earlier retrain finished (its metrics.json), if there is one.

    Call after :func:`check_retrain`, which makes sure the folder's spec is this run's.
    """
    if _saved_spec(run_dir) is None:
        return None
    metrics = RunMetrics.read(run_dir / METRICS_FILE)
    if metrics is None or metrics.state != "completed" or metrics.test_acc is None:
        return None
    return RunOutcome(
        config=config.id,
        seed=seed,
        state="completed",
        test_acc=metrics.test_acc,
        best_val_acc=metrics.best_val_acc,
        best_epoch=metrics.best_epoch,
        epochs=metrics.epochs,
        num_params=metrics.num_params,
        seconds=metrics.seconds,
        reason=metrics.reason,
        reused=True,
    )


def run_retrain(
    plan: RetrainPlan,
    *,
    callbacks: Callable[[RunSpec, Path], Sequence[Callback]] = lambda spec, run_dir: (),
    on_outcome: Callable[[RunOutcome], None] = lambda outcome: None,
) -> list[RunOutcome]:
    """Train every run of ``plan`` that is not finished yet; resume one that was interrupted.

    ``callbacks`` gives each run's trainer callbacks (progress, trackers); ``on_outcome`` hears
    each run's outcome, finished now or before. A KeyboardInterrupt leaves the checkpoint of the
    running seed for the next retrain.
    """
    from mixer_sweeps.study import DataCache

    check_retrain(plan)
    data = DataCache()
    outcomes = []
    for config, seed, spec, run_dir in plan.runs():
        outcome = finished_outcome(config, seed, run_dir)
        if outcome is None:
            outcome = _train(config, seed, spec, run_dir, data, callbacks(spec, run_dir))
        on_outcome(outcome)
        outcomes.append(outcome)
    return outcomes


def _train(
    config: Configuration,
    seed: int,
    spec: RunSpec,
    run_dir: Path,
    data: Any,
    callbacks: Sequence[Callback],
) -> RunOutcome:
    from mixer_sweeps.training import NonFiniteLossError, Trainer

    resume = (run_dir / CHECKPOINT_FILE).is_file() and _saved_spec(run_dir) is not None
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(
        spec, data=data.get(spec.data), run_dir=run_dir, callbacks=callbacks, resume=resume
    )
    try:
        result = trainer.fit()
    except NonFiniteLossError as exc:
        return RunOutcome(config=config.id, seed=seed, state="failed", reason=str(exc))
    return RunOutcome(
        config=config.id,
        seed=seed,
        state=result.state,
        test_acc=result.test_acc,
        best_val_acc=result.best_val_acc,
        best_epoch=result.best_epoch,
        epochs=result.epochs_run,
        num_params=result.num_params,
        seconds=round(result.seconds, 3),
        reason=result.reason,
    )


def config_number(name: str) -> int | None:
    """The trial number of a retrain folder's configuration (``trial-<n>``), else None."""
    number = name.removeprefix(CONFIG_PREFIX)
    return int(number) if number != name and number.isascii() and number.isdigit() else None
