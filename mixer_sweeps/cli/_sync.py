"""``sweeps sync``: offline W&B runs uploaded, then the study's saved W&B view made once."""

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
        float,
        typer.Option(
            help="Give up waiting for the server after this many seconds (0: never): for the"
            " upload, then for the view.",
            min=0,
        ),
    ] = 600,
    no_view: Annotated[
        bool,
        typer.Option("--no-view", help="Save no W&B workspace view of the study."),
    ] = False,
) -> None:
    """Upload the offline W&B runs under RESULTS/wandb/ with `wandb sync`; never prompts.

    It says which server it waits for, and for how long. The time-out, Ctrl-C or SIGTERM end
    `wandb sync` and the wandb-core service it started; the runs stay on disk to sync later.
    Once a study's runs are on the server, it saves the study's W&B workspace view (parallel
    coordinates, parameter importance, val_acc curves, a runs table), once per study; a failure
    there warns and changes nothing else.
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
        if not no_view and (synced or _online_runs(results)):
            _study_view(results, dry_run=dry_run, timeout=timeout)
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
    if not no_view:
        _study_view(results, dry_run=dry_run, timeout=timeout)


def _study_dir(results: Path) -> Path:
    """The study folder of RESULTS, which may name its wandb/ folder."""
    return results.parent if results.name == "wandb" else results


def _online_runs(results: Path) -> bool:
    return any(p.is_dir() for p in (_study_dir(results) / "wandb").glob("run-*"))


def _study_view(results: Path, *, dry_run: bool, timeout: float) -> None:
    """The study's saved W&B view, once; a run's folder (``sweeps train``) gets none."""
    from mixer_sweeps.results import StudyLayout
    from mixer_sweeps.tracking import has_wandb_credentials, saved_view

    study_dir = _study_dir(results)
    if not StudyLayout(study_dir).study_file.is_file() or saved_view(study_dir) is not None:
        return
    if dry_run:
        typer.echo("would save the study's W&B workspace view (--no-view: none)")
        return
    if not has_wandb_credentials():
        _warn("no W&B API key found: the study's W&B view was not saved")
        return
    from mixer_sweeps.report import make_study_view
    from mixer_sweeps.results import load_results

    try:
        url, _ = make_study_view(load_results(study_dir), timeout=timeout or None)
    except Exception as exc:  # the runs are uploaded whatever happens to the view
        _warn(
            f"the study's W&B view was not saved ({exc}); the runs are uploaded;"
            " `sweeps sync` tries again, `--no-view` stops trying"
        )
        return
    typer.echo(f"W&B view of the study: {url}")


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)
