"""Paths a user names on the command line: nothing that is there is destroyed (issue 17, 2 and 8).

Every command that writes a file the user names (``best --export``, ``schema --out``) refuses an
existing file without ``--force``, writes through a named pipe or an open descriptor rather than
replacing it, and never replaces a symbolic link. Every command that writes into a folder the
user names (``train --out``, ``report --out``, ``replay --out``, retrain's
``<results>/<study>/retrain``) refuses a
file, a pipe, a link to nothing, a folder of other files or a pipe in place of one of its own
files, and writes through a link to a folder. ``validate`` reads a pipe once, as ``train`` does.

Real processes on real files in a temp folder; never a real device node.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_replay import family

from conftest import TINY_RUN, sweeps, unwritable_folder
from mixer_sweeps.replay import write_table
from mixer_sweeps.spec import load_study_file, parse_run_spec
from mixer_sweeps.study import run_study

EPOCH = {**TINY_RUN, "optim": {**TINY_RUN["optim"], "epochs": 1, "warmup_epochs": 0}}


def _one_error(done: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2 with one line, naming each of ``words``, and no traceback."""
    assert done.returncode == 2, f"exit {done.returncode}\n{done.stdout}{done.stderr}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A folder with ``tiny.yaml`` (a study of one trial of one epoch), ``spec.yaml``, the
    study's ``results/`` and ``t.csv`` (a tiny recorded-curves table)."""
    root = tmp_path_factory.mktemp("finished")
    study = {
        "study": {"name": "tiny", "n_trials": 1, "pruner": {"type": "none"}},
        "space": {"optim.lr": {"choices": [3e-3]}},
        "run": EPOCH,
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    (root / "spec.yaml").write_text(yaml.safe_dump(EPOCH, sort_keys=False), encoding="utf-8")
    run_study(load_study_file(root / "tiny.yaml"), results_dir=root / "results")
    write_table(family(), root / "t.csv")
    return root


@pytest.fixture
def work(finished: Path, tmp_path: Path) -> Path:
    """A copy of ``finished`` of this test's own."""
    shutil.copytree(finished, tmp_path / "work")
    return tmp_path / "work"


def _tree(root: Path) -> dict[str, Any]:
    """Every path under ``root``: what it is, a link's target, a regular file's bytes."""
    found: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            found[str(path)] = ("link", os.readlink(path))
        elif stat.S_ISREG(mode):
            found[str(path)] = path.read_bytes()
        else:
            found[str(path)] = stat.S_IFMT(mode)
    return found


# ------------------------------------------------------------- commands that write one file


def _is_run_spec(text: str) -> None:
    assert parse_run_spec(text).name == "tiny-0"


def _is_schema(text: str) -> None:
    assert json.loads(text)["title"] == "RunSpec"


@dataclass(frozen=True)
class FileCommand:
    id: str
    args: Callable[[Path, str], list[object]]
    """The command line, from the work folder and the path to write."""
    holds: Callable[[str], None]
    """Asserts that the text written is what the command writes."""


FILE_COMMANDS = [
    FileCommand(
        "best --export",
        lambda work, target: ["best", "tiny.yaml", "--export", target],
        _is_run_spec,
    ),
    FileCommand("schema --out", lambda work, target: ["schema", "--out", target], _is_schema),
]
file_commands = pytest.mark.parametrize("command", FILE_COMMANDS, ids=lambda c: c.id)


@file_commands
def test_an_existing_file_is_kept_without_force_and_replaced_with_it(
    work: Path, command: FileCommand
) -> None:
    target = work / "mine.yaml"
    target.write_text("mine\n", encoding="utf-8")
    target.chmod(0o640)

    _one_error(sweeps(*command.args(work, "mine.yaml"), cwd=work), "mine.yaml", "--force")
    assert target.read_text(encoding="utf-8") == "mine\n"

    done = sweeps(*command.args(work, "mine.yaml"), "--force", cwd=work)
    assert done.returncode == 0, done.stderr
    command.holds(target.read_text(encoding="utf-8"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # replaced, permissions kept
    assert re.search(r"wrote .* to mine\.yaml, replaced", done.stdout + done.stderr)


@file_commands
def test_a_named_pipe_is_written_through_not_replaced(work: Path, command: FileCommand) -> None:
    fifo = work / "pipe"
    os.mkfifo(fifo)
    with _reading(fifo) as received:
        done = sweeps(*command.args(work, "pipe"), cwd=work)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    command.holds(received[0].decode("utf-8"))
    assert "pipe (a named pipe)" in done.stdout + done.stderr


@contextlib.contextmanager
def _reading(fifo: Path) -> Iterator[list[bytes]]:
    """Read ``fifo`` to its end in a thread while the block runs; what was read ends up in the
    list yielded."""
    received: list[bytes] = []
    thread = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    thread.start()
    try:
        yield received
    finally:
        # A command that never opened the pipe would leave the reader blocked in open().
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=10)


@file_commands
def test_a_symbolic_link_is_never_replaced(work: Path, command: FileCommand) -> None:
    real = work / "real.yaml"
    real.write_text("mine\n", encoding="utf-8")
    link = work / "link.yaml"
    link.symlink_to("real.yaml")

    _one_error(sweeps(*command.args(work, "link.yaml"), cwd=work), "link.yaml", "--force")
    assert real.read_text(encoding="utf-8") == "mine\n"

    done = sweeps(*command.args(work, "link.yaml"), "--force", cwd=work)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == "real.yaml"
    command.holds(real.read_text(encoding="utf-8"))

    dangling = work / "dangling.yaml"
    dangling.symlink_to("nowhere.yaml")
    done = sweeps(*command.args(work, "dangling.yaml"), "--force", cwd=work)
    _one_error(done, "dangling.yaml", "does not exist")
    assert dangling.is_symlink() and not (work / "nowhere.yaml").exists()


@file_commands
def test_an_open_descriptor_is_written_to(work: Path, command: FileCommand) -> None:
    # What the shell passes for >(...): /dev/fd/N, here a pipe this test reads.
    read_end, write_end = os.pipe()
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mixer_sweeps",
            *map(str, command.args(work, f"/dev/fd/{write_end}")),
        ],
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=(write_end,),
    ) as process:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            received = pipe.read()
        stderr = process.stderr.read().decode()
    assert process.returncode == 0, stderr
    command.holds(received.decode("utf-8"))


# -------------------------------------------------------- commands that write into a folder


@dataclass(frozen=True)
class FolderCommand:
    id: str
    args: Callable[[Path, Path], list[object]]
    """The command line, from the work folder and the folder it writes into."""
    folder: Callable[[Path], Path]
    """The folder it writes into, from the work folder."""
    own: str
    """A file it writes there."""


FOLDER_COMMANDS = [
    FolderCommand(
        "train --out",
        lambda work, folder: ["train", "spec.yaml", "--out", folder],
        lambda work: work / "out",
        "history.csv",
    ),
    FolderCommand(
        "report --out",
        lambda work, folder: ["report", "tiny.yaml", "--format", "md", "--out", folder],
        lambda work: work / "out",
        "report.md",
    ),
    FolderCommand(
        "replay --out",
        lambda work, folder: [
            *("replay", "t.csv", "--policy", "random", "--repeats", "1", "--workers", "1"),
            *("--out", folder),
        ],
        lambda work: work / "out",
        "summary.json",
    ),
    FolderCommand(
        "retrain",
        lambda work, folder: [
            "retrain",
            "tiny.yaml",
            "--seeds",
            "1",
            "--results",
            work / "results",
        ],
        lambda work: work / "results" / "tiny" / "retrain",
        "summary.csv",
    ),
]
folder_commands = pytest.mark.parametrize("command", FOLDER_COMMANDS, ids=lambda c: c.id)


def _a_file(folder: Path, own: str) -> None:
    folder.write_text("mine\n", encoding="utf-8")


def _a_pipe(folder: Path, own: str) -> None:
    os.mkfifo(folder)


def _a_link_to_nothing(folder: Path, own: str) -> None:
    folder.symlink_to(folder.parent / "nowhere")


def _other_files(folder: Path, own: str) -> None:
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n", encoding="utf-8")


def _a_pipe_for_its_file(folder: Path, own: str) -> None:
    folder.mkdir()
    os.mkfifo(folder / own)


@folder_commands
@pytest.mark.parametrize(
    "make",
    [_a_file, _a_pipe, _a_link_to_nothing, _other_files, _a_pipe_for_its_file],
    ids=lambda f: f.__name__.strip("_").replace("_", " "),
)
def test_a_folder_that_is_not_one_or_holds_other_things_is_refused(
    work: Path, command: FolderCommand, make: Callable[[Path, str], None]
) -> None:
    folder = command.folder(work)
    make(folder, command.own)
    before = _tree(work)
    _one_error(sweeps(*command.args(work, folder), cwd=work), str(folder))
    assert _tree(work) == before
    assert not (folder.parent / "nowhere").exists()


@folder_commands
def test_a_link_to_a_folder_is_written_through(work: Path, command: FolderCommand) -> None:
    real = work / "real"
    real.mkdir()
    folder = command.folder(work)
    folder.symlink_to(real)
    done = sweeps(*command.args(work, folder), cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert folder.is_symlink() and os.readlink(folder) == str(real)
    assert (real / command.own).is_file()


# ----------------------------------------------------------------------------------- point 8


def test_a_report_it_cannot_write_says_what_to_do_and_queues_nothing(
    work: Path, tmp_path: Path
) -> None:
    (work / "results" / "tiny" / "report").symlink_to(unwritable_folder(tmp_path))
    done = sweeps("report", "tiny.yaml", "--format", "md", cwd=work)
    _one_error(done, "report", "--out", "then run the same command again")
    assert "queued" not in done.stderr


VALIDATED = {
    "run spec": EPOCH,
    "study": {
        "study": {"name": "v", "n_trials": 2, "pruner": {"type": "none"}},
        "space": {"optim.lr": {"choices": [3e-3, 1e-2]}},
        "run": EPOCH,
    },
    "bad run spec": {**EPOCH, "bogus": 1, "seed": -1},
}


@pytest.mark.parametrize("document", VALIDATED.values(), ids=VALIDATED.keys())
def test_validate_of_a_pipe_gives_the_verdict_of_the_file(tmp_path: Path, document: Any) -> None:
    text = yaml.safe_dump(document, sort_keys=False)
    (tmp_path / "doc.yaml").write_text(text, encoding="utf-8")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)

    def write() -> None:
        with contextlib.suppress(OSError), open(fifo, "w", encoding="utf-8") as pipe:
            pipe.write(text)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        # The same document as a file, a named pipe, stdin and a process substitution.
        done = subprocess.run(
            [
                "bash",
                "-c",
                'exec "$0" -m mixer_sweeps validate doc.yaml fifo.yaml /dev/stdin <(cat doc.yaml)',
                sys.executable,
            ],
            cwd=tmp_path,
            stdin=(tmp_path / "doc.yaml").open("rb"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(timeout=10)
    verdicts = done.stdout + done.stderr
    substituted = set(re.findall(r"/dev/fd/\d+", verdicts))
    assert len(substituted) == 1, verdicts
    for name in ["doc.yaml", "fifo.yaml", "/dev/stdin", *substituted]:
        verdicts = verdicts.replace(name, "FILE")
    blocks = re.split(r"(?m)^(?=FILE)", verdicts)[1:]
    assert len(blocks) == 4 and len(set(blocks)) == 1, verdicts  # each as the file's
    assert done.returncode == (2 if "bogus" in document else 0), verdicts
