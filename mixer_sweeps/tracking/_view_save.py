"""A study's view saved to W&B once: in a child process that a time limit ends, never prompting.

wandb's API client retries an unreachable server and starts a wandb-core service of its own; a
child in its own session can be stopped whole at the time limit, as ``sweeps sync`` stops
``wandb sync``. The child reads a :class:`StudyView` as JSON on stdin, builds the workspace,
resolves the entity when the spec names none, saves, and answers one JSON line on stdout.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

from mixer_sweeps.tracking._sync import _end_process_group
from mixer_sweeps.tracking._view import VIEW_FILE, StudyView, build_workspace, saved_view
from mixer_sweeps.training import atomic_write_text

VIEW_TIMEOUT_S = 60.0
"""How long the end of an online study waits for W&B to save its view."""


class ViewError(RuntimeError):
    """The view could not be saved (no answer in time, no access, no entity); nothing else was
    touched."""


def save_study_view(view: StudyView, study_dir: Path, *, timeout: float | None) -> str:
    """Save ``view`` to W&B unless ``study_dir`` records one already; the view's URL.

    After a save, ``study_dir/wandb/view.json`` records it, so that the view is made once per
    study. ``timeout`` (None: none) bounds the whole attempt.

    Raises:
        ViewError: no view was saved; the message is one line.
    """
    earlier = saved_view(study_dir)
    if earlier is not None:
        return str(earlier.get("url", ""))
    command = [sys.executable, "-c", f"from {__name__} import _main; raise SystemExit(_main())"]
    env = {**os.environ, "WANDB_SILENT": "true"}
    # Its own session, so that the time limit ends the wandb-core it starts as well.
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(view.to_json(), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ViewError(f"W&B did not answer within {timeout:g} s") from None
    finally:
        _end_process_group(process)
    answer = _answer(out)
    if "url" not in answer:
        raise ViewError(str(answer.get("error") or f"the saver exited with {process.returncode}"))
    record = {
        "url": answer["url"],
        "entity": answer.get("entity"),
        "project": view.project,
        "name": view.name,
        "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    path = Path(study_dir) / VIEW_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return str(answer["url"])


def _answer(out: str) -> dict[str, object]:
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {}
    return answer if isinstance(answer, dict) else {}


def _save(view: StudyView) -> dict[str, object]:
    import wandb

    api = wandb.Api()
    entity = view.entity or api.default_entity
    if not entity:
        raise ViewError("W&B names no default entity for this key: set tracking.wandb.entity")
    workspace = build_workspace(view, entity).save()
    return {"url": workspace.url, "entity": entity}


def _main() -> int:
    try:
        answer = _save(StudyView.from_json(sys.stdin.read()))
    except BaseException as exc:  # wandb may raise anything, SystemExit included
        first = next(iter(str(exc).strip().splitlines()), "")
        answer = {"error": f"{type(exc).__name__}: {first}" if first else type(exc).__name__}
    print(json.dumps(answer), flush=True)
    return 0 if "url" in answer else 1
