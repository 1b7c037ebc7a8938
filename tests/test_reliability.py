"""Checkpoints, exact resume, interrupts and bad input: nothing is lost."""

from __future__ import annotations

import csv
import errno
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from conftest import TINY_RUN, tiny_spec
from mixer_sweeps.cli import app
from mixer_sweeps.results import count_trials
from mixer_sweeps.study import MAX_RETRIES, requeue_trial
from mixer_sweeps.tracking import MemoryTracker
from mixer_sweeps.training import (
    BEST_WEIGHTS_FILE,
    CHECKPOINT_FILE,
    Callback,
    CheckpointError,
    NonFiniteLossError,
    Trainer,
    _outputs,
    load_checkpoint,
    save_checkpoint,
)

runner = CliRunner()
_TIMING = {"seconds", "images_per_s"}


def _curve(path: Path) -> list[dict[str, str]]:
    with open(path / "history.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in _TIMING} for row in csv.DictReader(f)]


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _InterruptAfter(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record.epoch == self.epoch:
            raise KeyboardInterrupt
        return None


@pytest.mark.parametrize("restore_rng", [True, False], ids=["rng-restored", "rng-not-restored"])
def test_resume_is_exact_only_when_rng_is_restored(digits, tmp_path: Path, restore_rng) -> None:
    spec = tiny_spec(**{"optim.epochs": 5, "augment.randaugment": {"num_ops": 1}})
    whole = Trainer(spec, data=digits, run_dir=tmp_path / "whole")
    whole.fit()

    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, data=digits, run_dir=tmp_path / "cut", callbacks=[_InterruptAfter(2)]).fit()
    assert load_checkpoint(tmp_path / "cut" / CHECKPOINT_FILE)["epoch"] == 2
    resumed = Trainer(spec, data=digits, run_dir=tmp_path / "cut")
    torch.manual_seed(12345)  # what a fresh process would have: anything but the saved state
    resumed.load_state_dict(
        load_checkpoint(tmp_path / "cut" / CHECKPOINT_FILE), restore_rng=restore_rng
    )
    resumed.fit()

    same_history = _curve(tmp_path / "whole") == _curve(tmp_path / "cut")
    same_weights = _same_weights(whole.model.state_dict(), resumed.model.state_dict())
    assert same_history == same_weights == restore_rng


def _train_cmd(spec_path: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mixer_sweeps",
        "train",
        str(spec_path),
        "--out",
        str(out),
        *extra,
    ]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    data = {**TINY_RUN, "optim": {**TINY_RUN["optim"], "epochs": 40}}
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "COLUMNS": "120"}

    subprocess.run(
        _train_cmd(spec_path, tmp_path / "whole"),
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )

    proc = subprocess.Popen(
        _train_cmd(spec_path, tmp_path / "cut"),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    history = tmp_path / "cut" / "history.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if history.exists() and len(history.read_text().splitlines()) >= 4:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(tmp_path / "cut" / CHECKPOINT_FILE)["epoch"]
    # history.csv gains its row just before the checkpoint is replaced.
    assert 2 <= killed_at < 40

    done = subprocess.run(
        _train_cmd(spec_path, tmp_path / "cut", "--resume"),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert _curve(tmp_path / "whole") == _curve(tmp_path / "cut")
    best = [
        torch.load(tmp_path / d / BEST_WEIGHTS_FILE, weights_only=True) for d in ("whole", "cut")
    ]
    assert _same_weights(*best)


def test_a_failed_checkpoint_write_keeps_the_previous_one(
    digits, tmp_path: Path, monkeypatch
) -> None:
    real_fdopen = os.fdopen
    calls = {"n": 0}

    class _DiskFull:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, payload):
            self.f.write(payload[: len(payload) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

    def fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        if ".checkpoint.pt." in os.readlink(f"/proc/self/fd/{fd}"):
            calls["n"] += 1
            if calls["n"] == 2:  # the second epoch's checkpoint
                return _DiskFull(f)
        return f

    monkeypatch.setattr(_outputs.os, "fdopen", fdopen)
    spec = tiny_spec(**{"optim.epochs": 3})
    with pytest.raises(CheckpointError, match="No space left on device"):
        Trainer(spec, data=digits, run_dir=tmp_path).fit()
    assert load_checkpoint(tmp_path / CHECKPOINT_FILE)["epoch"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_checkpoint_write_cut_short_by_the_os_keeps_the_previous_one(tmp_path: Path) -> None:
    # A real failed write, whoever does the writing: a child process whose file-size limit
    # (RLIMIT_FSIZE) is half the checkpoint's size gets EFBIG part-way through, as on a full disk.
    path = tmp_path / CHECKPOINT_FILE
    size = 300_000
    save_checkpoint(path, {"format": 1, "w": torch.zeros(size)})
    before = path.read_bytes()
    child = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        import torch
        from mixer_sweeps.training import CheckpointError, save_checkpoint

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing us
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) // 2}, hard))
        try:
            save_checkpoint(Path(sys.argv[1]), {{"format": 1, "w": torch.ones({size})}})
        except CheckpointError as exc:
            sys.exit(str(exc))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", child, str(path)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,  # hang guard: the child takes a few seconds (importing torch)
    )
    assert out.returncode == 1, out.stderr
    assert "File too large" in out.stderr and "the previous one is kept" in out.stderr
    assert path.read_bytes() == before
    assert torch.equal(load_checkpoint(path)["w"], torch.zeros(size))
    assert not list(tmp_path.glob(".*.tmp"))


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_malicious_checkpoint_is_refused_and_its_payload_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / CHECKPOINT_FILE
    torch.save({"format": 1, "payload": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda b: b[: len(b) // 3], "corrupt or truncated"),
        (lambda b: b"\0" * len(b), "corrupt or truncated"),
        (lambda b: b"", "corrupt or truncated"),
    ],
    ids=["truncated", "zeroed", "empty"],
)
def test_resume_from_a_damaged_checkpoint_exits_2_and_keeps_results(
    digits, tmp_path: Path, damage, words
) -> None:
    spec = tiny_spec(**{"optim.epochs": 4})
    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, data=digits, run_dir=tmp_path, callbacks=[_InterruptAfter(2)]).fit()
    path = tmp_path / CHECKPOINT_FILE
    path.write_bytes(damage(path.read_bytes()))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = runner.invoke(
        app, ["train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path), "--resume"]
    )
    assert result.exit_code == 2
    assert words in result.output and str(path) in result.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_non_finite_weights_name_the_epoch_and_keep_the_last_good_checkpoint(
    digits, tmp_path: Path
) -> None:
    class _Explode(Callback):
        def on_epoch_end(self, trainer, record):
            trainer.scheduler.base_lrs = [1e30 for _ in trainer.scheduler.base_lrs]

    spec = tiny_spec(**{"optim.epochs": 4})
    with pytest.raises(NonFiniteLossError, match="in epoch 2"):
        Trainer(spec, data=digits, run_dir=tmp_path, callbacks=[_Explode()]).fit()
    state = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_weights_that_blow_up_on_an_epochs_last_step_stop_the_run(digits, tmp_path: Path) -> None:
    # The last step's loss is computed before its update, so the epoch's mean loss stays finite:
    # only the check of the weights themselves sees it.
    class _LastStepOfEpoch2Explodes(Callback):
        def on_fit_start(self, trainer):
            last = 2 * trainer.steps_per_epoch - 1
            schedule = trainer.scheduler.lr_lambdas[0]
            trainer.scheduler.lr_lambdas[0] = lambda step: (
                math.inf if step == last else schedule(step)
            )

    spec = tiny_spec(**{"optim.epochs": 4})
    with pytest.raises(NonFiniteLossError, match="weights became non-finite in epoch 2"):
        Trainer(spec, data=digits, run_dir=tmp_path, callbacks=[_LastStepOfEpoch2Explodes()]).fit()
    state = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_stale_temp_files_are_cleaned_on_start(digits, tmp_path: Path) -> None:
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    Trainer(tiny_spec(), data=digits, run_dir=tmp_path)
    assert not stale.exists()


def test_existing_results_are_not_overwritten_without_force(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({**TINY_RUN, "optim": {**TINY_RUN["optim"], "epochs": 1}}))
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", str(spec_path), "--out", str(out)]).exit_code == 0
    metrics = (out / "metrics.json").read_bytes()
    again = runner.invoke(app, ["train", str(spec_path), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    assert (out / "metrics.json").read_bytes() == metrics
    resume = runner.invoke(app, ["train", str(spec_path), "--out", str(out), "--resume"])
    assert resume.exit_code == 2 and "finished run" in resume.output
    assert (
        runner.invoke(app, ["train", str(spec_path), "--out", str(out), "--force"]).exit_code == 0
    )


def test_an_unwritable_results_directory_exits_2(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(TINY_RUN))
    (tmp_path / "results").write_text("a file where the results folder should be")
    result = runner.invoke(app, ["train", str(spec_path), "--out", str(tmp_path / "results" / "x")])
    assert result.exit_code == 2
    assert "cannot write to the results directory" in result.output


def test_resume_with_a_changed_spec_is_refused(digits, tmp_path: Path) -> None:
    spec = tiny_spec(**{"optim.epochs": 4})
    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, data=digits, run_dir=tmp_path, callbacks=[_InterruptAfter(1)]).fit()
    with pytest.raises(CheckpointError, match="different spec"):
        Trainer(
            tiny_spec(**{"optim.epochs": 4, "seed": 3}), data=digits, run_dir=tmp_path, resume=True
        )


def test_a_resumed_run_replays_its_history_to_trackers(digits, tmp_path: Path) -> None:
    spec = tiny_spec(**{"optim.epochs": 4})
    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, data=digits, run_dir=tmp_path, callbacks=[_InterruptAfter(2)]).fit()
    tracker = MemoryTracker()
    result = Trainer(spec, data=digits, run_dir=tmp_path, resume=True, callbacks=[tracker]).fit()
    assert [r.epoch for r in tracker.epochs] == [1, 2, 3, 4]
    assert tracker.epochs == result.history


def test_a_configuration_that_kills_its_worker_is_retried_max_retries_times() -> None:
    # What recover_abandoned_trials does each time the configuration's worker dies.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.suggest_float("optim.lr", 1e-4, 1e-2, log=True)
    params = trial.params
    study.tell(trial, state=TrialState.FAIL)
    attempts = 1
    while requeue_trial(study, study.trials[-1]):
        assert attempts <= MAX_RETRIES, f"queued again after {attempts} failed attempts"
        retry = study.ask()  # takes the queued configuration
        assert retry.params == params
        assert retry.user_attrs == {"retry_of": attempts - 1, "first_attempt": 0}
        study.tell(retry, state=TrialState.FAIL)
        attempts += 1
    assert attempts == MAX_RETRIES + 1
    assert not [t for t in study.trials if t.state == TrialState.WAITING]
    counts = count_trials(study.trials)
    # One failed configuration, whatever the number of attempts it took.
    assert (counts.finished, counts.failed, counts.retried) == (1, 1, MAX_RETRIES)
    # Interrupted trials (Ctrl-C) are not the configuration's fault: queued again past the limit.
    assert requeue_trial(study, study.trials[-1], max_retries=None)
