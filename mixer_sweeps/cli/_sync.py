"""``sweeps sync``: offline W&B runs uploaded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mixer_sweeps._exit import EXIT_ERROR, EXIT_INTERRUPTED
from mixer_sweeps.cli._checks import fail


def sync(
    results: Annotated[
        Path, typer.Argument(help="A study's (or run's) results folder.", show_default=False)
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be uploaded; upload nothing.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Give up after this many seconds (0: never).", min=0)
    ] = 600,
) -> None:
    """Upload the offline W&B runs under RESULTS/wandb/ with `wandb sync`; never prompts.

    It says which server it waits for, and for how long. The time-out, Ctrl-C or SIGTERM end
    `wandb sync` and the wandb-core service it started; the runs stay on disk to sync later.
    """
    from mixer_sweeps._signals import graceful_interrupts
    from mixer_sweeps.tracking import (
        has_wandb_credentials,
        offline_runs,
        sync_offline_runs,
        wandb_host,
    )

    if not results.is_dir():
        raise fail(f"{results} is not a folder")
    pending, synced = offline_runs(results)
    if not pending:
        done = f" ({synced} already uploaded)" if synced else ""
        typer.echo(f"nothing to sync: no offline W&B runs under {results}{done}")
        return
    if not dry_run and not has_wandb_credentials():
        raise fail("no W&B API key found: set WANDB_API_KEY or run `wandb login`, then sync again")
    runs = f"{len(pending)} offline run(s)"
    host = wandb_host()
    if dry_run:
        typer.echo(f"would upload {runs} to {host}")
    else:
        limit = f"up to {timeout:g} s (--timeout)" if timeout else "with no time limit"
        typer.echo(
            f"uploading {runs} to {host} with `wandb sync`: waiting for that server {limit};"
            " Ctrl-C stops, the runs stay on disk"
        )
    try:
        with graceful_interrupts():  # SIGTERM too raises KeyboardInterrupt
            code = sync_offline_runs(
                pending,
                dry_run=dry_run,
                timeout=timeout,
                on_wait=lambda waited: typer.echo(f"still waiting for {host} ({waited:.0f} s)"),
            )
    except KeyboardInterrupt:
        typer.echo("sync stopped; the runs stay on disk, sync again later", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if code is None:
        raise fail(
            f"wandb sync gave up after {timeout:g} s (is {host} reachable?);"
            " the runs stay on disk, sync again later",
            code=EXIT_ERROR,
        )
    if code:
        raise fail(f"wandb sync failed (exit code {code})", code=EXIT_ERROR)
