"""Multi-objective studies stored as ``sweeps run`` stores them (an Optuna study with several
directions, the ``objectives`` study attr, each trial's ``values`` and ``costs``), written
straight through Optuna into a results folder: what the readers (results, best, status, report,
retrain, W&B) are tested on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conftest import TINY_RUN

OBJECTIVES = [
    {"metric": "val_acc", "direction": "maximize"},
    {"metric": "params", "direction": "minimize"},
]
SPACE = {
    "model.embed_dim": {"choices": [8, 16, 32]},
    "optim.lr": {"low": 1e-3, "high": 1e-2, "log": True},
}
FIXED = {"optim.epochs": 2, "optim.warmup_epochs": 0}


@dataclass(frozen=True)
class Made:
    """A trial to store: COMPLETE with ``values``, PRUNED with ``reported`` epochs, or FAIL."""

    params: dict[str, Any]
    values: Sequence[float] | None = None
    state: str = "COMPLETE"
    costs: dict[str, float] = field(default_factory=dict)
    reported: dict[int, float] = field(default_factory=dict)
    seeds: Sequence[float] = ()
    """Per seed, the learning metric's best (default: its value, one seed)."""
    duplicate_of: int | None = None


def write_study(
    root: Path,
    name: str,
    made: Sequence[Made],
    *,
    objectives: Sequence[dict[str, str]] = OBJECTIVES,
    replicates: int = 1,
    space: dict[str, Any] = SPACE,
    run: dict[str, Any] = TINY_RUN,
) -> Path:
    """The study ``name`` in ``root/results/<name>/`` (study.yaml, study.journal) holding
    ``made``; returns its results folder."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    from mixer_sweeps.results import StudyLayout, StudyRecord
    from mixer_sweeps.spec import load_study_file
    from mixer_sweeps.study import open_storage

    document = {
        "study": {
            "name": name,
            "n_trials": len(made),
            "sampler": {"type": "random", "seed": 0},
            "replicates": replicates,
        },
        "fixed": FIXED,
        "space": space,
        "run": run,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    study_file = load_study_file(path)
    layout = StudyLayout.of(root / "results", name)
    layout.root.mkdir(parents=True, exist_ok=True)
    resolved = {
        # As sweeps run saves it: a percentile is the front pruner's alone.
        "study": study_file.settings.model_dump(mode="json", exclude={"pruner": {"percentile"}}),
        "fixed": study_file.fixed,
        "space": study_file.space.describe(),
        "base": study_file.base_spec.model_dump(mode="json"),
    }
    layout.study_file.write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
    storage = open_storage(None, study_dir=layout.root)
    directions = [o["direction"] for o in objectives]
    study = optuna.create_study(storage=storage, study_name=name, directions=directions)
    learning = next(
        o["metric"] for o in objectives if o["metric"] not in ("params", "flops", "images_per_s")
    )
    record = StudyRecord(
        direction=study.directions[0],
        fingerprint=study_file.fingerprint(),
        metric=learning,
        replicates=replicates,
        space=study_file.space,
        base=study_file.base_spec.model_dump(mode="json"),
    )
    for key, value in record.to_attrs().items():
        study.set_user_attr(key, value)
    study.set_user_attr("objectives", list(objectives))
    distributions = {
        "model.embed_dim": CategoricalDistribution([8, 16, 32]),
        "optim.lr": FloatDistribution(1e-3, 1e-2, log=True),
    }
    index = [o["metric"] for o in objectives].index(learning)
    for m in made:
        state = TrialState[m.state]
        costs = dict(m.costs)
        if m.values is not None:
            for o, v in zip(objectives, m.values, strict=True):
                if o["metric"] != learning:
                    costs.setdefault(o["metric"], v)
        best = list(m.seeds) or ([m.values[index]] if m.values is not None else [])
        if state == TrialState.PRUNED and m.reported:
            pick = max if objectives[index]["direction"] == "maximize" else min
            best = [pick(m.reported.values())]
        attrs: dict[str, Any] = {
            "seeds": list(range(len(best))),
            "best_val_acc": best if learning == "val_acc" else [],
            f"best_{learning}": best,
            "test_acc": [0.5] * len(best) if state == TrialState.COMPLETE else [None] * len(best),
            "epochs": [max(m.reported, default=2)] * len(best),
            "metric": learning,
            "direction": objectives[index]["direction"],
            "reason": "",
            "costs": costs,
        }
        if "params" in costs:
            attrs["num_params"] = int(costs["params"])
        if m.duplicate_of is not None:
            attrs["duplicate_of"] = m.duplicate_of
        study.add_trial(
            create_trial(
                params=m.params,
                distributions={k: distributions[k] for k in m.params},
                values=list(m.values) if m.values is not None else None,
                state=state,
                user_attrs=attrs,
                intermediate_values=m.reported or {1: best[0]} if best else m.reported,
            )
        )
    return layout.root


def params(embed: int, lr: float) -> dict[str, Any]:
    return {"model.embed_dim": embed, "optim.lr": lr}


# A front of three (trials 0, 1, 3), two dominated trials (2, 4), a twin (7, of trial 1), two
# pruned trials (5, 6) and one failure (8).
FRONT_TRIALS = [
    Made(params(8, 1e-3), (0.80, 1000)),
    Made(params(16, 1e-3), (0.85, 2000)),
    Made(params(16, 2e-3), (0.83, 2000)),
    Made(params(32, 1e-3), (0.90, 4000)),
    Made(params(32, 2e-3), (0.88, 5000)),
    Made(params(32, 3e-3), state="PRUNED", costs={"params": 4000}, reported={1: 0.5}),
    Made(params(8, 3e-3), state="PRUNED", costs={"params": 1000}, reported={1: 0.4, 2: 0.45}),
    Made(params(16, 1e-3), (0.85, 2000), duplicate_of=1),
    Made(params(8, 5e-3), state="FAIL"),
]
FRONT = [0, 1, 3]
