"""W&B tracking without an API key or a network: offline runs read back with wandb's own reader.

Every test runs with HOME in a temporary folder (no netrc, no wandb settings), no ``WANDB_*``
variable, and pytest's stdin, which fails on any read; subprocesses get ``stdin=DEVNULL``.
Runs are read back with ``wandb leet inspect --json``, never by parsing the .wandb format here.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import TINY_RUN, tiny_spec
from mixer_sweeps.cli import app
from mixer_sweeps.tracking import (
    TrackingWarning,
    WandbTracker,
    _guarded_run,
    _study_log,
    log_study,
    make_trackers,
    offline_runs,
)
from mixer_sweeps.training import HISTORY_COLUMNS, Callback, Stop, Trainer, TrainResult

FAKE_KEY = "k" * 40
pytestmark = pytest.mark.usefixtures("no_wandb_login")


def _inspect(run_dir: Path, *, summary: bool = False) -> Any:
    """``wandb leet inspect --json`` on a run folder: the run's records, or its summary."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)]
    if summary:
        command.insert(-1, "--summary")
    env = {**os.environ, "WANDB_MODE": "offline"}  # no telemetry upload from the reader
    out = subprocess.run(
        command, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    if summary:
        return json.loads(out.stdout)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def _history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["history"]["item"] for r in records if r["type"] == "history"]


def _run_record(records: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r["run"] for r in records if r["type"] == "run")


def _csv_val_acc(run_dir: Path) -> list[float]:
    with (run_dir / "history.csv").open() as f:
        return [float(row["val_acc"]) for row in csv.DictReader(f)]


def _only_offline_run(results: Path) -> Path:
    runs = sorted((results / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    return runs[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _view(spec, **fields: Any) -> SimpleNamespace:
    """What a tracker reads of a trainer, for driving a tracker by hand."""
    defaults = dict(run_dir=None, num_params=1, device="cpu", epoch=0, best_val_acc=-1.0)
    return SimpleNamespace(spec=spec, history=[], **{**defaults, **fields})


def _result(state: str = "completed", reason: str = "test") -> TrainResult:
    return TrainResult(
        history=[],
        best_val_acc=0.5,
        best_epoch=1,
        test_acc=None,
        test_loss=None,
        num_params=1,
        seconds=0.1,
        state=state,
        reason=reason,
    )


class PruneAfter(Callback):
    """What a study's pruner does: stop the run after an epoch with state ``pruned``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record.epoch == self.epoch:
            return Stop("pruned", f"pruned at epoch {record.epoch} by the test")
        return None


# ----------------------------------------------------------------------------- trial runs


def test_trial_run_holds_history_config_summary_and_curves(digits, tmp_path: Path) -> None:
    spec = tiny_spec(**{"tracking.wandb.mode": "auto", "tracking.wandb.tags": ["smoke"]})
    results = tmp_path / "results" / "st"
    params = {"optim.lr": 3e-3}
    trackers = make_trackers(
        spec, results_dir=results, study_name="st", trial_number=3, params=params
    )
    assert [type(t) for t in trackers] == [WandbTracker]
    assert trackers[0].mode == "offline"  # auto without a key
    run_dir = results / "trial-3"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)
        result = Trainer(spec, data=digits, run_dir=run_dir, callbacks=trackers).fit()

    wandb_run = _only_offline_run(results)
    assert trackers[0].path == wandb_run
    records = _inspect(wandb_run)
    history = [row for row in _history(records) if "val_acc" in row]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert [row["val_acc"] for row in history] == _csv_val_acc(run_dir)
    # One name per quantity: each epoch is logged under the history.csv columns.
    logged = {k: v for k, v in history[0].items() if not k.startswith("_")}
    assert set(logged) == set(HISTORY_COLUMNS)
    assert logged == result.history[0].as_dict()
    run = _run_record(records)
    assert (run["run_group"], run["job_type"], run["display_name"]) == ("st", "trial", "st-3")
    assert run["run_id"].startswith("st-3-")

    info = _inspect(wandb_run, summary=True)
    resolved = spec.model_dump(mode="json")
    assert {k: info["config"][k] for k in resolved} == resolved
    assert info["config"]["trial"] == {"number": 3, "params": params}
    assert info["config"]["study"] == "st"
    assert info["tags"] == ["smoke"]
    assert info["exit_code"] == 0
    summary = info["summary"]
    assert summary["state"] == "completed"
    assert summary["reason"] == result.reason
    assert summary["best_val_acc"] == result.best_val_acc
    assert summary["test_acc"] == result.test_acc
    assert summary["num_params"] == result.num_params
    assert "params" not in summary
    assert info["config"]["device"] == "cpu"
    assert summary["epochs"] == 3
    assert summary["curves"]["_type"] == "image-file"
    assert (wandb_run / "files" / summary["curves"]["path"]).stat().st_size > 0


def test_pruned_trial_says_pruned_and_retries_get_new_ids(digits, tmp_path: Path) -> None:
    spec = tiny_spec(**{"tracking.wandb.mode": "offline"})
    results = tmp_path / "st"
    ids = []
    for attempt in range(2):  # the same trial twice, as after a retry
        trackers = make_trackers(spec, results_dir=results, study_name="st", trial_number=0)
        Trainer(
            spec,
            data=digits,
            run_dir=results / f"trial-0-{attempt}",
            callbacks=[PruneAfter(2), *trackers],
        ).fit()
        info = _inspect(trackers[0].path, summary=True)
        assert info["summary"]["state"] == "pruned"
        assert info["summary"]["reason"] == "pruned at epoch 2 by the test"
        assert info["summary"]["epochs"] == 2
        assert "test_acc" not in info["summary"]
        ids.append(info["run_id"])
    assert len(set(ids)) == 2
    assert len(list((results / "wandb").glob("offline-run-*"))) == 2


def test_failed_run_says_failed_with_the_reason(digits, tmp_path: Path) -> None:
    from mixer_sweeps.training import NonFiniteLossError

    spec = tiny_spec(
        **{
            "optim.lr": 1e30,
            "optim.warmup_epochs": 0,
            "optim.min_lr": 1.0,
            "tracking.wandb.mode": "offline",
        }
    )
    trackers = make_trackers(spec, results_dir=tmp_path, study_name="st", trial_number=7)
    with pytest.raises(NonFiniteLossError):
        Trainer(spec, data=digits, run_dir=tmp_path / "trial-7", callbacks=trackers).fit()
    info = _inspect(_only_offline_run(tmp_path), summary=True)
    assert info["summary"]["state"] == "failed"
    assert info["summary"]["reason"].startswith("NonFiniteLossError")
    assert info["summary"]["epochs"] == 1 and info["summary"]["num_params"] > 0
    assert info["exit_code"] == 1


class InterruptAfter(Callback):
    """Ctrl-C at the end of an epoch, after the callbacks before it heard the epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record.epoch == self.epoch:
            raise KeyboardInterrupt
        return None


def test_a_resumed_run_shows_its_whole_curve(digits, tmp_path: Path) -> None:
    spec = tiny_spec(**{"optim.epochs": 4, "tracking.wandb.mode": "offline"})
    results = tmp_path / "st"
    run_dir = results / "trial-0"
    first = make_trackers(spec, results_dir=results, study_name="st", trial_number=0)
    with pytest.raises(KeyboardInterrupt):
        Trainer(spec, data=digits, run_dir=run_dir, callbacks=[*first, InterruptAfter(2)]).fit()
    info = _inspect(first[0].path, summary=True)
    assert (info["summary"]["state"], info["summary"]["epochs"]) == ("stopped", 2)
    assert info["exit_code"] == 1

    again = make_trackers(spec, results_dir=results, study_name="st", trial_number=1)
    result = Trainer(spec, data=digits, run_dir=run_dir, resume=True, callbacks=again).fit()
    history = [row for row in _history(_inspect(again[0].path)) if "val_acc" in row]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert [row["val_acc"] for row in history] == [r.val_acc for r in result.history]
    assert [row["val_acc"] for row in history] == _csv_val_acc(run_dir)


def test_unreachable_server_warns_once_falls_back_offline_and_trains(
    digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    spec = tiny_spec(**{"tracking.wandb.mode": "online"})
    results = tmp_path / "st"
    trackers = make_trackers(spec, results_dir=results, study_name="st", trial_number=0)
    assert trackers[0].mode == "online"

    started = time.monotonic()
    with pytest.warns(TrackingWarning, match="could not start") as caught:
        result = Trainer(spec, data=digits, run_dir=results / "trial-0", callbacks=trackers).fit()
    # Hang guard, not a speed goal: about 10 s here (a 3 s init limit, then an offline run), so
    # only a wandb call that outlived its limits gets near 120 s.
    assert time.monotonic() - started < 120
    assert len([w for w in caught if issubclass(w.category, TrackingWarning)]) == 1
    assert result.state == "completed" and result.epochs_run == 3
    assert json.loads((results / "trial-0" / "metrics.json").read_text())["epochs"] == 3
    assert trackers[0].mode == "offline"
    wandb_run = _only_offline_run(results)
    history = [row for row in _history(_inspect(wandb_run)) if "val_acc" in row]
    assert [row["val_acc"] for row in history] == _csv_val_acc(results / "trial-0")

    # The next trial of the same process goes straight to offline, silently: it never tries the
    # server again (what that saves in time is in benchmarks/offline_tracking.py).
    import wandb

    modes = []
    real_init = wandb.init

    def recording_init(*args, **kwargs):
        modes.append(kwargs.get("mode"))
        return real_init(*args, **kwargs)

    monkeypatch.setattr(wandb, "init", recording_init)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)
        trackers = make_trackers(spec, results_dir=results, study_name="st", trial_number=1)
        assert trackers[0].mode == "offline"
        Trainer(spec, data=digits, run_dir=results / "trial-1", callbacks=trackers).fit()
    assert modes == ["offline"]
    assert trackers[0].mode == "offline" and trackers[0].path is not None


def test_a_failing_wandb_call_never_stops_training(
    digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    def broken_init(*args, **kwargs):
        raise RuntimeError("wandb exploded")

    monkeypatch.setattr(wandb, "init", broken_init)
    spec = tiny_spec(**{"tracking.wandb.mode": "offline"})
    trackers = make_trackers(spec, results_dir=tmp_path)
    with pytest.warns(TrackingWarning, match="wandb exploded"):
        result = Trainer(spec, data=digits, run_dir=tmp_path / "run", callbacks=trackers).fit()
    assert result.state == "completed"
    assert trackers[0].mode == "disabled"


def test_a_hanging_wandb_call_is_abandoned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_guarded_run, "LOG_LIMIT_S", 0.5)
    spec = tiny_spec(**{"tracking.wandb.mode": "offline"})
    tracker = WandbTracker(
        mode="offline",
        results_dir=Path("unused"),
        wandb_spec=spec.tracking.wandb,
        group="g",
        job_type="train",
        name="hang",
    )

    class Hanging:
        dir = "unused/files"

        def log(self, row):
            time.sleep(30)

        def finish(self, exit_code=0):
            time.sleep(30)

    tracker._run.run = Hanging()
    started = time.monotonic()
    with pytest.warns(TrackingWarning, match="did not return within"):
        tracker.on_epoch_end(_view(spec), _record(1))
        tracker.on_epoch_end(_view(spec), _record(2))  # no second wait: the run was dropped
        tracker.on_fit_end(_view(spec), _result())
    assert time.monotonic() - started < 5
    # A wedged wandb is not tried again by later runs of the process.
    assert make_trackers(spec, results_dir=tmp_path) == []


def _record(epoch: int):
    from mixer_sweeps.training import EpochRecord

    return EpochRecord(epoch, 1.0, 0.5, 1.0, 0.5, 1e-3, 0.1, 1000.0)


# --------------------------------------------------------------------------- mode decision


def test_make_trackers_mode_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def modes(mode: str) -> list[str]:
        spec = tiny_spec(**{"tracking.wandb.mode": mode})
        return [t.mode for t in make_trackers(spec, results_dir=tmp_path)]

    assert modes("disabled") == []
    assert modes("offline") == ["offline"]
    assert modes("auto") == ["offline"]
    with pytest.warns(TrackingWarning, match="no W&B API key"):
        assert modes("online") == ["offline"]

    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert modes("auto") == []
    assert modes("offline") == ["offline"]  # an explicit spec mode wins
    monkeypatch.delenv("WANDB_MODE")

    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    assert modes("auto") == ["online"]
    monkeypatch.delenv("WANDB_API_KEY")

    netrc = Path(os.environ["HOME"]) / ".netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {FAKE_KEY}\n")
    netrc.chmod(0o600)
    assert modes("auto") == ["online"]


def test_standalone_run_is_named_after_the_spec(tmp_path: Path) -> None:
    spec = tiny_spec(**{"tracking.wandb.mode": "offline"})
    (tracker,) = make_trackers(spec, results_dir=tmp_path)
    assert tracker.name == "tiny-digits"
    assert tracker._run.group == "tiny-digits" and tracker._run.job_type == "train"


def test_importing_tracking_does_not_import_wandb() -> None:
    code = "import sys, mixer_sweeps.tracking; sys.exit('wandb' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------------------ study run


def _small_study() -> optuna.Study:
    study = optuna.create_study(direction="maximize", study_name="st")

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("optim.lr", 1e-4, 1e-2, log=True)
        depth = trial.suggest_int("model.depth", 1, 3)
        if trial.number == 2:
            raise optuna.TrialPruned()
        trial.set_user_attr("test_acc", 0.5 + 0.1 * depth)
        return lr * depth

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=5)
    return study


def _trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial, as the report's data layer gives it: number, state name, value,
    times, params and user attributes (Optuna's own frame, NaN where a trial has no value)."""
    frame = study.trials_dataframe()
    assert set(frame["state"]) == {"COMPLETE", "PRUNED"}  # Optuna's state names
    return frame


def _best(study: optuna.Study) -> dict[str, Any]:
    best = study.best_trial
    return {"number": best.number, "value": best.value, "params": best.params}


def test_log_study_writes_the_trials_frame_history_importances_and_summary(
    tmp_path: Path,
) -> None:
    study = _small_study()
    frame = _trials_frame(study)
    spec = tiny_spec(**{"tracking.wandb.mode": "offline"})
    importances = {"optim.lr": 0.75, "model.depth": 0.25}
    path = log_study(
        frame,
        study_name="st",
        objective="value",
        direction="maximize",
        importances=importances,
        best=_best(study),
        results_dir=tmp_path / "st",
        spec=spec,
    )
    assert path is not None and path == _only_offline_run(tmp_path / "st")

    records = _inspect(path)
    run = _run_record(records)
    assert (run["run_group"], run["job_type"], run["display_name"]) == ("st", "study", "st-study")
    info = _inspect(path, summary=True)
    summary = info["summary"]
    assert summary["n_trials"] == 5 and summary["n_pruned"] == 1 and summary["n_complete"] == 4
    assert summary["best_trial"] == study.best_trial.number
    assert summary["best_value"] == study.best_value
    assert summary["best_params"] == study.best_params
    assert info["config"]["study"] == {
        "name": "st",
        "objective": "value",
        "direction": "maximize",
        "trials": 5,
    }

    # The frame as given, column for column; NaN (the pruned trial's value) as empty.
    table = json.loads((path / "files" / summary["trials"]["path"]).read_text())
    assert table["columns"] == list(frame.columns)
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert [r["number"] for r in rows] == [t.number for t in study.trials]
    for row, trial in zip(rows, study.trials, strict=True):
        assert row["state"] == trial.state.name
        assert row["value"] == trial.value  # None for the pruned trial
        assert row["params_optim.lr"] == trial.params["optim.lr"]
        assert row["params_model.depth"] == trial.params["model.depth"]
        assert row["user_attrs_test_acc"] == trial.user_attrs.get("test_acc")
        assert row["datetime_start"] == trial.datetime_start.isoformat(timespec="seconds")
        assert row["duration"] == pytest.approx(trial.duration.total_seconds())

    # One history row per COMPLETE trial, in number order, with the best value so far.
    per_trial = [row for row in _history(records) if "value" in row]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [row["trial"] for row in per_trial] == [t.number for t in complete] == [0, 1, 3, 4]
    assert [row["value"] for row in per_trial] == [t.value for t in complete]
    running_best = [max(t.value for t in complete[: i + 1]) for i in range(len(complete))]
    assert [row["best_value"] for row in per_trial] == running_best

    # The importances the caller computed, as given: W&B computes none of its own.
    assert {k: summary[f"importance/{k}"] for k in importances} == importances
    assert not {k for k in summary if k.startswith("importance/")} - {
        f"importance/{k}" for k in importances
    }
    importance_table = json.loads(
        (path / "files" / summary["param_importance"]["path"]).read_text()
    )
    assert importance_table["data"] == [[k, v] for k, v in importances.items()]


def test_log_study_without_importances_or_a_best_trial(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"number": [1, 0], "state": ["FAIL", "RUNNING"], "val_acc": [float("nan"), None]}
    )
    spec = tiny_spec(**{"tracking.wandb.mode": "offline"})
    path = log_study(
        frame,
        study_name="st",
        objective="val_acc",
        direction="maximize",
        importances={},
        best=None,
        results_dir=tmp_path,
        spec=spec,
    )
    assert path is not None
    summary = _inspect(path, summary=True)["summary"]
    assert (summary["n_trials"], summary["n_fail"], summary["n_running"]) == (2, 1, 1)
    assert not {"best_trial", "best_value", "best_params", "param_importance"} & set(summary)
    assert not [k for k in summary if k.startswith("importance/")]
    assert not [row for row in _history(_inspect(path)) if "value" in row]


@pytest.mark.parametrize(
    ("direction", "best_values"), [("maximize", [0.5, 0.5, 0.7]), ("minimize", [0.5, 0.2, 0.2])]
)
def test_study_history_respects_the_direction_and_skips_unfinished_trials(
    direction: str, best_values: list[float]
) -> None:
    frame = pd.DataFrame(
        {
            "number": [4, 0, 1, 2, 3],
            "state": ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "FAIL"],
            "acc": [0.7, 0.5, 0.9, 0.2, None],
        }
    )
    rows = _study_log._best_so_far(frame, "acc", direction)
    assert [(r["trial"], r["value"]) for r in rows] == [(0, 0.5), (2, 0.2), (4, 0.7)]
    assert [r["best_value"] for r in rows] == best_values


def test_log_study_refuses_a_frame_without_its_columns(tmp_path: Path) -> None:
    spec = tiny_spec(**{"tracking.wandb.mode": "offline"})
    frame = pd.DataFrame({"number": [0], "state": ["COMPLETE"]})
    with pytest.raises(ValueError, match="'val_acc'"):
        log_study(
            frame,
            study_name="st",
            objective="val_acc",
            direction="maximize",
            importances={},
            best=None,
            results_dir=tmp_path,
            spec=spec,
        )
    assert not (tmp_path / "wandb").exists()


def test_log_study_disabled_writes_nothing(tmp_path: Path) -> None:
    spec = tiny_spec(**{"tracking.wandb.mode": "disabled"})
    study = _small_study()
    path = log_study(
        _trials_frame(study),
        study_name="st",
        objective="value",
        direction="maximize",
        importances={"optim.lr": 1.0},
        best=_best(study),
        results_dir=tmp_path,
        spec=spec,
    )
    assert path is None
    assert not (tmp_path / "wandb").exists()


# ---------------------------------------------------------------------------- the commands

runner = CliRunner()


def test_sweeps_train_then_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump({**TINY_RUN, "tracking": {"wandb": {"mode": "auto"}}}))
    result = runner.invoke(app, ["train", str(spec_file), "--epochs", "2"], input="")
    assert result.exit_code == 0, result.output
    results = Path("results") / "tiny-digits"
    wandb_run = _only_offline_run(results)
    assert f"W&B offline run in {wandb_run}/" in result.output
    assert f"sweeps sync {results}" in result.output
    info = _inspect(wandb_run, summary=True)
    assert (info["name"], info["summary"]["state"]) == ("tiny-digits", "completed")
    assert offline_runs(results) == ([wandb_run], 0)

    dry = subprocess.run(
        [sys.executable, "-m", "mixer_sweeps", "sync", str(results), "--dry-run"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert "would upload 1 offline run(s)" in dry.stdout
    assert wandb_run.name in dry.stderr  # wandb's own listing

    no_key = runner.invoke(app, ["sync", str(results)], input="")
    assert no_key.exit_code == 2
    assert "no W&B API key" in no_key.output

    (tmp_path / "empty").mkdir()
    nothing = runner.invoke(app, ["sync", str(tmp_path / "empty")], input="")
    assert nothing.exit_code == 0
    assert "nothing to sync" in nothing.output


def test_sync_gives_up_on_an_unreachable_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tiny_spec(**{"tracking.wandb.mode": "offline"})
    tracker = make_trackers(spec, results_dir=tmp_path)[0]
    tracker.on_fit_start(_view(spec))
    tracker.on_fit_end(_view(spec), _result())
    env = {
        **os.environ,
        "WANDB_API_KEY": FAKE_KEY,
        "WANDB_BASE_URL": f"http://127.0.0.1:{_closed_port()}",
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "mixer_sweeps", "sync", str(tmp_path), "--timeout", "3"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        # Hang guard: a few seconds here; "gave up after 3 s" below is the check of --timeout.
        timeout=120,
        cwd=elsewhere,
    )
    assert out.returncode == 1
    assert "gave up after 3 s" in out.stderr
    assert list(elsewhere.iterdir()) == []  # wandb's own logs went beside the runs


# ---------------------------------------------------------------------------- with a study


def test_a_study_leaves_one_run_per_trial_and_a_study_run(tmp_path: Path) -> None:
    from rich.console import Console

    from mixer_sweeps.report import OBJECTIVE, report_run
    from mixer_sweeps.spec import load_study_file
    from mixer_sweeps.study import run_study

    base = {**TINY_RUN, "tracking": {"wandb": {"mode": "auto", "tags": ["study-test"]}}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(base))
    study_yaml = tmp_path / "st.yaml"
    study_yaml.write_text(
        yaml.safe_dump(
            {
                "study": {
                    "name": "st",
                    "base": "tiny.yaml",
                    "n_trials": 3,
                    "sampler": {"type": "random", "seed": 0},
                    "pruner": {"type": "none"},
                },
                "space": {"optim.lr": {"low": 1e-3, "high": 1e-2, "log": True}},
            }
        )
    )
    outcome = run_study(load_study_file(study_yaml), results_dir=tmp_path / "results")
    report_run(outcome, Console(quiet=True))  # the end of `sweeps run`: report and study run
    study_dir = tmp_path / "results" / "st"
    trials = {t.number: t for t in outcome.trials}
    assert sorted(trials) == [0, 1, 2]

    runs: dict[str, list[dict[str, Any]]] = {}
    for run_dir in sorted((study_dir / "wandb").glob("offline-run-*")):
        info = _inspect(run_dir, summary=True)
        runs.setdefault(info["name"], []).append({"dir": run_dir, **info})
    assert sorted(runs) == ["st-0", "st-1", "st-2", "st-study"]
    assert all(len(found) == 1 for found in runs.values())

    for number, trial in trials.items():
        (info,) = runs[f"st-{number}"]
        trial_dir = study_dir / trial.user_attrs["run_dir"]
        history = [row for row in _history(_inspect(info["dir"])) if "val_acc" in row]
        assert [row["val_acc"] for row in history] == _csv_val_acc(trial_dir)
        resolved = yaml.safe_load((trial_dir / "spec.yaml").read_text())
        assert {k: info["config"][k] for k in resolved} == resolved
        assert info["config"]["trial"] == {"number": number, "params": trial.params}
        assert info["config"]["optim"]["lr"] == trial.params["optim.lr"]
        assert info["tags"] == ["study-test"]
        assert info["summary"]["state"] == "completed"
        assert info["summary"]["best_val_acc"] == trial.value
        assert info["summary"]["num_params"] == trial.user_attrs["num_params"]

    (study_run,) = runs["st-study"]
    table_file = study_run["dir"] / "files" / study_run["summary"]["trials"]["path"]
    table = json.loads(table_file.read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert [(r["number"], r[OBJECTIVE]) for r in rows] == [(n, t.value) for n, t in trials.items()]
