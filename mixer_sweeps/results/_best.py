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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mixer_sweeps.results._layout import StudyLayout
from mixer_sweeps.results._record import TrialRecord
from mixer_sweeps.spec import (
    RunSpec,
    SearchSpace,
    YamlDocument,
    apply_overrides,
    load_run_spec,
    validate_model,
    with_overrides,
)
from mixer_sweeps.training import SPEC_FILE


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
    run_dir = layout.root / (trial.run_dir or layout.run_dir(trial.number))
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
