"""Weights & Biases: one run per trial (or ``sweeps train``) and one per study, offline-first.

Tracking must never cost a result. Every wandb call runs on a helper thread with a time limit;
a failure or time-out warns once, drops an online run to offline (an offline one to nothing) and
training goes on. wandb is imported only when a run starts: importing this module is free.

Runs live in ``<results_dir>/wandb/`` (wandb adds the ``wandb/`` to the ``dir`` it is given).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer_sweeps.tracking._base import Tracker

if TYPE_CHECKING:
    import optuna

    from mixer_sweeps.spec import RunSpec, WandbSpec
    from mixer_sweeps.training import EpochRecord

# Overridable with wandb's own variables (WANDB_INIT_TIMEOUT, WANDB_FINISH_TIMEOUT), read at
# each run start rather than from wandb's settings, which wandb freezes at its first use.
INIT_TIMEOUT_S = 30.0
FINISH_TIMEOUT_S = 60.0
# Extra time the watchdog grants beyond wandb's own limits before it gives up on a call.
GRACE_S = 15.0
OFFLINE_INIT_LIMIT_S = 60.0
LOG_LIMIT_S = 30.0


class TrackingWarning(UserWarning):
    """A tracker could not do its job; training went on without it (or with less of it)."""


class _ProcessState:
    """What this process has learnt about W&B, so one outage costs one time-out and one warning."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.online_failed = False
        self.broken = False
        """An offline run could not start, or a call hung: W&B is off for the process."""
        self.warned: set[str] = set()


_state = _ProcessState()


def _reset_state() -> None:
    """Forget earlier failures and warnings (for tests)."""
    global _state
    _state = _ProcessState()


def _warn_once(key: str, message: str) -> None:
    with _state.lock:
        if key in _state.warned:
            return
        _state.warned.add(key)
    warnings.warn(message, TrackingWarning, stacklevel=3)


def _env_seconds(name: str, default: float) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


class _CallFailed(RuntimeError):
    """A wandb call raised (anything, even SystemExit) or ran out of time."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def _bounded(
    fn: Callable[[], Any],
    *,
    limit: float,
    what: str,
    on_late: Callable[[Any], None] | None = None,
) -> Any:
    """``fn()`` on a daemon thread; raise :class:`_CallFailed` if it fails or outlives ``limit``.

    A call that gives up leaves the thread behind (Python cannot kill it); ``on_late`` then
    receives the result if it arrives after all, e.g. to finish a run that started too late.
    """
    lock = threading.Lock()
    done = threading.Event()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            value = fn()
        except BaseException as exc:  # wandb may even raise SystemExit
            box["error"] = exc
        else:
            with lock:
                box["value"] = value
                late = box.get("abandoned", False)
            if late and on_late is not None:
                with contextlib.suppress(BaseException):
                    on_late(value)
        finally:
            done.set()

    threading.Thread(target=target, name=f"wandb-{what}", daemon=True).start()
    if not done.wait(limit):
        with lock:
            if "value" not in box:
                box["abandoned"] = True
                raise _CallFailed(f"{what} did not return within {limit:g} s", timed_out=True)
    if "error" in box:
        exc = box["error"]
        raise _CallFailed(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    return box.get("value")


# ------------------------------------------------------------------------------ mode decision


def has_wandb_credentials() -> bool:
    """Whether W&B could log in without asking: an API key in the environment or settings, a
    netrc entry for the W&B host, or an identity token file. Never prompts."""
    try:
        from wandb.sdk import wandb_setup
        from wandb.sdk.lib import wbauth

        auth = wbauth.authenticate_session(
            host=wandb_setup.singleton().settings.base_url,
            source="mixer_sweeps",
            prompt=False,
            update_session=False,
        )
    except Exception as exc:  # e.g. a malformed WANDB_API_KEY
        _warn_once("credentials", f"W&B credentials unusable ({exc}); treating as logged out.")
        return False
    return auth is not None


def resolve_mode(mode: str) -> str:
    """The mode a run really gets: ``online``, ``offline`` or ``disabled``.

    ``auto`` is online only with credentials, and yields to ``WANDB_MODE=offline|disabled``;
    ``online`` without credentials is offline (with a warning) rather than a login prompt.
    """
    if mode == "auto":
        env_mode = os.environ.get("WANDB_MODE", "").lower()
        if env_mode in ("offline", "dryrun", "disabled"):
            mode = "disabled" if env_mode == "disabled" else "offline"
    if mode == "disabled" or _state.broken:
        return "disabled"
    if mode == "offline" or _state.online_failed:
        return "offline"
    if has_wandb_credentials():
        return "online"
    if mode == "online":
        _warn_once(
            "no-credentials",
            "tracking.wandb.mode is online but no W&B API key was found (WANDB_API_KEY or"
            " `wandb login`); writing offline runs instead, upload them with `sweeps sync`.",
        )
    return "offline"


def _run_id(*parts: str) -> str:
    """A fresh id: readable prefix plus a random suffix, so no retry reuses an earlier run."""
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-.")[:48]
    return f"{prefix}-{secrets.token_hex(4)}"


# --------------------------------------------------------------------------------- one run


class _GuardedRun:
    """One wandb run whose calls are all bounded in time and never raise."""

    def __init__(
        self,
        *,
        mode: str,
        root: Path,
        wandb_spec: WandbSpec,
        group: str,
        job_type: str,
        name: str,
        id_parts: tuple[str, ...],
    ) -> None:
        self.mode = mode
        self.root = root
        self.wandb_spec = wandb_spec
        self.group = group
        self.job_type = job_type
        self.name = name
        self.id_parts = id_parts
        self.run: Any = None

    @property
    def path(self) -> Path | None:
        """The run's folder (``.../wandb/offline-run-<time>-<id>``), once started."""
        return Path(self.run.dir).parent if self.run is not None else None

    @property
    def url(self) -> str | None:
        return self.run.url if self.run is not None and self.mode == "online" else None

    def open(self, config: dict[str, Any]) -> bool:
        if self.mode == "online":
            if self._init("online", config):
                return True
            self.mode = "disabled" if _state.broken else "offline"
        if self.mode == "offline" and self._init("offline", config):
            return True
        self.mode = "disabled"
        return False

    def _init(self, mode: str, config: dict[str, Any]) -> bool:
        import wandb

        init_timeout = _env_seconds("WANDB_INIT_TIMEOUT", INIT_TIMEOUT_S)
        settings: dict[str, Any] = {"console": "off", "init_timeout": init_timeout}
        if "WANDB_SILENT" not in os.environ and "WANDB_QUIET" not in os.environ:
            settings["silent"] = True
        if mode == "online":
            settings["finish_timeout"] = _env_seconds("WANDB_FINISH_TIMEOUT", FINISH_TIMEOUT_S)
        spec = self.wandb_spec
        # A failed online start keeps its id busy inside wandb's service: every attempt gets
        # a new id.
        run_id = _run_id(*self.id_parts)

        def init() -> Any:
            # wandb warns about a git root that does not exist yet.
            self.root.mkdir(parents=True, exist_ok=True)
            return wandb.init(
                project=spec.project,
                entity=spec.entity,
                tags=list(spec.tags),
                group=self.group,
                job_type=self.job_type,
                name=self.name,
                id=run_id,
                dir=self.root,
                mode=mode,
                config=config,
                reinit="create_new",
                settings=wandb.Settings(**settings),
            )

        limit = init_timeout + GRACE_S if mode == "online" else OFFLINE_INIT_LIMIT_S
        try:
            self.run = _bounded(init, limit=limit, what="wandb.init", on_late=_finish_quietly)
        except _CallFailed as exc:
            if mode == "online":
                _state.online_failed = True
                _warn_once(
                    "online-init",
                    f"W&B online run could not start ({exc}); this and later runs of this"
                    f" process are written offline under {self.root / 'wandb'} instead;"
                    " upload them later with `sweeps sync`.",
                )
            else:
                _state.broken = True
                _warn_once(
                    "offline-init",
                    f"W&B is off for this process: an offline run could not start ({exc}).",
                )
            return False
        return True

    def call(self, what: str, fn: Callable[[Any], Any], *, scale: float = 1.0) -> bool:
        """``fn(run)``; on failure warn once and stop using W&B for this run (not for others)."""
        if self.run is None:
            return False
        run = self.run
        try:
            _bounded(lambda: fn(run), limit=LOG_LIMIT_S * scale, what=what)
        except _CallFailed as exc:
            self.run = None
            if exc.timed_out:
                # A hung call means a wedged wandb: later runs of this process go without it.
                _state.broken = True
                _warn_once("hung", f"W&B is off for this process: {exc} in run {self.name}.")
                threading.Thread(target=_finish_quietly, args=(run,), daemon=True).start()
            else:
                _warn_once(f"call-{what}", f"W&B logging stopped for run {self.name}: {exc}")
                with contextlib.suppress(_CallFailed):
                    _bounded(lambda: _finish_quietly(run), limit=LOG_LIMIT_S, what="wandb.finish")
            return False
        return True

    def finish(self, exit_code: int) -> None:
        if self.run is None:
            return
        run, self.run = self.run, None
        limit = (
            _env_seconds("WANDB_FINISH_TIMEOUT", FINISH_TIMEOUT_S) + GRACE_S
            if self.mode == "online"
            else LOG_LIMIT_S
        )
        try:
            _bounded(lambda: run.finish(exit_code=exit_code), limit=limit, what="wandb.finish")
        except _CallFailed as exc:
            if exc.timed_out:
                _state.broken = True
            _warn_once("finish", f"W&B run {self.name} did not finish cleanly: {exc}")


def _finish_quietly(run: Any) -> None:
    with contextlib.suppress(BaseException):
        run.finish(exit_code=1)


def _clean(value: Any) -> Any:
    """A value W&B shows well: None for NaN, JSON text for anything that is not a scalar."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, default=str, sort_keys=True)


# ------------------------------------------------------------------------------ the tracker


class WandbTracker(Tracker):
    """One W&B run for one training run: config, per-epoch metrics, curves, final summary.

    Build it with :func:`~mixer_sweeps.tracking.make_trackers`. After :meth:`start`,
    :attr:`mode` is what the run really got (online may have become offline or disabled) and
    :attr:`path` is its folder.
    """

    def __init__(
        self,
        *,
        mode: str,
        results_dir: Path,
        wandb_spec: WandbSpec,
        group: str,
        job_type: str,
        name: str,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self._run = _GuardedRun(
            mode=mode,
            root=Path(results_dir),
            wandb_spec=wandb_spec,
            group=group,
            job_type=job_type,
            name=name,
            id_parts=(name,),
        )
        self.extra_config = dict(extra_config or {})
        self._last_epoch = 0
        self._path: Path | None = None
        self._url: str | None = None

    @property
    def mode(self) -> str:
        return self._run.mode

    @property
    def name(self) -> str:
        return self._run.name

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def url(self) -> str | None:
        return self._url

    def start(self, spec: RunSpec, *, run_dir: Path | None, meta: dict[str, Any]) -> None:
        config = spec.model_dump(mode="json")
        config.update(self.extra_config)
        if run_dir is not None:
            config["run_dir"] = str(run_dir)
        if "device" in meta:
            config["device"] = meta["device"]
        if not self._run.open(config):
            return
        self._path = self._run.path
        self._url = self._run.url

        def define(run: Any) -> None:
            run.define_metric("epoch")
            run.define_metric("*", step_metric="epoch")

        self._run.call("define_metric", define)

    def log_epoch(self, record: EpochRecord) -> None:
        self._last_epoch = record.epoch
        row = {
            "epoch": record.epoch,
            "train/loss": record.train_loss,
            "train/acc": record.train_acc,
            "val/loss": record.val_loss,
            "val/acc": record.val_acc,
            "lr": record.lr,
            "epoch_seconds": record.seconds,
            "images_per_s": record.images_per_s,
        }
        self._run.call("log", lambda run: run.log(row))

    def log_image(self, name: str, path: Path) -> None:
        def log(run: Any) -> None:
            import wandb

            run.log({name: wandb.Image(str(path)), "epoch": self._last_epoch})

        self._run.call("log_image", log)

    def finish(self, summary: dict[str, Any], *, state: str, reason: str) -> None:
        values = {k: _clean(v) for k, v in summary.items() if v is not None}
        values.update(state=state, reason=reason)
        self._run.call("summary", lambda run: run.summary.update(values))
        self._run.finish(exit_code=1 if state in ("failed", "stopped") else 0)


# ---------------------------------------------------------------------------- the study run


def log_study(
    study: optuna.Study, *, results_dir: Path, study_name: str, spec: RunSpec
) -> Path | None:
    """Log a study's trials as one W&B run (``job_type="study"``) in the study's group.

    The run holds a ``trials`` table (number, state, values, params, user attributes, times),
    one history row per finished trial (value and best value so far, step ``trial``), Optuna's
    parameter importances when they can be computed, and the best trial in its summary.
    Returns the run's folder, or None when W&B is disabled or failed.
    """
    mode = resolve_mode(spec.tracking.wandb.mode)
    if mode == "disabled":
        return None
    columns, rows = trials_table(study)
    directions = [d.name.lower() for d in study.directions]
    config = spec.model_dump(mode="json")
    config["study"] = {"name": study_name, "directions": directions, "trials": len(rows)}
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
    summary = _study_summary(study, rows, columns)
    importances = _importances(study)

    def log(run: Any) -> None:
        import wandb

        run.define_metric("trial")
        run.define_metric("*", step_metric="trial")
        best: float | None = None
        sign = 1.0 if directions[0] == "maximize" else -1.0
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            value = record.get("value")
            if record["state"] != "complete" or not isinstance(value, (int, float)):
                continue
            if best is None or sign * value > sign * best:
                best = value
            run.log({"trial": record["number"], "value": value, "best_value": best})
        run.log({"trials": wandb.Table(columns=columns, data=rows)})
        if importances:
            table = wandb.Table(
                columns=["param", "importance"], data=[[k, v] for k, v in importances.items()]
            )
            run.log({"param_importance": table})
            summary.update({f"importance/{k}": v for k, v in importances.items()})
        run.summary.update(summary)

    guarded.call("log_study", log, scale=4)
    guarded.finish(exit_code=0)
    return path


def trials_table(study: optuna.Study) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of a study's trials: ``number``, ``state``, ``value`` (``values_<i>``
    for several objectives), ``duration_s``, ``started``, the params by name and the user
    attributes as ``attr.<name>``. Missing params (conditional ones) are None."""
    trials = study.get_trials(deepcopy=False)
    params = sorted({p for t in trials for p in t.params})
    attrs = sorted({a for t in trials for a in t.user_attrs})
    value_columns = (
        ["value"]
        if len(study.directions) == 1
        else [f"values_{i}" for i in range(len(study.directions))]
    )
    columns = ["number", "state", *value_columns, "duration_s", "started", *params]
    columns += [f"attr.{a}" for a in attrs]
    rows = []
    for t in trials:
        values = list(t.values) if t.values is not None else [None] * len(value_columns)
        duration = t.duration.total_seconds() if t.duration is not None else None
        started = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None
        row = [t.number, t.state.name.lower(), *values, duration, started]
        row += [t.params.get(p) for p in params]
        row += [t.user_attrs.get(a) for a in attrs]
        rows.append([_clean(v) for v in row])
    return columns, rows


def _study_summary(
    study: optuna.Study, rows: list[list[Any]], columns: list[str]
) -> dict[str, Any]:
    states = [row[columns.index("state")] for row in rows]
    summary: dict[str, Any] = {"n_trials": len(rows)}
    for state in sorted(set(states)):
        summary[f"n_{state}"] = states.count(state)
    try:
        if len(study.directions) == 1:
            best = study.best_trial
            summary.update(
                best_trial=best.number,
                best_value=best.value,
                best_params={k: _clean(v) for k, v in best.params.items()},
            )
        else:
            summary["best_trials"] = [t.number for t in study.best_trials]
    except ValueError:  # no complete trial yet
        pass
    return summary


def _importances(study: optuna.Study) -> dict[str, float]:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(study.directions) != 1 or len(complete) < 2:
        return {}
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except Exception:  # e.g. every param had one value; the table is what matters
        return {}


# ---------------------------------------------------------------------------------- syncing


def offline_runs(path: Path) -> tuple[list[Path], int]:
    """Offline run folders under ``path`` (a results folder or its ``wandb/``) not yet uploaded,
    and how many were already uploaded."""
    wandb_dir = path / "wandb" if (path / "wandb").is_dir() else path
    pending: list[Path] = []
    synced = 0
    for run_dir in sorted(wandb_dir.glob("offline-run-*")):
        logs = list(run_dir.glob("*.wandb"))
        if not logs:
            continue
        if all(log.with_suffix(".wandb.synced").exists() for log in logs):
            synced += 1
        else:
            pending.append(run_dir)
    return pending, synced
