"""The ``sweeps`` command line.

Heavy libraries (torch, optuna, wandb, pandas) are imported inside the commands, so that
``sweeps --help`` answers at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Run and understand hyper-parameter studies of MLP-Mixer image classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
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
        raise _fail(str(exc)) from None
    run_dir = out if out is not None else Path("results") / spec.name
    _check_run_dir(run_dir, resume=resume, force=force)

    from mixer_sweeps._progress import EpochProgress
    from mixer_sweeps._signals import graceful_interrupts
    from mixer_sweeps.data import DatasetUnavailable
    from mixer_sweeps.training import CheckpointError, NonFiniteLossError, Trainer

    progress = EpochProgress(spec.optim.epochs)
    try:
        trainer = Trainer(spec, run_dir=run_dir, callbacks=[progress], resume=resume)
    except (DatasetUnavailable, CheckpointError) as exc:
        if not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise _fail(str(exc)) from None
    try:
        with graceful_interrupts(), progress:
            result = trainer.fit()
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted after epoch {trainer.epoch}; the checkpoint is kept."
            f" Continue with: sweeps train {spec_file} --resume"
            + (f" --out {run_dir}" if out is not None else ""),
            err=True,
        )
        raise typer.Exit(130) from None
    except (NonFiniteLossError, CheckpointError) as exc:
        raise _fail(str(exc), code=1) from None
    typer.echo(
        f"{spec.name}: best val acc {result.best_val_acc:.4f} (epoch {result.best_epoch}),"
        f" test acc {result.test_acc:.4f}, {result.epochs_run} epochs, {result.reason}."
    )
    typer.echo(f"results in {run_dir}/")


def _check_run_dir(run_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to overwrite results by accident, and to start in a folder we cannot write."""
    from mixer_sweeps.training import CHECKPOINT_FILE, METRICS_FILE

    if resume and not (run_dir / CHECKPOINT_FILE).exists():
        finished = (run_dir / METRICS_FILE).exists()
        raise _fail(
            f"{run_dir} holds a finished run; nothing to resume"
            if finished
            else f"no checkpoint to resume in {run_dir}"
        )
    if not resume and not force:
        for name, what in ((CHECKPOINT_FILE, "an interrupted run"), (METRICS_FILE, "results")):
            if (run_dir / name).exists():
                raise _fail(
                    f"{run_dir} already holds {what}; use --resume to continue it, --force to"
                    " start afresh, or --out for another folder"
                )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _fail(f"cannot write to the results directory {run_dir}: {exc.strerror}") from None


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Run spec YAML files.", show_default=False)],
) -> None:
    """Check spec files without running anything; exit 2 if any is invalid."""
    from mixer_sweeps.spec import SpecError, load_run_spec

    failed = False
    for path in files:
        try:
            load_run_spec(path)
        except SpecError as exc:
            failed = True
            typer.echo(str(exc), err=True)
        else:
            typer.echo(f"{path}: ok")
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="Write to this file, not stdout.")] = None,
) -> None:
    """Print the JSON schema of a run spec (for editor completion of YAML)."""
    from mixer_sweeps.spec import RunSpec

    text = json.dumps(RunSpec.model_json_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def main() -> None:
    app()
