"""The churn study's search space, its untuned defaults, and the study itself and its trials."""

from __future__ import annotations

from typing import Any

import optuna
import pandas as pd

from tailor.configs.schema import ChurnSettings
from tailor.models.churn_pipeline import GRADIENT_BOOSTING, LOGISTIC


def suggest_params(trial: optuna.Trial, settings: ChurnSettings) -> dict[str, Any]:
    """Conditional space: the family first, then only that family's parameters."""
    family = trial.suggest_categorical("family", list(settings.families))
    params: dict[str, Any] = {"family": family}
    if family == LOGISTIC:
        params["logistic_c"] = trial.suggest_float("logistic_c", 1e-3, 1e2, log=True)
    else:
        params["hgb_learning_rate"] = trial.suggest_float("hgb_learning_rate", 0.02, 0.3,
                                                          log=True)
        params["hgb_max_iter"] = trial.suggest_int("hgb_max_iter", 50, 400, step=25)
        params["hgb_max_leaf_nodes"] = trial.suggest_int("hgb_max_leaf_nodes", 4, 48, log=True)
        params["hgb_min_samples_leaf"] = trial.suggest_int("hgb_min_samples_leaf", 10, 300,
                                                           log=True)
        params["hgb_l2_regularization"] = trial.suggest_float("hgb_l2_regularization", 1e-4,
                                                              10.0, log=True)
        params["hgb_max_features"] = trial.suggest_float("hgb_max_features", 0.4, 1.0)
    params["calibration"] = trial.suggest_categorical("calibration",
                                                      list(settings.calibration_methods))
    return params


def default_params(family: str = LOGISTIC) -> dict[str, Any]:
    """A sensible untuned parameter set per family (for tests and quick runs)."""
    if family == LOGISTIC:
        return {"family": LOGISTIC, "logistic_c": 1.0, "calibration": "sigmoid"}
    if family == GRADIENT_BOOSTING:
        return {"family": GRADIENT_BOOSTING, "hgb_learning_rate": 0.05, "hgb_max_iter": 200,
                "hgb_max_leaf_nodes": 15, "hgb_min_samples_leaf": 50,
                "hgb_l2_regularization": 1.0, "hgb_max_features": 1.0,
                "calibration": "isotonic"}
    raise ValueError(f"unknown churn model family {family!r}")


def new_study(settings: ChurnSettings, **kwargs: Any) -> optuna.Study:
    """A minimising study with a seeded TPE sampler (pass storage/study_name to persist)."""
    kwargs.setdefault("sampler", optuna.samplers.TPESampler(seed=settings.seed))
    return optuna.create_study(direction="minimize", **kwargs)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Completed trials: number, log loss, params and validation metrics (one row each)."""
    rows = [{"trial": t.number, "log_loss": t.value, **t.params, **t.user_attrs}
            for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return pd.DataFrame(rows)


__all__ = [
    "default_params",
    "new_study",
    "suggest_params",
    "trials_frame",
]
