"""A study shared by two workers through a real PostgreSQL server (its own throwaway cluster)."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState
from test_study import make_study

from mixer_sweeps.results import count_trials
from mixer_sweeps.study import run_study
from mixer_sweeps.study._worker import CLAIM_DELAY_ENV


def test_two_workers_share_a_postgres_study_and_a_rerun_adds_nothing(
    tmp_path: Path, postgres_url: str, monkeypatch
) -> None:
    # Each worker waits a second between counting the trials and claiming one: without the claim
    # lock both would claim the third trial.
    monkeypatch.setenv(CLAIM_DELAY_ENV, "1")
    study_file = make_study(
        tmp_path,
        {"optim.lr": {"choices": [1e-3, 1e-2, 3e-2]}},
        sampler={"type": "grid", "seed": 0},
        pruner={"type": "none"},
        n_trials=3,
    )
    run = run_study(study_file, workers=2, results_dir=tmp_path, storage=postgres_url)
    assert not run.errors and run.fatal is None
    assert [t.number for t in run.trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in run.trials)
    assert sorted(t.params["optim.lr"] for t in run.trials) == [1e-3, 1e-2, 3e-2]
    assert len({t.user_attrs["worker"]["pid"] for t in run.trials}) == 2
    assert not (tmp_path / "tiny" / "study.journal").exists()

    monkeypatch.delenv(CLAIM_DELAY_ENV)
    again = run_study(study_file, workers=2, results_dir=tmp_path, storage=postgres_url)
    assert again.added == 0
    assert count_trials(again.trials).finished == 3
