"""Train the recommender: tune LightFM + blend on a validation window, score the holdout, log.

Time windows, for a scoring date ``as_of`` and horizon H: the model is fit on history before
``as_of - H`` (Optuna validates on the ``validation_days`` before that), and evaluated with its
baselines on ``[as_of - H, as_of)``. The registered version is that evaluated model, so its
logged metrics are an honest out-of-time measurement and the champion/challenger gate can
score any two versions on a window neither has seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import optuna
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.schema import Settings
from models.recommender import evaluate, fit_recommender, tune
from models.recommender_plots import plot_precision_curve, plot_tuning_history, precision_curve
from tailor.data.dataset import Dataset
from tasks.tracking import remaining_trials
from tasks.training import TrackedTraining, TrainedModel, track_training


def _input_example(model_ids: pd.Index, customers: pd.DataFrame | None) -> pd.DataFrame:
    """Three known customers by id, and two attribute rows for customers never seen (cold)."""
    if customers is None or customers.empty:
        return pd.DataFrame({"customer_id": [str(i) for i in model_ids[:5]]})
    frame = customers.drop(columns=[c for c in customers.columns if c.startswith("_")])
    frame = frame.astype({"customer_id": str})
    known = frame[frame["customer_id"].isin(model_ids)].head(3)
    cold = frame[~frame["customer_id"].isin(model_ids)].head(2)
    if cold.empty:  # every customer is known: show the cold path with an invented id
        cold = known.head(2).assign(customer_id=["new-customer-1", "new-customer-2"][:len(known)])
    example = pd.concat([known, cold], ignore_index=True)
    for column in example.columns:  # plain types for the signature (no arrow/categorical)
        if column != "customer_id" and not pd.api.types.is_numeric_dtype(example[column]):
            example[column] = example[column].astype(object).where(example[column].notna(),
                                                                   None).astype(str)
    return example


def fit_recommender_run(
    settings: Settings,
    clean: Dataset,
    as_of: pd.Timestamp,
    study: optuna.Study,
    callbacks: Sequence[Callable[..., None]] = (),
    segments: pd.Series | None = None,
) -> TrainedModel:
    """Tune, fit, evaluate with baselines, without tracking: what one training run produces."""
    cfg, feats = settings.recommender, settings.features
    horizon = feats.horizon_days
    cutoff = pd.Timestamp(as_of) - pd.Timedelta(days=horizon)
    tx, customers, products = clean.transactions, clean.customers, clean.products
    params = tune(study, tx, cutoff, feats, cfg, customers, products, segments,
                  n_trials=remaining_trials(study, cfg.n_trials), callbacks=callbacks)
    model = fit_recommender(tx, cutoff, feats, cfg, params, customers, products, segments)
    metrics = evaluate(model, tx, horizon, customers)
    curve = precision_curve(model, tx, horizon, [1, 3, 5, 10, 20])
    stamp = tx["timestamp"]
    return TrainedModel(
        predictor=model,
        params={**params, "cutoff": cutoff.date().isoformat(), "horizon_days": horizon,
                "k": cfg.k, "exclude_purchased": cfg.exclude_purchased,
                "interaction_weight": feats.interaction_weight, "n_trials": cfg.n_trials},
        metrics=metrics,
        input_example=_input_example(pd.Index(model.user_ids), customers),
        figures={"precision_at_k": plot_precision_curve(curve),
                 "tuning_history": plot_tuning_history(study)},
        tables={"precision_at_k": curve},
        datasets={"training_transactions": tx[stamp < cutoff],
                  "holdout_transactions": tx[(stamp >= cutoff) & (stamp < as_of)]},
    )


def train_recommender(
    settings: Settings,
    clean: Dataset,
    as_of: pd.Timestamp,
    run_name: str,
    fingerprint: str,
    parent_run_id: str | None = None,
    segments: pd.Series | None = None,
) -> TrackedTraining:
    """One tracked training of the hybrid recommender with popularity and repeat baselines."""
    return track_training(
        settings, "recommender", run_name, fingerprint, settings.recommender.seed,
        lambda study, callbacks: fit_recommender_run(settings, clean, as_of, study, callbacks,
                                                     segments),
        parent_run_id=parent_run_id)


train_recommender_task = task(name="train-recommender", cache_policy=NO_CACHE)(train_recommender)
