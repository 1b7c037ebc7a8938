"""A trial's full run spec, as ``sweeps best`` shows and exports it for ``sweeps train``.

The spec a trial trained with is its folder's ``spec.yaml`` (``seed-<s>/spec.yaml`` with
replicates); where that folder is gone (results copied without ``trials/``, a worker elsewhere),
it is rebuilt as the objective built it: the study's resolved base spec (``study.yaml``'s
``base``, fixed values applied), the trial's params through the search space, the trial's name
(``<study>-<first attempt>``) and, with replicates, the seed.

A spec that leaves ``train.threads`` to the machine gets the threads the trial's worker used: a
CPU run's numbers depend on how many threads sum them, so only then does ``sweeps train`` repeat
the trial's history exactly.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mixer_sweeps.results._layout import StudyLayout
from mixer_sweeps.results._record import TrialRecord
from mixer_sweeps.results._stats import ci95
from mixer_sweeps.spec import (
    RunSpec,
    SearchSpace,
    SpecError,
    YamlDocument,
    apply_overrides,
    load_run_spec,
    read_yaml,
    validate_model,
    with_overrides,
)
from mixer_sweeps.training import SPEC_FILE

if TYPE_CHECKING:
    from mixer_sweeps.results._load import StudyResults


@dataclass(frozen=True)
class TrialSpec:
    """A trial's run spec and where it came from."""

    spec: RunSpec
    seed: int
    source: str
    """The ``spec.yaml`` it was read from, or how it was rebuilt."""
    notes: tuple[str, ...] = ()
    """What was set beyond the trial's own spec (its worker's threads)."""


def trial_seeds(base: Mapping[str, Any], replicates: int) -> list[int]:
    """The seeds each configuration trains with: the base spec's seed, seed + 1, ..."""
    return [int(base.get("seed", 0)) + i for i in range(max(replicates, 1))]


def trial_run_spec(
    trial: TrialRecord,
    *,
    layout: StudyLayout,
    study_name: str,
    base: Mapping[str, Any],
    space: SearchSpace,
    replicates: int,
    seed: int | None = None,
) -> TrialSpec:
    """The run spec trial ``trial`` trained with (its ``seed`` run with replicates; default the
    first seed).

    Raises:
        ValueError: ``seed`` is not one of the trial's seeds, or the spec cannot be rebuilt.
        SpecError: the trial folder's ``spec.yaml`` is damaged.
    """
    seeds = trial_seeds(base, replicates)
    if seed is not None and seed not in seeds:
        raise ValueError(
            f"--seed {seed}: trial {trial.number}'s seeds are {', '.join(map(str, seeds))}"
        )
    seed = seeds[0] if seed is None else seed
    replicated = replicates > 1
    run_dir = layout.trial_path(trial.number, trial.run_dir)
    path = (run_dir / f"seed-{seed}" if replicated else run_dir) / SPEC_FILE
    if path.is_file():
        spec, source = load_run_spec(path), str(path)
    else:
        spec = _rebuild(trial, study_name, base, space, seed if replicated else None)
        source = f"rebuilt from {layout.study_file} and the trial's params ({path} is missing)"
    notes: list[str] = []
    threads = (trial.worker or {}).get("threads")
    if spec.train.threads is None and isinstance(threads, int) and threads > 0:
        spec = with_overrides(spec, {"train.threads": threads}, source=source)
        notes.append(f"train.threads: {threads}, the threads of the worker that ran the trial")
    return TrialSpec(spec=spec, seed=seed, source=source, notes=tuple(notes))


def _rebuild(
    trial: TrialRecord,
    study_name: str,
    base: Mapping[str, Any],
    space: SearchSpace,
    seed: int | None,
) -> RunSpec:
    """The spec as :meth:`~mixer_sweeps.spec._study.StudyFile.trial_spec` built it."""
    first = trial.first_attempt if trial.first_attempt is not None else trial.number
    name = f"{study_name}-{first}" + ("" if seed is None else f"-seed{seed}")
    extra: dict[str, Any] = {"name": name}
    if seed is not None:
        extra["seed"] = seed
    data = apply_overrides(dict(base), {**space.overrides(dict(trial.params)), **extra})
    return validate_model(RunSpec, data, YamlDocument(data, {}, f"trial {trial.number}"))


def study_base(found: StudyResults) -> dict[str, Any]:
    """The resolved base spec the trials were built from: the storage's, else ``study.yaml``'s.

    Raises:
        ValueError: neither holds one, or ``study.yaml`` is damaged.
    """
    base = found.record.base
    if not isinstance(base, dict):
        try:
            base = read_yaml(found.layout.study_file).data.get("base")
        except SpecError as exc:
            raise ValueError(str(exc)) from None
    if not isinstance(base, dict):
        raise ValueError(
            f"{found.layout.study_file} holds no base spec: run the study again to rewrite it"
        )
    return base


def trial_spread(trial: TrialRecord) -> tuple[list[float], float | None]:
    """The trial's per-seed values of its objective and the half-width of their 95% CI (Student's
    t, as the report's tables; None below 2 seeds).

    Values whose mean is not the trial's value are not the objective's and are not shown.
    """
    per_seed = [float(v) for v in (trial.best or trial.best_val_acc)]
    if (
        trial.value is None
        or not per_seed
        or not math.isclose(statistics.fmean(per_seed), trial.value, rel_tol=1e-9, abs_tol=1e-12)
    ):
        return [], None
    half = ci95(per_seed)
    return per_seed, None if math.isnan(half) else half


def trial_summary(trial: TrialRecord) -> dict[str, Any]:
    """A trial as ``sweeps best --json`` and ``--top`` show it."""
    per_seed, half = trial_spread(trial)
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "ci95": half,
        "seeds": list(trial.seeds),
        "per_seed": per_seed,
        "params": dict(trial.params),
        "test_acc": trial.mean_test_acc,
        "epochs": list(trial.epochs),
        "num_params": trial.num_params,
        "seconds": trial.seconds,
        "duplicate_of": trial.duplicate_of,
    }
