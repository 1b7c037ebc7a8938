"""Reports of real tiny studies on digits, checked against the Optuna studies they come from."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import shutil
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from conftest import MIXED_GRID, TINY_FIXED, markdown_table, run_tiny, write_tiny_study
from mixer_sweeps.cli import app
from mixer_sweeps.report import pareto_front, parse_formats, write_report
from mixer_sweeps.results import ci95, count_trials, load_results

runner = CliRunner()

PNG = b"\x89PNG\r\n\x1a\n"

SWITCHES = {
    "augment.mixup_alpha": {"choices": [0.0, 0.2]},
    "augment.label_smoothing": {"choices": [0.1, 0.0]},
}


@pytest.fixture(scope="module")
def switches(tmp_path_factory) -> Path:
    study_dir = run_tiny(
        tmp_path_factory.mktemp("switches"),
        "switches",
        SWITCHES,
        sampler={"type": "grid"},
        pruner={"type": "none"},
        replicates=2,
    )
    write_report(load_results(study_dir))
    return study_dir


@pytest.fixture(scope="module")
def ranged(tmp_path_factory) -> Path:
    return run_tiny(
        tmp_path_factory.mktemp("ranged"),
        "ranged",
        {"optim.lr": {"low": 3e-3, "high": 3e-2, "log": True}},
        n_trials=6,
        sampler={"type": "random", "seed": 0},
        pruner={"type": "none"},
    )


def stored_trials(study_dir: Path) -> list[optuna.trial.FrozenTrial]:
    return load_results(study_dir).study.trials


def as_number(cell: str) -> float | None:
    return None if cell == "–" else float(cell)


@pytest.mark.parametrize("path", list(MIXED_GRID))
def test_factor_table_has_a_row_per_value_with_the_means_of_complete_trials(grid, path) -> None:
    trials = stored_trials(grid)
    header, *rows = markdown_table(
        (grid / "report" / "report.md").read_text(), f"Val accuracy by {path}"
    )
    assert header[0] == path
    column = {name: i for i, name in enumerate(header)}
    values = MIXED_GRID[path]["choices"]
    assert [float(row[0]) for row in rows] == values
    for value, row in zip(values, rows, strict=True):
        mine = [t for t in trials if t.params[path] == value]
        complete = [t.value for t in mine if t.state == TrialState.COMPLETE]
        mean = as_number(row[column["mean"]])
        if complete:
            assert mean == pytest.approx(statistics.fmean(complete), abs=5e-5)
            assert as_number(row[column["best"]]) == pytest.approx(max(complete), abs=5e-5)
        else:
            assert mean is None
        assert int(row[column["n"]]) == len(complete)
        assert int(row[column["n pruned"]]) == sum(t.state == TrialState.PRUNED for t in mine)
        assert int(row[column["n failed"]]) == sum(t.state == TrialState.FAIL for t in mine)


def test_pruned_and_failed_trials_are_counted_not_averaged(grid) -> None:
    counts = count_trials(stored_trials(grid))
    assert counts.pruned >= 1 and counts.failed >= 1 and counts.complete >= 3
    text = (grid / "report" / "report.md").read_text()
    assert (
        f"{counts.finished} trials finished: {counts.complete} complete, {counts.pruned} pruned,"
        f" {counts.failed} failed"
    ) in text
    frame = pd.read_csv(grid / "report" / "trials.csv")
    assert frame["state"].value_counts().to_dict() == {
        state: n
        for state, n in (
            ("COMPLETE", counts.complete),
            ("PRUNED", counts.pruned),
            ("FAIL", counts.failed),
        )
    }


def test_trials_csv_has_a_row_per_trial_with_its_attrs(grid) -> None:
    trials = stored_trials(grid)
    frame = pd.read_csv(grid / "report" / "trials.csv")
    assert frame["number"].tolist() == [t.number for t in trials]
    for trial, row in zip(trials, frame.itertuples(index=False), strict=True):
        assert row.state == trial.state.name
        assert [getattr(row, f"_{i}") for i in (2, 3, 4)] == [trial.params[p] for p in MIXED_GRID]
        if trial.state == TrialState.COMPLETE:
            assert row.best_val_acc == pytest.approx(trial.value)
            assert row.test_acc == pytest.approx(trial.user_attrs["test_acc"][0])
            assert row.num_params == trial.user_attrs["num_params"]
            assert row.epochs == TINY_FIXED["optim.epochs"]
        if trial.state == TrialState.FAIL:
            assert row.reason.startswith("NonFiniteLossError")


def test_latex_tables_have_as_many_cells_as_their_column_spec(grid) -> None:
    text = (grid / "report" / "report.tex").read_text()
    tabulars = re.findall(r"\\begin\{tabular\}\{(\w+)\}\n(.*?)\\end\{tabular\}", text, re.S)
    md = (grid / "report" / "report.md").read_text()
    assert len(tabulars) == md.count("\n## ") - 2  # less "Plots" and the run spec
    for spec, body in tabulars:
        rows = [line for line in body.splitlines() if line.endswith("\\\\")]
        assert len(rows) >= 3
        for row in rows:
            assert len(re.split(r"(?<!\\)&", row)) == len(spec), (spec, row)
    assert r"\toprule" in text and r"model.embed\_dim" in text


@pytest.mark.parametrize(
    "name",
    [
        "history.png",
        "intermediate_values.png",
        "parallel_coordinates.png",
        "importances.png",
        "pareto.png",
        "heatmap-embed_dim-depth.png",
        "learning_curves.png",
    ],
)
def test_every_plot_is_a_png_linked_from_the_markdown(grid, name) -> None:
    path = grid / "report" / name
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG
    assert f"]({name})" in (grid / "report" / "report.md").read_text()


def test_best_trial_spec_and_importances_are_reported(grid) -> None:
    trials = stored_trials(grid)
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    text = (grid / "report" / "report.md").read_text()
    spec = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert spec["name"] == f"grid-{best.number}"
    assert spec["model"]["embed_dim"] == best.params["model.embed_dim"]
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    title = f"Parameter importances (fANOVA, {complete} complete trials)"
    header, *rows = markdown_table(text, title)
    assert header == ["parameter", "importance", "5%", "95%"]
    assert {row[0] for row in rows} == set(MIXED_GRID)
    assert sum(float(row[1]) for row in rows) == pytest.approx(1.0, abs=1e-3)
    assert all(float(low) <= float(mean) <= float(high) for _, mean, low, high in rows), rows
    note = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    # Resamples that drew a single value are skipped: at most 30, say how many.
    resamples = re.search(rf"(\d+) bootstrap resamples of the {complete} complete trials", note)
    assert resamples is not None and 10 <= int(resamples[1]) <= 30, note
    # Three parameters want 30 complete trials to be ranked: the report says so.
    assert f"Warning: {complete} complete trials are too few to rank 3 parameters" in note
    assert f"![{title}](importances.png)" in text


def test_width_by_depth_pivot_holds_the_cell_means(grid) -> None:
    trials = [t for t in stored_trials(grid) if t.state == TrialState.COMPLETE]
    text = (grid / "report" / "report.md").read_text()
    header, *rows = markdown_table(text, "model.embed_dim × model.depth")
    assert header == ["model.embed_dim \\ model.depth", "1", "2"]
    for row in rows:
        for depth, cell in zip((1, 2), row[1:], strict=True):
            cell_values = [
                t.value
                for t in trials
                if t.params["model.embed_dim"] == int(row[0]) and t.params["model.depth"] == depth
            ]
            expected = statistics.fmean(cell_values) if cell_values else None
            assert as_number(cell) == pytest.approx(expected, abs=5e-5)


def test_components_turned_off_with_replicates(switches) -> None:
    trials = stored_trials(switches)
    assert all(t.state == TrialState.COMPLETE for t in trials) and len(trials) == 4
    text = (switches / "report" / "report.md").read_text()
    header, *rows = markdown_table(text, "Components turned off")
    column = {name: i for i, name in enumerate(header)}
    assert [row[0] for row in rows] == list(SWITCHES)
    for path, row in zip(SWITCHES, rows, strict=True):
        other = next(p for p in SWITCHES if p != path)
        on = next(v for v in SWITCHES[path]["choices"] if v)
        diffs = []
        for trial in trials:
            if trial.params[path] != on:
                continue
            twin = next(
                t for t in trials if t.params[path] != on and t.params[other] == trial.params[other]
            )
            diffs += [
                off - with_on
                for off, with_on in zip(
                    twin.user_attrs["best_val_acc"], trial.user_attrs["best_val_acc"], strict=True
                )
            ]
        assert len(diffs) == 4 and int(row[column["pairs"]]) == 4
        assert float(row[column["change when off"]]) == pytest.approx(
            statistics.fmean(diffs), abs=5e-5
        )
        assert float(row[column["± 95% CI"]]) > 0
    header, *rows = markdown_table(text, "augment.mixup_alpha × augment.label_smoothing")
    assert all("±" in cell for row in rows for cell in row[1:])
    factor, *rows = markdown_table(text, "Val accuracy by augment.mixup_alpha")
    assert factor[1:3] == ["mean", "± 95% CI"]


# Student's t quantiles t(0.975, dof) from a printed table, not from scipy.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}


@pytest.mark.parametrize(
    ("values", "mixup_alpha"),
    [
        pytest.param([0.61, 0.64], None, id="n=2"),
        pytest.param([0.52, 0.58, 0.55], None, id="n=3"),
        pytest.param([0.31, 0.35, 0.29, 0.36], None, id="n=4"),
        pytest.param([0.71, 0.69, 0.74, 0.70, 0.73], None, id="n=5"),
        # The ± 95% CI column of a factor table with replicates: over the seed runs of the
        # level's trials (2 trials x 2 seeds), as the table's note says.
        pytest.param(None, 0.0, id="report mixup_alpha=0"),
        pytest.param(None, 0.2, id="report mixup_alpha=0.2"),
    ],
)
def test_ci95_matches_an_independent_student_t(request, values, mixup_alpha) -> None:
    if values is None:
        switches = request.getfixturevalue("switches")
        values = [
            acc
            for t in stored_trials(switches)
            if t.params["augment.mixup_alpha"] == mixup_alpha
            for acc in t.user_attrs["best_val_acc"]
        ]
        text = (switches / "report" / "report.md").read_text()
        header, *rows = markdown_table(text, "Val accuracy by augment.mixup_alpha")
        row = next(row for row in rows if float(row[0]) == mixup_alpha)
        # Rounded to 4 decimals in the table.
        shown, tolerance = float(row[header.index("± 95% CI")]), 6e-5
    else:
        shown, tolerance = ci95(values), 0.0
    n = len(values)
    # Half-width: t(0.975, n - 1) times the sample standard deviation (n - 1 in the
    # denominator) over the square root of n.
    by_hand = T_975[n - 1] * statistics.stdev(values) / math.sqrt(n)
    assert shown == pytest.approx(by_hand, rel=3e-4, abs=tolerance)


def test_a_log_range_is_grouped_in_quantile_bins(ranged) -> None:
    trials = stored_trials(ranged)
    write_report(load_results(ranged), formats=["md"])
    text = (ranged / "report" / "report.md").read_text()
    header, *rows = markdown_table(text, "Val accuracy by optim.lr")
    assert len(rows) == 4 and all("–" in row[0] for row in rows)
    assert sum(int(row[header.index("n")]) for row in rows) == len(trials)
    lows = [float(row[0].split("–")[0]) for row in rows]
    assert lows == sorted(lows) and lows[0] == pytest.approx(
        min(t.params["optim.lr"] for t in trials), rel=1e-2
    )


PLOTS = (
    "history.png",
    "intermediate_values.png",
    "parallel_coordinates.png",
    "pareto.png",
    "learning_curves.png",
)


@pytest.mark.parametrize(
    ("formats", "files"),
    [
        (["md"], {"report.md", *PLOTS}),
        (["csv"], {"trials.csv"}),
        (["latex"], {"report.tex"}),
        (["html,csv"], {"report.html", "trials.csv", *PLOTS}),
    ],
    ids=["md", "csv", "latex", "html+csv"],
)
def test_report_command_writes_the_formats_asked_for(ranged, tmp_path, formats, files) -> None:
    options = [item for f in formats for item in ("--format", f)]
    result = runner.invoke(app, ["report", str(ranged), *options, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == files | (
        {"importances.png"} if "report.md" in files or "report.html" in files else set()
    )
    assert "Val accuracy by optim.lr" in result.output
    assert "warning" not in result.output.lower()  # one parameter: nothing to rank


def test_report_command_warns_when_there_are_too_few_trials_to_rank(grid, tmp_path) -> None:
    result = runner.invoke(app, ["report", str(grid), "-f", "csv", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    complete = sum(t.state == TrialState.COMPLETE for t in stored_trials(grid))
    shown = " ".join(result.output.split())  # as the terminal wraps it
    assert f"warning: {complete} complete trials are too few to rank 3 parameters" in shown


def test_report_command_finds_the_results_of_a_study_file(ranged) -> None:
    study_file = ranged.parent.parent / "ranged.yaml"
    results = ranged.parent
    result = runner.invoke(app, ["report", str(study_file), "--results", str(results), "-f", "csv"])
    assert result.exit_code == 0, result.output
    assert (ranged / "report" / "trials.csv").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "neither a study file nor"),
        (["--format", "pdf", "."], "unknown report format 'pdf'"),
    ],
)
def test_report_command_rejects_bad_input(tmp_path, args, message) -> None:
    result = runner.invoke(
        app, ["report", *[str(tmp_path / a) if a == "nowhere" else a for a in args]]
    )
    assert result.exit_code == 2 and message in result.output


def test_comparing_studies_side_by_side(grid, ranged, tmp_path) -> None:
    out = tmp_path / "compare"
    result = runner.invoke(app, ["report", str(grid), str(ranged), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "comparison.csv", index_col="study")
    for study_dir in (grid, ranged):
        trials = stored_trials(study_dir)
        counts = count_trials(trials)
        best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
        row = table.loc[study_dir.name]
        assert (row["trials"], row["complete"], row["pruned"], row["failed"]) == (
            counts.finished,
            counts.complete,
            counts.pruned,
            counts.failed,
        )
        assert row["best val acc"] == pytest.approx(best.value)
        assert row["best trial"] == best.number
    assert (out / "history.png").read_bytes()[:8] == PNG
    assert {"report.md", "report.html", "report.tex"} <= {p.name for p in out.iterdir()}


def test_sweeps_run_ends_with_the_report(tmp_path) -> None:
    path = write_tiny_study(
        tmp_path / "study.yaml",
        "tiny",
        {"optim.lr": {"choices": [3e-2, 1e-2]}},
        sampler={"type": "grid"},
    )
    result = runner.invoke(app, ["run", str(path), "--results", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = tmp_path / "tiny" / "report"
    assert {"report.md", "report.html", "report.tex", "trials.csv"} <= {
        p.name for p in report.iterdir()
    }
    assert f"report in {report}/" in result.output


@pytest.mark.parametrize(
    ("given", "formats"),
    [
        (None, ("md", "csv", "latex", "html")),
        (["all"], ("md", "csv", "latex", "html")),
        (["html", "md"], ("md", "html")),
        (["latex,CSV", "latex"], ("csv", "latex")),
    ],
)
def test_parse_formats(given, formats) -> None:
    assert parse_formats(given) == formats


def test_pareto_front_keeps_the_trials_nothing_beats() -> None:
    points = pd.DataFrame(
        {
            "number": [0, 1, 2, 3, 4],
            "num_params": [100, 200, 200, 300, 50],
            "best_val_acc": [0.5, 0.7, 0.6, 0.65, 0.5],
        }
    )
    assert pareto_front(points)["number"].tolist() == [4, 1]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """The Chrome DevTools protocol over one page's websocket."""

    def __init__(self, url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.last = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last += 1
        self.socket.send(json.dumps({"id": self.last, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.last:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


@contextlib.contextmanager
def headless_page(url: str, profile: Path) -> Iterator[DevTools]:
    browser = chromium()
    assert browser is not None
    process = subprocess.Popen(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--window-size=1280,1600",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert process.poll() is None, f"chromium exited with {process.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            targets = json.loads(no_proxy.open(f"http://127.0.0.1:{port}/json/list").read())
            pages = [t for t in targets if t["type"] == "page"]
            if pages:
                break
            assert time.monotonic() < deadline, targets
            time.sleep(0.1)
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        try:
            tools.call("Page.navigate", url=url)
            yield tools
        finally:
            tools.socket.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(tools: DevTools, expression: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while tools.evaluate(expression) is not True:
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


@pytest.mark.skipif(
    chromium() is None,
    reason="Debian's chromium is not installed (scripts/setup --dev installs it)",
)
def test_html_report_renders_its_tables_and_images_in_chromium(grid, tmp_path) -> None:
    page = grid / "report" / "report.html"
    moved = tmp_path / "elsewhere" / "report.html"
    moved.parent.mkdir()
    shutil.copy(page, moved)
    md = (grid / "report" / "report.md").read_text()
    with headless_page(moved.as_uri(), tmp_path / "profile") as tools:
        wait_for(
            tools,
            f"location.href === {json.dumps(moved.as_uri())} && document.readyState === 'complete'"
            " && [...document.images].every(i => i.complete)",
        )
        state = tools.evaluate(
            """({
              widths: [...document.images].map(i => i.naturalWidth),
              tables: document.querySelectorAll("table.data").length,
              cells: document.querySelectorAll("table.data td").length,
              headings: [...document.querySelectorAll("h2")].map(h => h.textContent),
            })"""
        )
        shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    assert len(state["widths"]) == md.count("![") == 7
    assert all(width > 0 for width in state["widths"]), state["widths"]
    assert state["tables"] == md.count("\n## ") - 2 and state["cells"] > 20
    assert "Val accuracy by model.embed_dim" in state["headings"]
    screenshot = tmp_path / "report.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert screenshot.read_bytes()[:8] == PNG and screenshot.stat().st_size > 10_000


@pytest.fixture
def retrained_grid(grid, tmp_path) -> Path:
    """A copy of the grid study retrained (its top 3 configurations, 2 seeds of 1 epoch) and
    reported: the report has the wide Retrained table first."""
    shutil.copytree(grid, tmp_path / "results" / "grid")
    shutil.copy(grid.parent.parent / "grid.yaml", tmp_path / "grid.yaml")
    args = ["--top", "3", "--seeds", "2", "--epochs", "1", "--results", str(tmp_path / "results")]
    result = runner.invoke(app, ["retrain", str(tmp_path / "grid.yaml"), *args])
    assert result.exit_code == 0, result.output
    write_report(load_results(tmp_path / "results" / "grid"))
    return tmp_path / "results" / "grid"


def png_width(data: bytes) -> int:
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big")


@pytest.mark.skipif(
    chromium() is None,
    reason="Debian's chromium is not installed (scripts/setup --dev installs it)",
)
def test_html_report_never_scrolls_the_page_sideways_at_1400_and_800_px(
    retrained_grid, tmp_path
) -> None:
    page = retrained_grid / "report" / "report.html"
    assert "Retrained, 1 epochs (search: " in page.read_text()  # --epochs 1: another protocol
    # The captions' code spans: <code> on the page, typewriter type in LaTeX.
    assert r"(\texttt{sweeps retrain}," in (retrained_grid / "report" / "report.tex").read_text()
    with headless_page(page.as_uri(), tmp_path / "profile") as tools:
        wait_for(
            tools,
            "document.readyState === 'complete' && [...document.images].every(i => i.complete)",
        )
        for width in (1400, 800):
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=1000,
                deviceScaleFactor=1,
                mobile=False,
            )
            wait_for(tools, f"window.innerWidth === {width}")
            state = tools.evaluate(
                """({
                  page: document.documentElement.scrollWidth,
                  client: document.documentElement.clientWidth,
                  window: window.innerWidth,
                  boxes: [...document.querySelectorAll("div.table")].map(d => ({
                    title: d.previousElementSibling.textContent,
                    scroll: d.scrollWidth, client: d.clientWidth,
                    overflow: getComputedStyle(d).overflowX,
                  })),
                  images: [...document.images].map(i => ({
                    shown: i.getBoundingClientRect().width, natural: i.naturalWidth,
                    room: i.parentElement.getBoundingClientRect().width,
                  })),
                  code: [...document.querySelectorAll("p.note code")].map(c => c.textContent),
                  ticks: document.body.innerText.includes("`"),
                })"""
            )
            shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            # No page-level sideways scroll: the page is as wide as the window less its
            # scroll bar, and so is the whole-page screenshot.
            assert state["page"] <= state["client"] <= state["window"] == width, state
            assert png_width(base64.b64decode(shot["data"])) == state["client"]
            boxes = {b["title"]: b for b in state["boxes"]}
            assert all(b["overflow"] == "auto" for b in boxes.values()), boxes
            assert all(b["client"] <= width for b in boxes.values()), boxes
            retrained = next(b for t, b in boxes.items() if t.startswith("Retrained"))
            if width == 800:  # too wide for the window: it scrolls in its own box
                assert retrained["scroll"] > retrained["client"], retrained
            # Plots at the size they were drawn, or as wide as the page has room for.
            for image in state["images"]:
                drawn = image["natural"] + 2  # its 1-px border
                assert image["shown"] == pytest.approx(min(drawn, image["room"]), abs=1)
            assert "sweeps retrain" in state["code"] and not state["ticks"], state["code"]
