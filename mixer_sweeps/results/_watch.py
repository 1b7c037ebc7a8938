"""Studies read side by side for ``sweeps status``: each in a thread of its own, bounded by the
storage timeout, so one damaged file or silent database costs one line, never the others."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mixer_sweeps.results._load import ReportError, StudyResults, find_study, results_of
from mixer_sweeps.results._record import records
from mixer_sweeps.results._status import StudyStatus, study_status


@dataclass
class Watched:
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
        self, watched: Watched, results_dir: Path, storage: str | None, timeout_s: float
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
            self.status = status_of(self.results, self.storage)
        except _read_errors() as exc:
            text = str(exc).strip()
            self.error = text or type(exc).__name__
        except BaseException as exc:  # a bug: raised again in the main thread
            self.crash = exc

    def _open(self) -> StudyResults:
        import optuna

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


def refresh(
    watched: list[Watched], results_dir: Path, storage: str | None, timeout_s: float
) -> None:
    """Read every study afresh, all at once, giving up on each after ``timeout_s`` seconds."""
    # The libraries are imported here, not in a reader whose clock runs.
    import optuna  # noqa: F401
    import sqlalchemy.exc  # noqa: F401

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


def status_of(results: StudyResults, storage: str | None) -> StudyStatus:
    from mixer_sweeps.study import describe_storage, resolve_storage

    settings = results.settings
    url = resolve_storage(storage, settings.storage)
    n_trials = settings.n_trials
    if n_trials is None and settings.sampler.type == "grid":
        n_trials = results.space.grid_size()
    return study_status(
        results.name,
        # read afresh at every refresh
        records(results.study.get_trials(deepcopy=False), results.record.learning),
        direction=results.direction,
        n_trials=n_trials,
        timeout=settings.timeout,
        objectives=results.objectives,
        study_dir=str(results.study_dir),
        storage=describe_storage(url, results.study_dir),
        metric=results.metric,
        replicates=results.replicates,
    )
