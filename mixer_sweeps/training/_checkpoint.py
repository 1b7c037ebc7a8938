"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint holds only tensors and plain Python types (numbers, strings, lists, dicts), so
``torch.load(weights_only=True)`` reads it and a file crafted to run code on load is refused.
A file that loads is then checked against the model it is to resume (every key, type and
shape) before anything is taken from it, so a checkpoint of another model or a damaged one is
one :class:`CheckpointError` naming what is wrong, not an error deep inside torch. Its values
are checked too: each must be one the trainer could have written for the spec (an epoch within
``optim.epochs``, a best val acc in [0, 1] that the history holds, finite weights and learning
rates), so a crafted file cannot make a run report epochs it never ran or write NaN results.
"""

from __future__ import annotations

import dataclasses
import io
import math
import pickle
import random
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mixer_sweeps.training._outputs import atomic_write_bytes
from mixer_sweeps.training._records import EpochRecord

if TYPE_CHECKING:
    from mixer_sweeps.spec import RunSpec


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read; the message names the file."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` so that a crash at any moment leaves the previous file loadable."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {path}: {exc.strerror or exc}; the previous one is kept"
        ) from exc


def load_checkpoint(
    path: Path,
    *,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    spec: RunSpec | None = None,
    steps_per_epoch: int | None = None,
) -> dict[str, Any]:
    """Read a checkpoint; with ``model`` (and its optimizer and scheduler), check it fits them.

    With ``spec`` (and the optimizer steps of one of its epochs), also that it was made for that
    spec and that its epoch and schedule fit it.

    Raises:
        CheckpointError: the file is missing, corrupt, holds code, or (given ``model``) lacks a
            key, has one of the wrong type, a tensor of the wrong shape or a value the trainer
            could not have written; the message names the file, the key and the value.
    """
    # torch's own words would tell people to load with weights_only=False: never our advice.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4"
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except (PermissionError, IsADirectoryError) as exc:
        # Not any OSError: torch reports some truncated archives as EINVAL.
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"refusing checkpoint {path}: it holds objects other than tensors and plain types, so"
            f" it is not a mixer-sweeps checkpoint and loading it could run code; {_AFRESH}"
        ) from None
    except Exception:  # zip, pickle or tensor data that torch cannot make sense of
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated; {_AFRESH}") from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path} is not a mixer-sweeps checkpoint; {_AFRESH}")
    if model is not None:
        problems = checkpoint_problems(
            state, model, optimizer, scheduler, spec=spec, steps_per_epoch=steps_per_epoch
        )
        if problems:
            shown = "; ".join(problems[:_SHOWN])
            more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
            raise CheckpointError(f"checkpoint {path} cannot be resumed: {shown}{more}")
    return state


_SHOWN = 5
_AFRESH = "use --force to start the run afresh"

_TYPES: dict[str, tuple[type, ...]] = {
    "format": (int,),
    "spec": (dict,),
    "epoch": (int,),
    "model": (dict,),
    "optimizer": (dict,),
    "scheduler": (dict,),
    "history": (list,),
    "best_val_acc": (int, float),
    "best_epoch": (int,),
    "best_state": (dict, type(None)),
    "epochs_since_best": (int,),
    "rng": (dict,),
}
"""Every key of a checkpoint (see ``Trainer.state_dict``) and the types its value may have."""


def checkpoint_problems(
    state: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    *,
    spec: RunSpec | None = None,
    steps_per_epoch: int | None = None,
) -> list[str]:
    """What keeps ``state`` from resuming training of ``model``: one line per problem."""
    problems: list[str] = []
    for key, types in _TYPES.items():
        if key not in state:
            problems.append(f"{key}: missing")
        elif not _is(state[key], types):
            problems.append(f"{key}: expected {_names(types)} but got {_type(state[key])}")
    if problems:
        return problems
    if state["format"] != 1:
        problems.append(f"format: {state['format']} is not a format this version reads (1)")
    if spec is not None and state["spec"] != spec.model_dump(mode="json"):
        return [
            "spec: the checkpoint was made with a different spec; resume with the spec.yaml"
            " saved beside it, or start a new run"
        ]
    expected = model.state_dict()
    problems += _tensor_problems("model", state["model"], expected)
    if state["best_state"] is not None:
        problems += _tensor_problems("best_state", state["best_state"], expected)
    if optimizer is not None:
        problems += _optimizer_problems(state["optimizer"], optimizer)
    if scheduler is not None:
        problems += _scheduler_problems(state["scheduler"], scheduler)
    problems += _history_problems(state["history"])
    problems += _rng_problems(state["rng"])
    if problems:
        return problems
    epochs = spec.optim.epochs if spec is not None else None
    problems += _progress_problems(state, epochs)
    problems += _finite_problems(state, optimizer is not None, scheduler is not None)
    if scheduler is not None and steps_per_epoch is not None and not problems:
        done = state["epoch"] * steps_per_epoch
        if state["scheduler"].get("last_epoch") != done:
            problems.append(
                f"scheduler.last_epoch: must be {done} after {state['epoch']} epoch(s) of"
                f" {steps_per_epoch} steps but got {state['scheduler'].get('last_epoch')!r}"
            )
    return problems


def _progress_problems(state: Mapping[str, Any], epochs: int | None) -> list[str]:
    """The epoch counters and the best val acc, as the trainer keeps them: ``epoch`` epochs in
    the history, the best (first highest) val acc at ``best_epoch``, ``epochs_since_best``
    after it; before the first epoch, a best val acc of -1 at epoch 0."""
    epoch, history = state["epoch"], state["history"]
    if epoch < 0 or (epochs is not None and epoch > epochs):
        bound = (
            "cannot be negative" if epochs is None else f"must be in [0, {epochs}] (optim.epochs)"
        )
        return [f"epoch: {bound} but got {epoch}"]
    if len(history) != epoch:
        return [f"history: holds {len(history)} epoch(s) but epoch is {epoch}"]
    numbers = [record["epoch"] for record in history]
    if numbers != list(range(1, epoch + 1)):
        return [f"history: numbers its epochs {numbers} but must number them 1 to {epoch}"]
    best, best_epoch, since = state["best_val_acc"], state["best_epoch"], state["epochs_since_best"]
    if not math.isfinite(best) or not (best == -1 if epoch == 0 else 0 <= best <= 1):
        want = "must be -1 before the first epoch" if epoch == 0 else "must be in [0, 1]"
        return [f"best_val_acc: {want} but got {best}"]
    if not (best_epoch == 0 if epoch == 0 else 1 <= best_epoch <= epoch):
        want = "must be 0 before the first epoch" if epoch == 0 else f"must be in [1, {epoch}]"
        return [f"best_epoch: {want} (epoch {epoch}) but got {best_epoch}"]
    if since != epoch - best_epoch:
        return [
            f"epochs_since_best: must be {epoch - best_epoch} (epoch {epoch} - best_epoch"
            f" {best_epoch}) but got {since}"
        ]
    if epoch == 0:
        return []
    val = [record["val_acc"] for record in history]
    first_best = val.index(max(val)) + 1
    if (best, best_epoch) != (val[first_best - 1], first_best):
        return [
            f"best_val_acc: {best} at best_epoch {best_epoch} but the history's best is"
            f" {val[first_best - 1]} at epoch {first_best}"
        ]
    if state["best_state"] is None:
        return [f"best_state: missing though {epoch} epoch(s) ran"]
    return []


def _finite_problems(state: Mapping[str, Any], optimizer: bool, scheduler: bool) -> list[str]:
    """NaN or infinite weights, optimizer statistics or learning rates (a finished run would
    report them as its results)."""
    problems = []
    tensors: dict[str, Mapping[Any, Any]] = {"model": state["model"]}
    if state["best_state"] is not None:
        tensors["best_state"] = state["best_state"]
    if optimizer:
        tensors |= {
            f"optimizer.state.{i}": entry for i, entry in state["optimizer"]["state"].items()
        }
    for where, named in tensors.items():
        for key, tensor in named.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                problems.append(f"{where}.{key}: holds NaN or infinite values")
    numbers: list[tuple[str, Any]] = []
    if optimizer:
        for i, group in enumerate(state["optimizer"]["param_groups"]):
            numbers += [(f"optimizer.param_groups.{i}.{k}", v) for k, v in group.items()]
    if scheduler:
        numbers += [(f"scheduler.{k}", v) for k, v in state["scheduler"].items()]
    for where, value in numbers:
        values = value if isinstance(value, list | tuple) else [value]
        bad = [v for v in values if _is(v, (int, float)) and not math.isfinite(v)]
        if bad:
            problems.append(f"{where}: must be finite but got {value}")
        elif where.endswith((".lr", ".initial_lr")) and any(
            _is(v, (int, float)) and v < 0 for v in values
        ):
            problems.append(f"{where}: cannot be negative but got {value}")
    return problems


def _is(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in types)


def _type(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _tensor_problems(
    where: str, saved: Mapping[Any, Any], expected: Mapping[str, torch.Tensor]
) -> list[str]:
    problems = [f"{where}.{key}: missing" for key in expected if key not in saved]
    problems += [f"{where}.{key}: not in the model" for key in saved if key not in expected]
    for key, want in expected.items():
        if key not in saved:
            continue
        got = saved[key]
        if not isinstance(got, torch.Tensor):
            problems.append(f"{where}.{key}: expected a tensor but got {_type(got)}")
        elif got.shape != want.shape:
            problems.append(
                f"{where}.{key}: has shape {tuple(got.shape)} but the model needs"
                f" {tuple(want.shape)}"
            )
        elif got.dtype.is_floating_point != want.dtype.is_floating_point:
            problems.append(
                f"{where}.{key}: has dtype {got.dtype} but the model needs {want.dtype}"
            )
    return problems


def _optimizer_problems(saved: Mapping[str, Any], optimizer: torch.optim.Optimizer) -> list[str]:
    groups, state = saved.get("param_groups"), saved.get("state")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        return [f"optimizer.param_groups: expected a list of mappings but got {_type(groups)}"]
    if not isinstance(state, dict):
        return [f"optimizer.state: expected a mapping but got {_type(state)}"]
    current = optimizer.param_groups
    if len(groups) != len(current):
        return [
            f"optimizer.param_groups: {len(groups)} groups but the optimizer has {len(current)}"
        ]
    problems: list[str] = []
    shapes: dict[Any, torch.Size] = {}
    for i, (group, mine) in enumerate(zip(groups, current, strict=True)):
        params = group.get("params")
        if not isinstance(params, list) or len(params) != len(mine["params"]):
            count = len(params) if isinstance(params, list) else _type(params)
            problems.append(
                f"optimizer.param_groups.{i}.params: {count} parameters but the model has"
                f" {len(mine['params'])} in this group"
            )
            continue
        shapes.update(zip(params, (p.shape for p in mine["params"]), strict=True))
        for key, value in mine.items():
            if key == "params" or value is None:
                continue
            if key not in group:
                problems.append(f"optimizer.param_groups.{i}.{key}: missing")
            elif not _like(group[key], value):
                problems.append(
                    f"optimizer.param_groups.{i}.{key}: expected {type(value).__name__}"
                    f" but got {_type(group[key])}"
                )
    for index, entry in state.items():
        if index not in shapes:
            problems.append(f"optimizer.state.{index}: no such parameter")
            continue
        if not isinstance(entry, dict):
            problems.append(f"optimizer.state.{index}: expected a mapping but got {_type(entry)}")
            continue
        for key, value in entry.items():
            if not isinstance(value, torch.Tensor):
                problems.append(
                    f"optimizer.state.{index}.{key}: expected a tensor but got {_type(value)}"
                )
            elif value.ndim and value.shape != shapes[index]:
                problems.append(
                    f"optimizer.state.{index}.{key}: has shape {tuple(value.shape)} but the"
                    f" parameter has {tuple(shapes[index])}"
                )
    return problems


def _like(saved: Any, current: Any) -> bool:
    if isinstance(current, bool):
        return isinstance(saved, bool)
    if isinstance(current, int | float):
        return isinstance(saved, int | float) and not isinstance(saved, bool)
    if isinstance(current, tuple | list):
        return isinstance(saved, tuple | list) and len(saved) == len(current)
    return isinstance(saved, type(current))


def _scheduler_problems(saved: Mapping[str, Any], scheduler: Any) -> list[str]:
    problems = []
    for key, value in scheduler.state_dict().items():
        if key not in saved:
            problems.append(f"scheduler.{key}: missing")
        elif value is not None and not _like(saved[key], value):
            problems.append(
                f"scheduler.{key}: expected {type(value).__name__} but got {_type(saved[key])}"
            )
    return problems


_HISTORY_KEYS = {f.name for f in dataclasses.fields(EpochRecord)}


def _history_problems(history: list[Any]) -> list[str]:
    for i, record in enumerate(history):
        if not isinstance(record, dict):
            return [f"history.{i}: expected a mapping but got {_type(record)}"]
        if set(record) != _HISTORY_KEYS:
            missing = sorted(_HISTORY_KEYS - set(record))
            extra = sorted(set(record) - _HISTORY_KEYS)
            return [f"history.{i}: missing {missing}, unknown {extra}"]
        for key, value in record.items():
            if not _is(value, (int, float)):
                return [f"history.{i}.{key}: expected a number but got {_type(value)}"]
            if not math.isfinite(value):
                return [f"history.{i}.{key}: must be finite but got {value}"]
            if key in _FRACTIONS and not 0 <= value <= 1:
                return [f"history.{i}.{key}: must be in [0, 1] but got {value}"]
            if value < 0:
                return [f"history.{i}.{key}: cannot be negative but got {value}"]
    return []


_FRACTIONS = {"train_acc", "val_acc"}


def _rng_problems(rng: Mapping[str, Any]) -> list[str]:
    """Each generator's state is tried on a throwaway generator of the same kind."""
    problems = []
    checks = {
        "torch": lambda s: torch.Generator().set_state(s),
        "numpy": lambda s: np.random.RandomState().set_state(
            (s[0], s[1].numpy().astype(np.uint32), *s[2:])
        ),
        "python": lambda s: random.Random().setstate(_to_tuples(s)),
    }
    for key, check in checks.items():
        if key not in rng:
            problems.append(f"rng.{key}: missing")
            continue
        try:
            check(rng[key])
        except (TypeError, ValueError, RuntimeError, LookupError, AttributeError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problems.append(f"rng.{key}: not a generator state ({message})")
    cuda = rng.get("cuda")
    if cuda is not None and not (
        isinstance(cuda, list) and all(isinstance(t, torch.Tensor) for t in cuda)
    ):
        problems.append(f"rng.cuda: expected a list of tensors but got {_type(cuda)}")
    return problems


def check_resumable(spec: RunSpec, path: Path) -> None:
    """Raise :class:`CheckpointError` unless the checkpoint at ``path`` fits ``spec``'s model.

    Cheap: the model, optimizer and schedule are built on the CPU from the dataset's facts, with
    no data loaded, so a damaged checkpoint is refused before a dataset is read or a GPU is used.
    """
    from mixer_sweeps.data import DATASETS
    from mixer_sweeps.training._build import build_model, build_optimizer

    info = DATASETS[spec.data.dataset]
    model = build_model(spec.model, info)
    steps = math.ceil((info.train_size - spec.data.val_size) / spec.optim.batch_size)
    optimizer, scheduler = build_optimizer(spec.optim, model, steps_per_epoch=steps)
    load_checkpoint(
        path,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        spec=spec,
        steps_per_epoch=steps,
    )


def remove_stale_temp_files(run_dir: Path) -> None:
    """Temp files left by a crash mid-write (see ``atomic_write_bytes``)."""
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop draws from, as tensors and plain types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value
