from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mixer_sweeps.spec import (
    RunSpec,
    SpecError,
    apply_overrides,
    load_run_spec,
    parse_run_spec,
    with_overrides,
)

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
name: mixer-nano-cifar10
seed: 0
data:
  dataset: cifar10
  root: data
  val_size: 5000
model:
  patch_size: 4
  embed_dim: 128
  depth: 8
  token_mlp_dim: 64
  channel_mlp_dim: 512
augment:
  randaugment: {num_ops: 2, magnitude: 9}
  mixup_alpha: 0.8
optim:
  lr: 1e-3
  weight_decay: 0.05
  epochs: 300
  warmup_epochs: 5
  min_lr: 1e-6
  early_stopping_patience: 20
train:
  device: auto
tracking:
  wandb: {mode: auto, project: mixer-sweeps, entity: null, tags: []}
"""


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize("path", sorted((REPO / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_load(path: Path) -> None:
    assert isinstance(load_run_spec(path), RunSpec)


def test_good_spec_loads_with_types() -> None:
    spec = parse_run_spec(GOOD)
    assert spec.optim.lr == pytest.approx(1e-3)
    assert isinstance(spec.optim.lr, float)
    assert spec.optim.min_lr == pytest.approx(1e-6)
    assert spec.model.embed_dim == 128
    assert spec.augment.randaugment is not None
    assert spec.augment.randaugment.magnitude == 9


def test_spec_is_frozen() -> None:
    spec = parse_run_spec(GOOD)
    with pytest.raises(ValueError):
        spec.optim.lr = 0.1  # type: ignore[misc]


def test_preset_fills_dimensions_and_fields_override_it() -> None:
    text = _edit(
        GOOD, "  patch_size: 4\n  embed_dim: 128\n", "  preset: mixer-nano\n  embed_dim: 96\n"
    )
    text = text.replace("  depth: 8\n  token_mlp_dim: 64\n  channel_mlp_dim: 512\n", "")
    spec = parse_run_spec(text)
    assert (spec.model.patch_size, spec.model.embed_dim, spec.model.depth) == (4, 96, 8)
    assert spec.model.channel_mlp_dim == 512


BAD_CASES = [
    # (id, old, new, dotted path, YAML line, words in the message)
    ("unknown-key", "  lr: 1e-3\n", "  lr: 1e-3\n  lrr: 2\n", "optim.lrr", 18, "did you mean 'lr'"),
    ("unknown-section", "seed: 0\n", "seed: 0\nmodle: {}\n", "modle", 3, "unknown key"),
    ("wrong-type", "  depth: 8\n", "  depth: deep\n", "model.depth", 10, "'deep'"),
    ("lr-zero", "  lr: 1e-3\n", "  lr: 0\n", "optim.lr", 17, "greater than 0"),
    ("lr-negative", "  lr: 1e-3\n", "  lr: -1e-3\n", "optim.lr", 17, "-0.001"),
    ("patch-not-dividing", "  patch_size: 4\n", "  patch_size: 5\n", "model.patch_size", 8, "32"),
    ("val-too-big", "  val_size: 5000\n", "  val_size: 50000\n", "data.val_size", 6, "50000"),
    ("unknown-dataset", "  dataset: cifar10\n", "  dataset: mnist\n", "data.dataset", 4, "mnist"),
    (
        "unknown-preset",
        "  patch_size: 4\n",
        "  preset: mixer-huge\n  patch_size: 4\n",
        "model.preset",
        8,
        "mixer-huge",
    ),
    (
        "warmup-gt-epochs",
        "  warmup_epochs: 5\n",
        "  warmup_epochs: 500\n",
        "optim.warmup_epochs",
        20,
        "300",
    ),
    ("min-lr-gt-lr", "  min_lr: 1e-6\n", "  min_lr: 1e-2\n", "optim.min_lr", 21, "0.01"),
    (
        "dropout-one",
        "  channel_mlp_dim: 512\n",
        "  channel_mlp_dim: 512\n  dropout: 1.0\n",
        "model.dropout",
        13,
        "less than 1",
    ),
    ("bad-mode", "mode: auto", "mode: sometimes", "tracking.wandb.mode", 26, "sometimes"),
    (
        "negative-patience",
        "  early_stopping_patience: 20\n",
        "  early_stopping_patience: -3\n",
        "optim.early_stopping_patience",
        22,
        "-3",
    ),
    (
        "magnitude-too-big",
        "magnitude: 9",
        "magnitude: 31",
        "augment.randaugment.magnitude",
        14,
        "31",
    ),
    ("bad-name", "name: mixer-nano-cifar10", "name: ../escape", "name", 1, "pattern"),
    (
        "missing-model",
        "model:\n  patch_size: 4\n  embed_dim: 128\n  depth: 8\n"
        "  token_mlp_dim: 64\n  channel_mlp_dim: 512\n",
        "",
        "model",
        None,
        "required",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "path", "line", "words"),
    [case[1:] for case in BAD_CASES],
    ids=[case[0] for case in BAD_CASES],
)
def test_bad_spec_names_path_and_line(old, new, path, line, words) -> None:
    with pytest.raises(SpecError) as info:
        parse_run_spec(_edit(GOOD, old, new), source="bad.yaml")
    problems = {p.path: p for p in info.value.problems}
    assert path in problems, str(info.value)
    assert problems[path].line == line
    assert words in problems[path].message
    assert str(info.value).startswith("bad.yaml: ")


def test_every_problem_is_listed_at_once() -> None:
    text = _edit(GOOD, "  lr: 1e-3\n", "  lr: -1\n")
    text = _edit(text, "  depth: 8\n", "  depth: 0\n")
    text = _edit(text, "seed: 0\n", "seed: 0\ncolour: blue\n")
    with pytest.raises(SpecError) as info:
        parse_run_spec(text)
    assert {p.path for p in info.value.problems} == {"optim.lr", "model.depth", "colour"}
    assert "3 problems" in str(info.value)


@pytest.mark.parametrize(
    ("text", "words", "line"),
    [
        (GOOD + "seed: 1\n", "duplicate key (first defined on line 2)", 27),
        (GOOD + "oops: !!python/object:os.system {}\n", "python/object", 27),
        ("name: [unclosed\n", "invalid YAML", 2),
        ("- just\n- a list\n", "expected a mapping", 1),
        ("", "empty", None),
    ],
    ids=["duplicate-key", "python-tag", "malformed", "not-a-mapping", "empty"],
)
def test_yaml_level_errors(text: str, words: str, line: int | None) -> None:
    with pytest.raises(SpecError) as info:
        parse_run_spec(text)
    (problem,) = info.value.problems
    assert words in problem.message
    assert problem.line == line


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_run_spec(tmp_path / "nope.yaml")


def test_overrides_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(GOOD)
    assert load_run_spec(path, {"optim.epochs": 30}).optim.epochs == 30
    with pytest.raises(SpecError, match="optim.epochs"):
        load_run_spec(path, {"optim.epochs": 0})
    spec = with_overrides(load_run_spec(path), {"model.depth": 2}, source="trial")
    assert spec.model.depth == 2
    assert apply_overrides({"a": {"b": 1}}, {"a.c": 2}) == {"a": {"b": 1, "c": 2}}


def test_resolved_spec_round_trips_through_yaml() -> None:
    spec = parse_run_spec(GOOD)
    again = RunSpec.model_validate(yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json"))))
    assert again == spec


def test_json_schema_documents_every_field() -> None:
    schema = RunSpec.model_json_schema()
    json.dumps(schema)
    for name, definition in schema["$defs"].items():
        for field, prop in definition["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"
