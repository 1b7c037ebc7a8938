"""What a user sees when ``sweeps`` fails in a way no command foresaw: one line, never a traceback.

Bad input is each command's business (exit code 2, the key named). Anything else that escapes a
command, a bug or a machine failing in an unforeseen way, is caught by :func:`run_guarded`: it
prints ``error: <type>: <message> (details in <log>)`` and exits with code 1, and the traceback
goes to a log file for the bug report:

    $XDG_STATE_HOME/mixer-sweeps/logs/sweeps-<time>-<pid>.log   (default ~/.local/state/...)

falling back to the system's temporary folder when that one cannot be written. Ctrl-C outside the
places that handle it (while torch loads, say) prints ``interrupted`` and exits with code 130,
and one while the process shuts down ends it at once.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from mixer_sweeps._exit import EXIT_ERROR, EXIT_INTERRUPTED
from mixer_sweeps._signals import redeliver_unraisable_interrupts

LOG_DIR_NAME = "mixer-sweeps/logs"


LIFE = ("plan", "run", "status", "report", "best", "retrain", "sync")


class GuardedGroup(TyperGroup):
    """The ``sweeps`` group: Ctrl-C in any command ends it with one line and exit code 130.

    (Typer turns it into a silent exit 130; a command that handles Ctrl-C itself, like
    ``sweeps train``, says more before it exits.)
    """

    def list_commands(self, ctx: Any) -> list[str]:
        """A study's life first, in the order it is lived; the other commands after."""
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: LIFE.index(n) if n in LIFE else len(LIFE))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _say("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None


def log_dir() -> Path:
    """Where crash logs go: ``$XDG_STATE_HOME/mixer-sweeps/logs`` (XDG's place for logs)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / LOG_DIR_NAME


def write_log(text: str) -> Path | None:
    """Write ``text`` to a new log file and return its path; None if no folder takes it."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"sweeps-{stamp}-{os.getpid()}.log"
    for folder in (log_dir(), Path(tempfile.gettempdir()) / LOG_DIR_NAME):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        return path
    return None


def run_guarded(app: Any) -> NoReturn:
    """Run the Typer ``app``; no exception leaves it as a traceback."""
    # SQLAlchemy logs errors it then raises (or that follow a Ctrl-C, such as a cursor it could
    # not close) with their tracebacks; what reaches the user is the exception, once.
    logging.getLogger("sqlalchemy").addHandler(logging.NullHandler())
    logging.getLogger("sqlalchemy").propagate = False
    redeliver_unraisable_interrupts()
    try:
        app()
    except KeyboardInterrupt:
        _say("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        report = "".join(traceback.format_exception(exc))
        path = write_log(f"command: {' '.join(map(repr, sys.argv))}\n\n{report}")
        where = f"details in {path}" if path is not None else "no log file could be written"
        _say(f"error: {type(exc).__name__}: {_first_line(exc)} ({where})")
        sys.exit(EXIT_ERROR)
    finally:
        # What is left is shutting down (atexit hooks of wandb, torch, ...): a Ctrl-C now ends
        # the process at once instead of raising a traceback inside one of them.
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(0)


def summarize(reports: list[str]) -> str:
    """Crash reports (a first line, then maybe a traceback) as one line each, for a user.

    Each line is the report's first line and the exception its traceback ends with; the full
    reports go to a log file, named on a last line.
    """
    lines, traced = [], False
    for report in reports:
        parts = [line for line in report.strip().splitlines() if line.strip()] or ["(empty)"]
        head = parts[0].rstrip().rstrip(":")
        traced = traced or len(parts) > 1
        lines.append(f"{head}: {parts[-1].strip()}" if len(parts) > 1 else head)
    if traced:
        path = write_log("\n\n".join(reports))
        lines.append(f"(details in {path})" if path else "(no log file could be written)")
    return "\n".join(lines)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else "(no message)"
    return line if len(line) <= 300 else line[:297] + "..."


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed or a broken pipe
        print(line, file=sys.stderr, flush=True)
