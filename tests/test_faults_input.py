"""Bad input through the real command line, with real processes and real files (classes 9-12 of
issue 11): exit code 2, the key (or file) named, quickly, nothing written, never a traceback; an
unexpected error or a Ctrl-C as one line.

Every command runs as ``python -m mixer_sweeps`` in a folder of its own, in its own session, so
nothing outlives a test. Each test stands alone.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import HANG_S, Took, run_timed, sweeps_cmd, tiny_run, unwritable_folder

GUARD_S = 5.0
"""Every bad input is refused within 5 s of CPU time. That is not a benchmark but a guard against
the blow-ups these inputs used to cause: alias bombs that ran for a minute, models allocated until
the machine ran out of memory. Checking a spec imports no torch, so most take well under a
second; the checkpoint and device cases import torch (1-3 s). CPU rather than wall time, because
other jobs on a shared machine stretch wall time several-fold."""
INPUT_HANG_S = 30.0
"""Hang guard: ... and of wall time (a base spec on a named pipe blocks without using CPU)."""


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _study(base: str | None = "tiny.yaml", **study: Any) -> dict[str, Any]:
    settings = {"name": "s", "n_trials": 2, **study}
    if base is not None:
        settings["base"] = base
    return {"study": settings, "space": {"optim.lr": {"low": 1e-3, "high": 1e-2, "log": True}}}


def _run(
    args: list[str], cwd: Path, *, code: str | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Took]:
    """``sweeps ARGS`` in ``cwd``; with ``code``, that Python runs first (a fault injected)."""
    command = sweeps_cmd(*args)
    if code is not None:
        entry = "from mixer_sweeps.__main__ import main\nmain()"  # what the `sweeps` script runs
        command = [sys.executable, "-c", f"{code}\n{entry}"]
        command += args
    environment = {**os.environ, "XDG_STATE_HOME": str(cwd / ".state"), **(env or {})}
    return run_timed(command, cwd=cwd, env=environment)


def _tree(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1
        for p in root.rglob("*")
        if not p.is_fifo()
    }


# ----------------------------------------------------------------------------- checkpoints


def _checkpoint(damage: Callable[[dict[str, Any]], None]) -> Callable[[Path, Any], None]:
    def setup(tmp: Path, state: dict[str, Any]) -> None:
        import torch

        _write(tmp / "tiny.yaml", tiny_run())
        state = copy.deepcopy(state)
        damage(state)
        (tmp / "run").mkdir()
        torch.save(state, tmp / "run" / "checkpoint.pt")

    return setup


def _shrink_head(state: dict[str, Any]) -> None:
    import torch

    state["model"]["head.weight"] = torch.zeros(3, 3)


# ----------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[..., Any]
    """``setup(tmp)``, or ``setup(tmp, checkpoint_state)``; returns extra args (or None)."""
    args: list[str]
    named: list[str]
    """Each must appear in stderr: the key, the file, the folder."""
    needs_checkpoint: bool = False


def _laughs(tmp: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    _write(tmp / "laughs.yaml", "\n".join(lines) + "\n" + yaml.safe_dump(tiny_run()))


def _fifo(tmp: Path) -> None:
    _write(tmp / "tiny.yaml", tiny_run())
    os.mkfifo(tmp / "pipe.yaml")
    _write(tmp / "study.yaml", _study("pipe.yaml"))


def _grid(tmp: Path) -> None:
    _write(tmp / "tiny.yaml", tiny_run())
    study = _study(sampler={"type": "grid"}, n_trials=None)
    study["space"] = {
        "optim.epochs": {"low": 1, "high": 100_000, "step": 1},
        "model.depth": {"low": 1, "high": 1000, "step": 1},
    }
    _write(tmp / "study.yaml", study)


def _infinite_range(tmp: Path) -> None:
    _write(tmp / "tiny.yaml", tiny_run())
    text = yaml.safe_dump(_study()).replace("high: 0.01", "high: .inf")
    assert ".inf" in text
    _write(tmp / "study.yaml", text)


def _missing_device() -> str:
    import torch

    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def _inline_run(tmp: Path) -> None:
    run = tiny_run(**{"optim.lr": -1, "model.embed_dim": 0})
    del run["name"]
    study = _study(None, name="not a name")
    study["run"] = run
    study["fixed"] = {"optim.epochs": 0}
    _write(tmp / "study.yaml", study)


CASES = [
    # (9) YAML that blows up, files far too large, a base that is no regular file
    Case(
        "alias-bomb",
        _laughs,
        ["train", "laughs.yaml"],
        ["laughs.yaml", "(line ", "expands to more than"],
    ),
    Case(
        "recursive-alias",
        lambda tmp: _write(tmp / "loop.yaml", "name: &a [*a]\n"),
        ["train", "loop.yaml"],
        ["loop.yaml", "(line 1)", "*a"],
    ),
    Case(
        "nested-too-deep",
        lambda tmp: _write(tmp / "deep.yaml", "name: " + "[" * 5000 + "]" * 5000 + "\n"),
        ["validate", "deep.yaml"],
        ["deep.yaml", "nested more than"],
    ),
    Case(
        "file-too-large",
        lambda tmp: _write(tmp / "big.yaml", "#" * (2 << 20) + "\n" + yaml.safe_dump(tiny_run())),
        ["train", "big.yaml"],
        ["big.yaml", "at most 1 MiB"],
    ),
    Case(
        "base-is-dev-zero",
        lambda tmp: _write(tmp / "study.yaml", _study("/dev/zero")),
        ["run", "study.yaml"],
        ["study.base", "/dev/zero", "not a regular file"],
    ),
    Case("base-is-a-fifo", _fifo, ["run", "study.yaml"], ["study.base", "pipe.yaml", "pipe"]),
    # (10) values that cannot be allocated or run
    Case(
        "embed-dim-huge",
        lambda tmp: _write(tmp / "s.yaml", tiny_run(**{"model.embed_dim": 10**9})),
        ["train", "s.yaml"],
        ["model.embed_dim", "16384"],
    ),
    Case(
        "depth-huge",
        lambda tmp: _write(tmp / "s.yaml", tiny_run(**{"model.depth": 10**8})),
        ["train", "s.yaml"],
        ["model.depth", "1024"],
    ),
    Case(
        "crop-padding-huge",
        lambda tmp: _write(tmp / "s.yaml", tiny_run(**{"augment.crop_padding": 10**8})),
        ["train", "s.yaml"],
        ["augment.crop_padding"],
    ),
    Case(
        "crop-padding-beyond-image",
        lambda tmp: _write(tmp / "s.yaml", tiny_run(**{"augment.crop_padding": 9})),
        ["train", "s.yaml"],
        ["augment.crop_padding", "image size 8"],
    ),
    Case(
        "memory-beyond-machine",
        lambda tmp: _write(
            tmp / "s.yaml",
            tiny_run(
                **{
                    "model.embed_dim": 16384,
                    "model.depth": 1024,
                    "model.token_mlp_dim": 65536,
                    "model.channel_mlp_dim": 65536,
                }
            ),
        ),
        ["train", "s.yaml"],
        ["s.yaml", "model.depth", "model.embed_dim", "memory"],
    ),
    Case(
        "seed-beyond-numpy",
        lambda tmp: _write(tmp / "s.yaml", tiny_run(seed=2**32)),
        ["train", "s.yaml"],
        ["seed", "4294967296"],
    ),
    Case(
        "grid-of-millions",
        _grid,
        ["run", "study.yaml"],
        ["study.yaml", "space.optim.epochs", "model.depth", "1,000,000"],
    ),
    Case(
        "workers-beyond-memory",  # one run fits (about 2 GiB); 1024 at once do not
        lambda tmp: (
            _write(
                tmp / "tiny.yaml",
                tiny_run(**{"model.embed_dim": 4096, "model.channel_mlp_dim": 16384}),
            ),
            _write(tmp / "study.yaml", _study()),
        ),
        ["run", "study.yaml", "--workers", "1024"],
        ["--workers 1024", "fit"],
    ),
    Case(
        "launch-workers-beyond-any-job-array",
        lambda tmp: (_write(tmp / "tiny.yaml", tiny_run()), _write(tmp / "study.yaml", _study())),
        ["launch", "study.yaml", "--workers", "1000000000000", "--dry-run"],
        ["--workers", "100000"],
    ),
    Case(
        "range-high-inf",
        _infinite_range,
        ["run", "study.yaml"],
        ["space.optim.lr.high", "finite"],
    ),
    Case(
        "device-missing",
        lambda tmp: _write(tmp / "s.yaml", tiny_run(**{"train.device": _missing_device()})),
        ["train", "s.yaml"],
        ["train.device"],
    ),
    Case(
        "study-device-missing",
        lambda tmp: (
            _write(tmp / "tiny.yaml", tiny_run(**{"train.device": _missing_device()})),
            _write(tmp / "study.yaml", _study()),
        ),
        ["run", "study.yaml"],
        ["study.yaml", "train.device"],
    ),
    # (11) damaged checkpoints, folders that cannot be written, damaged files to report on
    Case(
        "checkpoint-missing-key",
        _checkpoint(lambda s: s.pop("optimizer")),
        ["train", "tiny.yaml", "--resume", "--out", "run"],
        ["run/checkpoint.pt", "optimizer"],
        needs_checkpoint=True,
    ),
    Case(
        "checkpoint-wrong-shape",
        _checkpoint(_shrink_head),
        ["train", "tiny.yaml", "--resume", "--out", "run"],
        ["run/checkpoint.pt", "model.head.weight", "(3, 3)"],
        needs_checkpoint=True,
    ),
    Case(
        "checkpoint-wrong-type",
        _checkpoint(lambda s: s.__setitem__("epoch", "three")),
        ["train", "tiny.yaml", "--resume", "--out", "run"],
        ["run/checkpoint.pt", "epoch", "str"],
        needs_checkpoint=True,
    ),
    Case(
        "results-read-only",
        lambda tmp: (_write(tmp / "tiny.yaml", tiny_run()), _write(tmp / "study.yaml", _study())),
        ["run", "study.yaml", "--results", "{unwritable}/results"],
        ["{unwritable}/results"],
    ),
    Case(
        "report-out-read-only",
        lambda tmp: (_write(tmp / "tiny.yaml", tiny_run()), _write(tmp / "study.yaml", _study())),
        ["report", "study.yaml", "--out", "{unwritable}/report"],
        ["{unwritable}/report"],
    ),
    Case(
        "schema-out-read-only",
        lambda tmp: None,
        ["schema", "--out", "{unwritable}/schema.json"],
        ["{unwritable}/schema.json"],
    ),
    Case(
        "report-invalid-yaml",
        lambda tmp: _write(tmp / "study.yaml", "study: {name: s, base: tiny.yaml\nspace: [\n"),
        ["report", "study.yaml"],
        ["study.yaml", "(line 2)", "invalid YAML"],
    ),
    Case(
        "report-corrupt-saved-study",
        lambda tmp: _write(tmp / "results" / "s" / "study.yaml", "study:\n\tname: s\n"),
        ["report", "results/s"],
        ["results/s/study.yaml", "(line 2)"],
    ),
    # (12) an inline run: every mistake at once, with those of the rest of the file
    Case(
        "inline-run-every-mistake",
        _inline_run,
        ["run", "study.yaml"],
        ["study.name", "run.optim.lr", "run.model.embed_dim", "fixed.optim.epochs", "(line"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_naming_the_key_quickly_writing_nothing(
    case: Case, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if case.needs_checkpoint:
        case.setup(tmp_path, request.getfixturevalue("checkpoint_state"))
    else:
        case.setup(tmp_path)
    needs_unwritable = any("{unwritable}" in a for a in case.args)
    unwritable = str(unwritable_folder(tmp_path)) if needs_unwritable else ""
    args = [a.replace("{unwritable}", unwritable) for a in case.args]
    before = _tree(tmp_path)

    out, took = _run(args, tmp_path)

    stderr = out.stderr
    assert out.returncode == 2, f"exit code {out.returncode}\n{stderr}{out.stdout}"
    for words in case.named:
        assert words.replace("{unwritable}", unwritable) in stderr, stderr
    assert "Traceback" not in stderr + out.stdout
    assert took.cpu < GUARD_S, f"blow-up guard: {took.cpu:.1f} s of CPU\n{stderr}"
    assert took.wall < INPUT_HANG_S, f"hang guard: {took.wall:.1f} s\n{stderr}"
    assert _tree(tmp_path) == before, "the command wrote files"
    for arg in args:
        if needs_unwritable and arg.startswith(unwritable):
            assert not Path(arg).exists()


# ----------------------------------------------------------- unexpected errors and Ctrl-C

# The fault is injected in the test's own process wrapper (python -c), not by any switch of the
# program: `sweeps` itself has no test hooks.
_BUG = (
    "import mixer_sweeps.spec as spec\n"
    "def broken(*args, **kwargs):\n"
    "    raise RuntimeError('simulated bug in the loader')\n"
    "spec.load_run_spec = broken"
)


def test_an_unexpected_error_is_one_line_and_a_log_with_the_traceback(tmp_path: Path) -> None:
    _write(tmp_path / "tiny.yaml", tiny_run())
    out, _ = _run(["validate", "tiny.yaml"], tmp_path, code=_BUG)

    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: RuntimeError: simulated bug in the loader (details in ")
    log = Path(lines[0].rsplit("(details in ", 1)[1].rstrip(")"))
    assert log.is_relative_to(tmp_path / ".state" / "mixer-sweeps" / "logs")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: simulated bug in the loader" in text
    assert "'validate' 'tiny.yaml'" in text


def test_the_log_falls_back_to_the_temp_folder(tmp_path: Path) -> None:
    _write(tmp_path / "tiny.yaml", tiny_run())
    state = tmp_path / "state-is-a-file"
    state.write_text("")
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {"XDG_STATE_HOME": str(state), "TMPDIR": str(temp)}
    out, _ = _run(["validate", "tiny.yaml"], tmp_path, code=_BUG, env=env)

    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    (log,) = (temp / "mixer-sweeps" / "logs").iterdir()
    assert str(log) in out.stderr
    assert "simulated bug" in log.read_text()


_CTRL_C = (
    "import mixer_sweeps.spec as spec\n"
    "def interrupted(*args, **kwargs):\n"
    "    raise KeyboardInterrupt\n"
    "spec.load_run_spec = interrupted"
)

# Ctrl-C while Python is still importing the command line, before any handler of ours is set.
_CTRL_C_WHILE_STARTING = (
    "import sys\n"
    "class Interrupt:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'mixer_sweeps.cli':\n"
    "            raise KeyboardInterrupt\n"
    "sys.meta_path.insert(0, Interrupt())"
)

# A second Ctrl-C while `sweeps train` prints its last lines (after the run's handlers are gone).
_CTRL_C_AT_THE_END = (
    "import mixer_sweeps.cli._train as cli\n"
    "def interrupted(*args, **kwargs):\n"
    "    raise KeyboardInterrupt\n"
    "cli._echo_wandb = interrupted"
)


@pytest.mark.parametrize(
    ("code", "args"),
    [
        (_CTRL_C_WHILE_STARTING, ["validate", "tiny.yaml"]),
        (_CTRL_C, ["validate", "tiny.yaml"]),
        (_CTRL_C_AT_THE_END, ["train", "tiny.yaml", "--epochs", "1", "--out", "run"]),
    ],
    ids=["while-starting", "while-loading", "while-train-prints-its-results"],
)
def test_ctrl_c_is_one_line_and_exit_130(code: str, args: list[str], tmp_path: Path) -> None:
    _write(tmp_path / "tiny.yaml", tiny_run())
    out, _ = _run(args, tmp_path, code=code)

    assert out.returncode == 130, out.stderr
    assert out.stderr.strip().endswith("\ninterrupted") or out.stderr.strip() == "interrupted"
    assert "Traceback" not in out.stderr + out.stdout
    if args[0] == "train":
        assert (tmp_path / "run" / "metrics.json").is_file()


def test_a_ctrl_c_that_lands_in_a_finalizer_prints_no_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker's Ctrl-C raises KeyboardInterrupt wherever the main thread is; inside a weakref
    # callback (garbage collection) it cannot propagate, and Python would print its traceback.
    import weakref

    from mixer_sweeps._signals import Interrupt

    class Thing:
        pass

    def interrupted(_: object) -> None:
        raise KeyboardInterrupt

    printed: list[object] = []  # what Python's own hook would print, with its traceback
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    with Interrupt().installed():
        thing = Thing()
        ref = weakref.ref(thing, interrupted)
        del thing
    assert ref() is None
    assert printed == []


def test_a_ctrl_c_lost_in_a_finalizer_still_interrupts_the_command(tmp_path: Path) -> None:
    # Outside a worker (a command's last lines, say) the Ctrl-C is delivered again to the main
    # thread: one line and exit 130, not a traceback and a Ctrl-C lost.
    code = textwrap.dedent(
        """
        import time, weakref
        from mixer_sweeps._crash import run_guarded

        class Thing:
            pass

        def interrupted(_):
            raise KeyboardInterrupt

        def command():
            thing = Thing()
            ref = weakref.ref(thing, interrupted)
            del thing
            time.sleep(600)  # only the Ctrl-C delivered again ends it before the test's timeout

        run_guarded(command)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=HANG_S,
        # Python handles Ctrl-C only where it is not ignored, and a background job's is.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert (out.returncode, out.stderr.strip()) == (130, "interrupted"), out.stderr


def test_crashed_workers_are_one_line_each_and_their_tracebacks_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mixer_sweeps._crash import summarize

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    reports = [
        "worker 0 crashed:\nTraceback (most recent call last):\n  File ...\nValueError: bad\n",
        "worker 1 ended with exit code -9",
    ]
    lines = summarize(reports).splitlines()

    assert lines[:2] == ["worker 0 crashed: ValueError: bad", "worker 1 ended with exit code -9"]
    assert "Traceback" not in "\n".join(lines)
    log = Path(lines[2].removeprefix("(details in ").removesuffix(")"))
    assert "Traceback (most recent call last)" in log.read_text()


@pytest.mark.parametrize("preset", ["mixer-digits", "mixer-nano", "mixer-tiny"])
def test_the_memory_estimate_counts_the_parameters_of_the_model_it_builds(preset: str) -> None:
    from mixer_sweeps.data import DATASETS
    from mixer_sweeps.spec import RunSpec, estimate_memory
    from mixer_sweeps.training import build_model

    dataset = "digits" if preset == "mixer-digits" else "cifar100"
    spec = RunSpec.model_validate(
        tiny_run(**{"model": {"preset": preset}, "data.dataset": dataset, "data.val_size": 100})
    )
    model = build_model(spec.model, DATASETS[dataset])
    assert estimate_memory(spec).parameters == sum(p.numel() for p in model.parameters())


def test_a_study_is_checked_against_the_machine_value_by_value(tmp_path: Path) -> None:
    from mixer_sweeps.spec import load_study_file

    _write(tmp_path / "tiny.yaml", tiny_run())
    study = _study()
    study["space"]["model.depth"] = {"choices": [1, 2, 3]}
    file = load_study_file(_write(tmp_path / "study.yaml", study))

    variants = list(file.variants())
    assert [label.split(" ", 1)[1] for label, _ in variants] == [
        "(the base spec)",
        "with optim.lr=0.001",
        "with optim.lr=0.01",
        "with model.depth=1",
        "with model.depth=2",
        "with model.depth=3",
    ]
    assert [spec.model.depth for _, spec in variants[-3:]] == [1, 2, 3]
