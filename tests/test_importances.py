"""Parameter importances with their spread: bootstrap fANOVA on real in-memory Optuna studies."""

from __future__ import annotations

import matplotlib
import numpy as np
import optuna
import pytest

from mixer_sweeps.report import study_importances
from mixer_sweeps.report._importances import HIGH, LOW, MEAN, draw_importances

matplotlib.use("Agg")


def known_study(n_trials: int) -> optuna.Study:
    """val_acc driven by ``x`` alone: ``y`` only adds a little."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(
        lambda t: t.suggest_float("x", 0, 1) + 0.02 * t.suggest_float("y", 0, 1),
        n_trials=n_trials,
    )
    return study


def test_enough_trials_rank_the_parameter_that_matters_first_with_intervals_apart() -> None:
    found, note = study_importances(known_study(30), "val_acc", resamples=20)
    assert found is not None and found.trials == 30 and found.resamples == 20
    frame = found.frame
    assert list(frame.index) == ["x", "y"]
    assert (frame[LOW] <= frame[MEAN]).all() and (frame[MEAN] <= frame[HIGH]).all()
    assert frame.loc["x", LOW] > frame.loc["y", HIGH]  # settled: the intervals do not overlap
    assert frame[MEAN].sum() == pytest.approx(1.0)
    assert found.warning is None and "Warning" not in note
    assert "fANOVA" in note and "20 bootstrap resamples of the 30 complete trials" in note
    assert found.title == "Parameter importances (fANOVA, 30 complete trials)"
    # The same study, the same numbers: the resamples and evaluator seeds are fixed.
    again, _ = study_importances(known_study(30), "val_acc", resamples=20)
    assert again is not None and again.frame.equals(frame)


def test_too_few_trials_to_rank_warn_and_their_intervals_are_wide() -> None:
    found, note = study_importances(known_study(8), "val_acc", resamples=20)
    assert found is not None
    assert found.warning is not None and "8 complete trials are too few to rank 2" in found.warning
    assert f"Warning: {found.warning}" in note
    assert (found.frame[HIGH] - found.frame[LOW]).max() > 0.05


def test_one_parameter_alone_has_nothing_to_rank() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    found, note = study_importances(study, "val_acc", resamples=5)
    assert found is not None and found.warning is None and "Warning" not in note


def test_no_importances_below_three_complete_trials() -> None:
    found, why = study_importances(known_study(2), "val_acc")
    assert found is None and "needs at least 3 complete trials; the study has 2" in why


def test_the_plot_shows_the_means_their_intervals_and_names_method_and_trials() -> None:
    found, _ = study_importances(known_study(8), "val_acc", resamples=10)
    assert found is not None
    import matplotlib.pyplot as plt

    ax = draw_importances(found, plt)
    try:
        bars = {
            t.get_text(): p.get_width()
            for t, p in zip(ax.get_yticklabels(), ax.patches, strict=True)
        }
        assert bars == pytest.approx(found.frame[MEAN].to_dict())
        assert list(bars) == list(found.frame.index[::-1])  # largest on top
        (segments,) = [c for c in ax.collections if len(c.get_segments()) == len(bars)]
        ends = sorted((s[0][0], s[1][0]) for s in segments.get_segments())
        expected = sorted(zip(found.frame[LOW], found.frame[HIGH], strict=True))
        assert np.allclose(ends, expected)
        title = ax.get_title()
        assert "fANOVA" in title and "8 complete trials" in title and "too few to rank" in title
        assert "10 bootstrap resamples" in title
    finally:
        plt.close("all")
