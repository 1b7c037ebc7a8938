"""Promises that a mutation check of main found unguarded: each test here fails when its promise
breaks (``scripts/mutants`` holds a mutant for each).

Real processes and files where the promise is about processes or files (another host is a UTS
namespace, a zombie is a child nobody reaped); the tiny specs of ``conftest.py`` everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import torch.nn.functional as F
import yaml
from optuna.trial import FrozenTrial, TrialState
from scipy import stats
from typer.testing import CliRunner

from conftest import (
    TINY_RUN,
    logged,
    markdown_table,
    on_another_host,
    plain_env,
    study_trials,
    sweeps,
    sweeps_cmd,
    tiny_spec,
    wait_until,
)
from mixer_sweeps.cli import app
from mixer_sweeps.data import normalize
from mixer_sweeps.data._augment import BatchAugment
from mixer_sweeps.results import TrialRecord
from mixer_sweeps.spec import Range, load_study_file
from mixer_sweeps.study import WorkerIdentity, open_storage, run_study, why_abandoned
from mixer_sweeps.study._recovery import recover_abandoned_trials
from mixer_sweeps.study._storage import HEARTBEAT_GRACE_ENV, HEARTBEAT_INTERVAL_ENV
from mixer_sweeps.training import Trainer

FIXED = {"optim.epochs": 2, "optim.warmup_epochs": 0, "optim.min_lr": 0.0}


def write_study(
    path: Path,
    space: dict[str, Any],
    *,
    fixed: dict[str, Any] | None = None,
    enqueue: list[dict[str, Any]] | None = None,
    **study: Any,
) -> Path:
    document: dict[str, Any] = {
        "study": {"name": "tiny", "pruner": {"type": "none"}, **study},
        "fixed": {**FIXED, **(fixed or {})},
        "space": space,
        "run": TINY_RUN,
    }
    if enqueue is not None:
        document["enqueue"] = enqueue
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


# ================================================================================= liveness


def test_a_long_trial_on_another_host_keeps_its_heartbeat_and_is_never_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker on another host (its own UTS namespace: this host cannot look its process up) is
    # alive only by its heartbeat. Its trial runs for several grace periods: the heartbeat must
    # be stamped all along, not only at the trial's start, or other workers take it for dead.
    grace = 5
    monkeypatch.setenv(HEARTBEAT_INTERVAL_ENV, "1")
    monkeypatch.setenv(HEARTBEAT_GRACE_ENV, str(grace))
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-2]}},
        fixed={"optim.epochs": 1000},  # longer than the test looks at it
        sampler={"type": "grid"},
    )
    study_dir, log = tmp_path / "tiny", tmp_path / "log"
    command = on_another_host(sweeps_cmd("run", path, "--results", tmp_path))

    def running() -> FrozenTrial | None:
        found = study_trials(study_dir) if (study_dir / "study.journal").exists() else []
        if not found or "worker" not in found[0].user_attrs:
            return None
        return found[0] if "heartbeat" in found[0].system_attrs else None

    with logged(command, log) as process:
        what = "a running trial with its worker and heartbeat"
        wait_until(lambda: running() is not None, what, process=process, log=log)
        storage = open_storage(None, study_dir=study_dir)
        study = optuna.load_study(study_name="tiny", storage=storage)
        first = running()
        assert first.user_attrs["worker"]["host"] == "other-host"
        beats = {first.system_attrs["heartbeat"]}
        watched = time.monotonic()
        while time.monotonic() - watched < 2 * grace:
            recovered = recover_abandoned_trials(study, storage)
            (trial,) = study.get_trials()
            assert not recovered and trial.state == TrialState.RUNNING, (
                f"a living worker's trial was recovered: {trial.user_attrs.get('reason')}\n"
                + log.read_text()
            )
            beats.add(trial.system_attrs["heartbeat"])
            time.sleep(0.5)
        assert process.poll() is None, log.read_text()
        assert len(beats) > grace, f"heartbeats seen: {sorted(beats)}"
        process.kill()
        process.wait()
    # Killed, the same trial is recovered one grace period after its last heartbeat.
    time.sleep(grace + 1)
    assert recover_abandoned_trials(study, storage) == [0]


def _stat(pid: int) -> list[str]:
    """Fields 3 on of ``/proc/<pid>/stat``: the state, then field 4 and on."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 1 :].split()


@pytest.mark.parametrize("state", ["alive", "zombie", "reaped"])
def test_a_worker_that_is_only_a_zombie_counts_as_gone(state: str) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc: a zombie cannot be told from a living process")
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        start_time = int(_stat(process.pid)[22 - 3])
        if state != "alive":
            process.stdin.close()  # it ends; nobody reaps it until wait()
            deadline = time.monotonic() + 30
            while _stat(process.pid)[0] != "Z":
                assert time.monotonic() < deadline, "the child never became a zombie"
                time.sleep(0.02)
        if state == "reaped":
            process.wait()
        worker = dataclasses.replace(
            WorkerIdentity.of_this_process(), pid=process.pid, start_time=start_time
        )
        trial = TrialRecord(0, TrialState.RUNNING, worker=worker.attr(), heartbeat=time.time())
        why = why_abandoned(trial, grace_s=120)
        if state == "alive":
            assert not worker.is_gone() and why is None
        else:
            assert worker.is_gone(), _stat(process.pid)[0] if state == "zombie" else state
            assert why == f"worker {worker.name} ended during the trial"
    finally:
        if process.stdin and not process.stdin.closed:
            process.stdin.close()
        process.wait()


# ================================================================================== journal


WHOLE_RECORD = b'{"op_code":8,"worker_id":"w","trial_id":1,"user_attr":{"x":1}}\n'
TORN = b'{"op_code":8,"worker_id":"w","trial_id":1,"user_attr":{"reas'


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-trial study; its results folder."""
    root = tmp_path_factory.mktemp("finished")
    path = write_study(
        root / "study.yaml", {"optim.lr": {"choices": [3e-3, 1e-2]}}, sampler={"type": "grid"}
    )
    run = run_study(load_study_file(path), results_dir=root / "results")
    assert run.counts.complete == 2
    return root / "results"


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(TORN, id="cut-short"),
        pytest.param(TORN + b"\n", id="damaged-ending-in-a-newline"),
        pytest.param(TORN + WHOLE_RECORD, id="cut-short-then-continued"),
    ],
)
def test_a_damaged_last_record_is_repaired_like_one_cut_short(
    finished: Path, tmp_path: Path, tail: bytes
) -> None:
    results = tmp_path / "results"
    shutil.copytree(finished, results)
    journal = results / "tiny" / "study.journal"
    whole = journal.read_bytes()
    with journal.open("ab") as f:
        f.write(tail)

    done = sweeps("status", "results/tiny", cwd=tmp_path, env=plain_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("cut short") == 1, done.stderr
    (aside,) = journal.parent.glob("study.journal.torn-*")
    assert aside.read_bytes() == tail
    assert journal.read_bytes() == whole
    assert "2/2 finished" in done.stdout

    again = sweeps("status", "results/tiny", cwd=tmp_path, env=plain_env())
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert [t.state for t in study_trials(results / "tiny")] == [TrialState.COMPLETE] * 2


# ============================================================================ numbers shown


def test_the_run_summary_s_plus_minus_is_the_student_t_95_ci(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-2]}},
        sampler={"type": "grid"},
        replicates=2,
    )
    done = sweeps("run", path, "--results", "results", cwd=tmp_path, env=plain_env(), timeout=170)
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = study_trials(tmp_path / "results" / "tiny")
    seeds = trial.user_attrs["best_val_acc"]
    assert len(seeds) == 2 and statistics.stdev(seeds) > 0.001, seeds
    half = stats.t.ppf(0.975, len(seeds) - 1) * statistics.stdev(seeds) / math.sqrt(len(seeds))
    assert trial.value == pytest.approx(statistics.fmean(seeds))
    expected = f"val_acc {trial.value:.4f} ± {half:.4f} (mean ± 95% CI, n=2 seeds)"
    assert expected in done.stdout, done.stdout


def test_status_counts_pruned_trials_apart_from_complete_ones(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [3e-3, 1e-2]}},
        sampler={"type": "grid"},
    )
    study_file = load_study_file(path)
    run = run_study(study_file, results_dir=tmp_path / "results")
    assert run.counts.complete == 2
    for state in (TrialState.PRUNED, TrialState.PRUNED, TrialState.FAIL):
        run.study.tell(run.study.ask(), state=state)

    done = sweeps("status", "results/tiny", cwd=tmp_path, env=plain_env())
    assert done.returncode == 0, done.stderr
    assert "trials   5/2 finished: 2 complete, 2 pruned, 1 failed;" in done.stdout, done.stdout


def test_the_report_s_n_failed_leaves_out_attempts_queued_again_that_succeeded(
    tmp_path: Path,
) -> None:
    # lr 1e-2 trains; lr 1e6 makes the loss non-finite, a failure of the configuration. The
    # first attempt of lr 1e-2 is a trial whose worker died: it is failed and queued again, and
    # its retry completes. It is no failure of lr 1e-2.
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-2, 1e6]}},
        sampler={"type": "random", "seed": 0},
        n_trials=2,
        enqueue=[{"optim.lr": 1e-2}, {"optim.lr": 1e6}],
    )
    study_file, study_dir = load_study_file(path), tmp_path / "results" / "tiny"
    storage = open_storage(None, study_dir=study_dir)
    study = optuna.create_study(study_name="tiny", storage=storage, direction="maximize")
    study.enqueue_trial({"optim.lr": 1e-2})
    orphan = study.ask()
    study_file.space.suggest(orphan)
    ended = subprocess.Popen(["true"])
    ended.wait()
    orphan.set_user_attr("worker", {**WorkerIdentity.of_this_process().attr(), "pid": ended.pid})

    run = run_study(study_file, results_dir=tmp_path / "results")
    by_lr: dict[float, list[TrialState]] = {}
    for t in run.trials:
        by_lr.setdefault(t.params["optim.lr"], []).append(t.state)
    assert by_lr == {1e-2: [TrialState.FAIL, TrialState.COMPLETE], 1e6: [TrialState.FAIL]}
    assert run.trials[0].user_attrs["reason"].startswith("abandoned")

    done = sweeps("report", "results/tiny", cwd=tmp_path, env=plain_env())
    assert done.returncode == 0, done.stdout + done.stderr
    text = (study_dir / "report" / "report.md").read_text()
    header, *rows = markdown_table(text, "Val accuracy by optim.lr")
    column = header.index("n failed")
    failed = {float(row[0]): int(row[column]) for row in rows}
    assert failed == {1e-2: 0, 1e6: 1}
    assert "2 trials finished: 1 complete, 0 pruned, 1 failed" in text


# ========================================================================= space and plan


@pytest.mark.parametrize(
    ("low", "high", "step", "grid"),
    [
        (0.1, 0.3, 0.1, [0.1, 0.2, 0.3]),
        (0.0, 1.0, 0.1, [round(0.1 * i, 12) for i in range(11)]),
        (0.05, 0.25, 0.05, [0.05, 0.1, 0.15, 0.2, 0.25]),
        (0.7, 0.9, 0.1, [0.7, 0.8, 0.9]),
        (1e-3, 3e-3, 1e-3, [1e-3, 2e-3, 3e-3]),
    ],
)
def test_a_float_step_range_keeps_its_last_point(low, high, step, grid) -> None:
    dim = Range(path="augment.label_smoothing", low=low, high=high, step=step, type="float")
    assert dim.grid() == grid


def test_plan_s_grid_size_counts_a_float_range_s_last_point(tmp_path: Path) -> None:
    space = {
        "augment.label_smoothing": {"low": 0.1, "high": 0.3, "step": 0.1},
        "model.depth": {"choices": [1, 2]},
    }
    path = write_study(tmp_path / "s.yaml", space, sampler={"type": "grid"})
    plan = plan_json(path, "--no-calibrate")
    assert plan["grid_size"] == 6
    assert plan["dimensions"][0]["points"] == 3
    assert plan["budget"]["trials"] == 6
    smoothing = sorted({c["params"]["augment.label_smoothing"] for c in plan["configurations"]})
    assert smoothing == [0.1, 0.2, 0.3]
    assert load_study_file(path).space.grid_size() == 6  # what the grid sampler runs


runner = CliRunner()


def plan_json(path: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["plan", str(path), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_plan_orders_models_by_training_cost_not_parameters(tmp_path: Path) -> None:
    # On 8x8 digits a patch of 8 is one token: the fewest FLOPs, yet more parameters (a wide
    # stem) than patches of 4 or 2. By training cost the order is 8, 4, 2.
    path = write_study(
        tmp_path / "s.yaml", {"model.patch_size": {"choices": [2, 4, 8]}}, sampler={"type": "grid"}
    )
    plan = plan_json(path, "--no-calibrate")
    by_patch = {c["params"]["model.patch_size"]: c for c in plan["configurations"]}
    flops = sorted(by_patch, key=lambda p: by_patch[p]["training_flops"])
    parameters = sorted(by_patch, key=lambda p: by_patch[p]["parameters"])
    assert flops == [8, 4, 2] and parameters != flops  # the two orders differ here
    picked = {k: m["params"]["model.patch_size"] for k, m in plan["models"].items()}
    assert picked == {"smallest": 8, "median": 4, "largest": 2}


@pytest.mark.parametrize(("workers", "n_trials", "side_by_side"), [(1, 4, 1), (2, 4, 2), (3, 2, 2)])
def test_plan_workers_divide_the_wall_time(
    tmp_path: Path, workers: int, n_trials: int, side_by_side: int
) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        {"optim.lr": {"choices": [1e-3, 3e-3, 1e-2, 3e-2]}},
        fixed={"train.threads": 1},
        sampler={"type": "grid"},
        n_trials=n_trials,
    )
    plan = plan_json(path, "--workers", str(workers))
    assert plan["workers"] == workers and plan["budget"]["trials"] == n_trials
    assert plan["seconds"] > 0
    assert plan["wall_seconds"] == pytest.approx(plan["seconds"] / side_by_side)


# ================================================================== spec -> augment -> loss


def _trainer(digits, **overrides: Any) -> Trainer:
    spec = tiny_spec(
        **{
            "augment.random_crop": False,
            "augment.hflip": False,
            "augment.mixup_alpha": 0.0,
            "augment.random_erasing": 0.0,
            **overrides,
        }
    )
    return Trainer(spec, data=digits)


@pytest.mark.parametrize("magnitude", [5, 20])
def test_the_spec_s_randaugment_magnitude_reaches_the_augmentation(digits, magnitude) -> None:
    randaugment = {"num_ops": 2, "magnitude": magnitude, "num_magnitude_bins": 31}
    trainer = _trainer(digits, **{"augment.randaugment": randaugment})
    images, labels = digits.train.images[:256], digits.train.labels[:256]

    def augmented(augment: torch.nn.Module) -> torch.Tensor:
        torch.manual_seed(0)
        return augment(images, labels)[0]

    def reference(m: int) -> BatchAugment:
        return BatchAugment(
            num_classes=digits.info.num_classes,
            random_crop=False,
            hflip=False,
            randaugment_num_ops=2,
            randaugment_magnitude=m,
            randaugment_num_magnitude_bins=31,
            label_smoothing=0.1,
            mean=digits.info.mean,
            std=digits.info.std,
        )

    mine = augmented(trainer.augment)
    assert torch.equal(mine, augmented(reference(magnitude)))
    for other in (0, 9, magnitude + 1):  # the magnitude shows in these images
        assert not torch.equal(mine, augmented(reference(other))), other


@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_the_spec_s_label_smoothing_reaches_the_loss(digits, eps) -> None:
    # With a learning rate of 1e-12 the weights stay put for an epoch, so its training loss is
    # torch's label-smoothed cross-entropy of its first weights over the training split. They
    # are trained ones: an untrained model's near-uniform outputs hardly feel the smoothing.
    overrides = {"augment.randaugment": None, "augment.label_smoothing": eps}
    trained = _trainer(digits, **overrides, **{"optim.lr": 1e-2})
    trained.fit()
    trainer = _trainer(digits, **overrides, **{"optim.lr": 1e-12, "optim.min_lr": 0.0})
    trainer.model.load_state_dict(trained.model.state_dict())
    train = digits.train
    with torch.no_grad():
        logits = trainer.model(normalize(train.images, digits.info.mean, digits.info.std))
        expected = F.cross_entropy(logits, train.labels, label_smoothing=eps).item()
        plain = F.cross_entropy(logits, train.labels).item()
    if eps:
        assert abs(expected - plain) > 0.01  # smoothing shows in this loss
    record = trainer.run_epoch()
    assert record.train_loss == pytest.approx(expected, rel=1e-5)
