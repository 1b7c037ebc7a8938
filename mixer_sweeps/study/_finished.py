"""A study with nothing left to run, told before the workers' modules (torch) are imported.

``sweeps run`` of a study whose ``n_trials`` trials have all finished trains nothing; it says so
at once and leaves the study's files (its report, its W&B runs) as they are. Anything this look
cannot settle (no storage yet, a storage that fails, a study file changed since, failed trials
to retry) is left to :func:`~mixer_sweeps.study.run_study`, which says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mixer_sweeps.results import (
    StudyLayout,
    StudyRecord,
    TrialCounts,
    TrialRecord,
    best_trial,
    count_trials,
    records,
)
from mixer_sweeps.spec import StudyFile
from mixer_sweeps.study._quiet import optuna_quiet
from mixer_sweeps.study._storage import (
    journal_path,
    open_storage,
    resolve_storage,
    storage_timeout_s,
)


@dataclass(frozen=True)
class FinishedStudy:
    """A study that has its ``n_trials`` finished trials."""

    layout: StudyLayout
    n_trials: int
    counts: TrialCounts
    best: TrialRecord | None


def finished_study(
    study_file: StudyFile,
    *,
    results_dir: str | Path,
    storage: str | None,
    retry_failed: bool = False,
) -> FinishedStudy | None:
    """The study of ``study_file`` when it has nothing left to run; else None."""
    n_trials = study_file.n_trials
    if n_trials is None:  # a study bounded by its timeout alone runs until then
        return None
    layout = StudyLayout.of(results_dir, study_file.name)
    url = resolve_storage(storage, study_file.settings.storage)
    journal = journal_path(url, layout.root)
    if journal is not None and not journal.is_file():
        return None
    try:
        import optuna

        with optuna_quiet():
            backend = open_storage(url, study_dir=layout.root, timeout_s=storage_timeout_s())
            study = optuna.load_study(study_name=study_file.name, storage=backend)
            frozen = study.get_trials(deepcopy=False)
            fingerprint = StudyRecord.from_study(study).fingerprint
    except Exception:  # run_study opens it again and says what is wrong
        return None
    if fingerprint != study_file.fingerprint():
        return None
    counts = count_trials(frozen)
    if counts.finished < n_trials or (retry_failed and counts.failed):
        return None
    return FinishedStudy(layout, n_trials, counts, best_trial(records(frozen), study.directions[0]))
