"""Paths a user names on the command line, written without destroying what is there.

:func:`write_user_file` (``best --export``, ``schema --out``) goes by what the path is now:

- nothing: a new file, written atomically (a temp file in the same folder, then renamed);
- a regular file: replaced the same way, keeping its permissions, only with ``force``;
- a named pipe or a character device (a terminal, ``/dev/null``): written through, as a shell's
  ``>`` does, never replaced;
- ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N`` (``>(...)``): written to that open descriptor;
- a symbolic link: never replaced itself; what it points to is treated as above (a regular file
  is replaced where it lies, with ``force``); a link to nothing is refused;
- a folder, a socket or a block device: refused.

:func:`check_output_folder` (``train --out``, ``report --out``, ``replay --out``, retrain's
folder): the folder (or a link to one) may hold only what its command writes there, and those as
a file or folder, never a link, pipe or device in their place; a path that is a file or a pipe is
refused. Without ``force`` (``replay --out``) the files it would write must not be there yet.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["file", "folder"]


class OutputRefused(ValueError):
    """A path a command was told to write to, refused before anything is written."""


@dataclass(frozen=True)
class Written:
    """Where :func:`write_user_file` wrote."""

    where: str
    """The path, and what it is when not a plain new file: "out.yaml (a named pipe)"."""
    stored: bool
    """A file holds what was written (not a pipe, device or open descriptor)."""


def write_user_file(path: Path, data: str | bytes, *, force: bool, option: str) -> Written:
    """Write ``data`` to ``path`` as described above.

    Raises:
        OutputRefused: naming ``option`` and ``path``, and ``--force`` when that would do.
        OSError: the write itself failed (a full disk, a read-only folder, a reader gone).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    named = f"{option} {path}"
    descriptor = _descriptor(path)
    if descriptor is not None:
        _write_descriptor(descriptor, payload, named)
        return Written(f"{path} (file descriptor {descriptor})", stored=False)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        from mixer_sweeps.training import atomic_write_bytes

        atomic_write_bytes(path, payload)
        return Written(str(path), stored=True)
    target, link = Path(path), ""
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        link = f" (a link to {target})"
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise OutputRefused(
                f"{named} is a symbolic link to {target}, which does not exist; give the file"
                " itself or another name"
            ) from None
    if stat.S_ISREG(info.st_mode):
        if not force:
            raise OutputRefused(f"{named}{link} already exists; give --force to replace it")
        from mixer_sweeps.training import atomic_write_bytes

        atomic_write_bytes(target, payload, mode=stat.S_IMODE(info.st_mode))
        return Written(f"{path}{link}, replaced", stored=True)
    if stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode):
        _write_through(path, payload, named)
        return Written(f"{path}{link} ({kind_of(info.st_mode)})", stored=False)
    hint = "; give a file name in it" if stat.S_ISDIR(info.st_mode) else ""
    raise OutputRefused(f"{named}{link} is {kind_of(info.st_mode)}, not a file{hint}")


def check_output_folder(
    path: Path,
    *,
    owns: Callable[[str], Kind | None],
    what: str,
    option: str = "",
    force: bool = True,
) -> None:
    """Refuse ``path`` as the folder a command writes ``what`` into unless it is missing, or a
    folder (or a link to one) holding nothing but the entries ``owns`` names, each a file or a
    folder (or a link to one) as ``owns`` says: never a link, pipe or device in place of a file,
    which a write would replace. Without ``force``, none of the files ``owns`` names may be there
    yet: those only ``--force`` replaces.

    Raises:
        OutputRefused: naming the path and what is wrong with it.
    """
    named = f"{option} {path}" if option else str(path)
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return  # to be made; where it cannot be, making it says why
    link = ""
    if stat.S_ISLNK(info.st_mode):
        target = os.path.realpath(path)
        link = f" (a link to {target})"
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise OutputRefused(
                f"{named} is a symbolic link to {target}, which does not exist"
            ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise OutputRefused(f"{named}{link} is {kind_of(info.st_mode)}, not a folder")
    with os.scandir(path) as entries:
        found = sorted(entries, key=lambda e: e.name)
    foreign = [e.name for e in found if owns(e.name) is None and not _ours(e.name)]
    if foreign:
        raise OutputRefused(
            f"{named}{link} holds files that are not {what} ({_listed(foreign)}); move them away"
            " or give another folder"
        )
    for entry in found:
        kind = owns(entry.name)
        mode = entry.stat(follow_symlinks=False).st_mode
        # Files are replaced by renames, which would replace a link; a linked folder is only
        # written into.
        wanted = os.path.isdir(entry.path) if kind == "folder" else stat.S_ISREG(mode)
        if kind is not None and not wanted:
            raise OutputRefused(
                f"{Path(path) / entry.name} is {kind_of(mode)}, not a {kind}; it would be"
                " written over: move it away or give another folder"
            )
    held = [e.name for e in found if owns(e.name) == "file"]
    if held and not force:
        raise OutputRefused(
            f"{named}{link} already holds {what} ({_listed(held)}); give --force to replace them"
        )


def write_or_fail(path: Path, data: str | bytes, *, force: bool, option: str) -> Written:
    """:func:`write_user_file` for a command: a refusal or a failed write exits 2, one line."""
    from mixer_sweeps.cli._checks import fail

    try:
        return write_user_file(path, data, force=force, option=option)
    except OutputRefused as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {option} {path}: {exc.strerror or exc}") from None


def check_folder_or_fail(
    path: Path,
    *,
    owns: Callable[[str], Kind | None],
    what: str,
    option: str = "",
    force: bool = True,
) -> None:
    """:func:`check_output_folder` for a command: a refusal exits 2 with one line."""
    from mixer_sweeps.cli._checks import fail

    try:
        check_output_folder(path, owns=owns, what=what, option=option, force=force)
    except OutputRefused as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # a folder that cannot be listed
        raise fail(f"cannot read {path}: {exc.strerror or exc}") from None


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, with its article: "a named pipe"."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _listed(names: list[str]) -> str:
    more = len(names) - 3
    return ", ".join(names[:3]) + (f" and {more} more" if more > 0 else "")


def _ours(name: str) -> bool:
    """A temp file of an atomic write or a writability probe, left by a crash."""
    return name.startswith(".") and (name.endswith(".tmp") or name.startswith(".write-test"))


_STREAMS = {"/dev/stdout": 1, "/dev/stderr": 2}


def _descriptor(path: Path) -> int | None:
    """The open descriptor ``path`` names (``/dev/stdout``, ``/dev/fd/N``), if it names one."""
    text = os.path.abspath(path)
    if text in _STREAMS:
        return _STREAMS[text]
    for prefix in ("/dev/fd/", "/proc/self/fd/", f"/proc/{os.getpid()}/fd/"):
        number = text.removeprefix(prefix)
        if number != text and number.isascii() and number.isdigit():
            return int(number)
    return None


def _write_descriptor(fd: int, payload: bytes, named: str) -> None:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        raise OutputRefused(f"{named}: file descriptor {fd} is not open") from None
    if stat.S_ISDIR(mode):
        raise OutputRefused(f"{named}: file descriptor {fd} is a folder, not a file")
    stream = {1: sys.stdout, 2: sys.stderr}.get(fd)
    if stream is not None:
        stream.flush()  # what was printed before comes first
    _write_all(fd, payload)


def _write_through(path: Path, payload: bytes, named: str) -> None:
    # No O_CREAT, no O_TRUNC: if the pipe was swapped for a file since it was looked at, the
    # check below refuses it rather than writing into it.
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
            raise OutputRefused(f"{named} changed into {kind_of(mode)} while it was opened")
        _write_all(fd, payload)
    finally:
        os.close(fd)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]
