"""``sweeps schema``: the run spec's JSON schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def schema(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write to this file (or pipe, or device), not stdout.", show_default=False
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file --out names if it exists.")
    ] = False,
) -> None:
    """Print the JSON schema of a run spec (for editor completion of YAML)."""
    from mixer_sweeps.spec import RunSpec

    text = json.dumps(RunSpec.model_json_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        from mixer_sweeps.cli._write import write_or_fail

        written = write_or_fail(out, text, force=force, option="--out")
        typer.echo(f"wrote the JSON schema of a run spec to {written.where}", err=True)
