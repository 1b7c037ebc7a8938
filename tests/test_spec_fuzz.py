"""Random YAML and random spec values give a valid spec or one clear SpecError, nothing else."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import TINY_RUN
from mixer_sweeps.spec import RunSpec, SpecError, parse_run_spec

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _leaf_paths(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for key, value in data.items():
        if isinstance(value, dict):
            paths.extend(_leaf_paths(value, (*prefix, key)))
        paths.append((*prefix, key))
    return paths


LEAVES = _leaf_paths(TINY_RUN)


def _parse(text: str) -> None:
    try:
        assert isinstance(parse_run_spec(text, source="fuzz.yaml"), RunSpec)
    except SpecError as exc:
        assert exc.problems
        assert str(exc).startswith("fuzz.yaml: ")


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    _parse(text)


@FUZZ
@given(values)
@example({"²": None})  # a key that str.isdigit() calls a digit and int() refuses
def test_random_yaml_documents(document: Any) -> None:
    _parse(yaml.safe_dump(document))


@FUZZ
@given(st.sampled_from(LEAVES), values)
def test_random_values_in_a_good_spec(path: tuple[str, ...], value: Any) -> None:
    data = yaml.safe_load(yaml.safe_dump(TINY_RUN))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    _parse(yaml.safe_dump(data))


@FUZZ
@given(st.sampled_from(LEAVES), st.text(max_size=10), values)
def test_random_extra_keys(path: tuple[str, ...], key: str, value: Any) -> None:
    data = yaml.safe_load(yaml.safe_dump(TINY_RUN))
    node = data
    for part in path[:-1]:
        node = node[part]
    node[key] = value
    _parse(yaml.safe_dump(data))
