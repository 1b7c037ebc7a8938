"""A study as one W&B run (``job_type="study"``) in the study's group, beside its trials' runs.

The caller brings everything the run shows: the trials as a frame and the parameter importances,
computed once by the report's data layer, so W&B and the report never disagree.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer_sweeps.tracking._guarded_run import _clean, _GuardedRun
from mixer_sweeps.tracking._mode import resolve_mode

if TYPE_CHECKING:
    import pandas as pd

    from mixer_sweeps.spec import RunSpec

COMPLETE = "COMPLETE"
DIRECTIONS = ("maximize", "minimize")


def log_study(
    frame: pd.DataFrame,
    *,
    study_name: str,
    objective: str,
    direction: str,
    importances: Mapping[str, float],
    best: Mapping[str, Any] | None,
    results_dir: Path,
    spec: RunSpec,
    front: pd.DataFrame | None = None,
) -> Path | None:
    """Log a study's trials as one W&B run (``job_type="study"``) in the study's group.

    Args:
        frame: the study's trials, one row per trial, with at least the columns ``number``,
            ``state`` (Optuna's state name, e.g. ``COMPLETE``) and ``objective``.
        study_name: the study; the run is ``<study>-study`` in group ``<study>``.
        objective: the column holding each trial's objective value.
        direction: ``maximize`` or ``minimize``.
        importances: parameter importances by parameter name; may be empty.
        best: the best trial as ``{"number", "value", "params"}``, or None if there is none.
        results_dir: the study's results folder (the run goes to ``results_dir/wandb``).
        spec: the study's base run spec (W&B settings, and the run's config).
        front: a multi-objective study's front, one row per configuration (its trial, params
            and objectives); None for a single objective.

    The run holds the frame as its ``trials`` table (NaN shown as empty), one history row per
    COMPLETE trial in number order (``trial``, ``value``, ``best_value`` so far), the importances
    as a ``param_importance`` table and ``importance/<param>`` summary keys, and in its summary
    ``n_trials``, ``n_<state>`` per state, ``best_trial``, ``best_value`` and ``best_params``;
    with a ``front``, its ``front`` table (as given, NaN empty) and ``front_size`` and
    ``front_trials`` in the summary.
    Returns the run's folder, or None when W&B is disabled or failed.
    """
    missing = [c for c in ("number", "state", objective) if c not in frame.columns]
    if missing:
        raise ValueError(f"the trials frame has no column {', '.join(map(repr, missing))}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    mode = resolve_mode(spec.tracking.wandb.mode)
    if mode == "disabled":
        return None
    columns = [str(c) for c in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    config = spec.model_dump(mode="json")
    config["study"] = {
        "name": study_name,
        "objective": objective,
        "direction": direction,
        "trials": len(rows),
    }
    guarded = _GuardedRun(
        mode=mode,
        root=Path(results_dir),
        wandb_spec=spec.tracking.wandb,
        group=study_name,
        job_type="study",
        name=f"{study_name}-study",
        id_parts=(study_name, "study"),
    )
    if not guarded.open(config):
        return None
    path = guarded.path
    history = _best_so_far(frame, objective, direction)
    summary = _summary(frame, best)
    importance = {str(k): float(v) for k, v in importances.items()}
    front_columns = [] if front is None else [str(c) for c in front.columns]
    front_rows = (
        []
        if front is None
        else [[_cell(v) for v in row] for row in front.itertuples(index=False, name=None)]
    )
    if front is not None:
        summary["front_size"] = len(front_rows)
        if "trial" in front.columns:
            summary["front_trials"] = [_cell(n) for n in front["trial"]]

    def log(run: Any) -> None:
        import wandb

        run.define_metric("trial")
        run.define_metric("*", step_metric="trial")
        for row in history:
            run.log(row)
        run.log({"trials": wandb.Table(columns=columns, data=rows)})
        if front is not None:
            run.log({"front": wandb.Table(columns=front_columns, data=front_rows)})
        if importance:
            table = wandb.Table(
                columns=["param", "importance"], data=[[k, v] for k, v in importance.items()]
            )
            run.log({"param_importance": table})
            summary.update({f"importance/{k}": v for k, v in importance.items()})
        run.summary.update(summary)

    guarded.call("log_study", log, scale=4)
    guarded.finish(exit_code=0)
    return path


def _best_so_far(frame: pd.DataFrame, objective: str, direction: str) -> list[dict[str, Any]]:
    """One row per COMPLETE trial with a finite value, in number order."""
    sign = 1.0 if direction == "maximize" else -1.0
    finished = [
        (_cell(number), _cell(value))
        for number, state, value in zip(
            frame["number"], frame["state"], frame[objective], strict=True
        )
        if str(state).upper() == COMPLETE
    ]
    rows: list[dict[str, Any]] = []
    best: float | None = None
    for number, value in sorted(finished, key=lambda pair: pair[0]):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if best is None or sign * value > sign * best:
            best = value
        rows.append({"trial": number, "value": value, "best_value": best})
    return rows


def _summary(frame: pd.DataFrame, best: Mapping[str, Any] | None) -> dict[str, Any]:
    states = [str(s) for s in frame["state"]]
    summary: dict[str, Any] = {"n_trials": len(states)}
    for state in sorted(set(states)):
        summary[f"n_{state.lower()}"] = states.count(state)
    if best is not None:
        summary.update(
            best_trial=_cell(best["number"]),
            best_value=_cell(best["value"]),
            best_params={str(k): _cell(v) for k, v in best["params"].items()},
        )
    return summary


def _cell(value: Any) -> Any:
    """A frame's cell as W&B shows it well: None for NaN/NaT, Python scalars for numpy ones,
    ISO text for times, seconds for durations, JSON text for anything else not a scalar."""
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return _clean(value)
