"""Customer segmentation as a model kind: tune k on the twin's features, judge the twin later,
fit the served model.

Windows (:mod:`tailor.models.windows`), for a scoring date ``as_of``: Optuna chooses k and the
transforms on the customer features at the holdout start S; the twin (those parameters fit on
the features at S) is judged on the features at ``as_of`` (``holdout_*``: do its segments still
fit 90 days later); the served version is the same configuration fit on the features at
``as_of``, profiled and named for marketers.

Metric names say which data the clusters were measured on (the RFM grid baseline beside each as
``baseline_rfm_grid_<data>_*``):

- ``validation_*``: the features at S the trials were fit and scored on (clustering has no
  held-out split to tune on); each trial logs its own, the run the best trial's, with the
  trial's value as ``validation_objective``;
- ``holdout_*``: the twin on the features at ``as_of``, which it has not seen;
  ``holdout_objective`` is the gate's score;
- ``served_*``: the served model on the very features it was fit on (``served_ari_truth``
  against the generator's segments when known): in-sample, what the served segments look like,
  not an estimate of how well they generalise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
import pandas as pd

from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.kinds.spec import ModelSpec, TrainedModel, TrialMetrics, remaining_trials
from tailor.models import holdout, scoring
from tailor.models.features import customer_features, history
from tailor.models.segmentation import (
    SegmentationModel,
    evaluate_segmentation,
    fit_segmentation,
    objective_value,
    plan,
    segment_profile,
    tune,
)
from tailor.models.windows import HOLDOUT_PREFIX, SERVED_PREFIX, VALIDATION_PREFIX, Windows, scoped

OBJECTIVE = "objective"
BASELINES = ("rfm_grid",)
"""The baseline logged beside the model, as ``baseline_rfm_grid_<data>_<metric>``."""
TRIAL_METRICS = TrialMetrics(objective=OBJECTIVE, baselines=BASELINES)


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


def validation_metrics(study: optuna.Study) -> dict[str, float]:
    """The best trial's metrics on the features at S, as its trial run logs them (the finite
    ones: the gate refuses a run with a non-finite metric, and these are not what it judges)."""
    best = study.best_trial
    metrics = {k: float(v) for k, v in best.user_attrs.items()
               if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    return metrics | {OBJECTIVE: float(study.best_value)}


def fit_segmentation_run(
    settings: Settings,
    clean: Dataset,
    windows: Windows,
    study: optuna.Study,
    callbacks: Sequence[Callable[..., None]] = (),
    truth: pd.Series | None = None,
) -> TrainedModel:
    """Tune, judge the twin, fit, evaluate and describe the served model, without tracking."""
    # the plots import matplotlib: loaded only when training, not when scoring
    from tailor.models.segmentation_plots import plot_metrics_vs_k, plot_segments_pca
    cfg = settings.segmentation
    before = features_at(settings, clean, windows.holdout_start)
    features = features_at(settings, clean, windows.as_of)
    params = tune(study, before, cfg, n_trials=remaining_trials(study, cfg.n_trials),
                  callbacks=callbacks)
    twin = fit_segmentation(before, params, cfg, as_of=windows.holdout_start)
    model = fit_segmentation(features, params, cfg, as_of=windows.as_of)
    metrics = scoped(evaluate_segmentation(model, features, cfg, truth=truth), SERVED_PREFIX,
                     BASELINES)
    metrics |= scoped(holdout_metrics(twin, features, settings), HOLDOUT_PREFIX, BASELINES)
    metrics |= scoped(validation_metrics(study), VALIDATION_PREFIX, BASELINES)
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
        tables={"segment_profile": segment_profile(model, features, cfg)},
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
    trial_metrics=lambda settings: TRIAL_METRICS,
    description="Customer segments: K-means on RFM and behaviour features, k tuned, segments "
                "named for marketers. Input: customer features as of a date; output: segment "
                "and segment_name per customer. Services load tailor-segmentation@champion.",
)
