"""The tuning plots logged with every model run say what was tuned and which way is better,
and no parameter name is cut off."""

from __future__ import annotations

import optuna
import pytest

from tailor.adapters.tracking import study_figures

LONG = "learning_rate_of_the_lightfm_hybrid"


def _study(direction: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.RandomSampler(0))
    study.optimize(lambda t: (t.suggest_float(LONG, 0, 1) - 0.3) ** 2 + 0.01 * t.suggest_int(
        "k", 2, 9), n_trials=12)
    return study


@pytest.mark.parametrize(("direction", "better"), [("minimize", "lower is better"),
                                                   ("maximize", "higher is better")])
def test_history_names_the_objective_and_its_direction(direction: str, better: str) -> None:
    figures = study_figures(_study(direction), "validation log loss")
    history = figures["history"].axes[0]
    assert "validation log loss" in history.get_title() and better in history.get_title()
    assert history.get_ylabel() == "validation log loss"
    assert history.get_title(loc="left") == history.get_title(loc="right") == ""
    assert all(float(tick).is_integer() for tick in history.get_xticks())


def test_importance_labels_fit_inside_the_figure() -> None:
    figure = study_figures(_study("minimize"), "validation log loss")["param_importances"]
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    box = figure.bbox
    ax = figure.axes[0]
    labels = [label for label in ax.get_yticklabels() if label.get_text()]
    assert any(LONG in label.get_text() for label in labels)
    for label in labels:
        extent = label.get_window_extent(renderer)
        assert extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1, label.get_text()
    assert "validation log loss" in ax.get_title()
    assert ax.get_title(loc="left") == ax.get_title(loc="right") == ""  # one title, no overlap


def test_no_figures_before_a_trial_completes() -> None:
    assert study_figures(optuna.create_study(), "objective") == {}
