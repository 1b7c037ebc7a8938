"""``sweeps plan``: a study's dry run, on tiny digits studies.

Its counts (grid size, trials, epochs) are exact and checked as numbers; its model sizes against
the models themselves; its time estimate against a real ``sweeps run`` of the same study.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from conftest import TINY_RUN
from mixer_sweeps.cli import app
from mixer_sweeps.data import DATASETS
from mixer_sweeps.models import MlpMixer

runner = CliRunner()
EPOCHS = 2


def write_study(
    path: Path,
    space: dict[str, Any],
    *,
    fixed: dict[str, Any] | None = None,
    run: dict[str, Any] | None = None,
    **study: Any,
) -> Path:
    document = {
        "study": {"name": "plan", "pruner": {"type": "none"}, **study},
        "fixed": {"optim.epochs": EPOCHS, "optim.warmup_epochs": 0, **(fixed or {})},
        "space": space,
        "run": run or TINY_RUN,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def plan_json(path: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["plan", str(path), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sweeps(*args: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mixer_sweeps", *map(str, args)],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "XDG_STATE_HOME": str(cwd / ".state")},
    )


WIDTHS = {"model.embed_dim": {"choices": [16, 32]}, "model.depth": {"choices": [1, 2]}}
LR_STEPS = {"optim.lr": {"low": 1e-3, "high": 3e-3, "step": 1e-3}}
LR_LOG = {"optim.lr": {"low": 1e-3, "high": 1e-2, "log": True}}


@pytest.mark.parametrize(
    ("space", "study", "grid_size", "trials", "configurations", "epochs", "expected"),
    [
        # A grid runs every point once: 2 x 2 x 3 configurations of 2 epochs.
        ({**WIDTHS, **LR_STEPS}, {"sampler": {"type": "grid"}}, 12, 12, 12, 24, 24),
        # ... or n_trials of them.
        (WIDTHS, {"sampler": {"type": "grid"}, "n_trials": 3}, 4, 3, 4, 6, 6),
        # A continuous range is no grid; replicates train each trial twice.
        ({**WIDTHS, **LR_LOG}, {"n_trials": 7, "replicates": 2}, None, 7, None, 28, 28),
        # 5 trials of a 2-point space: the repeats take the first's outcome, train nothing.
        ({"model.depth": {"choices": [1, 2]}}, {"n_trials": 5, "sampler": {"type": "random"}},
         2, 2, None, 4, 4),
        # Median pruner: 2 startup trials train 4 epochs; the other 2 are assumed half stopped
        # at epoch 1: 2 * 4 + 2 * (1 + 4) / 2.
        (WIDTHS, {"sampler": {"type": "grid"}, "fixed": {"optim.epochs": 4},
                  "pruner": {"type": "median", "min_epochs": 1, "startup_trials": 2}},
         4, 4, 4, 16, 13),
        # Successive halving, rungs at epochs 1 and 3 of 9, factor 3: a trial trains
        # 1 + (3 - 1) / 3 + (9 - 3) / 9 epochs in expectation.
        ({"model.depth": {"choices": [1, 2, 3]}},
         {"sampler": {"type": "grid"}, "fixed": {"optim.epochs": 9},
          "pruner": {"type": "successive_halving", "min_epochs": 1, "reduction_factor": 3}},
         3, 3, 3, 27, 7),
        # Hyperband's 3 brackets (first rungs at epochs 1, 3, 9) take 9, 5 and 3 parts of the
        # trials and train 1 + 2/3 + 6/9, 3 + 6/3 and 9 epochs: 3 trials * 73 / 17.
        ({"model.depth": {"choices": [1, 2, 3]}},
         {"sampler": {"type": "grid"}, "fixed": {"optim.epochs": 9},
          "pruner": {"type": "hyperband", "min_epochs": 1, "reduction_factor": 3}},
         3, 3, 3, 27, 3 * 73 / 17),
    ],
)  # fmt: skip
def test_counts_and_grid_size_are_exact(
    tmp_path: Path,
    space: dict[str, Any],
    study: dict[str, Any],
    grid_size: int | None,
    trials: int,
    configurations: int | None,
    epochs: int,
    expected: float,
) -> None:
    study = dict(study)
    fixed = study.pop("fixed", None)
    plan = plan_json(
        write_study(tmp_path / "s.yaml", space, fixed=fixed, **study), "--no-calibrate"
    )
    assert plan["grid_size"] == grid_size
    assert plan["budget"]["trials"] == trials
    assert plan["budget"]["epochs"] == epochs
    assert plan["budget"]["expected_epochs"] == pytest.approx(expected, abs=0.05)
    listed = plan["configurations"]
    assert (None if listed is None else len(listed)) == configurations
    assert [d["path"] for d in plan["dimensions"]] == list(space)
    if listed is not None:  # every point of the grid, once
        assert len({json.dumps(c["params"], sort_keys=True) for c in listed}) == len(listed)
    assert plan["calibration"] is None and plan["seconds"] is None


def test_model_sizes_are_those_of_the_models(tmp_path: Path) -> None:
    space = {**WIDTHS, "model.channel_mlp_dim": {"choices": [8, 64]}}
    plan = plan_json(
        write_study(tmp_path / "s.yaml", space, sampler={"type": "grid"}), "--no-calibrate"
    )
    models = plan["models"]
    assert models["smallest"]["params"] == {
        "model.embed_dim": 16,
        "model.depth": 1,
        "model.channel_mlp_dim": 8,
    }
    assert models["largest"]["params"] == {
        "model.embed_dim": 32,
        "model.depth": 2,
        "model.channel_mlp_dim": 64,
    }
    flops = sorted(c["training_flops"] for c in plan["configurations"])
    assert models["median"]["training_flops"] == flops[(len(flops) - 1) // 2]
    info = DATASETS["digits"]
    for which in ("smallest", "largest"):
        shape = {k.split(".")[1]: v for k, v in models[which]["params"].items()}
        model = MlpMixer(
            num_classes=info.num_classes,
            image_size=info.image_size,
            in_channels=info.in_channels,
            patch_size=TINY_RUN["model"]["patch_size"],
            token_mlp_dim=TINY_RUN["model"]["token_mlp_dim"],
            **shape,
        )
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 1, 8, 8))
        assert models[which]["parameters"] == sum(p.numel() for p in model.parameters())
        assert models[which]["flops"] == counter.get_total_flops()
        assert models[which]["training_flops"] == 3 * counter.get_total_flops()


def test_time_estimate_is_within_a_factor_of_3_of_a_real_run(tmp_path: Path) -> None:
    # Models of a few hundred to a few thousand images/s on one thread, so that a trial trains
    # for about a second and the timings are not all start-up noise.
    space = {"model.embed_dim": {"choices": [16, 64]}, "model.depth": {"choices": [1, 3]}}
    fixed = {"train.threads": 1, "model.channel_mlp_dim": 64}
    study = write_study(tmp_path / "s.yaml", space, fixed=fixed, sampler={"type": "grid"})
    plan = plan_json(study)
    assert [t["which"] for t in plan["calibration"]] == ["smallest", "largest"]
    assert all(t["threads"] == 1 and t["device"] == "cpu" for t in plan["calibration"])
    by_size = sorted(plan["configurations"], key=lambda c: c["training_flops"])
    assert by_size[0]["seconds"] < by_size[-1]["seconds"]
    assert not (tmp_path / "results").exists()  # planning writes nothing

    ran = sweeps("run", study, "--results", tmp_path / "results", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    metrics = sorted((tmp_path / "results" / "plan" / "trials").glob("*/metrics.json"))
    assert len(metrics) == plan["budget"]["trials"] == 4
    measured = sum(json.loads(m.read_text())["seconds"] for m in metrics)
    assert sum(json.loads(m.read_text())["epochs"] for m in metrics) == plan["budget"]["epochs"]
    ratio = plan["seconds"] / measured
    assert 1 / 3 <= ratio <= 3, f"estimated {plan['seconds']:.2f} s, measured {measured:.2f} s"


def test_no_calibrate_trains_nothing(tmp_path: Path) -> None:
    # CIFAR-10 is not in this empty folder and may not be downloaded: any training (any timed
    # step) would have to load it and fail; without calibration the plan needs no data.
    run = {
        **TINY_RUN,
        "data": {"dataset": "cifar10", "root": str(tmp_path / "data"), "download": False},
        "model": {**TINY_RUN["model"], "patch_size": 4},
    }
    study = write_study(tmp_path / "s.yaml", WIDTHS, run=run, sampler={"type": "grid"})
    before = sorted(tmp_path.rglob("*"))

    result = runner.invoke(app, ["plan", str(study), "--no-calibrate"])
    assert result.exit_code == 0, result.output
    assert "grid size: 4 points" in result.stdout
    assert "not estimated (--no-calibrate)" in result.stdout
    assert "Configurations (4)" in result.stdout
    # Not a terminal: each model's row on one line, however wide.
    assert any(
        "smallest" in line and "channel MLP 32" in line for line in result.stdout.split("\n")
    )

    calibrated = runner.invoke(app, ["plan", str(study)])
    assert calibrated.exit_code == 2
    assert "cifar-10" in calibrated.stderr.lower() and "Traceback" not in calibrated.output
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("space", "key"),
    [
        ({"model.patch_size": {"choices": [2, 3]}}, "space.model.patch_size.choices.1"),
        ({"model.depht": {"choices": [1, 2]}}, "space.model.depht"),
    ],
)
def test_a_study_validate_refuses_exits_2_naming_the_key(
    tmp_path: Path, space: dict[str, Any], key: str
) -> None:
    study = write_study(tmp_path / "s.yaml", space, n_trials=2)
    before = sorted(tmp_path.rglob("*"))
    result = sweeps("plan", study, cwd=tmp_path)
    assert result.returncode == 2
    assert key in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert sorted(p for p in tmp_path.rglob("*") if ".state" not in p.parts) == before
