"""What commands say under attack, with real processes and files (issue 17, points 8 and 9).

A launch job's count is its own trials; no raw Optuna log line reaches the user; an inline
``run:`` reports every mistake with its path and line; a crafted checkpoint whose values the
trainer could never have written is refused like a damaged one, before anything is written.
"""

from __future__ import annotations

import collections
import copy
import json
import math
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import TINY_RUN, sweeps
from mixer_sweeps.study import open_storage


def _sweeps(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(cwd / ".state")}
    return sweeps(*args, cwd=cwd, env=env, timeout=timeout)  # generous: only a hang reaches it


def _write_study(path: Path, space: dict[str, Any], epochs: int, **extra: Any) -> Path:
    document = {
        "study": {"name": "tiny", "pruner": {"type": "none"}, **extra.pop("study", {})},
        "fixed": {"optim.epochs": epochs, "optim.warmup_epochs": 0, "optim.min_lr": 0.0},
        "space": space,
        **extra,
        "run": TINY_RUN,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


# ------------------------------------------------------------------- launch: each job's count

JOB_LINE = re.compile(r"job \S+ \(worker (\d+)\): ended, (\d+) trial\(s\) finished by it")


def test_each_local_launch_job_counts_the_trials_it_finished(tmp_path: Path) -> None:
    # Trials long enough (8 epochs) that both jobs are up before the first could run them all.
    path = _write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-3, 3e-3, 1e-2, 3e-2]}},
        epochs=8,
        study={"n_trials": 4, "sampler": {"type": "grid", "seed": 0}},
    )
    results = tmp_path / "results"
    done = _sweeps(
        "launch",
        str(path),
        *("--executor", "local", "--workers", "2", "--results", str(results)),
        cwd=tmp_path,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "tiny: 4 of 4 trials finished" in output

    said = {int(w): int(n) for w, n in JOB_LINE.findall(output)}
    assert sorted(said) == [0, 1], output
    study = optuna.load_study(
        study_name="tiny", storage=open_storage(None, study_dir=results / "tiny")
    )
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    by_pid = collections.Counter(t.user_attrs["worker"]["pid"] for t in trials)
    assert len(by_pid) == 2, f"one job ran every trial, so the counts cannot differ: {by_pid}"
    # Each job's own trials, not the study's: together the jobs finished 4, not 8.
    assert sum(said.values()) == 4, output
    assert sorted(said.values()) == sorted(by_pid.values()), output
    # And each job's log closes with its own count too.
    logs = [p.read_text() for p in sorted((results / "tiny" / "launch").glob("*/*_log.out"))]
    in_run = [int(n) for log in logs for n in re.findall(r"(\d+) of them in this run", log)]
    assert sorted(in_run) == sorted(by_pid.values()), logs


# ------------------------------------------------------------------- no raw Optuna log lines

OPTUNA_LINE = re.compile(r"^\[[DIWEC] \d{4}-\d\d-\d\d ", re.MULTILINE)


@pytest.fixture(scope="module")
def enqueued_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished study of one trial, queued from ``enqueue:``."""
    tmp = tmp_path_factory.mktemp("enqueued")
    _write_study(
        tmp / "study.yaml",
        {"optim.lr": {"low": 1e-3, "high": 1e-1, "log": True}},
        epochs=1,
        study={"n_trials": 1, "sampler": {"type": "random", "seed": 0}},
        enqueue=[{"optim.lr": 0.01}],
    )
    first = _sweeps("run", "study.yaml", "--results", "r", cwd=tmp)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert "queued 1 configurations of enqueue: to run first" in output
    assert not OPTUNA_LINE.search(output), output
    return tmp


@pytest.mark.parametrize(
    "args",
    [
        # The re-run meets the enqueued configuration again; Optuna logs skipping it at INFO.
        ["run", "study.yaml", "--results", "r", "--n-trials", "2"],
        ["status", "study.yaml", "--results", "r"],
        ["best", "study.yaml", "--results", "r"],
        ["report", "study.yaml", "--results", "r", "--out", "report-again"],
    ],
    ids=["rerun-n-trials", "status", "best", "report"],
)
def test_no_raw_optuna_log_line_after_enqueue(enqueued_study: Path, args: list[str]) -> None:
    done = _sweeps(*args, cwd=enqueued_study)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not OPTUNA_LINE.search(output), output
    assert "Traceback" not in output


# ------------------------------------------------------------ every mistake of an inline run

_RULES_AT_EVERY_LEVEL = """\
study: {name: inl, n_trials: 2}
space:
  optim.lr: {low: 0.001, high: 0.1, log: true}
run:
  data: {dataset: digits, val_size: 287}
  model: {patch_size: 5, embed_dim: 16, depth: 1, token_mlp_dim: 8, channel_mlp_dim: 32}
  optim: {lr: 0.1, epochs: 3, warmup_epochs: 10, min_lr: 1.0}
  augment: {mixup_alpha: -1}
"""

_SECTION_NOT_A_MAPPING = """\
study: {name: inl, n_trials: 2}
fixed:
  optim.epochs: 2
space:
  optim.lr: {low: 0.001, high: 0.1, log: true}
run:
  data: {dataset: digits, val_size: 287}
  model: {patch_size: 3, embed_dim: 16, depth: 1, token_mlp_dim: 8, channel_mlp_dim: 32}
  optim: 3
  augment: {crop_padding: 20}
  train: {threads: -1}
"""

_EVERY_SECTION = """\
study: {name: not a name, n_trials: 2}
fixed:
  optim.epochs: 0
space:
  optim.lr: {low: 0.001, high: 0.01, log: true}
run:
  data: {dataset: digits, val_size: 287}
  model: {patch_size: 2, embed_dim: 0, depth: 1, token_mlp_dim: 8, channel_mlp_dim: 32}
  optim: {lr: -1, warmup_epochs: 0}
"""

_STANDALONE = """\
name: standalone
data: {dataset: digits, val_size: 287}
model: {patch_size: 5, embed_dim: 16, depth: 1, token_mlp_dim: 8, channel_mlp_dim: 32}
optim: {lr: 0.1, epochs: 3, warmup_epochs: 10, min_lr: 1.0}
augment: {mixup_alpha: -1}
"""

MISTAKES = [
    # A key's own bound, a section's rules and the whole spec's rules at once: the section's
    # rules, failing again for a default (warm-up 5 > 3 epochs), once hid the whole spec's.
    (
        "rules-at-every-level",
        _RULES_AT_EVERY_LEVEL,
        [
            ("run.augment.mixup_alpha", "mixup_alpha: -1"),
            ("run.optim.warmup_epochs", "warmup_epochs: 10"),
            ("run.optim.min_lr", "warmup_epochs: 10"),
            ("run.model.patch_size", "patch_size: 5"),
        ],
    ),
    # A section that is no mapping once ended the check with one "<overrides>" line.
    (
        "section-not-a-mapping",
        _SECTION_NOT_A_MAPPING,
        [
            ("run.optim", "optim: 3"),
            ("run.train.threads", "threads: -1"),
            ("run.model.patch_size", "patch_size: 3"),
            ("run.augment.crop_padding", "crop_padding: 20"),
        ],
    ),
    (
        "every-section",
        _EVERY_SECTION,
        [
            ("study.name", "not a name"),
            ("fixed.optim.epochs", "optim.epochs: 0"),
            ("run.model.embed_dim", "embed_dim: 0"),
            ("run.optim.lr", "lr: -1"),
        ],
    ),
    (
        "standalone-spec",
        _STANDALONE,
        [
            ("augment.mixup_alpha", "mixup_alpha: -1"),
            ("optim.warmup_epochs", "warmup_epochs: 10"),
            ("optim.min_lr", "warmup_epochs: 10"),
            ("model.patch_size", "patch_size: 5"),
        ],
    ),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(
    ("text", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_every_mistake_is_reported_with_its_path_and_line(
    tmp_path: Path, command: str, text: str, expected: list[tuple[str, str]]
) -> None:
    standalone = not text.startswith("study:")
    if standalone and command == "run":
        command = "train"
    (tmp_path / "file.yaml").write_text(text, encoding="utf-8")
    lines = text.splitlines()
    where = {"validate": [], "run": ["--results", "out"], "train": ["--out", "out"]}[command]
    done = _sweeps(command, "file.yaml", *where, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"file.yaml: {len(expected)} problems" in output, output
    for path, marker in expected:
        (line,) = [i for i, text in enumerate(lines, 1) if marker in text]
        assert f"  {path} (line {line}): " in output, (path, output)
    assert "<overrides>" not in output and "Traceback" not in output
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------ checkpoints with crafted values


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def damage(state: dict[str, Any]) -> None:
        *parents, leaf = key.split(".")
        node = state
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(leaf) if isinstance(node, list) else leaf] = value

    return damage


def _nan_weights(state: dict[str, Any]) -> None:
    state["model"]["head.weight"][0, 0] = math.nan


CRAFTED = [
    ("epoch-1e12", _set("epoch", 10**12), ["epoch", "1000000000000"]),
    ("epoch-negative", _set("epoch", -1), ["epoch", "-1"]),
    ("epoch-past-the-spec", _set("epoch", 4), ["epoch", "4", "optim.epochs"]),
    ("best-val-acc-nan", _set("best_val_acc", math.nan), ["best_val_acc", "nan"]),
    ("best-val-acc-inf", _set("best_val_acc", math.inf), ["best_val_acc", "inf"]),
    ("best-val-acc-above-1", _set("best_val_acc", 1.5), ["best_val_acc", "1.5"]),
    ("best-val-acc-not-the-historys", _set("best_val_acc", 0.99), ["best_val_acc", "0.99"]),
    ("best-epoch-past-epoch", _set("best_epoch", 5), ["best_epoch", "5"]),
    ("epochs-since-best-negative", _set("epochs_since_best", -1), ["epochs_since_best", "-1"]),
    ("history-val-acc-nan", _set("history.0.val_acc", math.nan), ["history.0.val_acc", "nan"]),
    ("history-lr-inf", _set("history.0.lr", math.inf), ["history.0.lr", "inf"]),
    ("weights-nan", _nan_weights, ["model.head.weight", "NaN"]),
    ("best-state-missing", _set("best_state", None), ["best_state", "missing"]),
    (
        "optimizer-lr-inf",
        _set("optimizer.param_groups.0.lr", math.inf),
        ["optimizer.param_groups.0.lr", "inf"],
    ),
    (
        "scheduler-far-ahead",
        _set("scheduler.last_epoch", 10**9),
        ["scheduler.last_epoch", "1000000000"],
    ),
]


def _write_checkpoint(tmp: Path, state: dict[str, Any]) -> Path:
    import torch

    (tmp / "tiny.yaml").write_text(yaml.safe_dump(TINY_RUN, sort_keys=False), encoding="utf-8")
    (tmp / "run").mkdir()
    torch.save(state, tmp / "run" / "checkpoint.pt")
    return tmp / "run" / "checkpoint.pt"


# Through `sweeps train --resume`, the cases; every case is also read back below.
REFUSED_BY_TRAIN = [
    "epoch-1e12",
    "epoch-negative",
    "best-val-acc-nan",
    "best-val-acc-inf",
    "best-epoch-past-epoch",
    "weights-nan",
]


@pytest.mark.parametrize(
    ("damage", "named"),
    [c[1:] for c in CRAFTED if c[0] in REFUSED_BY_TRAIN],
    ids=[c[0] for c in CRAFTED if c[0] in REFUSED_BY_TRAIN],
)
def test_train_refuses_a_checkpoint_with_values_the_trainer_never_writes(
    tmp_path: Path,
    checkpoint_state: dict[str, Any],
    damage: Callable[[dict[str, Any]], None],
    named: list[str],
) -> None:
    state = copy.deepcopy(checkpoint_state)
    damage(state)
    checkpoint = _write_checkpoint(tmp_path, state)
    before = checkpoint.read_bytes()
    done = _sweeps("train", "tiny.yaml", "--resume", "--out", "run", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "run/checkpoint.pt" in lines[0] and "cannot be resumed" in lines[0], lines[0]
    for part in named:
        assert part in lines[0], (part, lines[0])
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt"]
    assert checkpoint.read_bytes() == before


@pytest.mark.parametrize(("damage", "named"), [c[1:] for c in CRAFTED], ids=[c[0] for c in CRAFTED])
def test_every_crafted_value_is_named_when_the_checkpoint_is_read(
    tmp_path: Path,
    checkpoint_state: dict[str, Any],
    damage: Callable[[dict[str, Any]], None],
    named: list[str],
) -> None:
    from mixer_sweeps.spec import RunSpec
    from mixer_sweeps.training import CheckpointError, check_resumable

    state = copy.deepcopy(checkpoint_state)
    damage(state)
    checkpoint = _write_checkpoint(tmp_path, state)
    with pytest.raises(CheckpointError) as refused:
        check_resumable(RunSpec.model_validate(TINY_RUN), checkpoint)
    message = str(refused.value)
    assert "\n" not in message and str(checkpoint) in message
    for part in named:
        assert part in message, (part, message)


def test_the_undamaged_checkpoint_resumes_to_finite_results(
    tmp_path: Path, checkpoint_state: dict[str, Any]
) -> None:
    _write_checkpoint(tmp_path, copy.deepcopy(checkpoint_state))
    done = _sweeps("train", "tiny.yaml", "--resume", "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["reason"] == "ran all 3 epochs"
    assert 0 <= metrics["best_val_acc"] <= 1 and 1 <= metrics["best_epoch"] <= 3
