"""``sweeps replay --objectives val_acc,num_params``: the front's hypervolume against epochs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState
from test_replay import curves_of, family, fields_of, finished

from conftest import sweeps
from mixer_sweeps.replay import (
    FrontOutcome,
    FrontScale,
    FrontSummary,
    ObjectivesError,
    OptunaDriver,
    ReplayTask,
    Trace,
    hypervolume,
    installed_peers,
    measure_front,
    named_policy,
    parse_objectives,
    replay_once,
    seed_order,
    simulate,
    write_table,
)

OBJECTIVES = (("val_acc", "maximize"), ("params", "minimize"))


def front_curves() -> object:
    """Four configurations, one seed, two epochs: best val 0.9, 0.8, 0.5, 0.85 with 100, 10,
    50 and 40 params. Normalised losses (val, params): (0, 1), (0.25, 0), (1, 4/9), (1/8, 1/3)."""
    best = np.array([[0.9], [0.8], [0.5], [0.85]])
    val = np.stack([best - 0.1, best], axis=2)
    curves = curves_of(val, np.ones_like(val), best)
    return type(curves)(**{**fields_of(curves), "num_params": (100, 10, 50, 40)})


# --------------------------------------------------------------------------- hypervolume


def test_the_hypervolume_of_known_points_is_the_hand_computed_one() -> None:
    assert hypervolume(np.array([[0.0, 0.5], [0.5, 0.0]])) == pytest.approx(0.75)
    assert hypervolume(np.empty((0, 2))) == 0.0
    scale = FrontScale.of(front_curves(), OBJECTIVES)
    assert scale.losses == pytest.approx(
        np.array([[0.0, 1.0], [0.25, 0.0], [1.0, 4 / 9], [0.125, 1 / 3]])
    )
    # [0.25, 1] x [0, 1] and [0.125, 1] x [1/3, 1]; the extremes add nothing at (1, 1).
    assert scale.best == pytest.approx(0.75 + 0.125 * (2 / 3))
    assert hypervolume(scale.losses[[0, 2]]) == 0.0


def test_the_hypervolume_history_counts_each_new_complete_configuration_once() -> None:
    scale = FrontScale.of(front_curves(), OBJECTIVES)
    trace = Trace(
        finished=[
            finished(2, 3, 0, value=0.85),
            finished(3, 1, 1, "PRUNED"),  # a pruned trial adds no point
            finished(5, 3, 2, value=0.85),  # nor does a configuration found before
            finished(7, 1, 3, value=0.8),
        ],
        spent=9,
    )
    outcome = measure_front(scale, trace)
    assert list(outcome.spent) == [2, 7]
    assert outcome.volume == pytest.approx([0.875 * (2 / 3), scale.best])
    assert [outcome.at(e) for e in (0, 1, 2, 6.5, 7, 100)] == pytest.approx(
        [0, 0, 0.875 * 2 / 3, 0.875 * 2 / 3, scale.best, scale.best]
    )
    assert outcome.reached(scale.best) == 7 and math.isinf(outcome.reached(0.99))
    assert outcome.total == 9 and outcome.complete == 2


def test_epochs_to_the_references_hypervolume_are_paired_by_replay() -> None:
    def outcome(spent, volume, total):
        return FrontOutcome(np.array(spent, float), np.array(volume, float), total, 1, 1)

    reference = FrontSummary(
        "ref", 1, (outcome([10, 80], [0.5, 0.8], 100), outcome([5], [0.6], 50)), seconds=0
    )
    pruned = FrontSummary(
        "pruned", 1, (outcome([30], [0.792], 40), outcome([20], [0.5], 20)), seconds=0
    )
    # Within 1% of 0.8 at 30 of the reference's 100 epochs; 0.6 never reached in replay 2.
    assert pruned.ratios(reference) == [0.3, math.inf]
    assert reference.ratios(reference) == [0.8, 0.1]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("num_params,val_acc", "give val_acc (the per-epoch learning metric) first"),
        ("val_acc,flops", "'flops' is not a cost a table records"),
        ("val_acc,params,num_params", "num_params is given twice"),
        ("val_acc,", "give val_acc"),
    ],
)
def test_bad_objectives_are_refused_naming_them(text: str, says: str) -> None:
    with pytest.raises(ObjectivesError, match=None) as caught:
        parse_objectives(text)
    assert says in str(caught.value)


def test_objectives_need_a_table_whose_costs_differ() -> None:
    assert parse_objectives("val_acc,num_params", front_curves()) == OBJECTIVES
    flat = type(front_curves())(**{**fields_of(front_curves()), "num_params": (7, 7, 7, 7)})
    with pytest.raises(ObjectivesError, match="every configuration of hand-made has 7 params"):
        parse_objectives("val_acc,num_params", flat)


# ------------------------------------------------------------------- the Optuna driver


def test_a_front_replay_tells_values_and_costs_as_sweeps_run_does() -> None:
    curves = family()
    policy = named_policy("mo-tpe-front", OBJECTIVES)
    order = seed_order(curves, 2)
    driver = OptunaDriver(curves, policy, seed=2, seed_order=order, max_trials=60)
    trace = simulate(curves, driver, workers=3, budget=curves.grid_epochs)
    trials = {t.number: t for t in driver.study.get_trials(deepcopy=False)}
    assert [d.name for d in driver.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    configs = {f.record.number: f.config for f in trace.finished}
    pruned = 0
    for number, trial in trials.items():
        if number not in configs:
            continue
        c = configs[number]
        assert trial.user_attrs["costs"] == {"params": curves.num_params[c]}
        if trial.state == TrialState.COMPLETE:
            assert trial.values == [curves.val_acc[c, order[c, 0]].max(), curves.num_params[c]]
        else:
            pruned += trial.state == TrialState.PRUNED
        for epoch, value in trial.intermediate_values.items():
            assert value == curves.val_acc[c, order[c, 0], epoch - 1]
    assert pruned > 0  # the front pruner stopped some trials


def test_a_front_replay_never_loses_hypervolume_and_is_reproducible() -> None:
    curves = family()
    for name in ("mo-tpe", "mo-tpe-front", "mo-random"):
        task = ReplayTask(curves, named_policy(name, OBJECTIVES), 2, 1.0)
        a, b = replay_once(task, 1), replay_once(task, 1)
        assert np.all(np.diff(a.volume) >= 0) and np.all(np.diff(a.spent) >= 0)
        assert list(a.volume) == list(b.volume) and a.total == b.total
        assert 0 < a.final <= FrontScale.of(curves, OBJECTIVES).best + 1e-12


# ---------------------------------------------------------------------------- MOASHA


def test_moasha_runs_once_on_a_tiny_table() -> None:
    if "syne-moasha" not in installed_peers():
        pytest.skip("syne-moasha is not installed: scripts/setup-peers makes .venv-peers")
    from mixer_sweeps.replay import run_peer

    curves = family()
    [summary] = run_peer(
        curves,
        "syne-moasha",
        workers=[2],
        repeats=1,
        budget=40,
        seed_orders=lambda r: seed_order(curves, r),
        objectives=OBJECTIVES,
        jobs=1,
    )
    [outcome] = summary.outcomes
    assert 0 < outcome.total <= 40
    assert np.all(np.diff(outcome.volume) >= 0)
    assert outcome.trials > outcome.complete  # MOASHA stops trials at its rungs


# --------------------------------------------------------------------------- the command


def test_the_command_prints_the_hypervolume_table_and_writes_the_figure(tmp_path: Path) -> None:
    write_table(family(), tmp_path / "t.csv")
    args = ["replay", "t.csv", "--objectives", "val_acc,num_params", "--repeats", "3"]
    args += ["--policy", "mo-tpe", "--policy", "mo-tpe-front", "--workers", "1", "--workers", "2"]
    out = sweeps(*args, "--json", "--out", "replayed", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["objectives"] == [
        {"metric": "val_acc", "direction": "maximize"},
        {"metric": "params", "direction": "minimize"},
    ]
    assert [(p["name"], p["workers"]) for p in payload["policies"]] == [
        ("mo-tpe", 1),
        ("mo-tpe", 2),
        ("mo-tpe-front", 1),
        ("mo-tpe-front", 2),
    ]
    for p in payload["policies"]:
        assert p["reference"] == "mo-tpe" and p["replays"] == 3
        assert p["hypervolume"]["median"] <= payload["hypervolume_table"] + 1e-12
        median = p["curve"]["median"]
        assert median == sorted(median)
    figure = tmp_path / "replayed" / "hypervolume.png"
    assert figure.stat().st_size > 1000
    again = sweeps(*args, "--out", "replayed", cwd=tmp_path)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "replayed already holds a replay's files (hypervolume.png, summary.json)" in again.stderr
    text = sweeps(*args, "--out", "as-text", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "mo-tpe-front" in text.stdout and "reference (unpruned search" in text.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--objectives", "val_acc,flops"], "'flops' is not a cost a table records"),
        (["--objectives", "val_acc,num_params", "--policy", "tpe-median"], "median"),
        (["--policy", "syne-moasha"], "--policy syne-moasha: the peer"),
        (["--objectives", "val_acc,num_params", "--policy", "syne-asha"], "--policy syne-asha:"),
    ],
)
def test_bad_front_input_exits_2_naming_it(tmp_path: Path, args, says) -> None:
    write_table(family(), tmp_path / "t.csv")
    out = sweeps("replay", "t.csv", *args, "--out", "replayed", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "replayed").exists()


def test_a_table_without_a_front_is_refused(tmp_path: Path) -> None:
    flat = type(family())(**{**fields_of(family()), "num_params": (5,) * 12})
    write_table(flat, tmp_path / "t.csv")
    out = sweeps(
        "replay",
        "t.csv",
        "--objectives",
        "val_acc,num_params",
        "--policy",
        "mo-random",
        "--out",
        "replayed",
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "has 5 params: there is no front" in out.stderr
