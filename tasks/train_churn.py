"""Train the churn / purchase-probability model: stacked cutoffs, Optuna, calibration, log.

Windows, for a scoring date ``as_of`` and horizon H: the holdout is customers active before
``as_of - H`` labelled on ``[as_of - H, as_of)``; tuning, calibration and the threshold use only
label windows that end by ``as_of - H``. The registered version is the refit evaluated on that
holdout, so its metrics are an honest out-of-time measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import optuna
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.schema import Settings
from models.churn import (
    evaluate,
    permutation_importance_table,
    trials_frame,
    tune,
    validate_and_refit,
)
from models.churn_data import cutoff_frame, prepare_churn_data
from models.churn_plots import importance_figure, reliability_figure, reliability_table
from tailor.data.dataset import Dataset
from tasks.tracking import remaining_trials
from tasks.training import TrackedTraining, TrainedModel, track_training


def fit_churn_run(
    settings: Settings,
    clean: Dataset,
    as_of: pd.Timestamp,
    study: optuna.Study,
    callbacks: Sequence[Callable[..., None]] = (),
) -> TrainedModel:
    """Tune, calibrate, refit, evaluate with the recency baseline, without tracking."""
    cfg, feats = settings.churn, settings.features
    horizon = feats.horizon_days
    test_cutoff = pd.Timestamp(as_of) - pd.Timedelta(days=horizon)
    tx, customers, products = clean.transactions, clean.customers, clean.products
    data = prepare_churn_data(tx, test_cutoff, feats, cfg, customers, products)
    test = cutoff_frame(tx, test_cutoff, horizon, feats, cfg, customers, products)
    params = tune(study, data, cfg, n_trials=remaining_trials(study, cfg.n_trials),
                  callbacks=callbacks)
    fit = validate_and_refit(params, data, cfg)
    model = fit.final
    metrics = evaluate(model, test, cfg)
    metrics |= {f"validation_{k}": v for k, v in fit.validation_metrics.items()}
    y = test.labels.to_numpy()
    probabilities = {"model": model.predict_proba(test.features),
                     "recency alone": model.baseline_proba(test.features)}
    importance = permutation_importance_table(model, test, cfg)
    plan = data.plan
    return TrainedModel(
        predictor=model,
        params={**params, "test_cutoff": test_cutoff.date().isoformat(),
                "validation_cutoff": plan.validation.date().isoformat(),
                "train_cutoffs": ",".join(c.date().isoformat() for c in plan.train),
                "refit_cutoffs": ",".join(c.date().isoformat() for c in plan.refit),
                "horizon_days": horizon, "cost_ratio": cfg.cost_ratio,
                "n_trials": cfg.n_trials},
        metrics=metrics,
        input_example=test.features[list(model.columns)].head(5).reset_index(drop=True),
        figures={"reliability": reliability_figure(y, probabilities, cfg.reliability_bins),
                 "feature_importance": importance_figure(importance)},
        tables={"feature_importance": importance,
                "reliability": reliability_table(y, probabilities["model"],
                                                 cfg.reliability_bins),
                "trials": trials_frame(study)},
        datasets={"training": data.refit.features.reset_index(),
                  "holdout": test.features.reset_index()},
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
    return track_training(
        settings, "churn", run_name, fingerprint, settings.churn.seed,
        lambda study, callbacks: fit_churn_run(settings, clean, as_of, study, callbacks),
        study_direction="minimize", parent_run_id=parent_run_id)


train_churn_task = task(name="train-churn", cache_policy=NO_CACHE)(train_churn)
