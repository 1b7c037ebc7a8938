"""``sweeps launch``: worker jobs through submitit, run here by its local executor.

There is no SLURM controller here. The local executor runs the very jobs a SLURM array would (the
same pickled :class:`~mixer_sweeps.study.StudyJob`, started by ``submitit.core._submit``); the
SLURM side is covered by the dry run's batch script, by a submission to stand-in ``srun`` and
``sbatch`` commands, and by running a submitted job's pickle under SLURM's job environment.
"""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_study import write_study
from typer.testing import CliRunner

from mixer_sweeps.cli import app
from mixer_sweeps.spec import load_study_file
from mixer_sweeps.study import StudyJob, open_storage, plan_launch
from mixer_sweeps.study._launch import parse_time_limit
from mixer_sweeps.training import CHECKPOINT_FILE

runner = CliRunner()
PASSWORD = "s3cr3t-pw"
GRID = {"optim.lr": {"choices": [1e-3, 1e-2, 3e-2]}}


def _with_password(url: str) -> str:
    """``postgresql://postgres@host/db`` with a password (the test cluster trusts any)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{PASSWORD}@{host}"


def _launch(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mixer_sweeps", "launch", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _logs(study_dir: Path) -> str:
    return "".join(p.read_text() for p in sorted((study_dir / "launch").glob("*/*_log.out")))


def test_local_launch_of_three_workers_on_postgres_runs_exactly_n_trials(
    tmp_path: Path, postgres_url: str
) -> None:
    url = _with_password(postgres_url)
    # Trials long enough (~12 epochs) that all three workers are up before the first one could
    # take a second trial.
    path = write_study(
        tmp_path / "study.yaml",
        GRID,
        fixed={"optim.epochs": 12},
        sampler={"type": "grid", "seed": 0},
        pruner={"type": "none"},
        n_trials=3,
    )
    results = tmp_path / "results"
    # Generous bound: only a hang reaches it (three processes import torch on two shared cores).
    done = _launch(
        str(path),
        *("--executor", "local", "--workers", "3", "--storage", url),
        *("--results", str(results)),
        timeout=150,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "started 3 worker job(s) of study tiny as local processes" in output
    assert "tiny: 3 of 3 trials finished (3 complete, 0 pruned, 0 failed), 0 running" in output
    assert "postgres:***@" in output
    assert PASSWORD not in output
    assert PASSWORD not in _logs(results / "tiny")
    assert stat.S_IMODE((results / "tiny" / "launch").stat().st_mode) == 0o700

    trials = optuna.load_study(study_name="tiny", storage=postgres_url).get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.params["optim.lr"] for t in trials) == [1e-3, 1e-2, 3e-2]
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 3


def test_slurm_dry_run_prints_the_batch_script_with_the_password_hidden(
    tmp_path: Path,
) -> None:
    path = write_study(tmp_path / "study.yaml", GRID, n_trials=3)
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(
        app,
        [
            "launch",
            str(path),
            *("--executor", "slurm", "--workers", "4", "--partition", "gpu-long"),
            *("--time", "1:30:00", "--gpus-per-worker", "2", "--mem", "16G"),
            *("--cpus-per-worker", "8", "--sbatch", "account=proj42"),
            *("--storage", f"postgresql://alice:{PASSWORD}@db.example.org:5432/sweeps"),
            *("--results", str(tmp_path / "results"), "--dry-run"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    for line in (
        "#SBATCH --partition=gpu-long",
        "#SBATCH --time=90",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --mem=16G",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --account=proj42",
        "#SBATCH --array=0-3%4",
        "#SBATCH --signal=USR2@120",
        "#SBATCH --requeue",
        "#SBATCH --job-name=sweeps-tiny",
    ):
        assert line in out
    assert "postgresql://alice:***@db.example.org:5432/sweeps" in out
    assert PASSWORD not in out
    # The command each job runs: its sweeps-run equivalent and submitit's entry point.
    results = tmp_path / "results"
    assert f"sweeps run {path} --workers 1 --results {results} --storage" in out
    assert f"-m submitit.core._submit {results}/tiny/launch/%j" in out
    assert f"{results}/tiny/launch/%A_%a/%A_%a_0_log.out" in out
    assert "nothing submitted" in out
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--storage", "sqlite:////shared/study.db"], ["--storage", "SQLite over a network"]),
        ([], ["--storage: the default storage is a journal file", "--storage postgresql://"]),
        (["--storage", "journal:rel/study.journal"], ["--storage", "absolute path"]),
        (["--time", "90 minutes"], ["--time '90 minutes'", "HH:MM:SS"]),
        (["--time", "1"], ["--time '1' is too short"]),
        (["--mem", "lots"], ["--mem 'lots'", "16G"]),
        (["--executor", "pbs"], ["--executor 'pbs'", "slurm, local"]),
        (["--sbatch", "array=0-9"], ["--sbatch 'array=0-9'", "sets --array itself"]),
        (["--workers", "0"], ["--workers"]),
        (["--gpus-per-worker", "-1"], ["--gpus-per-worker"]),
    ],
)
def test_bad_launch_options_exit_2_naming_the_option(
    tmp_path: Path, monkeypatch, args: list[str], expected: list[str]
) -> None:
    monkeypatch.delenv("SWEEPS_STORAGE", raising=False)
    path = write_study(tmp_path / "study.yaml", GRID, n_trials=3)
    if "--storage" not in args:
        args = [*args, "--storage", "postgresql://u:pw@db/sweeps"] if args else args
    result = runner.invoke(
        app, ["launch", str(path), "--results", str(tmp_path / "results"), *args, "--dry-run"]
    )
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    text = " ".join(result.output.split())
    for part in expected:
        assert part in text
    assert "Traceback" not in result.output
    assert not (tmp_path / "results").exists()


def test_local_launch_takes_any_storage_and_notes_slurm_only_options(tmp_path: Path) -> None:
    path = write_study(tmp_path / "study.yaml", GRID, n_trials=3)
    result = runner.invoke(
        app,
        [
            "launch",
            str(path),
            *("--executor", "local", "--partition", "gpu", "--results", str(tmp_path / "r")),
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "--partition: for SLURM only, ignored by --executor local" in result.output
    assert f"journal file {tmp_path / 'r' / 'tiny' / 'study.journal'}" in result.output
    assert "#SBATCH" not in result.output


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("240", 240), ("1:30:00", 90), ("0:10:30", 11), ("2-00:00:00", 2880), ("4:00:00", 240)],
)
def test_time_limits_are_read_as_slurm_minutes(text: str, minutes: int) -> None:
    assert parse_time_limit(text) == minutes


def test_local_jobs_see_this_machines_gpus_unless_told_otherwise(
    tmp_path: Path, monkeypatch
) -> None:
    # submitit's local executor hides every GPU from a job that asks for none.
    path = write_study(tmp_path / "study.yaml", GRID, n_trials=3)
    study_file = load_study_file(path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    default = plan_launch(study_file, path, executor="local", results_dir=tmp_path)
    assert "gpus_per_node" not in default.parameters()
    assert default.jobs()[0].environ == {"CUDA_VISIBLE_DEVICES": "1,3"}
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert default.jobs()[0].environ == {"CUDA_VISIBLE_DEVICES": None}
    one = plan_launch(study_file, path, executor="local", gpus_per_worker=1, results_dir=tmp_path)
    assert one.parameters()["gpus_per_node"] == 1 and one.jobs()[0].environ == {}


def _has_checkpointed_epoch(study_dir: Path) -> tuple[int, int] | None:
    """(trial number, worker pid) of a running trial with a checkpoint on disk, if any."""
    if not (study_dir / "study.journal").exists():
        return None
    try:
        study = optuna.load_study(
            study_name="tiny", storage=open_storage(None, study_dir=study_dir)
        )
    except KeyError:
        return None
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        checkpoint = study_dir / "trials" / str(trial.number) / CHECKPOINT_FILE
        if trial.intermediate_values and checkpoint.exists() and "worker" in trial.user_attrs:
            return trial.number, trial.user_attrs["worker"]["pid"]
    return None


def test_checkpoint_signal_requeues_the_job_and_the_trial_resumes_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    # One local job on the default journal (any storage works locally). SIGUSR2 is what SLURM
    # sends before the time limit (--signal=USR2@120) and submitit's signal on preemption.
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-2, 3e-2]}},
        fixed={"optim.epochs": 15},
        sampler={"type": "grid", "seed": 0},
        pruner={"type": "none"},
        n_trials=2,
    )
    results = tmp_path / "results"
    study_dir = results / "tiny"
    process = subprocess.Popen(
        [sys.executable, "-m", "mixer_sweeps", "launch", str(path), "--executor", "local"]
        + ["--results", str(results)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Generous bound: only a hang reaches it.
        deadline = time.monotonic() + 90
        found = None
        while found is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.3)
            found = _has_checkpointed_epoch(study_dir)
        assert found is not None, "no trial trained an epoch in time"
        number, pid = found
        os.kill(pid, signal.SIGUSR2)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output

    study = optuna.load_study(study_name="tiny", storage=open_storage(None, study_dir=study_dir))
    trials = {t.number: t for t in study.get_trials()}
    cut = trials[number]
    assert cut.state == TrialState.FAIL and cut.user_attrs["abandoned"] is True
    (retry,) = [t for t in trials.values() if t.user_attrs.get("retry_of") == number]
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs["resumed"]["trial"] == number
    assert retry.user_attrs["resumed"]["epoch"] >= 1
    # The requeued job is a new process of the same job.
    assert retry.user_attrs["worker"]["pid"] != pid
    complete = [t for t in trials.values() if t.state == TrialState.COMPLETE]
    assert sorted(t.params["optim.lr"] for t in complete) == [1e-2, 3e-2]
    assert "tiny: 2 of 2 trials finished (2 complete, 0 pruned, 0 failed), 0 running" in output
    logs = _logs(study_dir)
    assert "this job is requeued" in logs
    assert "Requeued job" in logs


FAKE_SBATCH = """#!/bin/sh
cp "$1" "{record}"
echo "Submitted batch job 4242"
"""


def test_slurm_submission_writes_the_jobs_that_run_under_slurm(tmp_path: Path, monkeypatch) -> None:
    # Stand-ins for SLURM's commands: `srun` only has to exist, `sbatch` keeps the script.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "submitted.sh"
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(record=record))
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    path = write_study(
        tmp_path / "study.yaml",
        {"optim.lr": {"choices": [1e-2, 3e-2]}},
        sampler={"type": "grid", "seed": 0},
        pruner={"type": "none"},
        n_trials=2,
    )
    results = tmp_path / "results"
    journal = tmp_path / "shared" / "study.journal"
    result = runner.invoke(
        app,
        [
            "launch",
            str(path),
            *("--workers", "2", "--partition", "cpu", "--time", "30"),
            *("--storage", f"journal:{journal}", "--results", str(results)),
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "note: journal file" in out and "every node mounts" in out
    assert (
        "submitted 2 worker job(s) of study tiny to SLURM: job array 4242 (4242_0 to 4242_1)" in out
    )
    assert "squeue -j 4242" in out
    assert "scancel 4242" in out
    launch_dir = results / "tiny" / "launch"
    assert f"tail -f {launch_dir}/4242_0/4242_0_0_log.out" in out
    assert "#SBATCH --partition=cpu" in record.read_text()
    assert "#SBATCH --array=0-1%2" in record.read_text()
    # The study was created once before any job, and each job got its own worker.
    assert (results / "tiny" / "study.yaml").exists() and journal.exists()
    jobs = []
    for i in range(2):
        with open(launch_dir / f"4242_{i}" / f"4242_{i}_submitted.pkl", "rb") as f:
            jobs.append(pickle.load(f).function)
    assert all(isinstance(job, StudyJob) for job in jobs)
    assert [job.index for job in jobs] == [0, 1]
    assert {job.storage for job in jobs} == {f"journal:{journal}"}

    # What SLURM would start for array task 0: submitit's entry point under SLURM's variables.
    env = {
        **os.environ,
        "SUBMITIT_EXECUTOR": "slurm",
        "SLURM_JOB_ID": "4243",
        "SLURM_ARRAY_JOB_ID": "4242",
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_NTASKS": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
    }
    # Generous bound: only a hang reaches it.
    ran = subprocess.run(
        [sys.executable, "-u", "-m", "submitit.core._submit", str(launch_dir / "%j")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    study = optuna.load_study(
        study_name="tiny", storage=open_storage(f"journal:{journal}", study_dir=results / "tiny")
    )
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2
    with open(launch_dir / "4242_0" / "4242_0_0_result.pkl", "rb") as f:
        outcome, value = pickle.load(f)
    assert outcome == "success" and value["added"] == 2 and value["index"] == 0
