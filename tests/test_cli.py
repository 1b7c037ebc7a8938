from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from conftest import REPO, TINY_RUN
from mixer_sweeps.cli import app

runner = CliRunner()


def _write_spec(path: Path, **changes) -> Path:
    data = {**TINY_RUN, **changes}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_train_writes_the_run_directory(tmp_path: Path) -> None:
    spec = _write_spec(tmp_path / "tiny.yaml")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(spec), "--epochs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {
        "spec.yaml",
        "history.csv",
        "metrics.json",
        "curves.png",
    }
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    assert metrics["num_params"] > 0
    assert yaml.safe_load((out / "spec.yaml").read_text())["optim"]["epochs"] == 2
    assert "test acc" in result.output


def test_train_defaults_to_results_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _write_spec(tmp_path / "tiny.yaml")
    result = runner.invoke(app, ["train", str(spec), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results" / "tiny-digits" / "metrics.json").exists()


def test_bad_spec_exits_2_names_the_key_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _write_spec(tmp_path / "bad.yaml", optim={**TINY_RUN["optim"], "lr": -1})
    result = runner.invoke(app, ["train", str(spec)])
    assert result.exit_code == 2
    assert "optim.lr (line" in result.output
    assert "bad.yaml" in result.output
    assert not (tmp_path / "results").exists()


def test_bad_epochs_option_exits_2(tmp_path: Path) -> None:
    spec = _write_spec(tmp_path / "tiny.yaml")
    result = runner.invoke(app, ["train", str(spec), "--epochs", "0", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "optim.epochs" in result.output
    assert not (tmp_path / "o").exists()


def test_missing_spec_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output and "file not found" in result.output


def test_validate_reports_each_file(tmp_path: Path) -> None:
    good = REPO / "specs" / "digits.yaml"
    bad = _write_spec(tmp_path / "bad.yaml", model={**TINY_RUN["model"], "patch_size": 3})
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0 and "ok" in result.output
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert "model.patch_size" in result.output


def test_schema_is_json_with_descriptions() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "RunSpec"
    assert "description" in schema["$defs"]["OptimSpec"]["properties"]["lr"]


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from mixer_sweeps.cli import app;"
        "CliRunner().invoke(app, ['--help']);"
        "print(sorted(m for m in ('torch', 'optuna', 'wandb', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_short_help_and_version() -> None:
    from mixer_sweeps import __version__

    assert runner.invoke(app, ["--version"]).output.strip() == f"mixer-sweeps {__version__}"
    for args in (["-h"], ["train", "-h"], ["run", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage:" in result.output, args


def test_help_lists_a_studys_life_in_order_then_the_other_commands() -> None:
    listed = typer.main.get_command(app).list_commands(None)
    life = ["plan", "run", "status", "report", "best", "retrain", "sync"]
    assert listed[: len(life)] == life
    others = {"train", "launch", "validate", "schema", "dashboard", "replay"}
    assert set(listed[len(life) :]) == others
    output = runner.invoke(app, ["--help"], terminal_width=200).output
    shown = [line.split()[1] for line in output.splitlines() if line.startswith("│ ")]
    commands = [name for name in shown if name in listed]
    assert commands == listed
