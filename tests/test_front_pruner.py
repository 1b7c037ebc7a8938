"""The front pruner, table by table, on real in-memory Optuna studies."""

from __future__ import annotations

import random
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from mixer_sweeps.study import FrontPruner

optuna.logging.set_verbosity(optuna.logging.WARNING)

C, P, R = TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING
PARAMS = {"params": "minimize"}


def peer(state: TrialState, costs: dict[str, float] | None, curve: dict[int, float]) -> dict:
    return {"state": state, "costs": costs, "curve": curve}


def judge(
    peers: list[dict],
    costs: dict[str, float] | None,
    curve: dict[int, float],
    *,
    directions: dict[str, str] = PARAMS,
    learning: str = "maximize",
    **settings: Any,
) -> bool:
    """Whether the pruner prunes a running trial with ``costs`` and ``curve`` (its reports by
    epoch) in a study that holds ``peers``."""
    study = optuna.create_study(directions=[learning, *directions.values()])
    for p in [*peers, peer(R, costs, curve)]:
        values = None
        if p["state"] == C:
            values = [p["curve"][max(p["curve"])], *(p["costs"][m] for m in directions)]
        attrs = {} if p["costs"] is None else {"costs": p["costs"]}
        study.add_trial(
            create_trial(
                state=p["state"], values=values, intermediate_values=p["curve"], user_attrs=attrs
            )
        )
    trial = study.get_trials()[-1]
    pruner = FrontPruner(list(directions), directions, learning_direction=learning, **settings)
    return pruner.prune(study, trial)


def five(state: TrialState, params: float, value: float, epochs: int = 2) -> list[dict]:
    return [
        peer(state, {"params": params}, {e: value for e in range(1, epochs + 1)}) for _ in range(5)
    ]


CASES = [
    pytest.param(five(C, 100, 0.9), {"params": 10}, {1: 0.1, 2: 0.1}, {}, False, id="cheapest"),
    pytest.param(
        five(C, 100, 0.9), {"params": 1000}, {1: 0.2, 2: 0.2}, {}, True, id="cheaper-peers-better"
    ),
    pytest.param(
        five(C, 100, 0.1), {"params": 1000}, {1: 0.5, 2: 0.5}, {}, False, id="cheaper-peers-worse"
    ),
    pytest.param(
        five(C, 100, 0.9), {"params": 100}, {1: 0.2, 2: 0.2}, {}, True, id="equal-cost-counts"
    ),
    pytest.param(
        five(C, 100, 0.9),
        {"params": 1000},
        {1: 0.2, 2: 0.2},
        {"min_epochs": 3},
        False,
        id="before-min-epochs",
    ),
    pytest.param(
        five(R, 100, 0.9), {"params": 1000}, {1: 0.2, 2: 0.2}, {}, False, id="startup-none-complete"
    ),
    pytest.param(
        five(C, 100, 0.9)[:4] + five(R, 100, 0.9),
        {"params": 1000},
        {1: 0.2, 2: 0.2},
        {},
        False,
        id="startup-four-of-five-complete",
    ),
    pytest.param(
        five(C, 5000, 0.9) + five(R, 100, 0.9),
        {"params": 1000},
        {1: 0.2, 2: 0.2},
        {},
        True,
        id="running-cheaper-peers-count-once-startup-is-done",
    ),
    pytest.param(
        five(C, 5000, 0.9) + five(P, 100, 0.9),
        {"params": 1000},
        {1: 0.2, 2: 0.2},
        {},
        True,
        id="pruned-peers-count",
    ),
    pytest.param(
        five(C, 100, 0.9)[:2] + five(C, 5000, 0.9),
        {"params": 1000},
        {1: 0.2, 2: 0.2},
        {},
        False,
        id="too-few-cheaper-peers",
    ),
    pytest.param(
        five(C, 100, 0.9)[:2] + five(C, 5000, 0.9),
        {"params": 1000},
        {1: 0.2, 2: 0.2},
        {"startup_trials": 2},
        True,
        id="enough-cheaper-peers-for-a-lower-startup",
    ),
    pytest.param(
        five(C, 100, 0.9, epochs=1),
        {"params": 1000},
        {1: 0.2, 2: 0.2},
        {},
        False,
        id="peers-never-reached-the-epoch",
    ),
    pytest.param(
        five(C, 100, 0.9), None, {1: 0.2, 2: 0.2}, {}, False, id="unknown-costs-never-pruned"
    ),
    pytest.param(
        five(C, 100, 0.9), {"params": 1000}, {1: 0.2, 2: float("nan")}, {}, True, id="nan-pruned"
    ),
]


@pytest.mark.parametrize(("peers", "costs", "curve", "settings", "pruned"), CASES)
def test_front_pruner_table(peers, costs, curve, settings, pruned) -> None:
    assert judge(peers, costs, curve, **settings) is pruned


def test_the_cheapest_trial_is_never_pruned_whatever_the_others_report() -> None:
    rng = random.Random(0)
    for _ in range(30):
        peers = [
            peer(
                rng.choice([C, C, P, R]),
                {"params": rng.randint(11, 10_000)},
                {e: rng.random() for e in range(1, rng.randint(1, 4) + 1)},
            )
            for _ in range(rng.randint(5, 15))
        ]
        mine = {e: rng.random() * 0.01 for e in range(1, 4)}
        assert not judge(peers, {"params": 10}, mine, startup_trials=1, min_epochs=1)


@pytest.mark.parametrize(("peer_speed", "pruned"), [(1000.0, True), (100.0, True), (10.0, False)])
def test_images_per_s_is_cheaper_when_higher(peer_speed: float, pruned: bool) -> None:
    speed = {"images_per_s": "maximize"}
    peers = [peer(C, {"images_per_s": peer_speed}, {1: 0.9, 2: 0.9}) for _ in range(5)]
    mine = {"images_per_s": 100.0}
    assert judge(peers, mine, {1: 0.2, 2: 0.2}, directions=speed) is pruned


def test_a_peer_must_cost_no_more_on_every_cost() -> None:
    both = {"params": "minimize", "flops": "minimize"}
    mine = {"params": 1000, "flops": 1000}
    fewer_params_more_flops = [peer(C, {"params": 10, "flops": 5000}, {2: 0.9}) for _ in range(5)]
    assert not judge(fewer_params_more_flops, mine, {2: 0.1}, directions=both)
    cheaper_on_both = [peer(C, {"params": 10, "flops": 10}, {2: 0.9}) for _ in range(5)]
    assert judge(cheaper_on_both, mine, {2: 0.1}, directions=both)


@pytest.mark.parametrize(("mine", "pruned"), [(2.0, True), (0.1, False)])
def test_a_minimized_learning_metric(mine: float, pruned: bool) -> None:
    peers = five(C, 100, 0.5)  # val_loss 0.5 at every epoch
    assert judge(peers, {"params": 1000}, {2: mine}, learning="minimize") is pruned


@pytest.mark.parametrize(("percentile", "pruned"), [(25.0, False), (50.0, False), (75.0, True)])
def test_percentile_counts_from_the_worst(percentile: float, pruned: bool) -> None:
    peers = [peer(C, {"params": 10}, {2: v / 10}) for v in range(1, 10)]  # 0.1 ... 0.9
    assert judge(peers, {"params": 1000}, {2: 0.55}, percentile=percentile) is pruned


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="cost metric"):
        FrontPruner([], {})
    with pytest.raises(ValueError, match="percentile"):
        FrontPruner(["params"], PARAMS, percentile=101)
    with pytest.raises(ValueError, match="direction"):
        FrontPruner(["params"], {"params": "smaller"})


def test_tpe_samples_a_front_study_with_pruned_trials() -> None:
    from optuna.distributions import FloatDistribution

    from mixer_sweeps.spec import SamplerSettings, SearchSpace
    from mixer_sweeps.study import make_sampler

    settings = SamplerSettings(type="tpe", startup_trials=0)
    x = FloatDistribution(0.0, 1.0)

    def study_with(sampler: optuna.samplers.BaseSampler) -> optuna.Study:
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        for i in range(4):
            study.add_trial(
                create_trial(
                    params={"x": i / 4}, distributions={"x": x}, values=[i / 4, i], state=C
                )
            )
        for i in range(2):
            study.add_trial(
                create_trial(
                    params={"x": i / 2},
                    distributions={"x": x},
                    intermediate_values={1: 0.1 * i},
                    state=P,
                )
            )
        return study

    plain = study_with(make_sampler(settings, SearchSpace(()), seed=0))
    with pytest.raises(RuntimeError, match="multi-objective"):
        plain.ask({"x": x})
    front = study_with(
        make_sampler(settings, SearchSpace(()), seed=0, learning_direction="maximize")
    )
    assert 0.0 <= front.ask({"x": x}).params["x"] <= 1.0
