"""``sweeps train``: one run spec trained, its run folder written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mixer_sweeps._exit import EXIT_ERROR, EXIT_INTERRUPTED
from mixer_sweeps.cli._checks import (
    check_machine,
    fail,
)


def train(
    spec_file: Annotated[Path, typer.Argument(help="Run spec YAML.", show_default=False)],
    epochs: Annotated[int | None, typer.Option(help="Override optim.epochs.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory [default: results/<name>].")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Override train.device.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run in the run directory.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Start afresh even if the run directory has results.")
    ] = False,
) -> None:
    """Train one run and write spec, history, curves and metrics to its directory.

    Every epoch is checkpointed; after a crash or Ctrl-C, --resume continues where it stopped.
    """
    from mixer_sweeps.spec import SpecError, load_run_spec, with_overrides

    try:
        spec = load_run_spec(spec_file)
        overrides: dict[str, object] = {}
        if epochs is not None:
            # A short smoke run keeps its warm-up inside the epochs it has.
            overrides["optim.epochs"] = epochs
            overrides["optim.warmup_epochs"] = min(spec.optim.warmup_epochs, epochs)
        if device is not None:
            overrides["train.device"] = device
        spec = with_overrides(spec, overrides, source=f"{spec_file} with command-line options")
    except SpecError as exc:
        raise fail(str(exc)) from None
    run_dir = out if out is not None else Path("results") / spec.name
    check_machine([(str(spec_file), spec)])
    _check_run_dir(run_dir, resume=resume, force=force)
    if resume:
        _check_resumable(spec, run_dir)
    # Said before torch loads: the first epoch's line comes seconds later.
    typer.echo(
        f"{'resuming' if resume else 'training'} {spec.name}: {spec.optim.epochs} epochs on"
        f" {spec.train.device}, into {run_dir}/; loading {spec.data.dataset} ..."
    )

    from mixer_sweeps._progress import EpochProgress
    from mixer_sweeps._signals import graceful_interrupts
    from mixer_sweeps.data import DatasetUnavailable, load_data
    from mixer_sweeps.tracking import make_trackers
    from mixer_sweeps.training import (
        CheckpointError,
        DeviceUnavailable,
        NonFiniteLossError,
        Trainer,
    )

    progress = EpochProgress(spec.optim.epochs)
    trackers = make_trackers(spec, results_dir=run_dir)
    try:
        data = load_data(spec.data)
        typer.echo(f"building the mixer ({len(data.train):,} training images) ...")
        trainer = Trainer(
            spec, data=data, run_dir=run_dir, callbacks=[progress, *trackers], resume=resume
        )
    except (DatasetUnavailable, DeviceUnavailable, CheckpointError) as exc:
        if not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise fail(str(exc)) from None
    typer.echo(f"mixer of {trainer.num_params:,} parameters; training ...")
    try:
        with graceful_interrupts(), progress:
            result = trainer.fit()
    except KeyboardInterrupt:
        import shlex

        # The same overrides, or the resumed spec would differ from the checkpoint's.
        again = [str(spec_file), "--resume"]
        for flag, value in (("--out", out), ("--epochs", epochs), ("--device", device)):
            if value is not None:
                again += [flag, str(value)]
        typer.echo(
            f"interrupted after epoch {trainer.epoch}; the checkpoint is kept."
            f" Continue with: sweeps train {shlex.join(again)}",
            err=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (NonFiniteLossError, CheckpointError) as exc:
        raise fail(str(exc), code=EXIT_ERROR) from None
    typer.echo(
        f"{spec.name}: best val acc {result.best_val_acc:.4f} (epoch {result.best_epoch}),"
        f" test acc {result.test_acc:.4f}, {result.epochs_run} epochs, {result.reason}."
    )
    typer.echo(f"results in {run_dir}/")
    _echo_wandb(trackers, run_dir)


def _echo_wandb(trackers: list, run_dir: Path) -> None:
    from mixer_sweeps.tracking import WandbTracker

    for tracker in trackers:
        if not isinstance(tracker, WandbTracker) or tracker.path is None:
            continue
        if tracker.mode == "online":
            typer.echo(f"W&B run: {tracker.url}")
        else:
            typer.echo(f"W&B offline run in {tracker.path}/")
            typer.echo(f"  browse: wandb leet {tracker.path}    upload: sweeps sync {run_dir}")


def _check_resumable(spec, run_dir: Path) -> None:
    """Exit 2 if the checkpoint in ``run_dir`` cannot resume ``spec`` (before data is loaded)."""
    from mixer_sweeps.training import CHECKPOINT_FILE, CheckpointError, check_resumable

    try:
        check_resumable(spec, run_dir / CHECKPOINT_FILE)
    except CheckpointError as exc:
        raise fail(str(exc)) from None


def _check_run_dir(run_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to overwrite results by accident, and to start in a folder we cannot write."""
    from mixer_sweeps.cli._write import check_folder_or_fail
    from mixer_sweeps.training import CHECKPOINT_FILE, METRICS_FILE, run_folder_entry

    check_folder_or_fail(run_dir, owns=run_folder_entry, what="a run's files")
    if resume and not (run_dir / CHECKPOINT_FILE).exists():
        finished = (run_dir / METRICS_FILE).exists()
        raise fail(
            f"{run_dir} holds a finished run; nothing to resume"
            if finished
            else f"no checkpoint to resume in {run_dir}"
        )
    if not resume and not force:
        for name, what in ((CHECKPOINT_FILE, "an interrupted run"), (METRICS_FILE, "results")):
            if (run_dir / name).exists():
                raise fail(
                    f"{run_dir} already holds {what}; use --resume to continue it, --force to"
                    " start afresh, or --out for another folder"
                )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise fail(f"cannot write to the results directory {run_dir}: {exc.strerror}") from None
