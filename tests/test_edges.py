"""The small rough edges of issue 13: each promise here once failed a new user.

The resume hint that can be copied, replicate studies that say what their ± is, a schema that
accepts the shipped specs, a report of the committed quickstart results, a loader that names
field and cross-field problems together, one line per fault, a changed study that says what
changed, and a corrupt checkpoint that gives our advice rather than torch's.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY_RUN

SWEEPS = Path(sys.executable).parent / "sweeps"


def _sweeps(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SWEEPS), *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def _write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# ------------------------------------------------------------------- a. the resume hint


def test_the_printed_resume_command_keeps_the_overrides_and_works(tmp_path: Path) -> None:
    # --epochs changes the spec the checkpoint was made with: a hint without it cannot resume.
    spec, out, log = _write(tmp_path / "spec.yaml", TINY_RUN), tmp_path / "my run", tmp_path / "log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(SWEEPS), "train", spec, "--epochs", "8", "--device", "cpu", "--out", out],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not (out / "checkpoint.pt").exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 130, log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    hint = log.read_text().split("Continue with: ", 1)[1].splitlines()[0]
    command = shlex.split(hint)
    assert command[0] == "sweeps" and {"--epochs", "--device", "--out"} <= set(command)
    done = _sweeps(*command[1:])
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load((out / "spec.yaml").read_text())["optim"]["epochs"] == 8


# ------------------------------------------------------------- i. a corrupt checkpoint


class _NotOurs:
    """Pickled by reference: ``weights_only`` refuses it before importing anything."""


def _damaged_checkpoints(folder: Path) -> dict[str, Path]:
    import pickle

    import torch

    files = {
        "pickle": ({"format": 1},),  # a plain pickle, not torch's zip: torch's 2.6 advice
        "object": ({"format": 1, "thing": _NotOurs()},),
        "garbage": b"\x80\x04 not a checkpoint",  # torch raised a bare KeyError on this one
        "empty": b"",
    }
    paths = {}
    for name, content in files.items():
        path = paths[name] = folder / f"{name}.pt"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif name == "pickle":
            path.write_bytes(pickle.dumps(content[0], protocol=4))
        else:
            torch.save(content[0], path)
    return paths


def test_an_unreadable_checkpoint_is_one_line_of_our_advice(tmp_path: Path) -> None:
    from mixer_sweeps.training import CheckpointError, load_checkpoint

    for name, path in _damaged_checkpoints(tmp_path).items():
        with pytest.raises(CheckpointError) as caught:
            load_checkpoint(path)
        message = str(caught.value)
        assert str(path) in message and "--force" in message, (name, message)
        assert "weights_only" not in message and "\n" not in message, (name, message)


def test_sweeps_train_resume_of_a_foreign_checkpoint_says_so_once(tmp_path: Path) -> None:
    spec, out = _write(tmp_path / "spec.yaml", TINY_RUN), tmp_path / "run"
    out.mkdir()
    shutil.copy(_damaged_checkpoints(tmp_path)["pickle"], out / "checkpoint.pt")
    result = _sweeps("train", spec, "--out", out, "--resume")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert str(out / "checkpoint.pt") in result.stderr and "--force" in result.stderr
    assert "weights_only" not in result.stderr + result.stdout


# --------------------------------------------- b. replicate studies: epochs per run, ± = CI


def _replicated_study(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "study.yaml",
        {
            "study": {
                "name": "rep",
                "n_trials": 2,
                "replicates": 2,
                "sampler": {"type": "grid"},
                "pruner": {"type": "none"},
            },
            "fixed": {"optim.epochs": 2, "optim.warmup_epochs": 0},
            "space": {"optim.lr": {"choices": [3e-3, 1e-2]}},
            "run": TINY_RUN,
        },
    )


@pytest.fixture(scope="module")
def replicated(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A study of 2 configurations x 2 seeds x 2 epochs, run by `sweeps run`: its results."""
    tmp_path = tmp_path_factory.mktemp("replicated")
    result = _sweeps("run", _replicated_study(tmp_path), "--results", tmp_path / "results")
    assert result.returncode == 0, result.stderr
    return tmp_path, result


def test_a_replicated_study_shows_epochs_per_run_and_says_its_pm_is_a_95_ci(replicated) -> None:
    tmp_path, result = replicated
    out = result.stdout
    trial_lines = [line for line in out.splitlines() if re.match(r"\s+trial\s+\d+ ", line)]
    assert len(trial_lines) == 2 and all("  2 ep" in line for line in trial_lines), out
    assert " 4 ep" not in out and "4 epochs" not in out, out
    assert "(mean ± 95% CI, n=2 seeds" in out and "2 epochs per seed" in out, out
    assert "mean of 2 seeds" not in out  # the std was shown as ± there

    report = tmp_path / "results" / "rep" / "report"
    markdown = (report / "report.md").read_text()
    assert "(mean ± 95% CI, n=2 seeds)" in markdown and "2 epochs per seed" in markdown
    assert "mean ± 95% CI (Student's t, n=2 seeds)" in markdown  # the top table's caption
    top = markdown.split("## Top", 1)[1].split("##", 1)[0]
    epochs = [row.split("|")[-2].strip() for row in top.splitlines() if row.startswith("| ")]
    assert epochs[1:] == ["2", "2"], top  # a header, then one row per trial
    import pandas as pd

    assert pd.read_csv(report / "trials.csv")["epochs"].tolist() == [2, 2]
    assert r"mean $\pm$ 95\% CI" in (report / "report.tex").read_text()
    assert "mean ± 95% CI" in (report / "report.html").read_text()


# ------------------------------------------------- c. the schema accepts the shipped specs


def _schema_problems(value: object, node: dict, root: dict, at: str = "") -> list[str]:
    """What an editor would flag: required keys, unknown keys, anyOf (without jsonschema)."""
    if "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    problems = []
    if node.get("anyOf"):
        tries = [_schema_problems(value, alt, root, at) for alt in node["anyOf"]]
        if all(tries):
            problems.append(f"{at}: fits no alternative: {tries}")
    if node.get("type") == "null" and value is not None:
        problems.append(f"{at}: expected null")
    if not isinstance(value, dict):
        return problems
    problems += [f"{at}.{k}: required" for k in node.get("required", []) if k not in value]
    properties = node.get("properties", {})
    for key, item in value.items():
        if key in properties:
            problems += _schema_problems(item, properties[key], root, f"{at}.{key}")
        elif node.get("additionalProperties") is False:
            problems.append(f"{at}.{key}: unknown")
    return problems


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "specs").glob("*.yaml")))
def test_every_shipped_spec_is_valid_against_the_json_schema(name: str) -> None:
    from mixer_sweeps.spec import RunSpec, read_yaml

    schema = RunSpec.model_json_schema()
    data = read_yaml(REPO / "specs" / name).data  # our YAML reading: 1e-3 is a float
    try:
        import jsonschema
    except ImportError:
        assert _schema_problems(data, schema, schema) == []
    else:
        assert [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)] == []
    assert "patch_size" not in schema["$defs"]["ModelSpec"].get("required", [])


def test_the_schema_still_wants_a_preset_or_a_whole_shape() -> None:
    from mixer_sweeps.spec import RunSpec

    schema = RunSpec.model_json_schema()
    base = {"name": "x", "data": {"dataset": "digits"}}
    assert _schema_problems({**base, "model": {"preset": "mixer-digits"}}, schema, schema) == []
    assert _schema_problems({**base, "model": {"depth": 2}}, schema, schema) != []


# ------------------------------------------------- h. a changed study says what changed


def test_a_changed_study_file_names_each_change(tmp_path: Path) -> None:
    from mixer_sweeps.spec import load_study_file
    from mixer_sweeps.study import StudyMismatchError, run_study

    def study(lrs: list[float], epochs: int) -> Path:
        return _write(
            tmp_path / "study.yaml",
            {
                "study": {"name": "changed", "n_trials": 1, "pruner": {"type": "none"}},
                "fixed": {"optim.epochs": epochs, "optim.warmup_epochs": 0},
                "space": {"optim.lr": {"choices": lrs}},
                "run": TINY_RUN,
            },
        )

    run = run_study(load_study_file(study([3e-3], epochs=1)), results_dir=tmp_path)
    assert not run.errors and run.fatal is None
    with pytest.raises(StudyMismatchError) as caught:
        run_study(load_study_file(study([3e-3, 1e-2], epochs=2)), results_dir=tmp_path)
    message = str(caught.value)
    assert "space.optim.lr: choices [0.003] → [0.003, 0.01]" in message, message
    assert "base.optim.epochs: 1 → 2" in message, message
    assert "fingerprint" not in message and "\n" not in message


# ----------------------------------- f. field and cross-field problems are reported together

BAD_SPEC = """\
name: bad
data:
  dataset: cifar10
model:
  embed_dim: 128
  depth: 8
  token_mlp_dim: 64
  patch_size: 5
  channel_mlp_dim: 512
augment:
  mixup_alpha: 0.8
optim:
  batch_size: 128
  epochs: 100
  warmup_epochs: 5
  weight_decay: 0.05
  lr: -0.001
train:
  device: cpu
"""


def test_the_spec_pages_bad_spec_example_is_what_sweeps_train_prints(tmp_path: Path) -> None:
    # optim.lr fails its field, so pydantic alone never runs the rule patch_size breaks.
    spec_page = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
    block = spec_page.split("$ sweeps train bad.yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "bad.yaml").write_text(BAD_SPEC, encoding="utf-8")
    result = _sweeps("train", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == block, result.stderr
    assert not (tmp_path / "results").exists()


def test_problems_hidden_by_a_bad_key_are_found_but_none_about_defaults(tmp_path: Path) -> None:
    from mixer_sweeps.spec import SpecError, parse_run_spec

    text = BAD_SPEC.replace("  epochs: 100\n", "  epochs: 4\n  min_lr: 0.01\n")
    text = text.replace("  warmup_epochs: 5\n", "  warmup_epochs: 4.5\n")
    text = text.replace("  lr: -0.001\n", "  lr: fast\n  lrr: 1\n")
    with pytest.raises(SpecError) as caught:
        parse_run_spec(text, source="bad.yaml")
    paths = [p.path for p in caught.value.problems]
    # min_lr > the default lr would be about a value nobody wrote: not reported.
    assert sorted(paths) == [
        "model.patch_size",
        "optim.lr",
        "optim.lrr",
        "optim.warmup_epochs",
    ], caught.value


# ------------------------------------------------------- g. the CIFAR message, once


def test_missing_cifar_is_said_once_by_train_and_by_run(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    run = {
        **TINY_RUN,
        "data": {"dataset": "cifar10", "root": str(empty), "download": False, "val_size": 500},
        "model": {**TINY_RUN["model"], "patch_size": 8},
    }
    spec = _write(tmp_path / "cifar.yaml", run)
    study = _write(
        tmp_path / "study.yaml",
        {
            "study": {"name": "cifar", "n_trials": 2, "pruner": {"type": "none"}},
            "space": {"optim.lr": {"choices": [3e-3, 1e-2]}},
            "run": run,
        },
    )
    for args in (("train", spec, "--out", tmp_path / "run"), ("run", study, "--results", tmp_path)):
        result = _sweeps(*args, cwd=tmp_path)
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        assert output.count("CIFAR-10 not found under") == 1, output
    assert "(see below)" in result.stdout  # the trial's line points at the one message


# ------------------------------------- d. the committed quickstart results on a fresh clone


def test_report_of_the_committed_quickstart_says_how_to_build_its_storage(tmp_path: Path) -> None:
    # The journal is not committed: `sweeps run studies/quickstart.yaml` would take it for a
    # finished study and train nothing. The report says how to make it instead.
    listed = subprocess.run(
        ["git", "ls-files", "results/quickstart", "studies/quickstart.yaml", "specs/digits.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0 or not listed.stdout:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    for name in listed.stdout.split():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    before = sorted(p for p in tmp_path.rglob("*"))
    result = _sweeps("report", "results/quickstart", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "run `sweeps run studies/quickstart.yaml` to build it" in result.stderr
    assert "results/quickstart/report/" in result.stderr
    assert sorted(p for p in tmp_path.rglob("*")) == before


# ------------------------------------------- e. the comparison's CSV is not "every trial"


def test_a_comparison_calls_its_csv_one_row_per_study(replicated, tmp_path: Path) -> None:
    from mixer_sweeps.report import compare_studies
    from mixer_sweeps.results import load_results

    results = load_results(replicated[0] / "results" / "rep")
    compare_studies([results, results], tmp_path, formats=("md", "csv", "html"))
    for name in ("report.md", "report.html"):
        text = (tmp_path / name).read_text()
        assert "Every trial" not in text and "One row per study" in text, text
