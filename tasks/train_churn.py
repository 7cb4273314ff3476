"""Train the churn / purchase-probability model: tune, judge the twin, fit the served model.

Windows (:mod:`windows`, :mod:`churn_data`), for a scoring date ``as_of`` and
horizon H: Optuna tunes inside the history before the holdout start S (out of time when it
allows, customer-grouped folds otherwise); the twin (labelled cutoffs up to S - H) is judged
on the customers active before S with labels from ``[S, as_of)`` beside the recency baseline
(``holdout_*`` metrics); the served version, registered here, is trained on cutoffs up to
``as_of - H`` and applied to features at the scoring date.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import optuna
import pandas as pd

from tailor.adapters.tracking import remaining_trials
from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.models import btyd
from tailor.models.churn import (
    evaluate,
    fit_churn_model,
    fit_twin_and_served,
    permutation_importance_table,
    probability_metrics,
    trials_frame,
    tune,
    with_btyd,
)
from tailor.models.churn_data import ChurnData, plan_windows_for_churn, prepare_churn_data
from tailor.models.churn_plots import importance_figure, reliability_figure, reliability_table
from tailor.models.windows import HOLDOUT_PREFIX, VALIDATION_PREFIX, Windows, prefixed
from tailor.tasks.training import TrackedTraining, TrainedModel, track_training, training_task


def churn_data(settings: Settings, clean: Dataset, windows: Windows) -> ChurnData:
    return prepare_churn_data(clean.transactions, windows, settings.features, settings.churn,
                              clean.customers, clean.products)


def refit_twin(settings: Settings, data: ChurnData, params: dict, threshold: float,
               model_weight: float = 1.0):
    """A configuration fit on the twin's cutoffs (what the gate compares)."""
    model = fit_churn_model(params, data.twin, settings.churn, threshold=threshold,
                            as_of=data.windows.holdout_start)
    return with_btyd(model, data.holdout.features, model_weight, data.windows.horizon_days)


def btyd_baselines(data: ChurnData, bgnbd: btyd.BgNbd | None = None) -> dict[str, float]:
    """BG/NBD and Pareto/NBD fitted on the histories before the holdout, scored on it
    (``bgnbd``: the twin's BG/NBD, already fitted on those histories, when it blends one)."""
    holdout = data.holdout
    summary = btyd.summary(holdout.features)
    y = holdout.labels.to_numpy()
    metrics: dict[str, float] = {}
    for name, p in btyd.baseline_probabilities(summary, summary, data.windows.holdout_days,
                                               bgnbd).items():
        metrics |= prefixed(probability_metrics(y, p), f"baseline_{name}_")
    return metrics


def fit_churn_run(
    settings: Settings,
    data: ChurnData,
    study: optuna.Study,
    callbacks: Sequence[Callable[..., None]] = (),
) -> TrainedModel:
    """Tune, calibrate, judge the twin with the recency baseline, fit the served model."""
    cfg = settings.churn
    params = tune(study, data, cfg, n_trials=remaining_trials(study, cfg.n_trials),
                  callbacks=callbacks)
    fit = fit_twin_and_served(params, data, cfg)
    holdout = data.holdout
    metrics = prefixed(evaluate(fit.twin, holdout, cfg) | btyd_baselines(data, fit.twin.btyd),
                       HOLDOUT_PREFIX)
    metrics |= prefixed(fit.validation_metrics, VALIDATION_PREFIX)
    metrics |= {"served_rows": float(len(data.served.labels)),
                "served_churn_rate": float(data.served.labels.mean())}
    y = holdout.labels.to_numpy()
    probabilities = {"model": fit.twin.predict_proba(holdout.features),
                     "recency alone": fit.twin.baseline_proba(holdout.features)}
    if fit.twin.btyd is not None:
        probabilities["BG/NBD"] = fit.twin.btyd.p_no_purchase(btyd.summary(holdout.features),
                                                              data.windows.holdout_days)
    importance = permutation_importance_table(fit.twin, holdout, cfg)
    return TrainedModel(
        predictor=fit.served,
        twin=fit.twin,
        windows=data.windows,
        params={**params, "tuning": data.tuning.method,
                "tuning_train_cutoffs": data.plans["tuning"].describe() or "none",
                "twin_cutoffs": data.plans["twin"].describe(),
                "served_cutoffs": data.plans["served"].describe(),
                "threshold": fit.served.threshold, "model_weight": fit.served.model_weight,
                "cost_ratio": cfg.cost_ratio,
                "n_trials": cfg.n_trials},
        metrics=metrics,
        input_example=holdout.features[list(fit.served.columns)].head(5).reset_index(drop=True),
        figures={"holdout_reliability": reliability_figure(y, probabilities,
                                                           cfg.reliability_bins),
                 "holdout_feature_importance": importance_figure(importance)},
        tables={"holdout_feature_importance": importance,
                "holdout_reliability": reliability_table(y, probabilities["model"],
                                                         cfg.reliability_bins),
                "trials": trials_frame(study)},
        datasets={"training": data.served.features.reset_index(),
                  "holdout": holdout.features.reset_index()},
    )


def train_churn(
    settings: Settings,
    clean: Dataset,
    as_of: pd.Timestamp,
    run_name: str,
    fingerprint: str,
    parent_run_id: str | None = None,
) -> TrackedTraining:
    """One tracked training of the churn model with the recency baseline on the same holdout."""
    windows = plan_windows_for_churn(clean.transactions, as_of, settings.features,
                                     settings.churn)
    data = churn_data(settings, clean, windows)  # data problems surface before the run opens
    return track_training(
        settings, "churn", run_name, fingerprint, settings.churn.seed,
        lambda study, callbacks: fit_churn_run(settings, data, study, callbacks),
        study_direction="minimize", parent_run_id=parent_run_id)


train_churn_task = training_task("churn", train_churn)
