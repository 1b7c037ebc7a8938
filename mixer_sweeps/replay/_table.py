"""Recorded curves in memory: every configuration trained to the end, per seed and epoch.

Two sources give the same :class:`Curves`: a recorded table (``benchmarks/curves/<name>.csv``,
see :func:`read_table`) and a finished study whose trials all ran to the end, such as a grid
study without pruning (:func:`read_study`: its storage, and each trial's ``history.csv``).

The search space of a replay is the one its trials were suggested from: a study's own space,
or, for a table, the space its header's study file gives for the recorded params when that file
can be read and its values are the recorded ones, else the recorded values of each param as
choices. Either way every point of the space is a recorded configuration.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mixer_sweeps.spec import Choices, Range, SearchSpace, choice_label, dimension

if TYPE_CHECKING:
    import pandas as pd

TABLE_MAGIC = "# mixer-sweeps recorded curves v1"
HEADER_PREFIX = "# header: "
NEAR_BEST = 0.005
"""Half a point of accuracy: a configuration this close to the best one counts as found."""


class TableError(ValueError):
    """The source cannot be replayed: not a table or a finished study, or incomplete."""


@dataclass(frozen=True, eq=False)
class Curves:
    """Full curves of every configuration of a grid, per recorded seed.

    Arrays are indexed ``[config, seed, epoch - 1]``; ``configs[c]`` holds configuration ``c``'s
    params as the search space suggests them (Optuna's labels).
    """

    name: str
    source: str
    space: SearchSpace
    configs: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...]
    val_acc: np.ndarray
    seconds: np.ndarray
    test_acc: np.ndarray
    """``[config, seed]``: test accuracy with the best-val weights."""
    num_params: tuple[int | None, ...] = ()
    header: dict[str, Any] = field(default_factory=dict)
    _index: dict[tuple, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        shape = self.val_acc.shape
        if len(shape) != 3 or shape != self.seconds.shape or shape[:2] != self.test_acc.shape:
            raise TableError(
                f"{self.source}: curves must be [config, seed, epoch] arrays of one shape but got"
                f" {self.val_acc.shape}, {self.seconds.shape} and {self.test_acc.shape}"
            )
        if len(self.configs) != shape[0] or len(self.seeds) != shape[1]:
            raise TableError(
                f"{self.source}: {len(self.configs)} configurations and {len(self.seeds)} seeds"
                f" for curves of shape {shape}"
            )
        index = {}
        for c, params in enumerate(self.configs):
            key = self.key(params)
            if key in index:
                raise TableError(
                    f"{self.source}: configurations {index[key]} and {c} are the same: {params}"
                )
            index[key] = c
        object.__setattr__(self, "_index", index)

    @property
    def params(self) -> list[str]:
        return [dim.path for dim in self.space]

    @property
    def epochs(self) -> int:
        return self.val_acc.shape[2]

    @property
    def grid_epochs(self) -> int:
        """What the grid costs with one seed: every configuration trained to the end once."""
        return len(self.configs) * self.epochs

    @property
    def best_val(self) -> np.ndarray:
        """``[config, seed]``: a run's value, the best val accuracy over its epochs."""
        return self.val_acc.max(axis=2)

    @property
    def mean_val(self) -> np.ndarray:
        """Per configuration, the mean over the recorded seeds of a run's value."""
        return self.best_val.mean(axis=1)

    @property
    def mean_test(self) -> np.ndarray:
        return self.test_acc.mean(axis=1)

    def near_best(self, tolerance: float = NEAR_BEST) -> np.ndarray:
        """Indices of the configurations within ``tolerance`` of the best by seed-mean value."""
        mean = self.mean_val
        return np.flatnonzero(mean >= mean.max() - tolerance - 1e-12)

    def key(self, params: dict[str, Any]) -> tuple:
        return tuple(_normal(params[path]) for path in self.params)

    def index(self, params: dict[str, Any]) -> int:
        """The configuration with ``params``; a ``KeyError`` names a point not recorded."""
        try:
            return self._index[self.key(params)]
        except KeyError:
            raise KeyError(f"{params} is not a recorded configuration of {self.source}") from None


def _normal(value: Any) -> Any:
    """A param as a dict key: a stepped float suggested by Optuna may differ in the last bits."""
    if isinstance(value, float) and not isinstance(value, bool):
        return ("float", round(value, 12))
    return (type(value).__name__, value)


# --------------------------------------------------------------------------------- tables


def read_table(path: str | Path) -> Curves:
    """The curves of a recorded table (``# mixer-sweeps recorded curves v1``).

    Raises:
        TableError: naming the file and what is wrong with it.
    """
    import pandas as pd

    path = Path(path)
    header = _read_header(path)
    try:
        frame = pd.read_csv(path, comment="#")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: not a readable CSV table ({exc})") from None
    params = header.get("params")
    if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
        raise TableError(f"{path}: the header's params must list the searched paths")
    needed = ["config", "seed", "epoch", *params, "val_acc", "seconds", "test_acc"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise TableError(f"{path}: the table lacks the columns {missing}")
    if frame.empty:
        raise TableError(f"{path}: the table has no rows")
    return _curves_from_frame(frame, header, params, source=str(path))


def _read_header(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline().rstrip("\n")
            header_line = None
            for line in f:
                if not line.startswith("#"):
                    break
                if line.startswith(HEADER_PREFIX):
                    header_line = line[len(HEADER_PREFIX) :]
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise TableError(f"cannot read the table {path}: {reason}") from None
    if first != TABLE_MAGIC:
        raise TableError(
            f"{path} is not a recorded-curves table (its first line is not {TABLE_MAGIC!r})"
        )
    if header_line is None:
        raise TableError(f"{path}: no '{HEADER_PREFIX.strip()}' line")
    try:
        header = json.loads(header_line)
    except json.JSONDecodeError as exc:
        raise TableError(f"{path}: the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise TableError(f"{path}: the header must be a JSON object")
    return header


def _curves_from_frame(
    frame: pd.DataFrame, header: dict[str, Any], params: list[str], *, source: str
) -> Curves:
    frame = frame.sort_values(["config", "seed", "epoch"], kind="stable")
    configs_ids = sorted(frame["config"].unique())
    seeds = sorted(int(s) for s in frame["seed"].unique())
    epochs = sorted(int(e) for e in frame["epoch"].unique())
    n_configs, n_seeds, n_epochs = len(configs_ids), len(seeds), len(epochs)
    if epochs != list(range(1, n_epochs + 1)):
        raise TableError(f"{source}: epochs must run 1..E but got {epochs[:5]}...")
    if len(frame) != n_configs * n_seeds * n_epochs:
        counts = frame.groupby(["config", "seed"]).size()
        short = counts[counts != n_epochs]
        where = ", ".join(f"config {c} seed {s}" for c, s in short.index[:3])
        raise TableError(
            f"{source}: every configuration needs all {n_epochs} epochs of each of the seeds"
            f" {seeds}, but {where or 'some runs'} {'has' if len(short) == 1 else 'have'} not"
        )
    shape = (n_configs, n_seeds, n_epochs)
    val = frame["val_acc"].to_numpy(dtype=float).reshape(shape)
    seconds = frame["seconds"].to_numpy(dtype=float).reshape(shape)
    test = frame["test_acc"].to_numpy(dtype=float).reshape(shape)[:, :, -1]
    for name, array in (("val_acc", val), ("seconds", seconds), ("test_acc", test)):
        if not np.isfinite(array).all():
            raise TableError(f"{source}: {name} has values that are not finite numbers")
    if (seconds < 0).any():
        raise TableError(f"{source}: seconds cannot be negative")
    firsts = frame.groupby("config", sort=True).head(1)
    configs = [
        {p: _python(row[p]) for p in params} for row in firsts[params].to_dict(orient="records")
    ]
    num_params: tuple[int | None, ...] = ()
    if "num_params" in frame.columns:
        num_params = tuple(
            None if _python(v) is None else int(v) for v in firsts["num_params"].tolist()
        )
    space = _table_space(configs, params, header, source)
    labelled = tuple(_labels(space, c) for c in configs)
    curves = Curves(
        name=str(header.get("name") or Path(source).stem),
        source=source,
        space=space,
        configs=labelled,
        seeds=tuple(seeds),
        val_acc=val,
        seconds=seconds,
        test_acc=test,
        num_params=num_params,
        header=header,
    )
    _check_full_grid(curves)
    return curves


def _python(value: Any) -> Any:
    """A pandas cell as the plain Python value a study file would have written."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _table_space(
    configs: list[dict[str, Any]], params: list[str], header: dict[str, Any], source: str
) -> SearchSpace:
    """The study file's dimensions where they hold exactly the recorded values, else choices."""
    declared = _declared_space(header.get("study"), source)
    dims = []
    for path in params:
        recorded = _unique([c[path] for c in configs])
        dim = declared.get(path)
        if dim is not None and _same_values(dim, recorded):
            dims.append(dim)
        else:
            ordered = sorted(recorded) if _all_numbers(recorded) else recorded
            dims.append(Choices(path=path, choices=ordered))
    return SearchSpace(tuple(dims))


def _declared_space(study: Any, source: str) -> dict[str, Choices | Range]:
    """The ``space:`` of the study file the table was recorded from, if it can be read."""
    if not isinstance(study, str) or not study:
        return {}
    from mixer_sweeps.spec import SpecError, read_yaml

    # As recorded: relative to where the recorder ran (the checkout), or absolute.
    roots = [Path(), *Path(source).resolve().parents]
    for candidate in (root / study for root in roots):
        if not candidate.is_file():
            continue
        try:
            space = read_yaml(candidate, regular_only=True).data.get("space")
        except SpecError:
            return {}
        if not isinstance(space, dict):
            return {}
        return {path: dim for path, dim in map(_dimension, space.items()) if dim is not None}
    return {}


def _dimension(item: tuple[str, Any]) -> tuple[str, Choices | Range | None]:
    path, described = item
    if not isinstance(described, dict):
        return path, None
    ends = [described.get(k) for k in ("low", "high", "step")]
    integer = all(isinstance(v, int) and not isinstance(v, bool) for v in ends)
    try:
        dim = dimension(path, described, type="int" if integer else "float")
    except ValueError:  # pydantic's ValidationError: not a dimension this table can use
        return path, None
    return path, dim if isinstance(dim, Choices) or dim.step is not None else None


def _same_values(dim: Choices | Range, recorded: list[Any]) -> bool:
    try:
        grid = dim.grid()
    except ValueError:
        return False
    labels = {_normal(choice_label(v)) for v in recorded}
    return len(grid) == len(recorded) and {_normal(v) for v in grid} == labels


def _unique(values: list[Any]) -> list[Any]:
    seen: dict[Any, Any] = {}
    for value in values:
        seen.setdefault(_normal(choice_label(value)), value)
    return list(seen.values())


def _all_numbers(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _labels(space: SearchSpace, config: dict[str, Any]) -> dict[str, Any]:
    """``config``'s values as the space's dimensions suggest them (grid values, labels)."""
    labelled = {}
    for dim in space:
        value = choice_label(config[dim.path])
        for candidate in dim.grid():
            if _normal(candidate) == _normal(value):
                value = candidate
                break
        labelled[dim.path] = value
    return labelled


def _check_full_grid(curves: Curves) -> None:
    size = curves.space.grid_size()
    if size != len(curves.configs):
        sizes = " x ".join(str(len(d.grid())) for d in curves.space)
        raise TableError(
            f"{curves.source}: the recorded values make a grid of {size} points ({sizes}) but"
            f" {len(curves.configs)} configurations were recorded; a replay needs every point"
        )


def write_table(curves: Curves, path: str | Path) -> None:
    """``curves`` as a recorded table (the format :func:`read_table` reads), for tests and
    for saving a study's curves (floats written so that they read back bit for bit)."""
    import csv

    path = Path(path)
    header = {
        **curves.header,
        "name": curves.name,
        "params": curves.params,
        "seeds": list(curves.seeds),
        "epochs": curves.epochs,
        "metric": "val_acc",
        "direction": "maximize",
    }
    rows = []
    for c, params in enumerate(curves.configs):
        values = curves.space.overrides(params)
        for s, seed in enumerate(curves.seeds):
            for e in range(curves.epochs):
                rows.append(
                    [
                        c,
                        seed,
                        e + 1,
                        *(_cell(values[p]) for p in curves.params),
                        repr(float(curves.val_acc[c, s, e])),
                        repr(float(curves.seconds[c, s, e])),
                        repr(float(curves.test_acc[c, s])),
                        "" if not curves.num_params else curves.num_params[c],
                    ]
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(f"{TABLE_MAGIC}\n{HEADER_PREFIX}{json.dumps(header)}\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(
            ["config", "seed", "epoch", *curves.params, "val_acc", "seconds", "test_acc"]
            + ["num_params"]
        )
        writer.writerows(rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def table_fields(curves: Curves, *, repeats: int, budget: float) -> dict:
    """What every replay's ``--json`` says of its table and its run."""
    return {
        "source": curves.source,
        "name": curves.name,
        "grid_epochs": curves.grid_epochs,
        "configs": len(curves.configs),
        "seeds": len(curves.seeds),
        "epochs": curves.epochs,
        "repeats": repeats,
        "budget": budget,
    }
