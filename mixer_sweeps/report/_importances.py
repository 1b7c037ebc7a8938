"""Parameter importances, computed once per report: its table, its plot and W&B share them."""

from __future__ import annotations

import pandas as pd
from optuna.trial import TrialState

from mixer_sweeps.results import StudyResults
from mixer_sweeps.study import optuna_quiet

MIN_IMPORTANCE_TRIALS = 3


def param_importances(results: StudyResults) -> tuple[pd.Series | None, str]:
    """fANOVA importances (Optuna's evaluator, seeded), or None and why there are none."""
    import optuna

    values = [t.value for t in results.trials if t.state == TrialState.COMPLETE]
    if len(values) < MIN_IMPORTANCE_TRIALS:
        return None, (
            f"needs at least {MIN_IMPORTANCE_TRIALS} complete trials; the study has {len(values)}"
        )
    if len(set(values)) == 1:
        return None, "every complete trial has the same val acc"
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        with optuna_quiet():
            importances = optuna.importance.get_param_importances(
                results.study, evaluator=evaluator
            )
    except (ValueError, RuntimeError) as exc:
        return None, f"could not be computed: {exc}"
    series = pd.Series(importances, name="importance", dtype=float)
    series.index.name = "parameter"
    return series, "fANOVA (Optuna's FanovaImportanceEvaluator, seed 0) on the complete trials."
