"""Churn / purchase probability as a model kind: tune, judge the twin, fit the served model.

Windows (:mod:`tailor.models.windows`, :mod:`tailor.models.churn_data`), for a scoring date
``as_of`` and horizon H: Optuna tunes inside the history before the holdout start S (out of
time when it allows, customer-grouped folds otherwise); the twin (labelled cutoffs up to
S - H) is judged on the customers active before S with labels from ``[S, as_of)`` beside the
recency, base-rate and BTYD baselines (``holdout_*``, ``baseline_<name>_holdout_*``); the served
version is trained on cutoffs up to ``as_of - H`` and applied to features at the scoring date.
``validation_*`` are the tuning validation's figures: each trial logs them for its own model,
the run for the chosen configuration as served (blended with BG/NBD when validation chose it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna

from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.kinds.spec import ModelSpec, TrainedModel, TrialMetrics, remaining_trials
from tailor.models import btyd, holdout, scoring
from tailor.models.churn import (
    ChurnModel,
    evaluate,
    fit_churn_model,
    fit_twin_and_served,
    permutation_importance_table,
    probability_metrics,
    tune,
    with_btyd,
)
from tailor.models.churn_data import (
    ChurnData,
    cutoff_frame,
    plan_windows_for_churn,
    prepare_churn_data,
)
from tailor.models.features import history
from tailor.models.windows import HOLDOUT_PREFIX, VALIDATION_PREFIX, Windows, scoped

BASELINES = ("recency", "rate", btyd.BGNBD, btyd.PARETO_NBD)
"""The baselines logged beside the model, as ``baseline_<name>_holdout_<metric>``."""


def churn_data(settings: Settings, clean: Dataset, windows: Windows) -> ChurnData:
    return prepare_churn_data(clean.transactions, windows, settings.features, settings.churn,
                              clean.customers, clean.products)


def fit_twin(settings: Settings, data: ChurnData, params: dict, threshold: float,
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
        metrics |= {f"baseline_{name}_{k}": v for k, v in probability_metrics(y, p).items()}
    return metrics


def fit_churn_run(
    settings: Settings,
    data: ChurnData,
    study: optuna.Study,
    callbacks: Sequence[Callable[..., None]] = (),
) -> TrainedModel:
    """Tune, calibrate, judge the twin with the recency baseline, fit the served model."""
    # the plots import matplotlib: loaded only when training, not when scoring
    from tailor.models.churn_plots import importance_figure, reliability_figure, reliability_table
    cfg = settings.churn
    params = tune(study, data, cfg, n_trials=remaining_trials(study, cfg.n_trials),
                  callbacks=callbacks)
    fit = fit_twin_and_served(params, data, cfg)
    holdout = data.holdout
    metrics = scoped(evaluate(fit.twin, holdout, cfg) | btyd_baselines(data, fit.twin.btyd),
                     HOLDOUT_PREFIX, BASELINES)
    metrics |= scoped(fit.validation_metrics, VALIDATION_PREFIX)
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
                                                         cfg.reliability_bins)},
        datasets={"training": data.served.features.reset_index(),
                  "holdout": holdout.features.reset_index()},
    )


def fit_run(settings: Settings, clean: Dataset, windows: Windows, study: optuna.Study,
            callbacks: Sequence[Callable[..., None]] = (),
            prepared: ChurnData | None = None) -> TrainedModel:
    data = prepared if prepared is not None else churn_data(settings, clean, windows)
    return fit_churn_run(settings, data, study, callbacks)


def refit_twin(settings: Settings, clean: Dataset, windows: Windows, predictor: Any):
    """A registered version's configuration fit on the twin's cutoffs."""
    return fit_twin(settings, churn_data(settings, clean, windows), dict(predictor.params),
                    predictor.threshold, getattr(predictor, "model_weight", 1.0))


def holdout_scores(twins: Mapping[str, Any], clean: Dataset, windows: Windows,
                   settings: Settings) -> dict[str, float]:
    """ROC-AUC of each twin on the customers active before the holdout, labelled by it."""
    tx = history(clean.transactions, windows.as_of)
    frame = cutoff_frame(tx, windows.holdout_start, windows.holdout_days, settings.features,
                         settings.churn, clean.customers, clean.products, allow_partial=True)
    return holdout.churn_roc_auc(twins, frame, settings.churn)


SPEC = ModelSpec(
    kind="churn",
    predictor_type=ChurnModel,
    plan=lambda settings, clean, as_of: plan_windows_for_churn(
        clean.transactions, as_of, settings.features, settings.churn),
    fit=fit_run,
    refit_twin=refit_twin,
    holdout_scores=holdout_scores,
    gate_metric=lambda settings: "roc_auc",
    score_step=scoring.CHURN,
    seed=lambda settings: settings.churn.seed,
    study_direction="minimize",
    study_objective="validation log loss",
    trial_metrics=lambda settings: TrialMetrics(objective="log_loss"),
    description="Churn: the calibrated probability that a customer makes no purchase in the "
                "next H days (features.horizon_days). Input: customer features as of a date; "
                "output: churn_probability per customer. Services load tailor-churn@champion.",
    prepare=churn_data,
)
