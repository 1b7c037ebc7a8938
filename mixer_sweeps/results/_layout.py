"""Where a study keeps its files: the one place that knows the folder's layout.

::

    <results>/<name>/
        study.yaml          the resolved study file (what ``sweeps report`` reads)
        study.journal       the default storage (Optuna's journal file)
        claim.lock          taken while a worker claims its next trial (workers of this folder)
        trials/<n>/         trial n's run: spec.yaml, history.csv, metrics.json, ...
        trials/<n>/seed-<s>/  one run per seed when the study has replicates
        report/             ``sweeps report``'s output
        wandb/              offline W&B runs

Whether a trial's worker is alive is not kept here but in the storage, which every worker of the
study shares wherever its folder is (``_liveness``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TRIALS_DIR = "trials"


@dataclass(frozen=True)
class StudyLayout:
    """The files of the study whose folder is ``root`` (``<results>/<name>``)."""

    root: Path

    @classmethod
    def of(cls, results_dir: str | Path, name: str) -> StudyLayout:
        return cls(Path(results_dir) / name)

    @property
    def study_file(self) -> Path:
        return self.root / "study.yaml"

    @property
    def journal(self) -> Path:
        return self.root / "study.journal"

    @property
    def claim_lock(self) -> Path:
        return self.root / "claim.lock"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def wandb_dir(self) -> Path:
        return self.root / "wandb"

    def run_dir(self, number: int, seed: int | None = None) -> str:
        """Trial ``number``'s run folder (of ``seed`` with replicates), relative to the root."""
        trial = f"{TRIALS_DIR}/{number}"
        return trial if seed is None else f"{trial}/seed-{seed}"

    def trial_dir(self, number: int, seed: int | None = None) -> Path:
        return self.root / self.run_dir(number, seed)

    def trial_path(self, number: int, run_dir: str | None) -> Path:
        """Where trial ``number`` ran: the folder it recorded (a duplicate's is its twin's), else
        its own."""
        return self.root / (run_dir or self.run_dir(number))
