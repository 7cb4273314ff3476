"""Customer segmentation as a model kind: tune k on the twin's features, judge the twin later,
fit the served model.

Windows (:mod:`tailor.models.windows`), for a scoring date ``as_of``: Optuna chooses k and the
transforms on the customer features at the holdout start S; the twin (those parameters fit on
the features at S) is judged on the features at ``as_of`` (``holdout_*``: do its segments still
fit 90 days later); the served version is the same configuration fit on the features at
``as_of``, profiled and named for marketers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
import pandas as pd

from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.kinds.spec import ModelSpec, TrainedModel, remaining_trials
from tailor.models import holdout, scoring
from tailor.models.features import customer_features, history
from tailor.models.segmentation import (
    SegmentationModel,
    evaluate_segmentation,
    fit_segmentation,
    objective_value,
    plan,
    segment_profile,
    trials_frame,
    tune,
)
from tailor.models.segmentation_plots import plot_metrics_vs_k, plot_segments_pca
from tailor.models.windows import HOLDOUT_PREFIX, Windows, prefixed

OBJECTIVE = "objective"


def features_at(settings: Settings, clean: Dataset, date: pd.Timestamp) -> pd.DataFrame:
    return customer_features(clean.transactions, date, settings.features, clean.customers,
                             clean.products)


def refit_twin(settings: Settings, clean: Dataset, windows: Windows, predictor: Any):
    """A configuration fit on the features at the holdout start (what the gate compares)."""
    return fit_segmentation(features_at(settings, clean, windows.holdout_start),
                            dict(predictor.params),
                            settings.segmentation, as_of=windows.holdout_start)


def holdout_metrics(model, features: pd.DataFrame, settings: Settings) -> dict[str, float]:
    """A twin's metrics on the features at as_of, and its objective (the gate's score)."""
    metrics = evaluate_segmentation(model, features, settings.segmentation)
    return metrics | {OBJECTIVE: objective_value(metrics, settings.segmentation)}


def fit_segmentation_run(
    settings: Settings,
    clean: Dataset,
    windows: Windows,
    study: optuna.Study,
    callbacks: Sequence[Callable[..., None]] = (),
    truth: pd.Series | None = None,
) -> TrainedModel:
    """Tune, judge the twin, fit, evaluate and describe the served model, without tracking."""
    cfg = settings.segmentation
    before = features_at(settings, clean, windows.holdout_start)
    features = features_at(settings, clean, windows.as_of)
    params = tune(study, before, cfg, n_trials=remaining_trials(study, cfg.n_trials),
                  callbacks=callbacks)
    twin = fit_segmentation(before, params, cfg, as_of=windows.holdout_start)
    model = fit_segmentation(features, params, cfg, as_of=windows.as_of)
    metrics = evaluate_segmentation(model, features, cfg, truth=truth)
    metrics |= prefixed(holdout_metrics(twin, features, settings), HOLDOUT_PREFIX)
    columns = list(model.feature_columns)
    return TrainedModel(
        predictor=model,
        twin=twin,
        windows=windows,
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


def holdout_scores(twins: Mapping[str, Any], clean: Dataset, windows: Windows,
                   settings: Settings) -> dict[str, float]:
    """Each twin's objective on the customer features at ``as_of``."""
    tx = history(clean.transactions, windows.as_of)
    features = customer_features(tx, windows.as_of, settings.features, clean.customers,
                                 clean.products)
    return holdout.segmentation_score(twins, features, settings.segmentation)


SPEC = ModelSpec(
    kind="segmentation",
    predictor_type=SegmentationModel,
    plan=lambda settings, clean, as_of: plan(clean.transactions, as_of, settings.features),
    fit=fit_segmentation_run,
    refit_twin=refit_twin,
    holdout_scores=holdout_scores,
    gate_metric=lambda settings: OBJECTIVE,
    score_step=scoring.SEGMENTATION,
    seed=lambda settings: settings.segmentation.seed,
    study_objective="segmentation objective (segmentation.objective)",
    description="Customer segments: K-means on RFM and behaviour features, k tuned, segments "
                "named for marketers. Input: customer features as of a date; output: segment "
                "and segment_name per customer. Services load tailor-segmentation@champion.",
)
