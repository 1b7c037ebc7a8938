"""``sweeps validate``: run specs and study files checked, nothing run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mixer_sweeps._exit import EXIT_BAD_INPUT


def validate(
    files: Annotated[
        list[Path], typer.Argument(help="Run spec or study YAML files.", show_default=False)
    ],
) -> None:
    """Check run specs and study files without running anything; exit 2 if any is invalid.

    A YAML file with a top-level `study:` key is a study file; any other is a run spec.
    """
    from mixer_sweeps.spec import SpecError, load_run_spec, read_yaml

    failed = False
    for path in files:
        try:
            document = read_yaml(path)  # once: a pipe (/dev/stdin, <(...)) reads only once
            if "study" in document.data:
                from mixer_sweeps.spec import describe_study, load_study_file

                summary = describe_study(load_study_file(path, document=document))
            else:
                spec = load_run_spec(path, document=document)
                summary = f"run spec {spec.name}"
        except SpecError as exc:
            failed = True
            typer.echo(str(exc), err=True)
        else:
            typer.echo(f"{path}: ok ({summary})")
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)
