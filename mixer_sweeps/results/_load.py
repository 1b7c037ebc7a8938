"""A study's results: its Optuna study, search space and settings, found from what the user gives.

``sweeps report`` takes a study file (``studies/quickstart.yaml``: its results are under
``<results>/<name>/``) or a study's results folder (``results/quickstart/``, which holds the
resolved ``study.yaml`` that ``sweeps run`` writes). The storage is the one the study was run
with: ``--storage``, then ``SWEEPS_STORAGE``, then ``study.storage``, else the journal file in the
results folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer_sweeps.results._layout import StudyLayout
from mixer_sweeps.results._objectives import Objective
from mixer_sweeps.results._rank import best_trial
from mixer_sweeps.results._record import StudyRecord, TrialRecord, records
from mixer_sweeps.spec import SearchSpace, SpecError, StudySettings, read_yaml
from mixer_sweeps.study import check_storage_url, journal_path, open_storage, resolve_storage

if TYPE_CHECKING:
    import optuna
    from optuna.study import StudyDirection


class ReportError(ValueError):
    """There is no study to report where the user pointed, or its saved files are damaged."""


@dataclass(frozen=True)
class StudyResults:
    """A study read back: what reports, status, best, retrain and the dashboard are made from."""

    study: optuna.Study
    layout: StudyLayout
    space: SearchSpace
    settings: StudySettings
    """The resolved ``study:`` section (sampler, pruner, replicates, ...) ``sweeps run`` saved."""
    record: StudyRecord
    trials: list[TrialRecord]

    @property
    def study_dir(self) -> Path:
        return self.layout.root

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def replicates(self) -> int:
        return self.settings.replicates

    @property
    def metric(self) -> str:
        """The objective's name (the learning metric's in a multi-objective study): the
        storage's, else the saved study file's."""
        if self.record.multi:
            return self.record.objectives[self.record.learning].metric
        names = self.study.metric_names
        return names[0] if names and names[0] else self.settings.metric

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """Every objective in Optuna's order; one, :attr:`metric`, in a single-objective study."""
        if self.record.multi:
            return self.record.objectives
        return (Objective(self.metric, self.direction),)

    @property
    def multi(self) -> bool:
        """Whether the study has several objectives (a front rather than a best trial)."""
        return self.record.multi

    @property
    def direction(self) -> StudyDirection:
        """The direction of :attr:`metric`."""
        return self.record.direction

    def trial_dir(self, trial: TrialRecord) -> Path:
        return self.layout.trial_path(trial.number, trial.run_dir)


def load_results(
    target: str | Path, *, results_dir: str | Path = "results", storage: str | None = None
) -> StudyResults:
    """The results of a study file's study, or of a study's results folder.

    Raises:
        ReportError: nothing was run there, the storage holds no such study, or the saved
            ``study.yaml`` is damaged (the message names the file and line).
        SpecError: ``target`` is a study file with mistakes (invalid YAML included).
    """
    url, study_dir, name = find_study(target, results_dir=results_dir, storage=storage)
    try:
        import optuna

        study = optuna.load_study(study_name=name, storage=open_storage(url, study_dir=study_dir))
    except KeyError:
        raise ReportError(f"the storage holds no study named {name!r}") from None
    return results_of(study, study_dir)


def find_study(
    target: str | Path, *, results_dir: str | Path = "results", storage: str | None = None
) -> tuple[str | None, Path, str]:
    """Where a study file's study (or a results folder's) is stored: the storage URL (None: the
    journal file in the results folder), the results folder and the study's name.

    Raises:
        ReportError: nothing was run there, or its storage is a journal file that is not there.
        SpecError: ``target`` is a study file with mistakes.
    """
    from mixer_sweeps.spec import load_study_file

    path = Path(target)
    if path.is_dir():
        study_dir = path
    elif path.is_file():
        data = read_yaml(path).data
        if isinstance(data.get("base"), dict):
            study_dir = path.parent
        else:
            study_dir = Path(results_dir) / load_study_file(path).name
    else:
        raise ReportError(f"{path} is neither a study file nor a study's results folder")
    resolved = StudyLayout(study_dir).study_file
    if not resolved.is_file():
        raise ReportError(f"{study_dir} holds no {resolved.name}: has the study been run?")
    settings = read_resolved(resolved)["study"]
    url = resolve_storage(storage, settings.get("storage"))
    check_storage_url(url)
    journal = journal_path(url, study_dir)
    if journal is not None and not journal.is_file():
        raise ReportError(_no_journal(journal, study_dir, settings["name"]))
    return url, study_dir, settings["name"]


def _no_journal(journal: Path, study_dir: Path, name: str) -> str:
    """How to build the missing storage: a fresh clone has the quickstart's files but not its
    journal, which ``sweeps run`` would take for a finished study and train nothing."""
    study_file = Path("studies") / f"{name}.yaml"
    command = f"sweeps run {study_file if study_file.is_file() else 'STUDY_FILE'}"
    if study_dir.absolute().parent != Path("results").absolute():
        command += f" --results {study_dir.parent}"
    message = f"no study storage in {study_dir}/ (no {journal.name}): run `{command}` to build it"
    report = StudyLayout(study_dir).report_dir
    if (report / "report.md").is_file():
        message += f"; the report it last wrote is in {report}/"
    return message


def results_of(study: optuna.Study, study_dir: Path) -> StudyResults:
    """The results of an open study whose files are in ``study_dir``."""
    layout = StudyLayout(study_dir)
    resolved = read_resolved(layout.study_file)
    record = StudyRecord.from_study(study)
    space = record.space or _saved_space(layout.study_file, resolved["space"])
    try:
        settings = StudySettings.model_validate(resolved["study"])
    except ValueError as exc:  # pydantic's ValidationError
        raise ReportError(
            f"{layout.study_file}: the saved study section is damaged"
            f" ({str(exc).splitlines()[0]}); run the study again to rewrite it"
        ) from None
    return StudyResults(
        study=study,
        layout=layout,
        space=space,
        settings=settings,
        record=record,
        trials=records(study.get_trials(deepcopy=False), record.learning),
    )


def _saved_space(study_file: Path, described: Any) -> SearchSpace:
    try:
        return SearchSpace.from_description(described)
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise ReportError(
            f"{study_file}: the saved search space is damaged ({type(exc).__name__}:"
            f" {str(exc).splitlines()[0]}); run the study again to rewrite it"
        ) from None


def stored_best(storage: optuna.storages.BaseStorage, name: str) -> TrialRecord | None:
    """The best complete trial of study ``name`` in an open storage, by the study's direction
    (the learning metric's in a multi-objective study)."""
    import optuna

    study = optuna.load_study(study_name=name, storage=storage)
    record = StudyRecord.from_study(study)
    return best_trial(records(study.get_trials(deepcopy=False), record.learning), record.direction)


def read_resolved(path: Path) -> dict[str, Any]:
    """The resolved study file ``sweeps run`` saved (``study.yaml``), checked for what a report
    reads: a ``study:`` mapping with a name, and a ``space:`` mapping.

    Raises:
        ReportError: it is not valid YAML, or lacks those; the message names the file and line.
    """
    try:
        doc = read_yaml(path)
    except SpecError as exc:
        raise ReportError(f"the saved study file is damaged: {exc}") from None
    problems = []
    study, space = doc.data.get("study"), doc.data.get("space")
    if not isinstance(study, dict):
        problems.append(("study", "expected a mapping"))
    elif not isinstance(study.get("name"), str):
        problems.append(("study.name", "expected the study's name"))
    if not isinstance(space, dict):
        problems.append(("space", "expected a mapping"))
    if problems:
        lines = [
            f"  {key}{_line(doc.line_of(tuple(key.split('.'))))}: {message}"
            for key, message in problems
        ]
        raise ReportError(
            "\n".join([f"the saved study file is damaged: {path}", *lines])
            + "\n(run the study again to rewrite it)"
        )
    return doc.data


def _line(line: int | None) -> str:
    return "" if line is None else f" (line {line})"
