"""Train customer segmentation: tune k with Optuna, fit, profile, name, log and register."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import optuna
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.schema import Settings
from models.segmentation import (
    evaluate_segmentation,
    fit_segmentation,
    segment_profile,
    trials_frame,
    tune,
)
from models.segmentation_plots import plot_metrics_vs_k, plot_segments_pca
from tasks.tracking import remaining_trials
from tasks.training import TrackedTraining, TrainedModel, track_training


def fit_segmentation_run(
    settings: Settings,
    features: pd.DataFrame,
    study: optuna.Study,
    callbacks: Sequence[Callable[..., None]] = (),
    truth: pd.Series | None = None,
) -> TrainedModel:
    """Tune, fit, evaluate and describe, without tracking: what one training run produces."""
    cfg = settings.segmentation
    params = tune(study, features, cfg, n_trials=remaining_trials(study, cfg.n_trials),
                  callbacks=callbacks)
    model = fit_segmentation(features, params, cfg)
    metrics = evaluate_segmentation(model, features, cfg, truth=truth)
    columns = list(model.feature_columns)
    return TrainedModel(
        predictor=model,
        params={**params, "features": ",".join(columns), "n_trials": cfg.n_trials,
                "objective": cfg.objective, "customers": len(features)},
        metrics=metrics,
        input_example=features[columns].head(5).reset_index(drop=True),
        figures={"segments_pca": plot_segments_pca(model, features),
                 "metrics_vs_k": plot_metrics_vs_k(study)},
        tables={"segment_profile": segment_profile(model, features, cfg),
                "trials": trials_frame(study)},
        datasets={"customer_features": features},
    )


def train_segmentation(
    settings: Settings,
    features: pd.DataFrame,
    run_name: str,
    fingerprint: str,
    parent_run_id: str | None = None,
    truth: pd.Series | None = None,
) -> TrackedTraining:
    """One tracked training: Optuna over k and transforms, then the best fit with its profile.

    ``truth`` (latent segments of generated data) adds ``ari_truth`` to the logged metrics.
    """
    return track_training(
        settings, "segmentation", run_name, fingerprint, settings.segmentation.seed,
        lambda study, callbacks: fit_segmentation_run(settings, features, study, callbacks,
                                                      truth),
        parent_run_id=parent_run_id)


train_segmentation_task = task(name="train-segmentation", cache_policy=NO_CACHE)(
    train_segmentation)
