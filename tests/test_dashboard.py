"""``sweeps dashboard``: optuna-dashboard serves a finished study from its own storage."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO, TINY_RUN
from mixer_sweeps.cli import app
from mixer_sweeps.results import load_results
from mixer_sweeps.spec import load_study_file
from mixer_sweeps.study import run_study

SWEEPS = str(REPO / ".venv" / "bin" / "sweeps")


def finished_study(tmp_path: Path, storage: str | None) -> Path:
    document = {
        "study": {
            "name": "tiny",
            "n_trials": 2,
            "sampler": {"type": "grid"},
            "pruner": {"type": "none"},
            "storage": storage,
        },
        "fixed": {"optim.epochs": 1, "optim.warmup_epochs": 0},
        "space": {"optim.lr": {"choices": [1e-2, 3e-2]}},
        "run": TINY_RUN,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    assert run_study(load_study_file(path), results_dir=tmp_path).counts.complete == 2
    return path


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def lines_of(process: subprocess.Popen) -> queue.Queue:
    """Its stdout, line by line as it comes; None once it is closed."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_dashboard_serves_the_study_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, storage: str
) -> None:
    url = None if storage == "journal" else f"sqlite:///{tmp_path / 'studies.db'}"
    path = finished_study(tmp_path, url)
    process = subprocess.Popen(
        [SWEEPS, "dashboard", str(path), "--results", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = lines_of(process)
        first = lines.get(timeout=60)
        expected = tmp_path / "tiny" / "study.journal" if url is None else "sqlite"
        assert first.startswith("study tiny in ") and str(expected) in first, first
        served = lines.get(timeout=10)
        assert served.startswith("dashboard: http://127.0.0.1:"), served
        base = served.split()[1].removesuffix("/dashboard/")
        port = int(base.rsplit(":", 1)[1])
        assert port > 0
        best = load_results(path, results_dir=tmp_path).study.best_trial
        count = f"{best.user_attrs['num_params']:,}"
        assert lines.get(timeout=10).startswith(
            f"best: trial {best.number}, val_acc {best.value:.4f}, {count} params"
        )

        studies = get(f"{base}/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == ["tiny"]
        assert studies[0]["directions"] == ["maximize"]
        detail = get(f"{base}/api/studies/{studies[0]['study_id']}")
        assert detail["name"] == "tiny"
        assert [t["state"] for t in detail["trials"]] == ["Complete", "Complete"]
        with urllib.request.urlopen(f"{base}/dashboard", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()

        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)  # stdout belongs to the reader thread
        err = process.stderr.read()
        out = "".join(iter(lambda: lines.get(timeout=10), None))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err  # as every command's Ctrl-C
    assert "dashboard stopped" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_dashboard_of_a_study_never_run_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    document = {
        "study": {"name": "tiny", "n_trials": 1},
        "space": {"optim.lr": {"choices": [1e-2]}},
        "run": TINY_RUN,
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = CliRunner().invoke(app, ["dashboard", str(path), "--results", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "has the study been run?" in result.output
    assert not (tmp_path / "tiny").exists()
