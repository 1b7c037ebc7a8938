"""benchmarks/record_curves.py: a recorded table holds exactly what a pruned search would see."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from conftest import REPO, TINY_RUN
from mixer_sweeps.spec import load_study_file
from mixer_sweeps.study import run_study

sys.path.insert(0, str(REPO / "benchmarks"))
import record_curves  # noqa: E402  (benchmarks/ is not a package)

EPOCHS = 4
SEEDS = [0, 1]
# lr 3e-2 learns; 1e-7 stays at chance, so the median pruner stops it at epoch 2.
GOOD, BAD = 3e-2, 1e-7
FIXED = {"optim.epochs": EPOCHS, "optim.warmup_epochs": 0, "optim.min_lr": 0.0}


def write_study(path: Path, *, fixed: dict[str, Any] | None = None, **study: Any) -> Path:
    document = {
        "study": {"name": "tiny", **study},
        "fixed": {**FIXED, **(fixed or {})},
        "space": {"optim.lr": {"choices": [GOOD, BAD]}},
        "run": TINY_RUN,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def write_grid(path: Path, **study: Any) -> Path:
    settings = {"sampler": {"type": "grid"}, "pruner": {"type": "none"}, "replicates": 2}
    return write_study(path, **{**settings, **study})


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[Path, pd.DataFrame, Any]:
    """The tiny grid, two seeds per configuration, recorded to the end, written and read back."""
    tmp = tmp_path_factory.mktemp("curves")
    path = write_grid(tmp / "grid.yaml")
    study_file = load_study_file(path)
    run = record_curves.record(study_file, workers=1, results_dir=tmp / "results")
    curves = record_curves.read_curves(study_file, run.study_dir, run.trials, study=str(path))
    out = tmp / "tiny.csv"
    record_curves.write_table(out, curves)
    return out, pd.read_csv(out, comment="#"), run


def curve(frame: pd.DataFrame, lr: float, column: str = "val_acc", seed: int = 0) -> list[float]:
    rows = frame[(frame["optim.lr"] == lr) & (frame["seed"] == seed)].sort_values("epoch")
    return rows[column].tolist()


def test_pruned_and_completed_trials_report_the_tables_curves_bit_for_bit(table, tmp_path) -> None:
    _, frame, _ = table
    # The same configurations in a search that prunes, one seed (the spec's): the good one
    # first, so the median pruner has a finished curve to hold the other against.
    path = write_study(
        tmp_path / "search.yaml",
        sampler={"type": "random", "seed": 0},
        pruner={"type": "median", "min_epochs": 2, "startup_trials": 1},
        n_trials=2,
    )
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["enqueue"] = [{"optim.lr": GOOD}, {"optim.lr": BAD}]
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    run = run_study(load_study_file(path), results_dir=tmp_path)

    good, bad = run.trials
    assert (good.params, bad.params) == ({"optim.lr": GOOD}, {"optim.lr": BAD})
    assert (good.state, bad.state) == (TrialState.COMPLETE, TrialState.PRUNED)
    reported = [bad.intermediate_values[e] for e in sorted(bad.intermediate_values)]
    assert len(reported) == 2 < EPOCHS
    assert reported == curve(frame, BAD)[:2]  # ==: bit for bit
    assert [good.intermediate_values[e] for e in range(1, EPOCHS + 1)] == curve(frame, GOOD)
    assert good.user_attrs["test_acc"] == curve(frame, GOOD, "test_acc")[:1]


def test_the_table_has_every_epoch_of_every_run_under_its_header(table) -> None:
    out, frame, run = table
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# mixer-sweeps recorded curves v1"
    assert lines[1].startswith("# header: ")
    header = json.loads(lines[1].removeprefix("# header: "))
    assert header["params"] == ["optim.lr"] and header["seeds"] == SEEDS
    assert header["epochs"] == EPOCHS and header["threads"] == 1
    assert header["spec"]["optim"]["epochs"] == EPOCHS and header["metric"] == "val_acc"
    assert list(frame.columns[:4]) == ["config", "seed", "epoch", "optim.lr"]
    assert len(frame) == 2 * len(SEEDS) * EPOCHS and not frame.isna().any().any()
    # Configurations are numbered in grid order, each seed with epochs 1..E of its own run.
    assert frame.groupby("config")["optim.lr"].first().tolist() == [GOOD, BAD]
    epochs = frame.groupby(["config", "seed"])["epoch"].apply(list).tolist()
    assert epochs == [list(range(1, EPOCHS + 1))] * 2 * len(SEEDS)
    for trial in run.trials:
        lr = trial.params["optim.lr"]
        reported = [trial.intermediate_values[e] for e in range(1, EPOCHS + 1)]
        assert curve(frame, lr) == reported  # the first seed reports
        for i, seed in enumerate(SEEDS):
            assert max(curve(frame, lr, seed=seed)) == trial.user_attrs["best_val_acc"][i]
            assert curve(frame, lr, "test_acc", seed) == [trial.user_attrs["test_acc"][i]] * EPOCHS
    assert curve(frame, GOOD, seed=0) != curve(frame, GOOD, seed=1)


def test_running_again_trains_nothing_and_writes_the_same_table(table, capsys) -> None:
    out, frame, run = table
    again = out.parent / "again.csv"
    argv = [str(out.parent / "grid.yaml"), "--workers", "1", "--out", str(again)]
    assert record_curves.main([*argv, "--results", str(run.study_dir.parent)]) == 0
    printed = capsys.readouterr().out
    assert "nothing to run: 2 of 2 trials have finished" in printed
    assert f"wrote {again}: {len(frame)} rows" in printed
    assert pd.read_csv(again, comment="#").equals(frame)
    assert len(run.study.get_trials()) == 2


def test_a_table_is_written_only_when_every_configuration_has_finished(table) -> None:
    out, _, run = table
    study_file = load_study_file(out.parent / "grid.yaml")
    with pytest.raises(record_curves.RecordError, match="1 of 2 configurations"):
        record_curves.read_curves(study_file, run.study_dir, run.trials[1:], study="grid.yaml")


@pytest.mark.parametrize(
    ("study", "fixed", "message"),
    [
        ({"pruner": {"type": "median"}}, {}, "study.pruner.type must be none but got 'median'"),
        ({"sampler": {"type": "tpe"}, "n_trials": 2}, {}, "type must be grid but got 'tpe'"),
        ({}, {"optim.early_stopping_patience": 3}, "early_stopping_patience must be null"),
        ({}, {"train.threads": 2}, "train.threads must be 1 (deterministic curves) but got 2"),
        ({"n_trials": 1}, {}, "n_trials must be null (the whole grid of 2) but got 1"),
    ],
)
def test_a_study_that_cannot_record_whole_curves_is_refused(
    tmp_path, study: dict[str, Any], fixed: dict[str, Any], message: str
) -> None:
    path = write_grid(tmp_path / "grid.yaml", fixed=fixed, **study)
    with pytest.raises(record_curves.RecordError) as caught:
        record_curves.check_study(load_study_file(path))
    assert message in str(caught.value)
