"""Study files: what is checked before anything trains, and how choices reach the run spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO, TINY_RUN
from mixer_sweeps.cli import app
from mixer_sweeps.spec import Choices, Problem, SpecError, load_study_file, parse_study_file
from mixer_sweeps.study import STORAGE_ENV, resolve_storage, stream_seed

runner = CliRunner()

SPACE = {"model.embed_dim": {"choices": [16, 24]}, "optim.lr": {"low": 1e-3, "high": 1e-2}}


def study_text(
    space: dict[str, Any] | None = None,
    *,
    fixed: dict[str, Any] | None = None,
    run: dict[str, Any] | None = None,
    **study: Any,
) -> str:
    document: dict[str, Any] = {
        "study": {"name": "tiny", "n_trials": 4, **study},
        "space": SPACE if space is None else space,
    }
    if fixed is not None:
        document["fixed"] = fixed
    if "base" not in study:
        document["run"] = TINY_RUN if run is None else run
    return yaml.safe_dump(document, sort_keys=False)


def write_study(path: Path, space: dict[str, Any] | None = None, **study: Any) -> Path:
    path.write_text(study_text(space, **study), encoding="utf-8")
    return path


def problems_of(text: str) -> dict[str, Problem]:
    """The problems a study file's ``text`` is refused with, by the path of each."""
    with pytest.raises(SpecError) as caught:
        parse_study_file(text, source="bad.yaml")
    return {p.path: p for p in caught.value.problems}


def exits_2(*args: object) -> str:
    """The output of ``sweeps ARGS`` (in this process), which must exit 2: bad input."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    return result.output


@pytest.mark.parametrize("path", sorted((REPO / "studies").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_studies_validate(path: Path) -> None:
    study_file = load_study_file(path)
    assert study_file.n_trials is not None
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok (study" in result.output


def test_validate_takes_run_specs_and_study_files_together(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study.yaml")
    result = runner.invoke(app, ["validate", str(REPO / "specs" / "digits.yaml"), str(study)])
    assert result.exit_code == 0, result.output
    assert "ok (run spec mixer-digits)" in result.output
    assert "ok (study tiny" in result.output


BAD_SPACES = [
    pytest.param(
        {"model.dept": {"choices": [1, 2]}},
        "space.model.dept",
        "did you mean 'model.depth'",
        id="unknown-dotted-path",
    ),
    pytest.param(
        {"optim.lr": {"low": 1e-2, "high": 1e-3}},
        "space.optim.lr.low",
        "must not exceed high=0.001",
        id="low-above-high",
    ),
    pytest.param(
        {"optim.lr": {"low": 0.0, "high": 1e-2, "log": True}},
        "space.optim.lr.low",
        "must be > 0 with log: true",
        id="log-with-low-zero",
    ),
    pytest.param(
        {"optim.lr": {"low": -1e-3, "high": 1e-2, "log": True}},
        "space.optim.lr.low",
        "must be > 0 with log: true but got -0.001",
        id="log-with-negative-low",
    ),
    pytest.param(
        {"model.depth": {"choices": []}},
        "space.model.depth.choices",
        "at least one value",
        id="empty-choices",
    ),
    pytest.param(
        {"optim.lr": {"low": 1e-4, "high": 1e-2, "log": True, "step": 1e-4}},
        "space.optim.lr.step",
        "cannot be combined with log",
        id="step-with-log",
    ),
    pytest.param(
        {"model.patch_size": {"choices": [2, 3]}},
        "space.model.patch_size.choices.1",
        "must divide the image size 8",
        id="choice-invalid-alone",
    ),
    pytest.param(
        {"model.depth": {"low": 1, "high": 2.5}},
        "space.model.depth.high",
        "is an integer",
        id="float-bound-of-int-field",
    ),
    pytest.param(
        {"augment.hflip": {"low": 0, "high": 1}},
        "space.augment.hflip",
        "needs a numeric field",
        id="range-over-bool",
    ),
    pytest.param(
        {"optim.lr.value": {"choices": [1]}},
        "space.optim.lr.value",
        "'optim.lr' is a value, not a section",
        id="path-through-value",
    ),
    pytest.param(
        {"optim.lr": [1e-3, 1e-2]},
        "space.optim.lr",
        "expected {choices: [...]}",
        id="list-not-mapping",
    ),
    pytest.param(
        {"name": {"choices": ["a", "b"]}}, "space.name", "set per trial", id="name-reserved"
    ),
]


@pytest.mark.parametrize(("space", "path", "words"), BAD_SPACES)
def test_bad_space_is_one_spec_error_naming_the_field(space, path: str, words: str) -> None:
    problems = problems_of(study_text(space))
    assert path in problems, problems
    assert words in problems[path].message
    assert problems[path].line is not None


@pytest.mark.parametrize(("space", "path", "words"), BAD_SPACES[:5])
def test_cli_exits_2_naming_the_field(tmp_path: Path, space, path: str, words: str) -> None:
    study = write_study(tmp_path / "bad.yaml", space)
    for command in (["validate", study], ["run", study, "--results", tmp_path]):
        output = exits_2(*command)
        assert path in output and words in output
    assert not (tmp_path / "tiny").exists()


BAD_SETTINGS = [
    pytest.param(
        {"sampler": {"type": "grid"}},
        "space.optim.lr",
        "grid sampler needs choices or a range with a step",
        id="grid-with-continuous-range",
    ),
    pytest.param(
        {"sampler": {"type": "grid"}, "n_trials": 9},
        "study.n_trials",
        "the grid has 2 points",
        id="grid-n-trials-above-size",
    ),
    pytest.param({"sampler": {"type": "bayes"}}, "study.sampler.type", "'tpe'", id="sampler"),
    pytest.param(
        {"pruner": {"type": "median", "min_epochs": 3}},
        "study.pruner.min_epochs",
        "must be below the 3 epochs",
        id="pruning-never-possible",
    ),
    pytest.param(
        {"sampler": {"type": "random", "startup_trials": 3}},
        "study.sampler.startup_trials",
        "only applies to the tpe and cmaes",
        id="startup-trials-for-random",
    ),
    pytest.param({"n_trials": None}, "study.n_trials", "set n_trials or timeout", id="no-budget"),
    pytest.param({"base": "nope.yaml"}, "study.base", "file not found", id="base-file-missing"),
    pytest.param({"replicates": 0}, "study.replicates", "greater than or equal", id="replicates"),
]


@pytest.mark.parametrize(("settings", "path", "words"), BAD_SETTINGS)
def test_bad_study_settings(settings: dict[str, Any], path: str, words: str) -> None:
    space = {"model.embed_dim": {"choices": [16, 24]}, "optim.lr": {"low": 1e-3, "high": 1e-2}}
    if settings.get("sampler", {}).get("type") == "grid" and "n_trials" in settings:
        space = {"model.embed_dim": {"choices": [16, 24]}}
    problems = problems_of(study_text(space, **settings))
    assert path in problems, problems
    assert words in problems[path].message


def test_every_problem_is_reported_at_once() -> None:
    space = {
        "model.dept": {"choices": [1]},
        "optim.lr": {"low": 1e-2, "high": 1e-3},
        "model.depth": {"choices": []},
    }
    paths = set(problems_of(study_text(space, replicates=0)))
    assert {"space.model.dept", "space.optim.lr.low", "space.model.depth.choices"} <= paths
    assert "study.replicates" in paths


def test_missing_study_file_exits_2_naming_it(tmp_path: Path) -> None:
    output = exits_2("run", tmp_path / "nope.yaml")
    assert "nope.yaml" in output and "file not found" in output


def test_base_path_is_relative_to_the_study_file(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "studies").mkdir()
    (tmp_path / "specs" / "tiny.yaml").write_text(yaml.safe_dump(TINY_RUN), encoding="utf-8")
    study = write_study(tmp_path / "studies" / "s.yaml", base="../specs/tiny.yaml")
    assert load_study_file(study).base_spec.name == "tiny-digits"


def test_fixed_values_apply_to_every_trial_and_are_checked() -> None:
    study_file = parse_study_file(study_text(fixed={"optim.epochs": 5}))
    assert study_file.base_spec.optim.epochs == 5
    assert study_file.trial_spec({}, name="t").optim.epochs == 5
    with pytest.raises(SpecError) as caught:
        parse_study_file(study_text(fixed={"optim.epochs": 0, "optim.lr_typo": 1}))
    assert [p.path for p in caught.value.problems] == ["fixed.optim.lr_typo", "fixed.optim.epochs"]


def test_non_scalar_choices_have_readable_labels_and_round_trip() -> None:
    space = {
        "augment.randaugment": {"choices": [None, {"num_ops": 2, "magnitude": 9}]},
        "optim.lr": {"choices": [1e-3, 3e-3]},
    }
    study_file = parse_study_file(study_text(space))
    dim = study_file.space.get("augment.randaugment")
    assert isinstance(dim, Choices)
    assert dim.labels == (None, "{magnitude: 9, num_ops: 2}")
    specs = []

    def objective(trial: optuna.Trial) -> float:
        overrides = study_file.space.overrides(study_file.space.suggest(trial))
        specs.append(study_file.trial_spec(overrides, name=f"t{trial.number}"))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.GridSampler(study_file.space.grid()))
    study.optimize(objective)
    assert len(specs) == study_file.space.grid_size() == 4
    randaugments = {
        None if s.augment.randaugment is None else s.augment.randaugment.num_ops for s in specs
    }
    assert randaugments == {None, 2}
    assert {s.optim.lr for s in specs} == {1e-3, 3e-3}


def test_step_ranges_make_a_grid() -> None:
    space = {
        "optim.lr": {"low": 1e-3, "high": 3e-3, "step": 1e-3},
        "model.depth": {"low": 1, "high": 3},
    }
    with pytest.raises(SpecError):
        parse_study_file(study_text(space, sampler={"type": "grid"}))
    space["model.depth"]["step"] = 2
    study_file = parse_study_file(study_text(space, sampler={"type": "grid"}, n_trials=None))
    assert study_file.space.grid() == {"optim.lr": [1e-3, 2e-3, 3e-3], "model.depth": [1, 3]}
    assert study_file.n_trials == 6


@pytest.mark.parametrize(
    ("option", "env", "file", "expected"),
    [
        ("sqlite:///a.db", "sqlite:///b.db", "sqlite:///c.db", "sqlite:///a.db"),
        (None, "sqlite:///b.db", "sqlite:///c.db", "sqlite:///b.db"),
        (None, None, "sqlite:///c.db", "sqlite:///c.db"),
        (None, None, None, None),
    ],
)
def test_storage_precedence(monkeypatch, option, env, file, expected) -> None:
    if env is None:
        monkeypatch.delenv(STORAGE_ENV, raising=False)
    else:
        monkeypatch.setenv(STORAGE_ENV, env)
    assert resolve_storage(option, file) == expected


def test_unsupported_storage_exits_2(tmp_path: Path) -> None:
    study = write_study(tmp_path / "s.yaml")
    output = exits_2("run", study, "--results", tmp_path, "--storage", "redis://host/0")
    assert "unsupported storage 'redis://host/0'" in output


def test_unreachable_storage_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    study = write_study(tmp_path / "s.yaml")
    url = "postgresql://sweeps:secret@127.0.0.1:1/sweeps"
    results = tmp_path / "results"
    output = exits_2("run", study, "--results", results, "--storage", url)
    assert "127.0.0.1:1" in output and "secret" not in output
    assert not results.exists()


def test_worker_seeds_differ_between_workers_and_runs() -> None:
    # A worker's stream is keyed by its first trial, a number the storage hands out once.
    assert stream_seed(7, first_trial=0) == 7
    seeds = {stream_seed(7, first_trial=n) for n in range(6)}
    assert len(seeds) == 6
    assert stream_seed(None, first_trial=3) is None
