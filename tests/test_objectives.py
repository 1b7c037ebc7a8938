"""Several objectives in a study file: what validate refuses, and what a run stores."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.study import StudyDirection
from optuna.trial import TrialState
from test_study_file import exits_2, problems_of

from conftest import TINY_RUN
from mixer_sweeps.plan import model_cost
from mixer_sweeps.spec import load_study_file, parse_study_file
from mixer_sweeps.study import run_study
from mixer_sweeps.training import Trainer

SPACE = {"model.embed_dim": {"choices": [8, 16]}, "optim.lr": {"low": 1e-3, "high": 1e-2}}
FRONT = [{"metric": "val_acc"}, {"metric": "params"}]
FIXED = {"optim.epochs": 3, "optim.warmup_epochs": 0, "optim.min_lr": 0.0}


def study_text(space: dict[str, Any] | None = None, **study: Any) -> str:
    document = {
        "study": {"name": "front", "n_trials": 4, **study},
        "fixed": FIXED,
        "space": SPACE if space is None else space,
        "run": TINY_RUN,
    }
    return yaml.safe_dump(document, sort_keys=False)


BAD = [
    pytest.param(
        {"objectives": [{"metric": "val_acc"}, {"metric": "parms"}]},
        "study.objectives.1.metric",
        "a cost ['params', 'flops', 'images_per_s']",
        id="unknown-metric",
    ),
    pytest.param(
        {"objectives": [{"metric": "val_acc"}, {"metric": "params", "direction": "smaller"}]},
        "study.objectives.1.direction",
        "'maximize' or 'minimize'",
        id="bad-direction",
    ),
    pytest.param(
        {"objectives": FRONT, "metric": "val_acc"},
        "study.objectives",
        "either study.objectives or study.metric",
        id="metric-and-objectives",
    ),
    pytest.param(
        {"objectives": [{"metric": "val_acc"}, {"metric": "val_loss"}]},
        "study.objectives",
        "exactly one objective must be a per-epoch metric",
        id="two-per-epoch-metrics",
    ),
    pytest.param(
        {"objectives": [{"metric": "params"}, {"metric": "flops"}]},
        "study.objectives",
        "exactly one objective must be a per-epoch metric",
        id="no-per-epoch-metric",
    ),
    pytest.param(
        {"objectives": [*FRONT, {"metric": "params"}]},
        "study.objectives.2.metric",
        "'params' is given twice",
        id="twice",
    ),
    pytest.param(
        {"objectives": FRONT, "pruner": {"type": "median"}},
        "study.pruner.type",
        "the median pruner judges one objective",
        id="median-with-two",
    ),
    pytest.param(
        {"objectives": FRONT, "pruner": {"type": "hyperband"}},
        "study.pruner.type",
        "the hyperband pruner judges one objective",
        id="hyperband-with-two",
    ),
    pytest.param(
        {"pruner": {"type": "front"}},
        "study.pruner.type",
        "needs a cost among several study.objectives",
        id="front-with-one",
    ),
    pytest.param(
        {"objectives": FRONT, "sampler": {"type": "cmaes"}},
        "study.sampler.type",
        "the cmaes sampler takes one objective",
        id="cmaes-with-two",
    ),
    pytest.param(
        {"objectives": FRONT, "confirm": {"seeds": 2}},
        "study.confirm",
        "a front has no one best",
        id="confirm-with-two",
    ),
    pytest.param(
        {"pruner": {"type": "median", "percentile": 30}},
        "study.pruner.percentile",
        "only applies to the front pruner",
        id="percentile-without-front",
    ),
]


@pytest.mark.parametrize(("study", "path", "words"), BAD)
def test_bad_objectives(study: dict[str, Any], path: str, words: str) -> None:
    problems = problems_of(study_text(**study))
    assert path in problems, problems
    assert words in problems[path].message


def test_validate_exits_2_naming_the_objective_and_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        study_text(objectives=[{"metric": "val_acc"}, {"metric": "params", "direction": "less"}])
    )
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "less" in text)
    output = exits_2("validate", path)
    assert f"study.objectives.1.direction (line {line})" in output
    assert "Traceback" not in output


def test_objectives_default_their_directions_and_the_pruner() -> None:
    settings = parse_study_file(
        study_text(objectives=[{"metric": "images_per_s"}, {"metric": "val_loss"}])
    ).settings
    assert settings.objective_list == [("images_per_s", "maximize"), ("val_loss", "minimize")]
    assert settings.learning_metric == "val_loss" and settings.direction == "minimize"
    assert settings.cost_metrics == ["images_per_s"]
    assert settings.pruner.type == "front"
    one = parse_study_file(study_text()).settings
    assert one.objective_list == [("val_acc", "maximize")] and not one.multi_objective
    assert one.pruner.type == "median"


def old_fingerprint(study_file) -> str:
    """The fingerprint as computed before studies had objectives."""
    payload = {
        "base": study_file.base_spec.model_dump(mode="json", exclude={"name", "train", "tracking"}),
        "space": study_file.space.describe(),
        "replicates": study_file.settings.replicates,
        "metric": study_file.settings.metric,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def test_objectives_are_part_of_the_fingerprint() -> None:
    one = parse_study_file(study_text())
    same = parse_study_file(study_text(objectives=[{"metric": "val_acc"}]))
    front = parse_study_file(study_text(objectives=FRONT))
    flops = parse_study_file(study_text(objectives=[{"metric": "val_acc"}, {"metric": "flops"}]))
    assert one.fingerprint() == old_fingerprint(one) == same.fingerprint()
    assert len({one.fingerprint(), front.fingerprint(), flops.fingerprint()}) == 3


GRID = {"model.embed_dim": {"choices": [8, 16]}, "optim.lr": {"choices": [3e-2, 1e-7]}}


def test_a_single_objective_study_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(study_text(GRID, sampler={"type": "grid", "seed": 0}, pruner={"type": "none"}))
    study_file = load_study_file(path)
    run = run_study(study_file, results_dir=tmp_path)
    assert run.study.directions == [StudyDirection.MAXIMIZE]
    assert run.study.user_attrs["objectives"] == [{"metric": "val_acc", "direction": "maximize"}]
    assert run.study.user_attrs["fingerprint"] == old_fingerprint(study_file)
    assert [t.state for t in run.trials] == [TrialState.COMPLETE] * 4
    for trial in run.trials:
        assert "costs" not in trial.user_attrs and len(trial.values) == 1
        spec = study_file.trial_spec(study_file.space.overrides(trial.params), name="again")
        assert trial.value == Trainer(spec).fit().best_val_acc


@pytest.fixture(scope="module")
def front_run(tmp_path_factory) -> Any:
    tmp_path = tmp_path_factory.mktemp("front")
    path = tmp_path / "front.yaml"
    # Two configurations and five trials: the random sampler repeats them.
    path.write_text(
        study_text(
            {"model.embed_dim": {"choices": [8, 16]}},
            n_trials=5,
            objectives=[{"metric": "val_acc"}, {"metric": "params"}, {"metric": "images_per_s"}],
            sampler={"type": "random", "seed": 0},
            pruner={"type": "front", "min_epochs": 1, "startup_trials": 1},
        )
    )
    study_file = load_study_file(path)
    return study_file, run_study(study_file, results_dir=tmp_path)


def test_a_front_study_stores_values_in_objectives_order_and_costs(front_run) -> None:
    study_file, run = front_run
    assert run.study.directions == [
        StudyDirection.MAXIMIZE,
        StudyDirection.MINIMIZE,
        StudyDirection.MAXIMIZE,
    ]
    assert [o["metric"] for o in run.study.user_attrs["objectives"]] == [
        "val_acc",
        "params",
        "images_per_s",
    ]
    assert run.counts.finished == 5 and not run.errors
    checked = 0
    for trial in run.trials:
        costs = trial.user_attrs["costs"]
        spec = study_file.trial_spec(study_file.space.overrides(trial.params), name="again")
        cost = model_cost(spec)
        assert costs["params"] == cost.parameters == Trainer(spec).num_params
        assert costs["flops"] == cost.flops and costs["images_per_s"] > 0
        if trial.state == TrialState.COMPLETE and "duplicate_of" not in trial.user_attrs:
            assert trial.values == [
                max(trial.user_attrs["best_val_acc"]),
                costs["params"],
                costs["images_per_s"],
            ]
            checked += 1
    assert checked


def test_a_duplicate_takes_its_twins_values(front_run) -> None:
    _, run = front_run
    by_number = {t.number: t for t in run.trials}
    duplicates = [t for t in run.trials if "duplicate_of" in t.user_attrs]
    assert duplicates, "five trials of two configurations must repeat one"
    for trial in duplicates:
        twin = by_number[trial.user_attrs["duplicate_of"]]
        assert trial.state == twin.state and trial.values == twin.values
        assert trial.user_attrs["costs"] == twin.user_attrs["costs"]


def test_the_saved_study_file_reads_back(front_run, tmp_path: Path) -> None:
    study_file, run = front_run
    from mixer_sweeps.spec import load_saved_study

    saved = load_saved_study(run.layout.study_file)
    assert saved.fingerprint() == study_file.fingerprint()
    assert saved.settings.objective_list == study_file.settings.objective_list


def test_a_changed_objective_is_a_mismatch(front_run) -> None:
    study_file, run = front_run
    from mixer_sweeps.study import StudyMismatchError

    changed = parse_study_file(
        study_text(
            {"model.embed_dim": {"choices": [8, 16]}},
            n_trials=5,
            objectives=[{"metric": "val_acc"}, {"metric": "flops"}],
            sampler={"type": "random", "seed": 0},
        )
    )
    with pytest.raises(StudyMismatchError, match="objectives"):
        run_study(changed, results_dir=run.layout.root.parent)


def test_optuna_sees_the_learning_metric_as_intermediate_values(front_run) -> None:
    _, run = front_run
    trained = [t for t in run.trials if "duplicate_of" not in t.user_attrs]
    assert all(sorted(t.intermediate_values) for t in trained)
    assert isinstance(run.study, optuna.Study)


def test_a_front_study_runs_end_to_end_with_two_workers(tmp_path: Path) -> None:
    """The issue's acceptance on a tiny space: `sweeps run --workers 2` to the exact count, then
    `best` lists exactly the non-dominated trials, the report has the front's table, plot and
    hypervolume history, and `retrain --front` writes a CI per front configuration."""
    import subprocess
    import sys

    space = {"model.embed_dim": {"choices": [4, 8, 16]}, "optim.lr": {"low": 1e-3, "high": 3e-2}}
    path = tmp_path / "front.yaml"
    path.write_text(
        study_text(space, objectives=FRONT, n_trials=6, sampler={"type": "random", "seed": 1}),
        encoding="utf-8",
    )

    def sweeps(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mixer_sweeps", *args, "--results", str(tmp_path / "r")],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "WANDB_MODE": "disabled"},
            timeout=600,
        )

    done = sweeps("run", str(path), "--workers", "2")
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(
        study_name="front",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(
                str(tmp_path / "r" / "front" / "study.journal")
            )
        ),
    )
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 6 and all(t.state.is_finished() for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]

    def dominated(t: Any) -> bool:
        return any(
            o.values[0] >= t.values[0]
            and o.values[1] <= t.values[1]
            and tuple(o.values) != tuple(t.values)
            for o in complete
        )

    front = {t.number for t in complete if not dominated(t)}
    folder = str(tmp_path / "r" / "front")
    best = sweeps("best", folder, "--json")
    assert best.returncode == 0, best.stderr
    listed = {row["number"] for row in json.loads(best.stdout)["front"]}
    assert listed == front  # lr is continuous: every trial is a configuration of its own

    report = tmp_path / "r" / "front" / "report"
    assert (report / "front.png").is_file() and (report / "hypervolume.png").is_file()
    assert "## Front:" in (report / "report.md").read_text()

    retrain = sweeps("retrain", folder, "--front", "--seeds", "2")
    assert retrain.returncode == 0, retrain.stderr
    summary = (tmp_path / "r" / "front" / "retrain" / "summary.csv").read_text()
    assert summary.count("\n") == len(listed) + 1 and "CI" in summary.splitlines()[0]
