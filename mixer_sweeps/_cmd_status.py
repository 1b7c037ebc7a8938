"""``sweeps status`` and ``sweeps best``: watch a study and pick its winner.

Both read the study where ``sweeps report`` does (:func:`~mixer_sweeps.report.load_results`: a
study file or a results folder, ``--results``, ``--storage``) and everything they show comes
from the storage, so workers anywhere count. Without a terminal they print plain text, never cut
to a width, for logs and scripts; ``--json`` is for programs.

Status reads each study in a thread of its own and waits for it at most the storage timeout, so
one damaged file or silent database costs one line, never the view of the others.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mixer_sweeps._checks import EXIT_BAD_INPUT, STORAGE_HELP, check_option, fail

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from mixer_sweeps.results import StudyResults, StudyStatus, TrialRecord

EXIT_NOTHING = 1
MAX_INTERVAL_S = 86_400
"""Longest --interval: a day (time.sleep refuses inf; a longer wait is never meant)."""

_RESULTS_HELP = (
    "Results folder, where study files' results are (and, with no argument, every study)."
)


def _console() -> Console:
    """The terminal's console; elsewhere one that never wraps or cuts a line (logs, pipes)."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=100_000)
    return console


def _load(target: Path, results: Path, storage: str | None) -> StudyResults:
    from mixer_sweeps.results import load_results

    try:
        return load_results(target, results_dir=results, storage=storage)
    except ValueError as exc:  # ReportError, SpecError, a bad storage URL
        raise fail(str(exc).strip()) from None


# ------------------------------------------------------------------------------------ status


def status(
    studies: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Study YAML files or results folders (results/<study>); none: every study"
            " under --results.",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh every --interval seconds until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between refreshes with --watch (0.1 to 86400).")
    ] = 5.0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print JSON: {"studies": [...], "unreadable": [...]}, one entry per study.',
        ),
    ] = False,
    results: Annotated[Path, typer.Option(help=_RESULTS_HELP)] = Path("results"),
    storage: Annotated[str | None, typer.Option(help=STORAGE_HELP, show_default=False)] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds to wait for a study's storage before showing it as unreadable; else"
            " $SWEEPS_STORAGE_TIMEOUT_S, else 10.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Progress of studies: trials by state, best value, live workers, elapsed time and ETA.

    Workers count wherever they run: their heartbeat is in the study's storage. A study that
    cannot be read (a damaged file, a storage that is gone or does not answer within --timeout)
    is one line saying why, and the others are shown; the exit code is 2 only when none can be
    read. --watch goes on through failed refreshes until Ctrl-C.
    """
    if watch and as_json:
        raise fail("--watch and --json do not go together: run --json again to poll")
    check_option("--interval", interval, 0.1, MAX_INTERVAL_S, "seconds, a day at most")
    wait_s = _storage_timeout(timeout)
    targets = list(studies or [])
    if not targets:
        from mixer_sweeps.results import find_studies

        targets = find_studies(results)
        if not targets:
            raise fail(
                f"no study under {results}/ (no {results}/<name>/study.yaml): run one, or give"
                " a study file or results folder"
            )
    from mixer_sweeps.study import optuna_quiet

    with optuna_quiet():  # for the readers' threads too: logging and warnings are global
        _show(targets, results, storage, wait_s, watch=watch, interval=interval, as_json=as_json)


def _show(
    targets: list[Path],
    results: Path,
    storage: str | None,
    wait_s: float,
    *,
    watch: bool,
    interval: float,
    as_json: bool,
) -> None:
    watched = [_Watched(t) for t in targets]
    _refresh(watched, results, storage, wait_s)
    if not any(w.status is not None for w in watched):
        for w in watched:
            why = w.why(whole=len(watched) == 1)
            named = why if why.startswith(str(w.target)) else f"{w.target}: {why}"
            typer.echo(f"error: {named}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    if as_json:
        payload = {
            "studies": [w.status.as_json() for w in watched if w.status is not None],
            "unreadable": [
                {"study": str(w.target), "error": w.error} for w in watched if w.status is None
            ],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console = _console()
    if not watch:
        console.print(_render_all(watched))
        return
    from mixer_sweeps._signals import graceful_interrupts

    # Ctrl-C leaves the last view on screen; the group says "interrupted" and exits 130. The
    # handler is set here, not inherited: a shell starts background jobs with SIGINT ignored
    # (`sweeps status --watch | cat &` in a script), and a pipe has no terminal to send it.
    with graceful_interrupts():
        if not console.is_terminal:  # a log: one block per refresh, stamped
            while True:
                console.print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}", markup=False)
                console.print(_render_all(watched))
                sys.stdout.flush()
                time.sleep(interval)
                _refresh(watched, results, storage, wait_s)
        from rich.live import Live

        with Live(_render_all(watched), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                _refresh(watched, results, storage, wait_s)
                live.update(_render_all(watched), refresh=True)


def _storage_timeout(option: float | None) -> float:
    from mixer_sweeps.study import storage_timeout_s

    try:
        return storage_timeout_s(option)
    except ValueError as exc:
        raise fail(str(exc)) from None


@dataclass
class _Watched:
    """A study that status shows, and what its last read found."""

    target: Path
    results: StudyResults | None = None
    """The open study, kept between refreshes (a journal is read on from where it was left)."""
    status: StudyStatus | None = None
    error: str | None = None
    """Why it could not be read (status is None)."""
    reader: _Reader | None = None

    def why(self, *, whole: bool = False) -> str:
        """The error, on one line unless ``whole``."""
        text = str(self.error)
        if whole:
            return text
        return "; ".join(line.strip() for line in text.splitlines() if line.strip())


class _Reader(threading.Thread):
    """Reads one study in a thread of its own, so that a storage that never answers (a stalled
    database, a hung network file system) holds up only its study's line, and only for the
    storage timeout; the thread is left behind (a daemon: it never holds up the exit), and the
    study is not read again until it returns."""

    def __init__(
        self, watched: _Watched, results_dir: Path, storage: str | None, timeout_s: float
    ) -> None:
        super().__init__(name=f"status {watched.target}", daemon=True)
        self.target, self.results_dir, self.storage = watched.target, results_dir, storage
        self.timeout_s = timeout_s
        self.results = watched.results
        self.status: StudyStatus | None = None
        self.error: str | None = None
        self.crash: BaseException | None = None
        self.where = "its storage"
        self.began = time.monotonic()

    def run(self) -> None:
        try:
            if self.results is None:
                self.results = self._open()
            self.status = _status_of(self.results, self.storage)
        except _read_errors() as exc:
            text = str(exc).strip()
            self.error = text or type(exc).__name__
        except BaseException as exc:  # a bug: raised again in the main thread
            self.crash = exc

    def _open(self) -> StudyResults:
        import optuna

        from mixer_sweeps.results import ReportError, find_study, results_of
        from mixer_sweeps.study import describe_storage, open_storage

        url, study_dir, name = find_study(
            self.target, results_dir=self.results_dir, storage=self.storage
        )
        self.where = describe_storage(url, study_dir)
        gone = _missing_sqlite_file(url)
        if gone is not None:  # opening it would create an empty database there
            raise ReportError(f"its storage {self.where} is gone: no file {gone}")
        backend = open_storage(url, study_dir=study_dir, timeout_s=self.timeout_s)
        try:
            study = optuna.load_study(study_name=name, storage=backend)
        except KeyError:
            raise ReportError(f"{self.where} holds no study named {name!r}") from None
        return results_of(study, study_dir)


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a study raises when a file or its storage is bad, not this program."""
    import sqlalchemy.exc
    from optuna.exceptions import OptunaError

    return (ValueError, OSError, sqlalchemy.exc.SQLAlchemyError, OptunaError)


def _missing_sqlite_file(url: str | None) -> Path | None:
    if url is None or url.split(":", 1)[0].split("+", 1)[0] != "sqlite":
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.is_file() else path


def _refresh(
    watched: list[_Watched], results_dir: Path, storage: str | None, timeout_s: float
) -> None:
    """Read every study afresh, all at once, giving up on each after ``timeout_s`` seconds."""
    # The libraries are imported here, not in a reader whose clock runs.
    import optuna  # noqa: F401
    import sqlalchemy.exc  # noqa: F401

    from mixer_sweeps.results import find_study  # noqa: F401

    for w in watched:
        if w.reader is None or not w.reader.is_alive():
            w.reader = _Reader(w, results_dir, storage, timeout_s)
            w.reader.start()
    for w in watched:
        reader = w.reader
        assert reader is not None
        reader.join(max(reader.began + timeout_s - time.monotonic(), 0.0))
        if reader.is_alive():
            waited = time.monotonic() - reader.began
            w.results = w.status = None
            w.error = (
                f"no answer from {reader.where} in {waited:.0f} s; if it is only slow, raise"
                " --timeout (or SWEEPS_STORAGE_TIMEOUT_S)"
            )
        elif reader.crash is not None:
            raise reader.crash
        else:
            w.status, w.error = reader.status, reader.error
            # After an error the study is opened afresh: a storage that is back, a file mended.
            w.results = reader.results if reader.error is None else None


def _status_of(results: StudyResults, storage: str | None) -> StudyStatus:
    from mixer_sweeps.results import records, study_status
    from mixer_sweeps.study import describe_storage, resolve_storage

    settings = results.settings
    url = resolve_storage(storage, settings.get("storage"))
    n_trials = settings.get("n_trials")
    if n_trials is None and (settings.get("sampler") or {}).get("type") == "grid":
        n_trials = results.space.grid_size()
    return study_status(
        results.name,
        records(results.study.get_trials(deepcopy=False)),  # read afresh at every refresh
        direction=results.study.direction,
        n_trials=n_trials,
        timeout=settings.get("timeout"),
        extra={
            "study_dir": str(results.study_dir),
            "storage": describe_storage(url, results.study_dir),
            "metric": _metric(results),
            "replicates": results.replicates,
        },
    )


def _metric(results: StudyResults) -> str:
    names = results.study.metric_names
    if names and names[0]:
        return names[0]
    return str(results.settings.get("metric") or "value")


def _render_all(watched: list[_Watched]) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    blocks: list[Any] = []
    for i, w in enumerate(watched):
        if i:
            blocks.append("")
        if w.status is not None and w.results is not None:
            blocks.append(_render(w.status, w.results))
        else:
            blocks.append(
                Text.assemble(
                    (w.target.name or str(w.target), "bold"),
                    f"  {w.target}  ",
                    (f"cannot be read: {w.why()}", "red"),
                )
            )
    return Group(*blocks)


def _render(s: StudyStatus, results: StudyResults) -> RenderableType:
    from rich.text import Text

    from mixer_sweeps.results import format_duration, format_params, short_names

    c = s.counts
    of = f"/{s.n_trials}" if s.n_trials is not None else ""
    metric, direction = s.extra["metric"], s.direction.name.lower()
    lines = [Text.assemble((s.name, "bold"), f"  {s.extra['study_dir']}  ({s.extra['storage']})")]
    trials = Text(f"  trials   {c.finished}{of} finished: ")
    trials.append(f"{c.complete} complete", style="green")
    trials.append(", ")
    trials.append(f"{c.pruned} pruned", style="yellow")
    trials.append(", ")
    trials.append(f"{c.failed} failed", style="red" if c.failed else "")
    trials.append(f"; {c.running} running, {c.waiting} waiting")
    if c.retried:
        trials.append(f" ({c.retried} failed attempts queued again)", style="dim")
    lines.append(trials)
    if s.best is None:
        lines.append(Text(f"  best     none yet ({metric}, {direction})"))
    else:
        names = short_names([d.path for d in results.space])
        lines.append(
            Text(
                f"  best     {metric} {s.best.value:.4f} (trial {s.best.number}, {direction})  "
                + format_params(s.best.params, names)
            )
        )
    workers = Text(f"  workers  {len(s.workers)} alive")
    if s.workers:
        workers.append(": " + ", ".join(s.workers), style="dim")
    if s.orphaned:
        workers.append(
            f"; {s.orphaned} running trial{'s' * (s.orphaned != 1)} without a live worker"
            " (queued again by the next sweeps run)",
            style="yellow",
        )
    lines.append(workers)
    eta = "done" if s.done else f"ETA {format_duration(s.eta_s)} ({s.eta_note})"
    lines.append(Text(f"  time     elapsed {format_duration(s.elapsed_s)}, {eta}"))
    return Text("\n").join(lines)


# -------------------------------------------------------------------------------------- best


def best(
    study: Annotated[
        Path,
        typer.Argument(
            help="Study YAML file or results folder (results/<study>).", show_default=False
        ),
    ],
    export: Annotated[
        Path | None,
        typer.Option(
            help="Write the trial's run spec to this file (or pipe, or device); `sweeps train"
            " FILE` trains it again.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file --export names if it exists.")
    ] = False,
    top: Annotated[
        int | None,
        typer.Option(min=1, help="List the best K complete trials.", show_default=False),
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option(
            min=0, help="Show (and export) this trial instead of the best.", show_default=False
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="With replicates: the seed whose run spec is shown and exported (default: the"
            " first).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    results: Annotated[
        Path, typer.Option(help="Results folder, where study files' results are.")
    ] = Path("results"),
    storage: Annotated[str | None, typer.Option(help=STORAGE_HELP, show_default=False)] = None,
) -> None:
    """The best trial of a study: its value (mean ± 95% CI with replicates), params and full run
    spec; --export writes that spec for `sweeps train`.

    Best follows the study's direction (the highest val_acc, the lowest val_loss).
    """
    from mixer_sweeps.results import count_trials, describe_counts, ranked, trial_run_spec
    from mixer_sweeps.spec import SpecError

    found = _load(study, results, storage)
    direction = found.study.direction
    order = ranked(found.trials, direction)
    if trial is None:
        if not order:
            counts = count_trials(found.trials)
            raise fail(
                f"study {found.name} has no complete trial yet ({describe_counts(counts)},"
                f" {counts.running} running)",
                code=EXIT_NOTHING,
            )
        chosen = order[0]
    else:
        chosen = next((t for t in found.trials if t.number == trial), None)
        if chosen is None:
            numbers = [t.number for t in found.trials]
            held = f"trials 0-{max(numbers)}" if numbers else "no trials"
            raise fail(f"--trial {trial}: study {found.name} has {held}")
    if export is not None and export.is_dir():
        raise fail(f"--export {export} is a folder; give a file name, e.g. {export / 'best.yaml'}")
    try:
        spec = trial_run_spec(
            chosen,
            layout=found.layout,
            study_name=found.name,
            base=_base(found),
            space=found.space,
            replicates=found.replicates,
            seed=seed,
        )
    except (ValueError, SpecError) as exc:
        raise fail(str(exc).strip()) from None
    written = None
    if export is not None:
        from mixer_sweeps._write import write_or_fail
        from mixer_sweeps.training import spec_to_yaml

        written = write_or_fail(export, spec_to_yaml(spec.spec), force=force, option="--export")
    top_rows = [_summary(found, t) for t in order[:top]] if top is not None else None
    if as_json:
        payload = {
            "study": found.name,
            "metric": _metric(found),
            "direction": direction.name.lower(),
            "replicates": found.replicates,
            "complete": len(order),
            "trial": _summary(found, chosen),
            "rank": order.index(chosen) + 1 if chosen in order else None,
            "seed": spec.seed,
            "spec": spec.spec.model_dump(mode="json"),
            "spec_source": spec.source,
            "notes": list(spec.notes),
            "exported": None if export is None else str(export),
        }
        if top_rows is not None:
            payload["top"] = top_rows
        typer.echo(json.dumps(payload, indent=2))
        return
    console = _console()
    if top_rows is not None:
        console.print(_top_table(found, top_rows, len(order)))
    else:
        _print_trial(
            console,
            found,
            chosen,
            spec,
            rank=order.index(chosen) + 1 if chosen in order else None,
            complete=len(order),
        )
    if written is not None:
        again = f": `sweeps train {export}` trains it again" if written.stored else ""
        console.print(
            f"wrote trial {chosen.number}'s run spec to {written.where}{again}", markup=False
        )


def _base(found: StudyResults) -> dict[str, Any]:
    """The resolved base spec the trials were built from: the storage's, else ``study.yaml``'s."""
    from mixer_sweeps.spec import SpecError, read_yaml

    base = found.study.user_attrs.get("base")
    if not isinstance(base, dict):
        try:
            base = read_yaml(found.layout.study_file).data.get("base")
        except SpecError as exc:
            raise fail(str(exc)) from None
    if not isinstance(base, dict):
        raise fail(
            f"{found.layout.study_file} holds no base spec: run the study again to rewrite it"
        )
    return base


def _spread(found: StudyResults, trial: TrialRecord) -> tuple[list[float], float | None]:
    """The trial's per-seed values of its objective and the half-width of their 95% CI (Student's
    t, as the report's tables; None below 2 seeds).

    Values whose mean is not the trial's value are not the objective's and are not shown.
    """
    from mixer_sweeps.report import ci95

    per_seed = [float(v) for v in (trial.best or trial.best_val_acc)]
    if (
        trial.value is None
        or not per_seed
        or not math.isclose(statistics.fmean(per_seed), trial.value, rel_tol=1e-9, abs_tol=1e-12)
    ):
        return [], None
    half = ci95(per_seed)
    return per_seed, None if math.isnan(half) else half


def _summary(found: StudyResults, trial: TrialRecord) -> dict[str, Any]:
    per_seed, half = _spread(found, trial)
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "ci95": half,
        "seeds": list(trial.seeds),
        "per_seed": per_seed,
        "params": dict(trial.params),
        "test_acc": trial.mean_test_acc,
        "epochs": list(trial.epochs),
        "num_params": trial.num_params,
        "seconds": trial.seconds,
        "duplicate_of": trial.duplicate_of,
    }


def _value_text(found: StudyResults, row: dict[str, Any]) -> str:
    if row["value"] is None:
        return "-"
    text = f"{row['value']:.4f}"
    if row["ci95"] is not None:
        text += f" ± {row['ci95']:.4f}"
    return text


def _print_trial(
    console: Console,
    found: StudyResults,
    trial: TrialRecord,
    spec: Any,
    *,
    rank: int | None,
    complete: int,
) -> None:
    from rich.text import Text

    from mixer_sweeps.results import format_value
    from mixer_sweeps.training import spec_to_yaml

    row = _summary(found, trial)
    metric, direction = _metric(found), found.study.direction.name.lower()
    where = (
        f"best of {complete} complete"
        if rank == 1
        else (f"rank {rank} of {complete} complete" if rank else trial.state.name.lower())
    )
    console.print(
        Text(
            f"study {found.name}: trial {trial.number}, {where} ({metric}, {direction})",
            style="bold",
        )
    )
    value = f"  {metric} {_value_text(found, row)}"
    if row["per_seed"] and len(row["per_seed"]) > 1:
        seeds = ", ".join(
            f"seed {s}: {v:.4f}" for s, v in zip(row["seeds"], row["per_seed"], strict=False)
        )
        value += f" (mean ± 95% CI, Student's t, over {len(row['per_seed'])} seeds; {seeds})"
    console.print(value, markup=False)
    details = []
    if row["test_acc"] is not None:
        details.append(f"test acc {row['test_acc']:.4f}")
    if trial.epochs:
        details.append(f"{sum(trial.epochs)} epochs")
    if trial.num_params is not None:
        details.append(f"{trial.num_params:,} parameters")
    if trial.seconds is not None:
        details.append(f"{trial.seconds:.1f} s")
    if trial.duplicate_of is not None:
        details.append(f"same configuration as trial {trial.duplicate_of}")
    if details:
        console.print("  " + ", ".join(details), markup=False)
    console.print("  params:", markup=False)
    for path, val in trial.params.items():
        console.print(f"    {path}: {format_value(val)}", markup=False)
    if not trial.params:
        console.print("    (none)", markup=False)
    console.print(f"run spec (seed {spec.seed}, {spec.source}):", markup=False)
    for note in spec.notes:
        console.print(f"  set {note}", markup=False)
    console.print(spec_to_yaml(spec.spec).rstrip("\n"), markup=False)


def _top_table(found: StudyResults, rows: list[dict[str, Any]], complete: int) -> Any:
    from rich import box
    from rich.table import Table

    from mixer_sweeps.results import format_value, short_names

    names = short_names([d.path for d in found.space])
    metric, direction = _metric(found), found.study.direction.name.lower()
    ci = found.replicates > 1
    title = (
        f"study {found.name}: top {len(rows)} of {complete} complete trials ({direction} {metric}"
    )
    title += f", mean ± 95% CI over {found.replicates} seeds)" if ci else ")"
    table = Table(title=title, box=box.SIMPLE, title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("trial", justify="right")
    table.add_column(metric + (" ± 95% CI" if ci else ""), justify="right")
    for short in names.values():
        table.add_column(short, justify="right")
    table.add_column("test acc", justify="right")
    table.add_column("params", justify="right")
    for rank, row in enumerate(rows, 1):
        params = [format_value(row["params"].get(path, "")) for path in names]
        table.add_row(
            str(rank),
            str(row["number"]),
            _value_text(found, row),
            *params,
            "-" if row["test_acc"] is None else f"{row['test_acc']:.4f}",
            "-" if row["num_params"] is None else f"{row['num_params']:,}",
        )
    return table
