"""The study's ledger under attack (issue 17, points 1, 6 and 9), with real processes and files.

- **Surplus claims.** Two runs in different folders that claim the last trial in the same instant
  (forced with the claim-delay hook): the claim that gave way is never a failure that
  ``--retry-failed`` queues again, and every trial that trained is counted by status and report.
- **Heartbeat settings.** A grace shorter than a few heartbeat intervals is refused before
  anything is written, naming both variables; a live worker on this host is never taken for
  dead, however old its heartbeat.
- **A parent killed with kill -9.** The workers of ``sweeps run --workers 2`` notice that their
  parent is gone, finish the trial they run and exit; a re-run finishes the study exactly.

Every command runs as ``python -m mixer_sweeps`` in its own session, so nothing outlives a test.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import FrozenTrial, TrialState

from conftest import (
    TINY_RUN,
    logged,
    pid_alive,
    race_for_the_last_trial,
    study_trials,
    sweeps,
    sweeps_cmd,
    wait_until,
)
from mixer_sweeps.study._storage import HEARTBEAT_GRACE_ENV, HEARTBEAT_INTERVAL_ENV

FIXED = {"optim.epochs": 1, "optim.warmup_epochs": 0, "optim.min_lr": 0.0}
# Wide enough that two random draws of it never meet: lr alone is continuous.
WIDE_SPACE = {
    "optim.lr": {"low": 3e-3, "high": 3e-2, "log": True},
    "model.token_mlp_dim": {"choices": [4, 8, 16]},
}
TRAINED = (TrialState.COMPLETE, TrialState.PRUNED)


def _write_study(path: Path, *, fixed: dict[str, Any] | None = None, **study: Any) -> Path:
    document = {
        "study": {
            "name": "tiny",
            "sampler": {"type": "random"},
            "pruner": {"type": "none"},
            **study,
        },
        "fixed": {**FIXED, **(fixed or {})},
        "space": WIDE_SPACE,
        "run": TINY_RUN,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _stored(url: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name="tiny", storage=url).get_trials()


def _status(url: str, cwd: Path) -> dict[str, Any]:
    result = sweeps("status", "results/tiny", "--storage", url, "--json", cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    (study,) = json.loads(result.stdout)["studies"]
    return study


def _report_rows(study_dir: Path) -> list[dict[str, str]]:
    with (study_dir / "report" / "trials.csv").open(newline="") as file:
        return list(csv.DictReader(file))


# ============================================================================ surplus claims


@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A study of one trial on a shared SQLite file that two runs in folders ``a`` and ``b``
    claimed in the same instant (the delay holds both between counting and claiming): trial 0
    trained, trial 1 gave way. Returns the study file and the storage file, to copy."""
    tmp_path = tmp_path_factory.mktemp("raced")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = _write_study(tmp_path / "study.yaml", n_trials=1)
    race_for_the_last_trial(study, url, tmp_path)
    trials = _stored(url)
    assert len(trials) == 2, "both runs claimed a trial: the race did not happen"
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials[1].system_attrs.get("surplus") is True
    return study, tmp_path / "shared.db"


def _copy(raced: tuple[Path, Path], tmp_path: Path) -> tuple[Path, str, Path]:
    study, db = raced
    shutil.copyfile(db, tmp_path / "shared.db")
    folder = tmp_path / "c"
    folder.mkdir()
    return study, f"sqlite:///{tmp_path / 'shared.db'}", folder


def _check_every_trained_trial_is_counted(url: str, folder: Path, n_trials: int) -> None:
    trials = _stored(url)
    trained = [t.number for t in trials if t.state in TRAINED]
    assert len(trained) == n_trials, [(t.number, t.state, t.system_attrs) for t in trials]
    status = _status(url, folder)
    assert (status["counts"]["finished"], status["n_trials"]) == (n_trials, n_trials), status
    rows = _report_rows(folder / "results" / "tiny")
    assert sorted(int(r["number"]) for r in rows) == trained, rows


def test_a_surplus_claim_is_never_retried_and_every_trained_trial_is_counted(
    raced: tuple[Path, Path], tmp_path: Path
) -> None:
    study, url, folder = _copy(raced, tmp_path)
    surplus = _stored(url)[1]
    # The claim that gave way is no failure of the study: there is nothing to retry. A larger
    # budget then gets exactly one more trial, and every count shows both.
    result = sweeps(
        "run", study, "--results", "results", "--storage", url, "--retry-failed",
        "--n-trials", 2, cwd=folder,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "queued again to retry" not in output, output
    assert "Traceback" not in output, output
    trials = _stored(url)
    assert not [t.number for t in trials if t.user_attrs.get("retry_of") == surplus.number]
    _check_every_trained_trial_is_counted(url, folder, 2)


def test_a_trial_that_trained_is_counted_whatever_marks_it_carries(
    raced: tuple[Path, Path], tmp_path: Path
) -> None:
    # An older version's --retry-failed queued the surplus claim again with its mark copied
    # (written here as it wrote it); the retry trains (params of its own: the claim gave way
    # before it had any), and counts.
    study, url, folder = _copy(raced, tmp_path)
    storage = optuna.load_study(study_name="tiny", storage=url)
    surplus = storage.get_trials()[1]
    storage.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=surplus.params,
            distributions=surplus.distributions,
            user_attrs={"retry_of": surplus.number, "first_attempt": surplus.number},
            system_attrs={
                **surplus.system_attrs,
                "failed_trial": surplus.number,
                "retry_history": [surplus.number],
                "crash_history": [],
            },
        )
    )
    result = sweeps(
        "run", study, "--results", "results", "--storage", url, "--n-trials", 2, cwd=folder
    )
    assert result.returncode == 0, result.stdout + result.stderr
    retry = _stored(url)[2]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["retry_of"] == surplus.number
    _check_every_trained_trial_is_counted(url, folder, 2)


# ======================================================================= heartbeat settings


@pytest.mark.parametrize(
    ("interval", "grace", "shown"),
    [
        ("10", "20", ["SWEEPS_HEARTBEAT_GRACE_S=20", "SWEEPS_HEARTBEAT_INTERVAL_S=10", "30 s"]),
        ("60", None, ["SWEEPS_HEARTBEAT_GRACE_S=120 (the default)", "INTERVAL_S=60", "180 s"]),
    ],
)
def test_a_heartbeat_grace_of_fewer_than_three_intervals_is_refused(
    tmp_path: Path, interval: str, grace: str | None, shown: list[str]
) -> None:
    study = _write_study(tmp_path / "study.yaml", n_trials=1)
    env = {k: v for k, v in os.environ.items() if k != HEARTBEAT_GRACE_ENV}
    env[HEARTBEAT_INTERVAL_ENV] = interval
    if grace is not None:
        env[HEARTBEAT_GRACE_ENV] = grace
    result = sweeps("run", study, "--results", "results", cwd=tmp_path, env=env, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    for text in [*shown, "at least 3 times"]:
        assert text in output, output
    assert not (tmp_path / "results").exists(), "a refused run wrote its results folder"


def test_a_live_worker_on_this_host_is_never_taken_for_dead_however_late_its_heartbeat(
    tmp_path: Path,
) -> None:
    # Run `a` trains the study's one trial and stamps its heartbeat once a minute (a valid
    # setting); run `b`, in another folder on the same storage, allows 3 s of silence. However
    # late a's heartbeat, its process lives on this host: b must leave the trial to it.
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = _write_study(tmp_path / "study.yaml", n_trials=1, fixed={"optim.epochs": 500})
    slow = {**os.environ, HEARTBEAT_INTERVAL_ENV: "60", HEARTBEAT_GRACE_ENV: "180"}
    quick = {**os.environ, HEARTBEAT_INTERVAL_ENV: "1", HEARTBEAT_GRACE_ENV: "3"}
    folders = {name: tmp_path / name for name in ("a", "b")}
    for folder in folders.values():
        folder.mkdir()
    command = sweeps_cmd("run", study, "--results", "results", "--storage", url)
    log_a, log_b = folders["a"] / "log", folders["b"] / "log"
    with logged(command, log_a, cwd=folders["a"], env=slow) as a:

        def silent_for_4_s() -> bool:
            assert a.poll() is None, log_a.read_text()
            try:
                trials = _stored(url)
            except KeyError:  # no study yet
                return False
            if not trials or trials[0].state != TrialState.RUNNING:
                return False
            return time.time() - trials[0].system_attrs.get("heartbeat", time.time()) > 4

        wait_until(silent_for_4_s, "a running trial silent for 4 s")
        with logged(command, log_b, cwd=folders["b"], env=quick) as b:
            assert b.wait(timeout=120) == 0, log_b.read_text()
        trials = _stored(url)
        assert [t.state for t in trials] == [TrialState.RUNNING], [
            (t.number, t.state, t.user_attrs.get("reason")) for t in trials
        ]
        trial = trials[0]
        assert trial.user_attrs["worker"]["pid"] == a.pid
        assert a.poll() is None, log_a.read_text()
    assert "ended by another worker" not in log_a.read_text(), log_a.read_text()


# ======================================================================= a parent killed -9


def test_workers_whose_parent_is_killed_finish_their_trial_and_stop(tmp_path: Path) -> None:
    n_trials = 4
    study = _write_study(tmp_path / "study.yaml", n_trials=n_trials, fixed={"optim.epochs": 10})
    study_dir, log = tmp_path / "results" / "tiny", tmp_path / "log"
    command = sweeps_cmd("run", study, "--results", "results", "--workers", 2)
    with logged(command, log, cwd=tmp_path) as parent:

        def running() -> list[FrozenTrial]:
            assert parent.poll() is None, log.read_text()
            trials = study_trials(study_dir)
            return [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]

        wait_until(lambda: len(running()) == 2, "two trials in training")
        workers = {t.user_attrs["worker"]["pid"] for t in running()}
        assert parent.pid not in workers and len(workers) == 2
        parent.kill()
        parent.wait()
        killed_at = datetime.datetime.now()  # Optuna stamps trials with the local time
        # Each finishes the trial it trains, then stops: no new trial, no trial left running.
        wait_until(
            lambda: not any(map(pid_alive, workers)), "end of the orphaned workers", timeout=120
        )

    trials = study_trials(study_dir)
    described = [(t.number, t.state, t.datetime_start, t.user_attrs.get("reason")) for t in trials]
    assert all(t.state == TrialState.COMPLETE for t in trials), described
    assert all(t.datetime_start < killed_at for t in trials), f"claimed after the kill: {described}"
    assert 2 <= len(trials) < n_trials, described
    for trial in trials:
        assert (study_dir / "trials" / str(trial.number) / "metrics.json").is_file()
    assert "its sweeps run" in log.read_text() and "Traceback" not in log.read_text()
    assert not (study_dir / "report").exists()

    again = sweeps("run", study, "--results", "results", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    trials = study_trials(study_dir)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    assert len(_report_rows(study_dir)) == n_trials
