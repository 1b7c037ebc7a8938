"""``sweeps status`` and ``sweeps best`` on real tiny digits studies, checked against Optuna."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from optuna.study import StudyDirection
from optuna.trial import TrialState
from scipy import stats

from conftest import REPO, TINY_RUN, markdown_table
from mixer_sweeps.results import (
    TrialRecord,
    format_duration,
    load_results,
    ranked,
    study_status,
    trial_run_spec,
)
from mixer_sweeps.spec import load_run_spec, load_study_file
from mixer_sweeps.study import WorkerIdentity, run_study

SWEEPS = str(REPO / ".venv" / "bin" / "sweeps")
FIXED = {"optim.epochs": 2, "optim.warmup_epochs": 0}
TIMING = ["seconds", "images_per_s"]


def _write_study(folder: Path, name: str, space: dict[str, Any], **study: Any) -> Path:
    document = {"study": {"name": name, **study}, "fixed": FIXED, "space": space, "run": TINY_RUN}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def studies(tmp_path_factory) -> Path:
    """A folder whose ``results/`` holds two run studies: ``tiny`` (3 trials) and ``reps`` (2
    configurations x 2 seeds)."""
    root = tmp_path_factory.mktemp("studies")
    tiny = _write_study(
        root,
        "tiny",
        {"optim.lr": {"low": 1e-3, "high": 1e-2, "log": True}, "model.depth": {"choices": [1, 2]}},
        n_trials=3,
        sampler={"type": "random", "seed": 0},
        pruner={"type": "none"},
    )
    reps = _write_study(
        root,
        "reps",
        {"optim.lr": {"choices": [3e-3, 1e-2]}},
        sampler={"type": "grid"},
        pruner={"type": "none"},
        replicates=2,
    )
    for path in (tiny, reps):
        run_study(load_study_file(path), results_dir=root / "results")
    return root


def sweeps(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SWEEPS, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _copy_results(studies: Path, tmp_path: Path) -> Path:
    shutil.copytree(studies / "results", tmp_path / "results")
    return tmp_path / "results"


def _dead_worker() -> dict[str, Any]:
    """A worker of this host whose process has ended (a reaped child's pid)."""
    process = subprocess.Popen(["true"])
    process.wait()
    me = WorkerIdentity.of_this_process()
    return dataclasses.replace(me, pid=process.pid, start_time=None, id="gone").attr()


# ------------------------------------------------------------------------------------ status


def test_status_counts_equal_the_storage_and_finds_every_study(
    studies: Path, tmp_path: Path
) -> None:
    results = _copy_results(studies, tmp_path)
    (results / "not-a-study").mkdir()  # a `sweeps train` run folder: no study.yaml
    study = load_results(results / "tiny").study
    for state in (TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL):
        study.tell(study.ask(), state=state)
    alive = study.ask()  # run by this test's process, which lives
    alive.set_user_attr("worker", WorkerIdentity.of_this_process().attr())
    gone = study.ask()
    gone.set_user_attr("worker", _dead_worker())
    study.enqueue_trial({"optim.lr": 5e-3, "model.depth": 1})

    done = sweeps("status", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = {s["name"]: s for s in json.loads(done.stdout)["studies"]}
    assert sorted(found) == ["reps", "tiny"]

    trials = study.get_trials(deepcopy=False)
    by_state = {state: sum(t.state == state for t in trials) for state in TrialState}
    counts = found["tiny"]["counts"]
    assert counts == {
        "complete": by_state[TrialState.COMPLETE],
        "pruned": by_state[TrialState.PRUNED],
        "failed": by_state[TrialState.FAIL],
        "running": by_state[TrialState.RUNNING],
        "waiting": by_state[TrialState.WAITING],
        "finished": 3 + 1 + 2,
        "retried": 0,
    }
    assert (counts["complete"], counts["running"], counts["waiting"]) == (3, 2, 1)
    tiny = found["tiny"]
    assert tiny["workers_alive"] == 1 and tiny["orphaned"] == 1
    assert tiny["workers"] == [WorkerIdentity.of_this_process().name]
    assert tiny["best"]["trial"] == study.best_trial.number
    assert tiny["best"]["value"] == study.best_value
    assert tiny["direction"] == "maximize" and tiny["n_trials"] == 3
    assert tiny["eta_s"] is not None and "1 worker" in tiny["eta_note"]

    reps = found["reps"]
    assert reps["counts"]["complete"] == 2 and reps["done"] is True
    assert reps["workers_alive"] == 0 and reps["eta_s"] == 0.0


def _read_until(fd: int, pattern: str, timeout: float) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
            if re.search(pattern, seen.decode(errors="replace")):
                break
    return seen.decode(errors="replace")


def test_status_watch_refreshes_on_a_terminal_and_ends_cleanly_on_ctrl_c(
    studies: Path, tmp_path: Path
) -> None:
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "LINES": "40", "TERM": "xterm"}
    process = subprocess.Popen(
        [SWEEPS, "status", "results/tiny", "--watch", "--interval", "0.2"],
        cwd=studies,
        stdin=child,
        stdout=child,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(child)
    try:
        shown = _read_until(main, r"3 complete(.|\n)*3 complete", timeout=90)  # a refresh
        assert "3/3 finished" in shown and "workers  0 alive" in shown, shown
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
    assert process.returncode == 130
    assert "Traceback" not in stderr.decode() and stderr.decode().strip() == "interrupted"


def test_status_sums_up_workers_anywhere_and_the_eta() -> None:
    now = datetime.datetime(2026, 1, 1, 12, 0, 0)
    minute = datetime.timedelta(minutes=1)
    finished = [
        TrialRecord(
            n,
            TrialState.COMPLETE,
            params={"x": n},
            value=0.5 + n / 10,
            started=now - 10 * minute,
            duration=minute,
        )
        for n in range(4)
    ]
    here = WorkerIdentity.of_this_process().attr()
    elsewhere = {"host": "node7", "pid": 4242, "boot_id": "b", "pid_ns": "n", "id": "w7"}
    silent = {"host": "node8", "pid": 4242, "boot_id": "b", "pid_ns": "n", "id": "w8"}
    half = datetime.timedelta(seconds=30)
    running = [
        TrialRecord(4, TrialState.RUNNING, worker=here, started=now - half),
        TrialRecord(
            5,
            TrialState.RUNNING,
            worker=elsewhere,
            started=now - half,
            heartbeat=now.timestamp() - 10,
        ),
        TrialRecord(
            6,
            TrialState.RUNNING,
            worker=silent,
            started=now - 40 * minute,
            heartbeat=now.timestamp() - 1000,
        ),
    ]
    status = study_status(
        "s",
        finished + running,
        direction=StudyDirection.MAXIMIZE,
        n_trials=10,
        timeout=None,
        now=now,
    )
    assert set(status.workers) == {"node7:4242", WorkerIdentity.of_this_process().name}
    assert status.orphaned == 1
    # 10 - 4 finished - 2 alive = 4 to start at 60 s, plus 30 s left of each running one, over 2.
    assert status.eta_s == pytest.approx((4 * 60 + 2 * 30) / 2)
    assert format_duration(status.eta_s) == "0:02:30"
    assert status.best.number == 3
    assert status.elapsed_s == pytest.approx(40 * 60)

    none_yet = study_status(
        "s", running[:1], direction=StudyDirection.MAXIMIZE, n_trials=10, timeout=None, now=now
    )
    assert none_yet.eta_s is None and format_duration(none_yet.eta_s) == "unknown"


def test_best_follows_the_direction() -> None:
    trials = [
        TrialRecord(0, TrialState.COMPLETE, params={"x": 0}, value=0.3),
        TrialRecord(1, TrialState.COMPLETE, params={"x": 1}, value=0.1),
        TrialRecord(2, TrialState.PRUNED, params={"x": 2}, value=None),
        TrialRecord(3, TrialState.COMPLETE, params={"x": 3}, value=0.1),
        TrialRecord(4, TrialState.COMPLETE, params={"x": 1}, value=0.1, duplicate_of=1),
    ]
    assert [t.number for t in ranked(trials, StudyDirection.MAXIMIZE)] == [0, 1, 3]
    assert [t.number for t in ranked(trials, StudyDirection.MINIMIZE)] == [1, 3, 0]


@pytest.mark.parametrize(
    ("trials", "winner"),
    [
        # A lucky single seed (0.99) ranks by its configuration's mean over the three seeds it
        # trained: 0.92, behind 0.95.
        (
            [
                TrialRecord(0, TrialState.COMPLETE, params={"x": 0}, value=0.99),
                TrialRecord(1, TrialState.COMPLETE, params={"x": 1}, value=0.95),
                TrialRecord(2, TrialState.COMPLETE, params={"x": 0}, value=0.90),
                TrialRecord(3, TrialState.COMPLETE, params={"x": 0}, value=0.87),
            ],
            1,
        ),
        # A confirmed trial's seeds count one by one: (0.96 + 0.90 + 0.93) / 3 < 0.94.
        (
            [
                TrialRecord(
                    0, TrialState.COMPLETE, params={"x": 0}, value=0.93, best=(0.96, 0.90, 0.93)
                ),
                TrialRecord(1, TrialState.COMPLETE, params={"x": 1}, value=0.94),
            ],
            1,
        ),
    ],
)
def test_the_winner_is_the_best_seed_mean_of_a_configuration(trials, winner) -> None:
    from mixer_sweeps.results import best_configurations, best_trial

    assert ranked(trials, StudyDirection.MAXIMIZE)[0].number == winner
    assert best_trial(trials, StudyDirection.MAXIMIZE).number == winner
    best, _ = best_configurations(trials, direction=StudyDirection.MAXIMIZE, top=1)
    (params, _, numbers), *_ = best
    assert winner in numbers


# -------------------------------------------------------------------------------------- best


def test_best_export_reproduces_the_trial_and_top_k_is_ordered(
    studies: Path, tmp_path: Path
) -> None:
    results = _copy_results(studies, tmp_path)
    study = load_results(results / "tiny").study
    done = sweeps(
        "best",
        str(studies / "tiny.yaml"),
        "--results",
        "results",
        "--export",
        "best.yaml",
        "--top",
        "3",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    best = study.best_trial
    assert shown["trial"]["number"] == best.number and shown["trial"]["value"] == best.value
    assert shown["trial"]["params"] == best.params
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    order = sorted(complete, key=lambda t: (-t.value, t.number))
    assert [t["number"] for t in shown["top"]] == [t.number for t in order]
    assert [t["value"] for t in shown["top"]] == sorted((t.value for t in complete), reverse=True)

    trial_dir = results / "tiny" / "trials" / str(best.number)
    exported = load_run_spec(tmp_path / "best.yaml")
    assert exported == load_run_spec(trial_dir / "spec.yaml")

    trained = sweeps("train", "best.yaml", "--out", "again", cwd=tmp_path, timeout=180)
    assert trained.returncode == 0, trained.stderr
    original = pd.read_csv(trial_dir / "history.csv").drop(columns=TIMING)
    again = pd.read_csv(tmp_path / "again" / "history.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(again, original, check_exact=True)


def test_a_trial_whose_folder_is_gone_gets_its_spec_rebuilt(studies: Path, tmp_path: Path) -> None:
    results = _copy_results(studies, tmp_path)
    found = load_results(results / "tiny")
    shutil.rmtree(results / "tiny" / "trials")
    for trial in found.trials:
        rebuilt = trial_run_spec(
            trial,
            layout=found.layout,
            study_name="tiny",
            base=found.study.user_attrs["base"],
            space=found.space,
            replicates=1,
        )
        assert "rebuilt" in rebuilt.source
        kept = studies / "results" / "tiny" / "trials" / str(trial.number) / "spec.yaml"
        assert rebuilt.spec == load_run_spec(kept)


def test_best_of_replicates_says_mean_and_95_ci(studies: Path) -> None:
    done = sweeps("best", "results/reps", cwd=studies)
    assert done.returncode == 0, done.stderr
    study = load_results(studies / "results" / "reps").study
    best = study.best_trial
    seeds = best.user_attrs["best_val_acc"]
    half = stats.t.ppf(0.975, len(seeds) - 1) * pd.Series(seeds).sem()
    assert f"val_acc {best.value:.4f} ± {half:.4f} (mean ± 95% CI" in done.stdout
    assert f"trial {best.number}, best of 2 complete" in done.stdout
    assert "seed 0:" in done.stdout and "seed 1:" in done.stdout


def test_missing_study_exits_2_with_one_line(tmp_path: Path) -> None:
    for args in (("status",), ("best", "nowhere.yaml")):
        done = sweeps(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ numbers


def test_report_best_and_status_write_the_same_numbers_alike(studies: Path, tmp_path: Path) -> None:
    """The best trial's parameter count with thousands separators and its value to 4 decimals,
    the same in the report's Markdown, HTML and LaTeX, in `sweeps best` and `sweeps status`."""
    study = load_results(studies / "results" / "tiny").study
    best = study.best_trial
    count, value = f"{best.user_attrs['num_params']:,}", f"{best.value:.4f}"
    assert "," in count  # the tiny model has over a thousand parameters: separators show

    done = sweeps("report", "results/tiny", "--out", str(tmp_path / "report"), cwd=studies)
    assert done.returncode == 0, done.stderr
    for name in ("report.md", "report.html", "report.tex"):
        # Embedded plots are base64: any four digits turn up in them by chance.
        text = re.sub(r"base64,[^\"]*", "", (tmp_path / "report" / name).read_text())
        assert count in text and value in text, name  # the Top table; md and html: the summary
        assert str(best.user_attrs["num_params"]) not in text, name
    header, *rows = markdown_table((tmp_path / "report" / "report.md").read_text(), "Top 3 trials")
    column = header.index("params")
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})+", row[column]) for row in rows), rows
    assert count in [row[column] for row in rows]
    assert count in done.stdout and str(best.user_attrs["num_params"]) not in done.stdout

    shown = sweeps("best", "results/tiny", cwd=studies)
    top = sweeps("best", "results/tiny", "--top", "3", cwd=studies)
    status = sweeps("status", cwd=studies)
    for done in (shown, top, status):
        assert done.returncode == 0, done.stderr
        assert count in done.stdout and value in done.stdout, done.stdout
        assert str(best.user_attrs["num_params"]) not in done.stdout, done.stdout
