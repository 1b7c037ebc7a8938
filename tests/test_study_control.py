"""Study control in the study file: ``enqueue:``, ``sweeps run --retry-failed`` and
``study.metric`` with its direction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState
from typer.testing import CliRunner

from conftest import TINY_RUN
from mixer_sweeps.cli import app
from mixer_sweeps.report import trials_frame
from mixer_sweeps.results import TrialRecord, best_trial, count_trials, records, results_of
from mixer_sweeps.spec import SpecError, load_study_file
from mixer_sweeps.study import open_storage, run_study
from mixer_sweeps.study._runner import _open_study

runner = CliRunner()

FIXED = {"optim.epochs": 2, "optim.warmup_epochs": 0, "optim.min_lr": 0.0}
LRS = [1e-2, 2e-2, 3e-2]


def write_study(path: Path, space: dict[str, Any], *, enqueue: Any = None, **study: Any) -> Path:
    document: dict[str, Any] = {
        "study": {"name": "tiny", "pruner": {"type": "none"}, **study},
        "fixed": FIXED,
        "space": space,
    }
    if enqueue is not None:
        document["enqueue"] = enqueue
    document["run"] = TINY_RUN
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def load(study_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=open_storage(None, study_dir=study_dir))


def test_enqueued_configurations_run_first_and_are_queued_once(tmp_path: Path) -> None:
    space = {
        "model.embed_dim": {"choices": [8, 16, 32]},
        "optim.lr": {"low": 1e-3, "high": 3e-2, "log": True},
    }
    # The second one is partial: the sampler picks its lr.
    enqueue = [{"model.embed_dim": 32, "optim.lr": 0.02}, {"model.embed_dim": 8}]
    path = write_study(
        tmp_path / "study.yaml",
        space,
        enqueue=enqueue,
        n_trials=3,
        sampler={"type": "random", "seed": 0},
    )
    run = run_study(load_study_file(path), results_dir=tmp_path)
    trials = run.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert trials[0].params == {"model.embed_dim": 32, "optim.lr": 0.02}
    assert trials[1].params["model.embed_dim"] == 8
    assert 1e-3 <= trials[1].params["optim.lr"] <= 3e-2
    spec = yaml.safe_load((tmp_path / "tiny" / "trials" / "0" / "spec.yaml").read_text())
    assert spec["model"]["embed_dim"] == 32 and spec["optim"]["lr"] == 0.02

    # Run again with a larger budget, and as another worker would: nothing is queued twice.
    more = load_study_file(path, {"study.n_trials": 5})
    again = run_study(more, results_dir=tmp_path)
    assert len(again.trials) == 5 and count_trials(again.trials).waiting == 0
    enqueued = [t.number for t in again.trials if t.user_attrs.get("enqueued")]
    assert enqueued == [0, 1]


def test_bad_enqueue_entries_exit_2_with_path_and_line(tmp_path: Path) -> None:
    space = {"model.depth": {"choices": [1, 2]}, "optim.lr": {"low": 1e-3, "high": 3e-2}}
    enqueue = [
        {"model.depth": 3},
        {"optim.lr": 0.5, "model.width": 4},
        {"model.depth": 2, "optim.lr": 0.01},
    ]
    path = write_study(tmp_path / "study.yaml", space, enqueue=enqueue, n_trials=3)
    lines = path.read_text().splitlines()
    line_of = {text.strip(): n for n, text in enumerate(lines, 1)}

    result = runner.invoke(app, ["run", str(path), "--results", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert (
        f"enqueue.0.model.depth (line {line_of['- model.depth: 3']}): must be one of the"
        " choices [1, 2] but got 3" in result.output
    )
    assert f"enqueue.1.optim.lr (line {line_of['- optim.lr: 0.5']}): must be in" in result.output
    assert "enqueue.1.model.width" in result.output and "enqueue.2" not in result.output
    assert not (tmp_path / "tiny").exists()

    # A grid study needs whole configurations: Optuna's grid sampler cannot fill in the rest.
    grid = write_study(
        tmp_path / "grid.yaml", space | {"optim.lr": {"choices": LRS}}, enqueue=[{"model.depth": 1}]
    )
    with pytest.raises(SpecError, match=r"enqueue\.0 .*missing \['optim.lr'\]"):
        load_study_file(grid, {"study.sampler.type": "grid"})


def test_retry_failed_runs_failed_configurations_again_within_n_trials(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": LRS}},
        n_trials=3,
        sampler={"type": "random", "seed": 0},
    )
    command = ["run", str(path), "--results", str(tmp_path)]
    result = runner.invoke(app, [*command, "--n-trials", "2"])
    assert result.exit_code == 0, result.output
    # A failed trial, by hand, in the same storage: the budget of 3 is spent.
    study = load(tmp_path / "tiny")
    untried = next(lr for lr in LRS if lr not in {t.params["optim.lr"] for t in study.trials})
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"optim.lr": untried},
            distributions={"optim.lr": CategoricalDistribution(LRS)},
            user_attrs={"reason": "RuntimeError: out of luck"},
        )
    )
    result = runner.invoke(app, command)
    assert result.exit_code == 0 and "nothing to run: 3 of 3" in result.output, result.output

    result = runner.invoke(app, [*command, "--retry-failed"])
    assert result.exit_code == 0, result.output
    assert "queued again to retry: failed trials 2" in result.output
    trials = load(tmp_path / "tiny").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    retry = TrialRecord.from_trial(trials[3])
    assert retry.params == {"optim.lr": untried} and retry.retry_of == 2
    # Trained, not taken for a duplicate of its own failed attempt.
    assert retry.duplicate_of is None and retry.epochs == (2,)
    assert (tmp_path / "tiny" / "trials" / "3" / "history.csv").is_file()
    counts = count_trials(trials)
    assert (counts.complete, counts.failed, counts.finished, counts.retried) == (3, 0, 3, 1)

    # Nothing failed is left: a second retry adds nothing.
    result = runner.invoke(app, [*command, "--retry-failed"])
    assert result.exit_code == 0 and "nothing to run: 3 of 3" in result.output, result.output
    assert len(load(tmp_path / "tiny").trials) == 4


@pytest.mark.filterwarnings("error::optuna.exceptions.ExperimentalWarning")
def test_opening_a_study_names_its_metrics_without_optunas_experimental_warning(
    tmp_path: Path,
) -> None:
    space = {"optim.lr": {"choices": LRS}}
    path = write_study(tmp_path / "study.yaml", space, metric="val_loss", n_trials=1)
    storage = optuna.storages.InMemoryStorage()
    study = _open_study(load_study_file(path), storage, "memory")
    assert study.metric_names == ["val_loss"]


def test_a_val_loss_study_minimises_the_best_val_loss(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-7, *LRS]}},
        metric="val_loss",
        n_trials=4,
        sampler={"type": "grid"},
    )
    study_file = load_study_file(path)
    assert study_file.settings.direction == "minimize"
    run = run_study(study_file, results_dir=tmp_path)
    study = load(tmp_path / "tiny")
    assert study.direction == StudyDirection.MINIMIZE
    assert study.metric_names == ["val_loss"]
    values = {}
    for trial in study.trials:
        history = pd.read_csv(tmp_path / "tiny" / "trials" / str(trial.number) / "history.csv")
        assert trial.state == TrialState.COMPLETE
        assert trial.value == pytest.approx(history["val_loss"].min())
        # The pruner is told the metric each epoch.
        assert trial.intermediate_values == pytest.approx(
            dict(zip(history["epoch"], history["val_loss"], strict=True))
        )
        record = TrialRecord.from_trial(trial)
        assert record.best == (trial.value,) and record.direction == StudyDirection.MINIMIZE
        assert record.best_val_acc == (pytest.approx(history["val_acc"].max()),)
        values[trial.number] = trial.value
    lowest = min(values, key=values.__getitem__)
    assert study.best_trial.number == lowest
    assert best_trial(records(study.trials)).number == lowest == run.best_trial.number
    frame = trials_frame(results_of(study, tmp_path / "tiny")).set_index("number")
    assert frame["best_val_loss"].to_dict() == pytest.approx(values)
    assert frame["best_val_acc"].notna().all()
    # The chance-level lr has the highest loss, so "best" really is the lowest.
    assert max(values, key=values.__getitem__) == next(
        t.number for t in study.trials if t.params["optim.lr"] == 1e-7
    )


def test_metric_direction_defaults_by_name_and_joins_the_fingerprint(tmp_path: Path) -> None:
    space = {"optim.lr": {"choices": LRS}}
    load_file = lambda **study: load_study_file(  # noqa: E731
        write_study(tmp_path / "study.yaml", space, n_trials=2, **study)
    )
    assert load_file().settings.direction == "maximize"
    assert load_file(metric="train_loss").settings.direction == "minimize"
    # Against the name is allowed: the file says what it wants.
    assert load_file(metric="val_acc", direction="minimize").settings.direction == "minimize"
    prints = {
        load_file().fingerprint(),
        load_file(metric="val_loss").fingerprint(),
        load_file(metric="val_loss", direction="maximize").fingerprint(),
    }
    assert len(prints) == 3
    for study, message in (
        (
            {"metric": "lr"},
            "study.metric (line 6): 'lr' has no default direction; give study.direction",
        ),
        ({"metric": "val_f1"}, "study.metric (line 6): Input should be"),
        ({"metric": "epoch"}, "study.metric (line 6): Input should be"),
    ):
        with pytest.raises(SpecError) as caught:
            load_file(**study)
        assert message in str(caught.value), str(caught.value)
