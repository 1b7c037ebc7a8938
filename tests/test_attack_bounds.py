"""Issue 17, points 3 to 5: every command bounds what it allocates from a user's numbers.

- A number a command would allocate or wait by (``plan --workers``, ``retrain --seeds``,
  ``status --interval``, ``launch --time``, a YAML integer of thousands of digits) beyond its
  bound: exit 2, one line naming the option and the value, at once, nothing written.
- ``plan`` answers on spaces too large to list (a billion points on one range, more than 2**63
  in all): it counts with Python ints and looks at points by index.
- ``run --workers N`` counts each worker process's own memory, not only its model's, and a
  request that does not fit says how many do before any process starts or any file is written.
- ``launch --executor local`` makes the same checks as ``run`` (memory, device, workers), and
  exits 1, as ``run`` does, when every trial failed.

Every case runs the real command line in a process of its own, on real files in a temp folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import HANG_S, TINY_RUN, Took, run_timed, sweeps_cmd, tiny_run
from mixer_sweeps.spec import WORKER_PROCESS_BYTES, available_memory

GUARD_S = 5.0
"""CPU seconds a refusal may take: a guard against the blow-ups (a billion-item list, a
thousand processes), not a benchmark; refusing imports no torch, so most take under a second."""
BOGUS_STORAGE = "nosuch://x"
"""A storage URL that `run` and `launch` refuse before they start or write anything: should a
worker check ever let 1,024 workers through, they are refused there, not spawned on the test
machine. A refusal by the check names --workers; one by the storage does not."""


def _sweeps(args: list[str], cwd: Path, timeout: float = HANG_S) -> tuple[Any, Took]:
    env = {**os.environ, "XDG_STATE_HOME": str(cwd / ".state")}  # crash logs: a change
    return run_timed(sweeps_cmd(*args), cwd=cwd, env=env, timeout=timeout)


def _tree(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1 for p in root.rglob("*")
    }


def _write_study(folder: Path, spec: dict[str, Any], **study: Any) -> None:
    (folder / "tiny.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    document = {
        "study": {"name": "s", "base": "tiny.yaml", "n_trials": 2, **study},
        "space": {"optim.lr": {"low": 1e-3, "high": 1e-2, "log": True}},
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")


def _has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


def _assert_refused(out: Any, took: Took, named: list[str], *, one_line: bool) -> None:
    stderr = out.stderr
    assert out.returncode == 2, f"exit code {out.returncode}\n{stderr}{out.stdout}"
    assert "Traceback" not in stderr + out.stdout
    for words in named:
        assert words in stderr, stderr
    if one_line:
        assert len(stderr.strip().splitlines()) == 1, stderr
    assert took.cpu < GUARD_S, f"blow-up guard: {took.cpu:.1f} s of CPU\n{stderr}"


# ------------------------------------------------------------------- 4. numbers beyond bounds


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    named: list[str]
    study_text: tuple[str, str] | None = None
    """(old, new): an edit of study.yaml's text, for what yaml.safe_dump cannot write."""
    one_line: bool = True
    changes: dict[str, Any] = field(default_factory=dict)


HUGE_INT = "9" * 5000
"""More digits than Python converts to an int (4,300)."""

CASES = [
    Case(
        "plan-workers-a-billion",  # was a MemoryError: a placement for every worker
        ["plan", "study.yaml", "--no-calibrate", "--workers", "1000000000"],
        ["--workers", "1000000000", "1,024"],
    ),
    Case("plan-workers-zero", ["plan", "study.yaml", "--workers", "0"], ["--workers", "got 0"]),
    Case(
        "retrain-seeds-below-2**32",  # passed the 2**32 check, then a MemoryError
        ["retrain", "tiny.yaml", "--seeds", "4294966000"],
        ["--seeds", "4294966000", "1,000"],
    ),
    Case(
        "retrain-top-huge",
        ["retrain", "study.yaml", "--top", str(10**20)],
        ["--top", str(10**20)],
    ),
    Case("status-interval-inf", ["status", "--watch", "--interval", "inf"], ["--interval", "inf"]),
    Case("status-interval-nan", ["status", "--watch", "--interval", "nan"], ["--interval", "nan"]),
    Case("status-interval-zero", ["status", "--watch", "--interval", "0"], ["--interval", "0.0"]),
    Case(
        "status-interval-a-year",
        ["status", "--watch", "--interval", "31536000"],
        ["--interval", "31536000.0", "86,400"],
    ),
    Case(
        "launch-gpus-per-worker-a-billion",  # locally each GPU is named in CUDA_VISIBLE_DEVICES
        ["launch", "study.yaml", "--executor", "local", "--gpus-per-worker", "1000000000"],
        ["--gpus-per-worker 1000000000", "64"],
    ),
    Case(
        "launch-time-beyond-a-year",
        ["launch", "study.yaml", "--executor", "local", "--time", "400-00:00:00"],
        ["--time '400-00:00:00'", "longer than a year"],
    ),
    Case(
        "launch-time-of-5000-digits",  # int() refuses it with a ValueError
        ["launch", "study.yaml", "--executor", "local", "--time", HUGE_INT],
        ["--time", "longer than a year"],
    ),
    Case(
        "launch-mem-of-5000-digits",
        ["launch", "study.yaml", "--executor", "local", "--mem", f"{HUGE_INT}G"],
        ["--mem", "16G"],
    ),
    Case(
        "run-workers-per-gpu-beyond-run's-cap",
        ["run", "study.yaml", "--workers-per-gpu", "2000"],
        ["--workers-per-gpu"],
        one_line=False,  # click's own range message
    ),
    Case(
        "study-integer-of-5000-digits",
        ["plan", "study.yaml", "--no-calibrate"],
        ["study.yaml", "(line", "5,000 digits"],
        study_text=("n_trials: 2", f"n_trials: {HUGE_INT}"),
        one_line=False,  # a file's problems: the file, then a line per problem
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_number_beyond_its_bound_exits_2_naming_it_at_once_writing_nothing(
    case: Case, tmp_path: Path
) -> None:
    _write_study(tmp_path, tiny_run(**case.changes))
    if case.study_text is not None:
        path = tmp_path / "study.yaml"
        old, new = case.study_text
        path.write_text(path.read_text().replace(old, new))
    before = _tree(tmp_path)

    out, took = _sweeps(case.args, tmp_path)

    _assert_refused(out, took, case.named, one_line=case.one_line)
    assert _tree(tmp_path) == before, "the command wrote files"


# ------------------------------------------------------------- 4. plan on spaces too large to list

TEN_STEPPED = [
    "optim.weight_decay",
    "augment.label_smoothing",
    "augment.mixup_alpha",
    "augment.random_erasing",
    "optim.warmup_epochs",
    "model.dropout",
    "model.drop_path",
    "augment.cutmix_alpha",
    "optim.lr",
    "optim.grad_clip_norm",
]


@pytest.mark.parametrize(
    ("space", "points", "grid_size"),
    [
        pytest.param(  # was a MemoryError after 19 s: the billion values were listed
            {"seed": {"low": 1, "high": 10**9, "step": 1}},
            [10**9],
            10**9,
            id="tpe-integer-range-of-a-billion",
        ),
        pytest.param(  # was an OverflowError: more than 2**63 points
            {path: {"low": 0.001, "high": 0.5, "step": 0.0001} for path in TEN_STEPPED},
            [4991] * 10,
            4991**10,
            id="ten-stepped-dimensions",
        ),
    ],
)
def test_plan_answers_on_spaces_too_large_to_list(
    tmp_path: Path, space: dict[str, Any], points: list[int], grid_size: int
) -> None:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_RUN), encoding="utf-8")
    document = {"study": {"name": "s", "base": "tiny.yaml", "n_trials": 2}, "space": space}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")

    out, took = _sweeps(["plan", "study.yaml", "--no-calibrate", "--json"], tmp_path)

    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert [d["points"] for d in plan["dimensions"]] == points
    assert plan["grid_size"] == grid_size  # exact: a Python int, not a float or an int64
    assert plan["sampled"] is True
    assert plan["models"]["smallest"]["parameters"] > 0
    assert took.cpu < 60, f"{took.cpu:.1f} s of CPU: is the space listed?"


# ------------------------------------------- 3 and 5. the machine's checks, in run and in launch

COMMANDS = {
    "run": ["run", "study.yaml"],
    "launch-local": ["launch", "study.yaml", "--executor", "local"],
}
BIG_MODEL = {
    "model.embed_dim": 16384,
    "model.depth": 1024,
    "model.token_mlp_dim": 65536,
    "model.channel_mlp_dim": 65536,
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    ("args", "changes", "named", "one_line"),
    [
        pytest.param(  # each worker process holds ~0.5 GB; its tiny model, 4 MiB
            ["--workers", "1024"],
            {},
            ["--workers 1024", "fit", "Python process"],
            True,
            id="1024-workers-of-a-tiny-model",
        ),
        pytest.param(
            [], BIG_MODEL, ["study.yaml", "model.depth", "memory"], False, id="a-model-beyond-ram"
        ),
        pytest.param(
            [], {"train.device": "cuda"}, ["train.device", "cuda"], True, id="cuda-without-gpu"
        ),
    ],
)
def test_run_and_launch_refuse_what_this_machine_cannot_hold_before_starting_anything(
    tmp_path: Path,
    command: str,
    args: list[str],
    changes: dict[str, Any],
    named: list[str],
    one_line: bool,
) -> None:
    if "train.device" in changes and _has_gpu():
        pytest.skip("this machine has a GPU")
    free, _ = available_memory("cpu")
    if args and free is not None and free > 1024 * WORKER_PROCESS_BYTES:
        pytest.skip("this machine holds 1,024 worker processes")
    _write_study(tmp_path, tiny_run(**changes))
    before = _tree(tmp_path)

    full = [*COMMANDS[command], *args, "--storage", BOGUS_STORAGE]
    out, took = _sweeps(full, tmp_path)

    _assert_refused(out, took, named, one_line=one_line)
    assert "storage" not in out.stderr, "refused for its storage, not by the machine's check"
    assert _tree(tmp_path) == before, "a results folder, journal, worker log or trial was written"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_workers_that_fit_pass_the_check(tmp_path: Path, command: str) -> None:
    free, _ = available_memory("cpu")
    if free is not None and free < 4 * WORKER_PROCESS_BYTES:
        pytest.skip("this machine holds fewer than 4 worker processes")
    _write_study(tmp_path, tiny_run())

    out, _ = _sweeps([*COMMANDS[command], "--workers", "2", "--storage", BOGUS_STORAGE], tmp_path)

    assert out.returncode == 2, out.stderr
    assert "unsupported storage" in out.stderr and "--workers" not in out.stderr, out.stderr


def test_a_local_launch_in_which_every_trial_fails_exits_1_as_run_does(tmp_path: Path) -> None:
    # Learning rates so large that the loss turns non-finite in the first epoch.
    spec = tiny_run(**{"optim.epochs": 1, "optim.warmup_epochs": 0})
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    document = {
        "study": {
            "name": "s",
            "base": "tiny.yaml",
            "n_trials": 2,
            "sampler": {"type": "grid"},
            "pruner": {"type": "none"},
        },
        "space": {"optim.lr": {"choices": [1e6, 1e7]}},
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")

    out, _ = _sweeps(["launch", "study.yaml", "--executor", "local"], tmp_path, timeout=240)

    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "all 2 trials failed" in errors[0], out.stderr
    assert "non-finite" in errors[0]
