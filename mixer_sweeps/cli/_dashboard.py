"""``sweeps dashboard``: optuna-dashboard on a study's storage.

The storage is found as ``sweeps report`` finds it (``--storage``, ``SWEEPS_STORAGE``,
``study.storage``, else the journal file in the results folder) and opened by
:func:`~mixer_sweeps.study.open_storage`, so the dashboard reads a journal file through the same
lock handling as the workers that write it. optuna-dashboard's WSGI app is served by the standard
library's threaded server: unlike its ``run_server``, that tells which port ``--port 0`` got.
"""

from __future__ import annotations

import sys
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Annotated, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import typer

from mixer_sweeps._exit import EXIT_INTERRUPTED
from mixer_sweeps.cli._options import ONLY_STUDY, ResultsOption, StorageOption, the_study


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's open connection never holds up Ctrl-C


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Every request of the page's polling would be a line; errors still reach stderr."""


def dashboard(
    study_file: Annotated[
        Path | None,
        typer.Argument(help=f"Study YAML or its results folder{ONLY_STUDY}.", show_default=False),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 8080,
    results: ResultsOption = Path("results"),
    storage: StorageOption = None,
) -> None:
    """Serve optuna-dashboard for a study's storage (journal, SQLite or PostgreSQL).

    Prints the URL once it listens; Ctrl-C stops it (exit code 130).
    """
    from mixer_sweeps.cli._checks import fail
    from mixer_sweeps.results import find_study
    from mixer_sweeps.study import describe_storage, open_storage, optuna_quiet

    try:
        target = the_study(study_file, results)
        url, study_dir, name = find_study(target, results_dir=results, storage=storage)
        with optuna_quiet():
            backend = open_storage(url, study_dir=study_dir)
    except ValueError as exc:  # ReportError, SpecError, a bad storage URL
        raise fail(str(exc)) from None
    from optuna_dashboard import wsgi

    try:
        server = make_server(
            host, port, wsgi(backend), server_class=_Server, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    shown = f"[{host}]" if ":" in host else host
    from mixer_sweeps._signals import graceful_interrupts

    try:
        # Set here, not inherited: a shell starts background jobs with SIGINT ignored; and set
        # before the URL is printed, so that whoever reads it can stop the server.
        with graceful_interrupts():
            typer.echo(f"study {name} in {describe_storage(url, study_dir)}")
            typer.echo(
                f"dashboard: http://{shown}:{server.server_port}/dashboard/ (Ctrl-C stops it)"
            )
            typer.echo(_best_line(backend, name))
            sys.stdout.flush()
            server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("dashboard stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None  # 130, as every command's Ctrl-C
    finally:
        server.server_close()


def _best_line(backend: Any, name: str) -> str:
    """The best trial as the report writes it: the page shows the stored values in full."""
    from mixer_sweeps.results import describe_best, stored_best

    return f"best: {describe_best(stored_best(backend, name))} (the page shows values unrounded)"
