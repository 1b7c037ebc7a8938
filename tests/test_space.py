"""A search dimension has one representation: the typed object a study file is read into is what
a study stores (and fingerprints), and what is read back from storage and from ``study.yaml``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from conftest import REPO, TINY_RUN
from mixer_sweeps.results import StudyRecord
from mixer_sweeps.spec import Choices, Range, SearchSpace, load_study_file, parse_study_file

SHIPPED = sorted((REPO / "studies").glob("*.yaml"))


def study_with(space: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {"study": {"name": "s", "n_trials": 2}, "run": TINY_RUN, "space": space}, sort_keys=False
    )


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_study_s_space_reads_back_as_itself(path: Path) -> None:
    space = load_study_file(path).space
    stored = json.loads(json.dumps(space.describe()))  # what a study's user attrs keep
    assert SearchSpace.from_description(stored) == space
    assert SearchSpace.from_description(stored).describe() == space.describe()


@pytest.mark.parametrize(
    ("path", "written", "stored"),
    [
        # The stored text is hashed into the study's fingerprint: a range's ends keep the type
        # of their run spec field, so a stored study still matches its file.
        (
            "model.depth",
            {"low": 1.0, "high": 4.0, "step": 1.0},
            '{"low": 1, "high": 4, "log": false, "step": 1, "type": "int"}',
        ),
        (
            "optim.lr",
            {"low": 1, "high": 2},
            '{"low": 1.0, "high": 2.0, "log": false, "type": "float"}',
        ),
        (
            "augment.label_smoothing",
            {"low": 0.0, "high": 0.2, "step": 0.1},
            '{"low": 0.0, "high": 0.2, "log": false, "step": 0.1, "type": "float"}',
        ),
        (
            "optim.lr",
            {"low": 1e-4, "high": 1e-2, "log": True},
            '{"low": 0.0001, "high": 0.01, "log": true, "type": "float"}',
        ),
        (
            "augment.randaugment",
            {"choices": [None, {"num_ops": 2}]},
            '{"choices": [null, {"num_ops": 2}]}',
        ),
    ],
)
def test_a_dimension_stores_itself_as_written_in_its_field_s_type(
    path: str, written: dict[str, Any], stored: str
) -> None:
    dim = parse_study_file(study_with({path: written})).space.get(path)
    assert json.dumps(dim.describe()) == stored
    assert SearchSpace.from_description({path: json.loads(stored)}).get(path) == dim


def test_a_study_s_stored_record_holds_the_space_as_the_typed_object() -> None:
    study_file = parse_study_file(
        study_with(
            {
                "optim.lr": {"low": 1e-4, "high": 1e-2, "log": True},
                "model.depth": {"choices": [1, 2]},
            }
        )
    )
    study = optuna.create_study()
    record = StudyRecord(direction=study.direction, space=study_file.space)
    for key, value in record.to_attrs().items():
        study.set_user_attr(key, value)
    read = StudyRecord.from_study(study).space
    assert isinstance(read.get("optim.lr"), Range) and isinstance(read.get("model.depth"), Choices)
    assert read == study_file.space


@pytest.mark.parametrize(
    "damaged",
    [
        "not a mapping",
        {"optim.lr": "not a mapping"},
        {"optim.lr": {"low": 1e-4, "high": 1e-2}},  # no type
        {"optim.lr": {"low": 1e-2, "high": 1e-4, "type": "float"}},
        {"optim.lr": {"choices": [1, 1]}},
    ],
)
def test_a_damaged_stored_space_is_no_space(damaged: Any) -> None:
    study = optuna.create_study()
    study.set_user_attr("space", damaged)
    assert StudyRecord.from_study(study).space is None
