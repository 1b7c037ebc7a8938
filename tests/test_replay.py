"""``sweeps replay``: recorded curves, the simulated clock, the metrics, the peers, the command."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from optuna.trial import TrialState

from conftest import TINY_RUN, sweeps
from mixer_sweeps.replay import (
    BUDGETS,
    Curves,
    Finished,
    OptunaDriver,
    Policy,
    ReplayTask,
    TableError,
    Trace,
    best_named,
    budget_epochs,
    installed_peers,
    measure,
    named_policy,
    quantile,
    read_study,
    read_table,
    replay_once,
    seed_order,
    simulate,
    write_table,
)
from mixer_sweeps.results import TrialRecord
from mixer_sweeps.spec import Choices, SearchSpace


def curves_of(
    val: np.ndarray,
    seconds: np.ndarray,
    test: np.ndarray,
    *,
    values: dict[str, list] | None = None,
) -> Curves:
    """Curves over a grid of ``values`` (default: one param ``x`` with one value per config)."""
    values = values or {"x": list(range(val.shape[0]))}
    space = SearchSpace(tuple(Choices(path=p, choices=v) for p, v in values.items()))
    return Curves(
        name="hand",
        source="hand-made",
        space=space,
        configs=tuple(space.grid_points()),
        seeds=tuple(range(val.shape[1])),
        val_acc=np.asarray(val, dtype=float),
        seconds=np.asarray(seconds, dtype=float),
        test_acc=np.asarray(test, dtype=float),
        num_params=tuple(range(val.shape[0])),
    )


def family(configs: int = 12, seeds: int = 3, epochs: int = 6, seed: int = 0) -> Curves:
    """A parametric family of learning curves: final accuracy, speed, per-seed noise."""
    rng = np.random.default_rng(seed)
    quality = 0.85 + 0.1 * rng.random(configs)
    speed = rng.uniform(1.0, 4.0, configs)
    e = np.arange(1, epochs + 1)
    clean = quality[:, None, None] * (1 - 0.9 * np.exp(-e / speed[:, None, None]))
    val = np.clip(clean + rng.normal(0, 0.01, (configs, seeds, epochs)), 0, 1)
    seconds = rng.uniform(0.5, 2.0, configs)[:, None, None] * np.ones((configs, seeds, epochs))
    test = np.clip(quality[:, None] + rng.normal(0, 0.01, (configs, seeds)), 0, 1)
    values = {"model.embed_dim": [16, 32, 64], "optim.lr": [0.001, 0.003, 0.01, 0.03]}
    assert configs == 12
    return curves_of(val, seconds, test, values=values)


# ------------------------------------------------------------------------------- the table


def test_a_table_reads_back_bit_for_bit_with_its_space(tmp_path: Path) -> None:
    curves = family()
    path = tmp_path / "curves.csv"
    write_table(curves, path)
    again = read_table(path)
    assert np.array_equal(again.val_acc, curves.val_acc)
    assert np.array_equal(again.seconds, curves.seconds)
    assert np.array_equal(again.test_acc, curves.test_acc)
    assert again.configs == curves.configs and again.seeds == curves.seeds
    assert [d.grid() for d in again.space] == [[16, 32, 64], [0.001, 0.003, 0.01, 0.03]]
    assert again.grid_epochs == 12 * 6


def test_a_table_uses_its_study_files_space_where_it_holds_the_recorded_values(
    tmp_path: Path,
) -> None:
    curves = family()
    study = tmp_path / "grid.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "study": {"name": "grid"},
                "space": {
                    "model.embed_dim": {"low": 16, "high": 64, "step": 16},  # 48 not recorded
                    "optim.lr": {"choices": [0.03, 0.01, 0.003, 0.001]},
                },
            }
        )
    )
    path = tmp_path / "curves.csv"
    write_table(Curves(**{**fields_of(curves), "header": {"study": str(study)}}), path)
    space = read_table(path).space
    assert space.get("optim.lr").grid() == [0.03, 0.01, 0.003, 0.001]  # the file's own order
    assert isinstance(space.get("model.embed_dim"), Choices)  # its range holds 48: not used


def fields_of(curves: Curves) -> dict:
    """What makes ``curves``, to build a changed copy: ``Curves(**{**fields_of(c), ...})``."""
    names = ("name", "source", "space", "configs", "seeds", "val_acc", "seconds", "test_acc")
    return {n: getattr(curves, n) for n in (*names, "num_params", "header")}


@pytest.mark.parametrize(
    ("mangle", "says"),
    [
        (
            lambda text: text.replace("# mixer-sweeps recorded curves v1", "# something else"),
            "not a recorded-curves table",
        ),
        (lambda text: "\n".join(text.splitlines()[:-1]) + "\n", "needs all 6 epochs"),
        (lambda text: text.replace(",val_acc,", ",val,"), "lacks the columns ['val_acc']"),
        (lambda text: text.replace('"params": [', '"params": ["optim.wd", '), "optim.wd"),
    ],
)
def test_a_broken_table_is_refused_with_what_is_wrong(tmp_path: Path, mangle, says) -> None:
    path = tmp_path / "curves.csv"
    write_table(family(), path)
    path.write_text(mangle(path.read_text()))
    with pytest.raises(TableError, match=None) as caught:
        read_table(path)
    assert says in str(caught.value) and str(path) in str(caught.value)


def test_a_table_missing_grid_points_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "curves.csv"
    write_table(family(), path)
    lines = path.read_text().splitlines()
    kept = [ln for ln in lines if not ln.startswith("11,")]  # the last configuration
    path.write_text("\n".join(kept) + "\n")
    with pytest.raises(TableError, match="grid of 12 points .* but 11 configurations"):
        read_table(path)


# ----------------------------------------------------------------------- the simulated clock


def clock_curves() -> Curves:
    """Three configurations, one seed, four epochs; config 1 is slower and worse."""
    val = np.array(
        [
            [[0.50, 0.70, 0.80, 0.90]],  # 1 s epochs: complete at t = 4
            [[0.40, 0.55, 0.60, 0.95]],  # 1.5 s epochs: t = 1.5, 3, 4.5, 6
            [[0.30, 0.40, 0.50, 0.60]],  # 0.375 s epochs
        ]
    )
    seconds = np.array([[[1.0] * 4], [[1.5] * 4], [[0.375] * 4]])
    test = np.array([[0.9], [0.95], [0.6]])
    return curves_of(val, seconds, test)


def run_clock(curves: Curves, policy: Policy, order: list[int], workers: int) -> Trace:
    driver = OptunaDriver(
        curves, policy, seed=0, seed_order=seed_order(curves, 0), max_trials=len(order)
    )
    for config in order:  # trial n trains order[n]
        driver.study.enqueue_trial(curves.configs[config])
    return simulate(curves, driver, workers=workers, budget=10_000)


MEDIAN = Policy.from_settings(
    "median",
    {"sampler": {"type": "random"}, "pruner": {"type": "median", "startup_trials": 1}},
)


def test_a_pruner_sees_only_the_reports_that_ended_before_its_own() -> None:
    """Two workers: trial 1 (config 1) reports epochs 1-2 before trial 0 completes (t = 4), so
    the median pruner has nothing to compare them with; its epoch 3 (t = 4.5) is judged against
    trial 0's (0.80 > 0.60) and pruned. Seen from the future it would go at epoch 1."""
    curves = clock_curves()
    trace = run_clock(curves, MEDIAN, [0, 1, 2], workers=2)
    times = [t for t, *_ in trace.reports]
    assert times == sorted(times)
    ended = {f.record.number: f for f in trace.finished}
    assert ended[0].record.state == TrialState.COMPLETE and ended[0].time == pytest.approx(4.0)
    assert ended[1].record.state == TrialState.PRUNED
    assert ended[1].record.epochs == (3,) and ended[1].time == 4.5
    # Trial 2 starts on worker 0 at t = 4 and is pruned at its first epoch (t = 4.375).
    assert [(t, n, e) for t, n, e, _ in trace.reports][-3:] == [
        (4.0, 0, 4),
        (4.375, 2, 1),
        (4.5, 1, 3),
    ]
    assert ended[2].record.state == TrialState.PRUNED and ended[2].record.epochs == (1,)
    # Epochs spent when trial 1 was pruned: 4 (trial 0) + 3 (its own) + 1 (trial 2).
    assert ended[1].spent == 8 and trace.spent == 8


def test_one_worker_trains_trial_after_trial() -> None:
    curves = clock_curves()
    trace = run_clock(curves, MEDIAN, [0, 1, 2], workers=1)
    ended = {f.record.number: f for f in trace.finished}
    # Trial 0 complete at t = 4; trial 1 judged from its epoch 1 on, and below 0.50 there.
    assert ended[1].record.state == TrialState.PRUNED and ended[1].record.epochs == (1,)
    assert ended[1].time == 5.5 and ended[2].time == 5.875


def test_reports_are_the_recorded_prefix_of_each_curve() -> None:
    curves = family()
    order = seed_order(curves, 4)
    policy = named_policy("tpe-median")
    driver = OptunaDriver(curves, policy, seed=4, seed_order=order, max_trials=60)
    trace = simulate(curves, driver, workers=3, budget=curves.grid_epochs)
    configs = {f.record.number: f.config for f in trace.finished}
    checked = 0
    for _, number, epoch, value in trace.reports:
        if number in configs:
            c = configs[number]
            assert value == curves.val_acc[c, order[c, 0], epoch - 1]
            checked += 1
    assert checked > 20
    for done in trace.finished:
        record = done.record
        if record.duplicate_of is None and record.state == TrialState.PRUNED:
            c = done.config
            assert record.best[0] == curves.val_acc[c, order[c, 0], : record.epochs[0]].max()


def test_twins_are_not_trained_again_and_the_budget_cuts_the_replay() -> None:
    curves = clock_curves()
    trace = run_clock(
        curves, Policy.from_settings("p", {"pruner": {"type": "none"}}), [0, 0, 1], workers=2
    )
    ended = {f.record.number: f for f in trace.finished}
    # Trial 1 asked for config 0 while trial 0 trained it: it waited, then took its outcome.
    assert ended[1].record.duplicate_of == 0 and ended[1].time == pytest.approx(4.0)
    assert trace.spent == 8  # configs 0 and 1 once each
    assert run_clock(curves, MEDIAN, [0, 1, 2], workers=2).spent == 8
    budgeted = OptunaDriver(curves, MEDIAN, seed=0, seed_order=seed_order(curves, 0), max_trials=3)
    assert simulate(curves, budgeted, workers=2, budget=5).spent == 5


def test_confirm_trains_more_seeds_only_for_trials_near_the_best_so_far() -> None:
    curves = metric_curves()  # first seeds: 0.90, 0.94 or 0.96, 0.948, 0.70 or 0.90
    policy = Policy.from_settings(
        "confirm",
        {
            "sampler": {"type": "random"},
            "pruner": {"type": "none"},
            "confirm": {"seeds": 2, "within": 0.02},
        },
    )
    trace = run_clock(curves, policy, [0, 1, 2, 3], workers=1)
    records = [f.record for f in trace.finished]
    # Trial 0 is the best so far by definition; 1 and 2 end within 0.02 of the best; 3 does not.
    assert [len(r.best) for r in records] == [2, 2, 2, 1]
    assert [r.value for r in records[:3]] == pytest.approx([0.90, 0.95, 0.948])
    assert trace.spent == 3 * 2 * 2 + 2
    assert best_named(records).params == curves.configs[1]


def test_a_sampler_that_only_repeats_itself_ends_the_replay() -> None:
    curves = clock_curves()
    policy = Policy.from_settings("p", {"pruner": {"type": "none"}})
    driver = OptunaDriver(
        curves, policy, seed=0, seed_order=seed_order(curves, 0), max_trials=10, max_repeats=3
    )
    for config in [0, 0, 0, 0, 0, 1]:
        driver.study.enqueue_trial(curves.configs[config])
    trace = simulate(curves, driver, workers=1, budget=10_000)
    assert [f.record.duplicate_of for f in trace.finished] == [None, 0, 0, 0]
    assert trace.spent == 4  # config 1 was never reached


def test_replicates_train_the_drawn_seeds_and_report_only_the_first() -> None:
    curves = family(seeds=3)
    policy = Policy.from_settings("r", {"replicates": 2, "pruner": {"type": "none"}})
    order = seed_order(curves, 1)
    driver = OptunaDriver(curves, policy, seed=1, seed_order=order, max_trials=4)
    trace = simulate(curves, driver, workers=1, budget=10_000)
    for done in trace.finished:
        c, record = done.config, done.record
        if record.duplicate_of is None:
            expected = [curves.val_acc[c, order[c, k]].max() for k in (0, 1)]
            assert list(record.best) == expected
            assert record.value == pytest.approx(np.mean(expected))
    assert trace.spent == 2 * 6 * len({f.config for f in trace.finished})


# ----------------------------------------------------------------------------- the metrics


def metric_curves() -> Curves:
    """Seed-mean values 0.90, 0.95, 0.948, 0.80 (configs 1 and 2 within half a point of the
    best); seed-mean test 0.91, 0.93, 0.96, 0.85; two epochs, so the grid is 8 epochs."""
    best = np.array([[0.90, 0.90], [0.94, 0.96], [0.948, 0.948], [0.70, 0.90]])
    val = np.stack([best - 0.1, best], axis=2)
    test = np.array([[0.91, 0.91], [0.93, 0.93], [0.95, 0.97], [0.85, 0.85]])
    return curves_of(val, np.ones_like(val), test)


def finished(
    spent: int,
    config: int,
    number: int,
    state: str = "COMPLETE",
    value: float | None = None,
    duplicate_of: int | None = None,
) -> Finished:
    record = TrialRecord(
        number=number,
        state=TrialState[state],
        params={"config": config},
        value=value if state == "COMPLETE" else None,
        duplicate_of=duplicate_of,
    )
    return Finished(spent, float(spent), config, record)


WORST = 0.96 - 0.85


@pytest.mark.parametrize(
    ("events", "ratio", "regrets"),
    [
        # Config 0 complete at 2 epochs, config 2 at 4: (a) = 4 / 8; the winner is config 0
        # from epoch 2 (regret 0.05) and config 2 from epoch 4; nothing named before epoch 2.
        ([(2, 0, "COMPLETE", 0.90), (4, 2, "COMPLETE", 0.948)], 0.5, (WORST, WORST, 0.05)),
        # A target config pruned does not count; a lucky single seed of config 3 is named.
        ([(1, 1, "PRUNED", None), (2, 3, "COMPLETE", 0.99)], math.inf, (WORST, WORST, 0.11)),
        # A twin of a near-best configuration is not a new find.
        ([(2, 1, "COMPLETE", 0.95), (2, 1, "DUP", 0.95)], 0.25, (WORST, WORST, 0.03)),
        # The best value names the winner; on ties the earlier trial.
        ([(2, 0, "COMPLETE", 0.95), (2, 2, "COMPLETE", 0.95)], 0.25, (WORST, WORST, 0.05)),
    ],
)
def test_metrics_on_a_hand_made_table(events, ratio, regrets) -> None:
    curves = metric_curves()
    trace = Trace()
    for number, (spent, config, state, value) in enumerate(events):
        dup = number - 1 if state == "DUP" else None
        trace.finished.append(
            finished(spent, config, number, "COMPLETE" if dup is not None else state, value, dup)
        )
    trace.spent = max(s for s, *_ in events)
    outcome = measure(curves, trace)
    assert outcome.ratio == pytest.approx(ratio)
    assert outcome.regrets == pytest.approx(regrets)
    assert BUDGETS == (0.05, 0.1, 0.25)  # epochs 0.4, 0.8 and 2 of this grid


def test_the_winner_rule_is_pluggable() -> None:
    curves = metric_curves()
    trace = Trace(finished=[finished(2, 0, 0, value=0.90), finished(2, 2, 1, value=0.948)])

    def worst_first(trials):
        return min(trials, key=lambda t: t.value, default=None)

    assert measure(curves, trace).regrets[-1] == pytest.approx(0.0)
    assert measure(curves, trace, rule=worst_first).regrets[-1] == pytest.approx(0.05)
    assert best_named([]) is None


def test_quantiles_of_censored_replays() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, math.inf], 0.5) == 2.0
    assert quantile([1.0, math.inf, math.inf], 0.5) == math.inf
    assert quantile([1.0, 2.0, math.inf, math.inf], 0.25) == 1.75


def test_a_replay_is_reproducible_and_pairs_its_noise_across_policies() -> None:
    curves = family()
    task = ReplayTask(curves, named_policy("tpe-hyperband"), 2, 1.0)
    a, b = replay_once(task, 3), replay_once(task, 3)
    assert a.ratio == b.ratio and a.regrets == b.regrets and a.trials == b.trials
    assert np.array_equal(seed_order(curves, 3), seed_order(curves, 3))
    assert not np.array_equal(seed_order(curves, 3), seed_order(curves, 4))


# ------------------------------------------------------------------------------ the peers


def _needs(peer: str) -> None:
    if peer not in installed_peers():
        pytest.skip(f"{peer} is not installed: scripts/setup-peers makes .venv-peers")


def test_dehb_asks_and_is_told_on_the_simulated_workers() -> None:
    _needs("dehb")
    from mixer_sweeps.replay._peers import DehbDriver, _Child, peer_python

    curves = family(epochs=9)
    with _Child(peer_python()) as child:
        driver = DehbDriver(child, curves, seed=0, first_seed=seed_order(curves, 0)[:, 0])
        trace = simulate(curves, driver, workers=2, budget=60)
    fidelities = {f.record.epochs[0] for f in trace.finished}
    assert fidelities <= {1, 3, 9} and 1 in fidelities  # DEHB's brackets with eta 3
    assert trace.spent == 60
    complete = [f for f in trace.finished if f.record.state == TrialState.COMPLETE]
    assert all(f.record.epochs == (9,) for f in complete)


@pytest.mark.parametrize("peer", ["syne-asha", "syne-bohb"])
def test_syne_tune_runs_on_its_own_simulator(peer: str) -> None:
    _needs(peer)
    from mixer_sweeps.replay._peers import _Child, _syne_trace, peer_python

    curves = family()
    first = seed_order(curves, 0)[:, 0]
    with _Child(peer_python()) as child:
        trace = _syne_trace(child, curves, peer, 2, 50, 0, first, set(), 10_000)
    assert 0 < trace.spent <= 50
    stopped = [f for f in trace.finished if f.record.state == TrialState.PRUNED]
    assert stopped  # ASHA stops trials below its rungs
    for done in trace.finished:
        c, record = done.config, done.record
        assert record.best[0] == curves.val_acc[c, first[c], : record.epochs[0]].max()


# ---------------------------------------------------------------------------- the command


def test_json_output_has_the_promised_keys(tmp_path: Path) -> None:
    write_table(family(), tmp_path / "t.csv")
    out = sweeps(
        "replay",
        "t.csv",
        "--policy",
        "default",
        "--policy",
        "random-asha",
        "--repeats",
        "3",
        "--workers",
        "1",
        "--workers",
        "4",
        "--json",
        "--out",
        "replayed",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["grid_epochs"] == 72
    assert [(p["name"], p["workers"]) for p in payload["policies"]] == [
        ("default", 1),
        ("default", 4),
        ("random-asha", 1),
        ("random-asha", 4),
    ]
    for policy in payload["policies"]:
        assert isinstance(policy["ratio_median"], float)
        assert policy["ratio_q25"] <= policy["ratio_median"]
        assert policy["ratio_q75"] is None or policy["ratio_median"] <= policy["ratio_q75"]
        assert set(policy["regret"]) == {"0.05", "0.1", "0.25"}
        assert policy["replays"] == 3
    assert (tmp_path / "replayed" / "regret.png").stat().st_size > 1000
    text = sweeps(
        "replay",
        "t.csv",
        "--policy",
        "random",
        "--repeats",
        "2",
        "--workers",
        "2",
        "--out",
        "as-text",
        cwd=tmp_path,
    )
    assert text.returncode == 0, text.stderr
    assert "random: random sampler, no pruner" in text.stdout
    assert "wrote as-text/regret.png" in text.stdout


def test_out_holds_only_a_replay_and_an_earlier_one_is_replaced_only_with_force(
    tmp_path: Path,
) -> None:
    write_table(family(), tmp_path / "t.csv")
    args = ["replay", "t.csv", "--policy", "random", "--workers", "1", "--json"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    refused = sweeps(*args, "--repeats", "2", "--out", "other", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "error: --out other holds files that are not a replay's files (notes.txt); move them"
        " away or give another folder"
    ]
    assert [p.name for p in other.iterdir()] == ["notes.txt"]

    first = sweeps(*args, "--repeats", "2", "--out", "replayed", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "replayed"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert sorted(before) == ["regret.png", "summary.json"]
    again = sweeps(*args, "--repeats", "3", "--out", "replayed", cwd=tmp_path)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.splitlines() == [
        "error: --out replayed already holds a replay's files (regret.png, summary.json); give"
        " --force to replace them"
    ]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before

    forced = sweeps(*args, "--repeats", "3", "--out", "replayed", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["regret.png", "summary.json"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary == json.loads(forced.stdout) and summary["repeats"] == 3
    assert (folder / "regret.png").read_bytes() != before["regret.png"][0]  # its title: 3 replays


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["missing.csv"], "missing.csv is neither a recorded table nor a study"),
        (["bad.csv"], "bad.csv is not a recorded-curves table"),
        (["t.csv", "--policy", "tpe-medain"], "--policy 'tpe-medain': unknown policy"),
        (["t.csv", "--workers", "0"], "--workers must be between 1"),
        (["t.csv", "--repeats", "0"], "--repeats must be between 1"),
        (["t.csv", "--budget", "0"], "--budget must be above 0"),
        (["t.csv", "--budget", "nan"], "--budget must be above 0"),
        (["t.csv", "--policy", "five.yaml"], "5 replicates but t.csv recorded 3 seeds"),
        (["t.csv", "--policy", "typo.yaml"], "pruner.type"),
    ],
)
def test_bad_input_exits_2_naming_it_and_writes_nothing(tmp_path: Path, args, says) -> None:
    write_table(family(), tmp_path / "t.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    (tmp_path / "five.yaml").write_text("study: {name: five, replicates: 5}\n")
    (tmp_path / "typo.yaml").write_text("study:\n  name: typo\n  pruner: {type: medain}\n")
    out = sweeps("replay", *args, "--out", "replayed", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "replayed").exists()


def test_a_peer_that_is_not_installed_is_refused_with_how_to_install_it(tmp_path: Path) -> None:
    write_table(family(), tmp_path / "t.csv")
    env = {**os.environ, "SWEEPS_PEERS_PYTHON": str(tmp_path / "no-such-python")}
    out = sweeps("replay", "t.csv", "--policy", "dehb", cwd=tmp_path, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--policy dehb: the peer is not installed; run scripts/setup-peers" in out.stderr


def test_replay_of_a_finished_grid_study(tmp_path: Path) -> None:
    """A grid study without pruning, run with the CLI, replayed from its storage."""
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(TINY_RUN))
    (tmp_path / "grid.yaml").write_text(
        yaml.safe_dump(
            {
                "study": {
                    "name": "grid",
                    "base": "base.yaml",
                    "sampler": {"type": "grid"},
                    "pruner": {"type": "none"},
                },
                "space": {"model.embed_dim": {"choices": [8, 16]}},
            }
        )
    )
    ran = sweeps("run", "grid.yaml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    curves = read_study(tmp_path / "results" / "grid")
    assert curves.val_acc.shape == (2, 1, 3) and curves.grid_epochs == 6
    history = tmp_path / "results" / "grid" / "trials"
    for c, params in enumerate(curves.configs):
        import pandas as pd

        for trial in history.iterdir():
            spec = yaml.safe_load((trial / "spec.yaml").read_text())
            if spec["model"]["embed_dim"] == params["model.embed_dim"]:
                frame = pd.read_csv(trial / "history.csv")
                assert list(curves.val_acc[c, 0]) == frame["val_acc"].tolist()
    out = sweeps(
        "replay",
        "results/grid",
        "--policy",
        "default",
        "--policy",
        "random",
        "--repeats",
        "2",
        "--json",
        "--out",
        "replayed",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["grid_epochs"] == 6 and len(payload["policies"]) == 4


def test_budget_epochs_rounds_up() -> None:
    curves = family()
    assert budget_epochs(curves, 1.0) == 72 and budget_epochs(curves, 0.01) == 1
