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
from mixer_sweeps.cli._options import Command, FlagsShown


class _Group(FlagsShown, GuardedGroup):
    """The ``sweeps`` group (see :class:`GuardedGroup`), its flags shown as flags."""


app = typer.Typer(
    cls=_Group,  # Ctrl-C anywhere: one line, exit code 130
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
app.command(cls=Command)(_train.train)
app.command(cls=Command)(_run.run)
app.command(cls=Command)(_launch.launch)
app.command(cls=Command)(_validate.validate)
app.command(cls=Command)(_schema.schema)
app.command(cls=Command)(_sync.sync)
app.command(cls=Command)(_report.report)
app.command(cls=Command)(_plan.plan)
app.command(cls=Command)(_status.status)
app.command(cls=_best.BestCommand)(_best.best)
app.command(cls=Command)(_retrain.retrain)
app.command(cls=Command)(_dashboard.dashboard)
app.command(cls=Command)(_replay.replay)


def main() -> None:
    run_guarded(app)  # an unexpected error: one line, the traceback in a log file
