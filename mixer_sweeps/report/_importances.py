"""Parameter importances with their spread, computed once per report: its table, its plot and
W&B share them.

One fANOVA estimate on a dozen trials is noise: another evaluator seed, or one trial more or
less, reorders the parameters. So the importances are computed on bootstrap resamples of the
complete trials (drawn with replacement, as many as there are), each with its own evaluator seed,
and shown as the mean over the resamples and the interval that holds the middle 90% of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from optuna.trial import TrialState

from mixer_sweeps.results import StudyResults, is_surplus
from mixer_sweeps.study import optuna_quiet

if TYPE_CHECKING:
    import optuna
    from matplotlib.axes import Axes

MIN_IMPORTANCE_TRIALS = 3
RESAMPLES = 30
"""Bootstrap resamples: enough for a 5-95% interval."""
TREES = 32
"""Trees of each resample's forest (Optuna's default is 64): the mean over 30 resamples averages
the forests' own noise; on 11 trials of 4 parameters, 30 forests of 32 trees took 2.0 s on two
CPU cores under a load of 6, 64 trees 3.9 s (the report is written at the end of every run)."""
TRIALS_PER_PARAM = 10
"""Fewer complete trials than this per searched parameter are too few to rank the parameters:
the rule of thumb of ten observations per predictor for a regression model (fANOVA fits a
random forest that predicts the objective from the parameters)."""
MEAN, LOW, HIGH = "importance", "5%", "95%"


@dataclass(frozen=True)
class Importances:
    frame: pd.DataFrame
    """Per parameter (the index, largest first): the mean importance over the resamples (``MEAN``)
    and the 5th and 95th percentiles (``LOW``, ``HIGH``)."""
    trials: int
    """Complete trials resampled."""
    resamples: int
    """Resamples whose importances could be computed."""
    params: int
    metric: str

    @property
    def method(self) -> str:
        return (
            f"fANOVA (Optuna's FanovaImportanceEvaluator, {TREES} trees) on {self.resamples}"
            f" bootstrap resamples of the {self.trials} complete trials, a new evaluator seed each"
        )

    @property
    def title(self) -> str:
        return f"Parameter importances (fANOVA, {self.trials} complete trials)"

    @property
    def warning(self) -> str | None:
        """Why the parameters cannot be ranked yet, or None (also for one parameter alone)."""
        if self.params < 2 or self.trials >= TRIALS_PER_PARAM * self.params:
            return None
        return (
            f"{self.trials} complete trials are too few to rank {self.params} parameters by"
            f" importance (fewer than {TRIALS_PER_PARAM} per parameter): read the intervals,"
            " not the order"
        )

    @property
    def note(self) -> str:
        note = (
            f"{self.method}. {MEAN}: the mean over the resamples, each normalised to sum to 1;"
            f" {LOW}-{HIGH}: the interval that holds the middle 90% of them."
        )
        return note + (f" Warning: {self.warning}." if self.warning else "")

    @property
    def mean(self) -> pd.Series:
        return self.frame[MEAN]

    def to_dict(self) -> dict[str, float]:
        """The mean importances by parameter (what W&B logs)."""
        return {str(k): float(v) for k, v in self.mean.items()}


def param_importances(
    results: StudyResults, resamples: int = RESAMPLES
) -> tuple[Importances | None, str]:
    """Bootstrap fANOVA importances of a study's parameters, or None and why there are none;
    the str is the method (or that reason)."""
    return study_importances(results.study, results.metric, resamples, results.record.learning)


def study_importances(
    study: optuna.Study, metric: str, resamples: int = RESAMPLES, learning: int = 0
) -> tuple[Importances | None, str]:
    """:func:`param_importances` of any Optuna study whose objective is ``metric``; in a
    multi-objective study, for the learning metric, objective ``learning``."""
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not is_surplus(t)
    ]
    if len(study.directions) > 1:
        complete = _one_objective(complete, learning)
    metric = metric.replace("_", " ")
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return None, (
            f"needs at least {MIN_IMPORTANCE_TRIALS} complete trials; the study has {len(complete)}"
        )
    if len({t.value for t in complete}) == 1:
        return None, f"every complete trial has the same {metric}"
    try:
        estimates = _bootstrap(study.directions[learning], complete, resamples)
    except (ValueError, RuntimeError) as exc:
        return None, f"could not be computed: {exc}"
    if estimates.empty:
        return None, "could not be computed: every resample had a single value"
    frame = pd.DataFrame(
        {
            MEAN: estimates.mean(),
            LOW: estimates.quantile(0.05),
            HIGH: estimates.quantile(0.95),
        }
    ).sort_values(MEAN, ascending=False)
    frame.index.name = "parameter"
    found = Importances(frame, len(complete), len(estimates), len(frame), metric)
    return found, found.note


def _one_objective(trials: list[Any], learning: int) -> list[Any]:
    """The trials with their learning metric's value alone: fANOVA ranks one objective."""
    from optuna.trial import create_trial

    return [
        create_trial(
            params=t.params,
            distributions=t.distributions,
            value=t.values[learning],
            user_attrs=t.user_attrs,
        )
        for t in trials
        if t.values is not None and len(t.values) > learning
    ]


def _bootstrap(direction: Any, complete: list[Any], resamples: int) -> pd.DataFrame:
    """One row of normalised importances per resample; resamples of a single value are skipped."""
    import optuna

    rng = np.random.default_rng(0)
    rows = []
    with optuna_quiet():
        for seed in range(resamples):
            drawn = [complete[i] for i in rng.integers(0, len(complete), len(complete))]
            if len({t.value for t in drawn}) == 1:
                continue
            sample = optuna.create_study(direction=direction)
            sample.add_trials(drawn)
            evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=TREES, seed=seed)
            rows.append(optuna.importance.get_param_importances(sample, evaluator=evaluator))
    return pd.DataFrame(rows, dtype=float)


def draw_importances(importances: Importances, plt: Any) -> Axes:
    """Bars of the mean importances (largest on top) with their 5-95% intervals as error bars;
    the title names the method and the number of trials."""
    frame = importances.frame.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(frame) + 1.8), constrained_layout=True)
    means = frame[MEAN].to_numpy()
    spread = np.vstack([means - frame[LOW].to_numpy(), frame[HIGH].to_numpy() - means])
    ax.barh(frame.index.astype(str), means, color="tab:blue", alpha=0.8)
    ax.errorbar(means, np.arange(len(frame)), xerr=spread, fmt="none", ecolor="black", capsize=3)
    title = importances.title + (": too few to rank" if importances.warning else "")
    ax.set_title(
        f"{title}\nmean and 5–95% over {importances.resamples} bootstrap resamples", fontsize=10
    )
    ax.set(xlabel=f"importance for {importances.metric}", ylabel="")
    ax.set_xlim(0, max(1.0, float(frame[HIGH].max())) * 1.02)
    ax.grid(alpha=0.3, axis="x")
    return ax
