"""A multi-objective study read back (issue 21): its front and hypervolume, ``sweeps best``,
``status``, ``run``'s summary, the report, ``retrain --front`` and the W&B study run, on real
journal storages written through Optuna as ``sweeps run`` writes them (see ``mo_studies``)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mo_studies import FRONT, FRONT_TRIALS, Made, params, write_study
from optuna.study import StudyDirection
from rich.console import Console

from conftest import markdown_table, sweeps, tiny_run
from mixer_sweeps.results import (
    Objective,
    StudyLayout,
    hypervolume_box,
    hypervolume_history,
    load_results,
    pareto_front,
    print_summary,
)
from mixer_sweeps.study import StudyRun, open_storage

PRUNED_TRIALS = [t for t, m in enumerate(FRONT_TRIALS) if m.state == "PRUNED"]


@pytest.fixture(scope="module")
def front_study(tmp_path_factory) -> Path:
    """The hand-made study of ``mo_studies.FRONT_TRIALS``: a front of trials 0, 1 and 3."""
    return write_study(tmp_path_factory.mktemp("front"), "pareto", FRONT_TRIALS)


def _random_trials(seed: int, n: int = 40) -> list[Made]:
    """Complete trials on a small grid of values (ties and twins of values included), a few
    pruned ones."""
    rng = random.Random(seed)
    made = []
    for i in range(n):
        p = params(rng.choice([8, 16, 32]), 1e-3 * (1 + i % 9))
        if rng.random() < 0.15:
            made.append(Made(p, state="PRUNED", costs={"params": 500}, reported={1: 0.1}))
        else:
            made.append(
                Made(p, (rng.choice([0.5, 0.6, 0.7, 0.8, 0.9]), rng.randrange(1, 9) * 1000))
            )
    return made


def _brute_front(made: list[Made]) -> list[int]:
    """The non-dominated complete trials (maximise the first value, minimise the second), the
    first of each configuration."""
    complete = [(i, m) for i, m in enumerate(made) if m.state == "COMPLETE"]
    front, seen = [], set()
    for i, m in complete:
        acc, size = m.values
        beaten = any(
            a >= acc and s <= size and (a > acc or s < size)
            for _, o in complete
            for a, s in [o.values]
        )
        key = json.dumps(m.params, sort_keys=True)
        if not beaten and key not in seen:
            seen.add(key)
            front.append(i)
    return front


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_front_is_the_non_dominated_trials_and_best_lists_it(tmp_path: Path, seed: int) -> None:
    made = _random_trials(seed)
    study_dir = write_study(tmp_path, "rnd", made)
    found = load_results(study_dir)
    assert found.multi and [o.metric for o in found.objectives] == ["val_acc", "params"]
    expected = _brute_front(made)
    assert sorted(t.number for t in pareto_front(found.trials, found.objectives)) == expected

    out = sweeps("best", study_dir, "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["front"]
    assert sorted(r["number"] for r in rows) == expected
    for row in rows:
        assert (row["objectives"]["val_acc"], row["objectives"]["params"]) == tuple(
            made[row["number"]].values
        )
    # Cheapest first.
    assert [r["objectives"]["params"] for r in rows] == sorted(
        r["objectives"]["params"] for r in rows
    )


def test_a_dominated_trial_never_appears_in_best_status_report_or_summary(
    front_study: Path, tmp_path: Path
) -> None:
    dominated = {2, 4, 7}  # 7: trial 1's twin
    text = sweeps("best", front_study)
    assert text.returncode == 0, text.stderr
    listed = [
        int(line.split()[0]) for line in text.stdout.splitlines() if line.strip()[:1].isdigit()
    ]
    assert listed == FRONT

    status = sweeps("status", front_study, "--json")
    assert status.returncode == 0, status.stderr
    (shown,) = json.loads(status.stdout)["studies"]
    assert [f["trial"] for f in shown["front"]] == FRONT
    assert shown["best_per_objective"] == {
        "val_acc": {"trial": 3, "value": 0.9},
        "params": {"trial": 0, "value": 1000},
    }
    line = next(
        x for x in sweeps("status", front_study).stdout.splitlines() if x.startswith("  front")
    )
    assert "3 configurations" in line and "best val_acc 0.9000 (trial 3)" in line
    assert "best params 1,000 (trial 0)" in line

    study = optuna.load_study(
        study_name="pareto", storage=open_storage(None, study_dir=front_study)
    )
    run = StudyRun(study, StudyLayout(front_study), "journal", study.get_trials(), 9, 0, False, 1.0)
    console = Console(width=200, record=True)
    print_summary(run, console)
    summary = console.export_text()
    trials = [
        int(x.split()[1].rstrip(":")) for x in summary.splitlines() if x.startswith("  trial")
    ]
    assert trials == FRONT and "front: 3 configurations" in summary
    assert not dominated & set(trials)


def test_best_exports_any_trial_and_refuses_to_pick_one_of_a_front(
    front_study: Path, tmp_path: Path
) -> None:
    out = sweeps("best", front_study, "--export", tmp_path / "x.yaml")
    assert out.returncode == 2 and "--trial N" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x.yaml").exists()
    for number in (2, 3):  # a dominated trial and one of the front
        spec = tmp_path / f"t{number}.yaml"
        out = sweeps("best", front_study, "--trial", number, "--export", spec, "--json")
        assert out.returncode == 0, out.stderr
        shown = json.loads(out.stdout)
        assert shown["trial"]["on_front"] is (number in FRONT)
        assert shown["trial"]["objectives"]["val_acc"] == FRONT_TRIALS[number].values[0]
        import yaml

        exported = yaml.safe_load(spec.read_text())
        assert exported["model"]["embed_dim"] == FRONT_TRIALS[number].params["model.embed_dim"]
        assert exported["optim"]["lr"] == FRONT_TRIALS[number].params["optim.lr"]


def _independent_hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """The area two minimised objectives dominate up to ``ref``: a sweep over the first."""
    inside = sorted(p for p in points if p[0] < ref[0] and p[1] < ref[1])
    area, floor = 0.0, ref[1]
    for x, y in inside:
        if y < floor:
            area += (ref[0] - x) * (floor - y)
            floor = y
    return area


@pytest.mark.parametrize("seed", [0, 3])
def test_hypervolume_never_falls_and_equals_an_independent_2d_computation(
    tmp_path: Path, seed: int
) -> None:
    made = _random_trials(seed)
    found = load_results(write_study(tmp_path, "hv", made))
    complete = [i for i, m in enumerate(made) if m.state == "COMPLETE"]
    # The default reference point, and one that leaves some trials beyond it (they add nothing).
    for reference in (None, (0.75, 5000)):
        history = hypervolume_history(found.trials, found.objectives, reference)
        assert [n for n, _ in history] == complete
        volumes = [v for _, v in history]
        assert all(b >= a for a, b in zip(volumes, volumes[1:], strict=False))
        box = hypervolume_box(found.trials, found.objectives, reference)
        (acc0, size0), (acc1, size1) = box.ideal, box.reference
        if reference is not None:
            assert (acc1, size1) == reference
        for k, volume in enumerate(volumes):
            losses = [
                (
                    (acc0 - made[i].values[0]) / (acc0 - acc1),
                    (made[i].values[1] - size0) / (size1 - size0),
                )
                for i in complete[: k + 1]
            ]
            expected = _independent_hypervolume(losses, (1.0, 1.0))
            assert volume == pytest.approx(expected, abs=1e-12)


def test_report_has_the_front_table_front_plot_and_hypervolume(front_study: Path) -> None:
    from mixer_sweeps.report import write_report
    from mixer_sweeps.report._front import front_figure, hypervolume_figure

    found = load_results(front_study)
    written = {p.name for p in write_report(found)}
    assert {"front.png", "hypervolume.png", "report.md"} <= written
    text = (front_study / "report" / "report.md").read_text()
    rows = markdown_table(text, "Front: 3 configurations")
    assert [int(r[0]) for r in rows[1:]] == FRONT
    header = rows[0]
    for row in rows[1:]:
        made = FRONT_TRIALS[int(row[0])]
        assert float(row[header.index("val_acc")]) == made.values[0]
        assert row[header.index("params")] == f"{int(made.values[1]):,}"

    figure = front_figure(found)
    ax = figure.axes[0]
    by_gid = {c.get_gid(): c.get_offsets() for c in ax.collections}
    assert len(by_gid["pruned"]) == len(PRUNED_TRIALS)
    assert sorted(map(tuple, by_gid["front"].tolist())) == sorted(
        (FRONT_TRIALS[n].values[1], FRONT_TRIALS[n].values[0]) for n in FRONT
    )
    assert len(by_gid["dominated"]) == 3
    pruned_style = next(c for c in ax.collections if c.get_gid() == "pruned")
    assert pruned_style.get_alpha() < 1
    assert ax.get_xaxis().get_major_formatter()(2000, 0) == "2k"
    assert sorted(int(t.get_text()) for t in ax.texts if t.get_gid() == "front label") == FRONT

    line = next(
        line for line in hypervolume_figure(found).axes[0].lines if line.get_gid() == "hypervolume"
    )
    history = hypervolume_history(found.trials, found.objectives)
    assert list(line.get_ydata()[:-1]) == [v for _, v in history]


def test_a_single_objective_study_reads_as_before(tmp_path: Path) -> None:
    made = [Made(params(8, 1e-3), (0.8,)), Made(params(16, 1e-3), (0.9,))]
    found = load_results(
        write_study(
            tmp_path, "one", made, objectives=[{"metric": "val_acc", "direction": "maximize"}]
        )
    )
    assert not found.multi and found.objectives == (Objective("val_acc", StudyDirection.MAXIMIZE),)
    assert [t.value for t in found.trials] == [0.8, 0.9]
    out = sweeps("best", found.study_dir, "--json")
    shown = json.loads(out.stdout)
    assert "front" not in shown and shown["trial"]["number"] == 1
    status = json.loads(sweeps("status", found.study_dir, "--json").stdout)["studies"][0]
    assert "front" not in status and status["best"]["trial"] == 1


def test_retrain_front_trains_each_front_configuration_with_cis(
    front_study: Path, tmp_path: Path
) -> None:
    import shutil

    from mixer_sweeps.results import ci95

    study_dir = tmp_path / "results" / "pareto"
    shutil.copytree(front_study, study_dir)
    out = sweeps(
        "retrain", study_dir, "--front", "--seeds", "2", "--epochs", "1", cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, out.stderr
    summary = pd.read_csv(study_dir / "retrain" / "summary.csv", index_col="config")
    assert list(summary.index) == [f"trial-{n}" for n in FRONT]
    runs = pd.read_csv(study_dir / "retrain" / "runs.csv")
    for config, row in summary.iterrows():
        mine = runs[runs["config"] == config]
        assert sorted(mine["seed"]) == [1000, 1001]
        assert row["best val acc ± 95% CI"] == pytest.approx(ci95(mine["best_val_acc"]))
        assert row["test acc"] == pytest.approx(mine["test_acc"].mean())
    report = (study_dir / "report" / "report.md").read_text()
    assert "The front's configurations trained again" in report

    single = sweeps("retrain", study_dir, "--front", "--seeds", "1", "--epochs", "1", cwd=tmp_path)
    assert single.returncode == 0  # the finished seeds are reused
    (tmp_path / "o").mkdir()
    one = write_study(
        tmp_path / "o",
        "one",
        [Made(params(8, 1e-3), (0.8,))],
        objectives=[{"metric": "val_acc", "direction": "maximize"}],
    )
    refused = sweeps("retrain", one, "--front", cwd=tmp_path)
    assert refused.returncode == 2 and "several objectives" in refused.stderr


def test_the_wandb_study_run_holds_the_front_table(tmp_path: Path) -> None:
    from test_wandb import _inspect

    from mixer_sweeps.report import log_study_run, study_data

    run = tiny_run(**{"tracking.wandb.mode": "offline"})
    found = load_results(write_study(tmp_path, "wb", FRONT_TRIALS, run=run))
    path = log_study_run(study_data(found))
    assert path is not None
    summary = _inspect(path, summary=True)["summary"]
    assert summary["front_size"] == len(FRONT) and summary["front_trials"] == FRONT
    table = json.loads((path / "files" / summary["front"]["path"]).read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert [r["trial"] for r in rows] == FRONT
    assert [(r["val_acc"], r["params"]) for r in rows] == [
        tuple(FRONT_TRIALS[n].values) for n in FRONT
    ]
