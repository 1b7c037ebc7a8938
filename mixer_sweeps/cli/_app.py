"""The ``sweeps`` command line.

Heavy libraries (torch, optuna, wandb, pandas) are imported inside the commands, so that
``sweeps --help`` answers at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mixer_sweeps._crash import GuardedGroup, run_guarded
from mixer_sweeps.cli import (
    _best,
    _dashboard,
    _launch,
    _plan,
    _replay,
    _report,
    _retrain,
    _run,
    _schema,
    _status,
    _sync,
    _train,
    _validate,
)

app = typer.Typer(
    cls=GuardedGroup,  # Ctrl-C anywhere: one line, exit code 130
    help="Run and understand hyper-parameter studies of MLP-Mixer image classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from mixer_sweeps import __version__

        typer.echo(f"mixer-sweeps {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run and understand hyper-parameter studies of MLP-Mixer image classifiers."""


# One line per command, in the order --help lists them.
app.command()(_train.train)
app.command()(_run.run)
app.command()(_launch.launch)
app.command()(_validate.validate)
app.command()(_schema.schema)
app.command()(_sync.sync)
app.command()(_report.report)
app.command()(_plan.plan)
app.command()(_status.status)
app.command()(_best.best)
app.command()(_retrain.retrain)
app.command()(_dashboard.dashboard)
app.command()(_replay.replay)


def main() -> None:
    run_guarded(app)  # an unexpected error: one line, the traceback in a log file
