"""Where local workers run: the pure placement decision, table-driven (no GPU needed)."""

from __future__ import annotations

import pytest

from mixer_sweeps.study._placement import parse_gpus, place_workers


@pytest.mark.parametrize(
    ("workers", "gpus", "cores", "per_gpu", "expected"),
    [
        # No GPU: only the cores are split, as disjoint contiguous sets.
        (1, [], [0, 1], None, [(None, (0, 1))]),
        (2, [], [0, 1, 2, 3, 4], None, [(None, (0, 1, 2)), (None, (3, 4))]),
        # More workers than cores: one core each, shared round-robin.
        (3, [], [0, 1], None, [(None, (0,)), (None, (1,)), (None, (0,))]),
        # Round-robin over the GPUs.
        (
            4,
            ["0", "1"],
            [0, 1, 2, 3, 4, 5, 6, 7],
            None,
            [("0", (0, 1)), ("1", (2, 3)), ("0", (4, 5)), ("1", (6, 7))],
        ),
        # --gpus 0,2,3 picks devices; the workers follow the list.
        (3, ["0", "2", "3"], [0, 1, 2], None, [("0", (0,)), ("2", (1,)), ("3", (2,))]),
        # --workers-per-gpu without --workers: every GPU gets that many.
        (
            None,
            ["1", "3"],
            [4, 5, 6, 7],
            2,
            [("1", (4,)), ("3", (5,)), ("1", (6,)), ("3", (7,))],
        ),
        # The cores the process may use, not 0..n-1.
        (2, [], [2, 5, 9], None, [(None, (2, 5)), (None, (9,))]),
        (None, [], [0, 1], None, [(None, (0, 1))]),
    ],
)
def test_placement(workers, gpus, cores, per_gpu, expected) -> None:
    placed = place_workers(workers, gpus=gpus, cores=cores, workers_per_gpu=per_gpu)
    assert [(p.gpu, p.cores) for p in placed] == expected
    assert [p.index for p in placed] == list(range(len(expected)))
    assert all(p.threads == len(p.cores) for p in placed)


@pytest.mark.parametrize(
    ("workers", "gpus", "cores", "per_gpu", "message"),
    [
        (0, [], [0], None, "workers must be at least 1 but got 0"),
        (5, ["0", "1"], [0, 1], 2, "5 workers do not fit on 2 GPUs with 2 per GPU"),
        (1, [], [0], 2, "--workers-per-gpu needs GPUs, but none is visible"),
        (1, ["0"], [0], 0, "workers per GPU must be at least 1 but got 0"),
        (1, ["0", "0"], [0], None, "GPUs must be distinct"),
        (1, [], [], None, "no CPU core"),
    ],
)
def test_bad_placements_name_the_value(workers, gpus, cores, per_gpu, message) -> None:
    with pytest.raises(ValueError, match=message):
        place_workers(workers, gpus=gpus, cores=cores, workers_per_gpu=per_gpu)


@pytest.mark.parametrize(
    ("text", "gpus"), [("0", ["0"]), ("0,2,3", ["0", "2", "3"]), (" 1 , 2", ["1", "2"])]
)
def test_parse_gpus(text: str, gpus: list[str]) -> None:
    assert parse_gpus(text) == gpus


@pytest.mark.parametrize("text", ["", "0,,1", "1,1"])
def test_parse_gpus_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="--gpus"):
        parse_gpus(text)


def test_spawned_workers_get_their_gpu_and_cores(tmp_path) -> None:
    # GPUs are injected by name: on a machine without them, CUDA_VISIBLE_DEVICES is still what
    # each spawned worker process finds in its environment, which it stores with its trials.
    import os

    from test_study import make_study

    from mixer_sweeps.study import run_study

    study_file = make_study(
        tmp_path,
        {"optim.lr": {"choices": [1e-2, 2e-2, 3e-2, 4e-2]}},
        sampler={"type": "grid"},
        pruner={"type": "none"},
    )
    run = run_study(
        study_file, workers=None, gpus=["5", "7"], workers_per_gpu=1, results_dir=tmp_path
    )
    assert not run.errors and run.counts.complete == 4
    workers = {t.user_attrs["worker"]["pid"]: t.user_attrs["worker"] for t in run.trials}
    assert len(workers) == 2 and os.getpid() not in workers
    assert sorted(w["gpu"] for w in workers.values()) == ["5", "7"]
    cores = sorted(os.sched_getaffinity(0))
    shares = [tuple(w["cores"]) for w in workers.values()]
    if len(cores) >= 2:
        assert sorted(c for share in shares for c in share) == cores  # disjoint, all of them
    # The trials' spec asks for one thread, which wins over the worker's share once it trains.
    assert all(w["threads"] == len(w["cores"]) for w in workers.values())
