"""A study's saved W&B view (wandb_workspaces), checked without a W&B server.

What can be checked here: the view object as built from a real tiny study (its panels, the keys
they plot, the filter on the study's group), that those keys are the ones the study's own
offline runs hold, that the view reads back through the library's own spec parser, and that a
save that cannot reach a server warns in one line, ends within its time limit, exits 0 and leaves
the offline runs as they were. Whether W&B's app draws the saved view as intended needs a server
and is not checked here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

import mixer_sweeps.tracking
from conftest import TINY_RUN, sweeps, tiny_spec
from mixer_sweeps.report import make_study_view, online_view, study_view
from mixer_sweeps.results import load_results
from mixer_sweeps.tracking import StudyView, build_workspace, config_column, make_trackers
from mixer_sweeps.training import Trainer

FAKE_KEY = "k" * 40
EPOCHS = 2
SPACE = {
    "model.embed_dim": {"choices": [16, 24]},
    "optim.lr": {"low": 1e-3, "high": 1e-2, "log": True},
}

pytestmark = pytest.mark.usefixtures("no_wandb_login")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny study of three trials whose W&B runs are offline, in project view-test."""
    tmp = tmp_path_factory.mktemp("view")
    run = {**TINY_RUN, "tracking": {"wandb": {"mode": "offline", "project": "view-test"}}}
    document = {
        "study": {
            "name": "vs",
            "n_trials": 3,
            "sampler": {"type": "random", "seed": 0},
            "pruner": {"type": "none"},
        },
        "fixed": {"optim.epochs": EPOCHS},
        "space": SPACE,
        "run": run,
    }
    (tmp / "vs.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    # In a process of its own: a W&B service that an earlier test started in this process (and
    # the WANDB_* variables it leaves) would otherwise write these runs.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    home = tmp / "home"
    home.mkdir()
    command = [sys.executable, "-m", "mixer_sweeps", "run", str(tmp / "vs.yaml")]
    done = subprocess.run(
        [*command, "--results", str(tmp / "results"), "--no-view"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**env, "HOME": str(home)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return tmp / "results" / "vs"


def _summary(run_dir: Path) -> dict[str, Any]:
    """``wandb leet inspect --summary --json``: an offline run's config, summary and names."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json"]
    out = subprocess.run(
        [*command, str(run_dir)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "WANDB_MODE": "offline"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _config_value(config: dict[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        node = node[part]
    return node


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _panels(view: StudyView) -> dict[str, list[Any]]:
    """The view's panels by the type the saved spec names them with (``viewType``)."""
    workspace = build_workspace(view, "lab")
    (section,) = workspace._to_model().spec.section.panel_bank_config.sections
    found: dict[str, list[Any]] = {}
    for panel in section.panels:
        found.setdefault(panel.view_type, []).append(panel.config)
    return found


# ------------------------------------------------------------------------ the view as built


def test_the_view_is_described_from_the_study(study: Path) -> None:
    view = study_view(load_results(study))
    assert view == StudyView(
        study="vs",
        project="view-test",
        entity=None,
        params=("model.embed_dim", "optim.lr"),
        log_params=frozenset({"optim.lr"}),
        metric="val_acc",
        direction="maximize",
        runs=3,
    )
    assert StudyView.from_json(view.to_json()) == view


def test_the_view_filters_the_study_trial_runs_best_first(study: Path) -> None:
    workspace = build_workspace(study_view(load_results(study)), "lab")
    assert (workspace.entity, workspace.project, workspace.name) == (
        "lab",
        "view-test",
        "vs (study)",
    )
    (runset,) = workspace._to_model().spec.section.run_sets
    filters = [
        (f["key"]["section"], f["key"]["name"], f["op"], f["value"])
        for f in runset.filters["filters"]
    ]
    assert filters == [("run", "group", "=", "vs"), ("run", "jobType", "=", "trial")]
    assert [f.get("connector", "AND") for f in runset.filters["filters"]] == ["AND", "AND"]
    assert runset.grouping == []  # filtered on the group, not grouped: a curve per trial
    (order,) = runset.sort.keys
    assert (order.key.section, order.key.name, order.ascending) == (
        "summary",
        "best_val_acc",
        False,
    )
    assert workspace.settings.max_runs >= 10


def test_the_view_panels_plot_the_study_keys(study: Path) -> None:
    panels = _panels(study_view(load_results(study)))
    assert sorted(panels) == sorted(
        [
            "Parallel Coordinates Plot",
            "Parameter Importance",
            "Run History Line Plot",
            "Run Comparer",
        ]
    )
    (coordinates,) = panels["Parallel Coordinates Plot"]
    assert [(c.accessor, c.log) for c in coordinates.columns] == [
        ("config:model.value.embed_dim", None),
        ("config:optim.value.lr", True),
        ("summary:best_val_acc", None),
    ]
    (importance,) = panels["Parameter Importance"]
    assert importance.target_key == "best_val_acc"
    (curves,) = panels["Run History Line Plot"]
    assert (curves.x_axis, curves.metrics) == ("epoch", ["val_acc"])


def test_the_runs_table_pins_params_and_results(study: Path) -> None:
    view = study_view(load_results(study))
    workspace = build_workspace(view, "lab")
    # The table's config columns are the very accessors the library gives the coordinates.
    (coordinates,) = _panels(view)["Parallel Coordinates Plot"]
    params = [c.accessor for c in coordinates.columns[:-1]]
    assert params == [config_column(p) for p in view.params]
    assert workspace.runset_settings.pinned_columns == [
        "run:displayName",
        "summary:state",
        *params,
        "summary:best_val_acc",
        "summary:test_acc",
        "summary:num_params",
    ]


def test_the_keys_the_view_names_are_in_the_study_runs(study: Path) -> None:
    """Every trial run the study wrote passes the view's filter and holds what it plots."""
    view = study_view(load_results(study))
    runs = [_summary(p) for p in sorted((study / "wandb").glob("offline-run-*"))]
    trials = [r for r in runs if r["config"].get("study") == "vs"]
    assert len(trials) == 3
    for run in trials:
        records = run["config"]
        for path in view.params:
            assert _config_value(records, path) == records["trial"]["params"][path]
        assert isinstance(run["summary"][view.objective], float)
        for column in ("state", "test_acc", "num_params"):
            assert column in run["summary"]
        assert run["summary"]["val_acc"] is not None and run["summary"]["epoch"] == EPOCHS


def test_the_saved_spec_reads_back_through_the_library(study: Path) -> None:
    """What ``save`` would send parses back, through wandb_workspaces' own reader, to the same
    panels, filter and columns."""
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces.workspaces import internal

    workspace = build_workspace(study_view(load_results(study)), "lab")
    model = workspace._to_model()
    sent = model.spec.model_dump_json(by_alias=True, exclude_none=True)
    back = ws.Workspace._from_model(
        internal.View(
            entity="lab",
            project="view-test",
            display_name=model.display_name,
            name="nw-test-v",
            id="",
            spec=internal.WorkspaceViewspec.model_validate_json(sent),
        )
    )
    assert [type(p).__name__ for p in back.sections[0].panels] == [
        type(p).__name__ for p in workspace.sections[0].panels
    ]
    assert back.runset_settings.filters == workspace.runset_settings.filters
    assert back.runset_settings.pinned_columns == workspace.runset_settings.pinned_columns
    assert back.sections[0].panels[1].with_respect_to == "best_val_acc"


def test_a_study_of_another_metric_plots_its_best_and_val_acc() -> None:
    view = StudyView(
        study="loss", project="p", params=("optim.lr",), metric="val_loss", direction="minimize"
    )
    panels = _panels(view)
    assert panels["Parameter Importance"][0].target_key == "best_val_loss"
    assert panels["Parallel Coordinates Plot"][0].columns[-1].accessor == "summary:best_val_loss"
    curves = {(c.x_axis, tuple(c.metrics)) for c in panels["Run History Line Plot"]}
    assert curves == {("epoch", ("val_acc",)), ("epoch", ("val_loss",))}
    workspace = build_workspace(view, "lab")
    (order,) = workspace._to_model().spec.section.run_sets[0].sort.keys
    assert (order.key.name, order.ascending) == ("best_val_loss", True)
    assert {"summary:best_val_loss", "summary:best_val_acc"} <= set(
        workspace.runset_settings.pinned_columns
    )


def test_a_trial_of_another_metric_keeps_its_best_in_the_summary(digits, tmp_path: Path) -> None:
    """The key a val_loss study's view plots (``best_val_loss``) is in its trial runs."""
    run_spec = tiny_spec(**{"tracking.wandb.mode": "offline", "optim.epochs": EPOCHS})
    trackers = make_trackers(
        run_spec,
        results_dir=tmp_path,
        study_name="loss",
        trial_number=0,
        params={"optim.lr": 3e-3},
        metric="val_loss",
        direction="minimize",
    )
    result = Trainer(run_spec, data=digits, callbacks=trackers).fit()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    summary = _summary(run_dir)["summary"]
    assert summary["best_val_loss"] == min(r.val_loss for r in result.history)
    assert summary["best_val_acc"] == result.best_val_acc


# ------------------------------------------------------------------------ saving, once


def _uploaded_copy(study: Path, tmp_path: Path) -> Path:
    """A copy of the study whose offline runs all count as uploaded (wandb sync's marker)."""
    copy = tmp_path / "vs"
    shutil.copytree(study, copy)
    for log in (copy / "wandb").glob("offline-run-*/*.wandb"):
        log.with_suffix(".wandb.synced").touch()
    return copy


def _unreachable() -> dict[str, str]:
    return {
        **os.environ,
        "WANDB_API_KEY": FAKE_KEY,
        "WANDB_BASE_URL": f"http://127.0.0.1:{_closed_port()}",
    }


def _processes_told(base_url: str) -> list[str]:
    """Command lines of the live processes whose environment names ``base_url``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"WANDB_BASE_URL={base_url}".encode() in environ.split(b"\0"):
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_sync_warns_when_the_view_cannot_be_saved_and_exits_0(study: Path, tmp_path: Path) -> None:
    copy = _uploaded_copy(study, tmp_path)
    before = _files(copy / "wandb")
    env = _unreachable()
    started = time.monotonic()
    out = sweeps("sync", copy, "--timeout", "4", env=env, timeout=90)
    took = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert "nothing to sync" in out.stdout
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, out.stderr
    assert "the study's W&B view was not saved (W&B did not answer within 4 s)" in warnings[0]
    assert "Traceback" not in out.stderr
    assert took < 40, took  # the 4 s limit, plus starting Python and reading the study
    assert _files(copy / "wandb") == before  # the runs as they were, and no view recorded
    if Path("/proc/self/environ").exists():  # the saver and its wandb-core were ended with it
        assert _processes_told(env["WANDB_BASE_URL"]) == []


def test_no_view_tries_nothing(study: Path, tmp_path: Path) -> None:
    copy = _uploaded_copy(study, tmp_path)
    out = sweeps("sync", copy, "--no-view", "--timeout", "4", env=_unreachable(), timeout=90)
    assert out.returncode == 0, out.stderr
    # 3 trials and the study's run
    assert out.stdout.splitlines() == [
        f"nothing to sync: no offline W&B runs under {copy} (4 already uploaded)"
    ]
    assert out.stderr == ""


def test_dry_run_says_it_would_save_the_view(study: Path, tmp_path: Path) -> None:
    copy = _uploaded_copy(study, tmp_path)
    out = sweeps("sync", copy, "--dry-run", env=_unreachable(), timeout=90)
    assert out.returncode == 0, out.stderr
    assert "would save the study's W&B workspace view" in out.stdout


def test_a_saved_view_is_not_made_again(study: Path, tmp_path: Path) -> None:
    copy = _uploaded_copy(study, tmp_path)
    url = "https://wandb.example/lab/view-test?nw=abc"
    (copy / "wandb" / "view.json").write_text(json.dumps({"url": url}), encoding="utf-8")
    assert make_study_view(load_results(copy), timeout=1) == (url, False)
    out = sweeps("sync", copy, "--timeout", "4", env=_unreachable(), timeout=90)
    assert out.returncode == 0, out.stderr
    # 3 trials and the study's run
    assert out.stdout.splitlines() == [
        f"nothing to sync: no offline W&B runs under {copy} (4 already uploaded)"
    ]
    assert out.stderr == ""


def test_an_online_study_run_that_cannot_save_its_view_warns(
    study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = _uploaded_copy(study, tmp_path)
    for name, value in _unreachable().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(mixer_sweeps.tracking, "VIEW_TIMEOUT_S", 3.0)
    console = Console(record=True, width=300)
    started = time.monotonic()
    online_view(load_results(copy), console)
    assert time.monotonic() - started < 30
    printed = console.export_text().strip().splitlines()
    assert printed == [
        "warning: the study's W&B view was not saved (W&B did not answer within 3 s);"
        " `sweeps sync` tries again"
    ]
    assert not (copy / "wandb" / "view.json").exists()
