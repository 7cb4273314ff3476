"""Churn probability: P(no purchase in the next H days), tuned, calibrated and thresholded.

Flow (plain Python; the tracking layer calls these and logs what they return):

1. :func:`tailor.models.churn_data.prepare_churn_data` builds the served, twin, holdout and tuning
   frames of a run from history before ``as_of`` (windows: :mod:`tailor.models.windows`).
2. :func:`tune` runs Optuna on the caller's study: the model family (logistic regression on
   log-scaled features, or histogram gradient boosting) is a categorical parameter with its own
   conditional space, and the calibration method (sigmoid / isotonic, fitted on
   customer-grouped folds of the training rows) is another. The objective is the tuning
   split's log loss (out of time, or customer-grouped folds on short history), which rewards
   ranking and calibration together.
3. :func:`fit_twin_and_served` picks the decision threshold on that validation by
   ``cost_ratio`` (a missed churner costs that many wasted offers), then fits the chosen
   configuration before the holdout (the twin, judged on it) and before ``as_of`` (served).
4. :func:`evaluate` scores any model on any frame, so champion and challenger meet on the same
   holdout.

Baselines in every metrics dict: ``baseline_recency_*`` (a logistic regression on log recency
alone, fitted on the same rows as the model) and ``baseline_rate_*`` (the training churn rate
for everyone), so "better than recency" and "better than knowing nothing" are always measured.

This module holds :class:`ChurnModel` and everything that builds one (pickled models name this
module); the search space is in :mod:`tailor.models.churn_search`, the metrics, evaluation and
importance in :mod:`tailor.models.churn_evaluation`. All are importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from tailor.configs.schema import ChurnSettings
from tailor.inference import ChurnScorer, InferenceError, ModelState
from tailor.models import btyd
from tailor.models.btyd import BgNbd
from tailor.models.churn_data import CUSTOMER_ID, OUT_OF_TIME, ChurnData, ChurnFrame, TuningSplit
from tailor.models.churn_errors import ChurnModelError
from tailor.models.churn_evaluation import (
    BASELINE_RATE_PREFIX,
    BASELINE_RECENCY_PREFIX,
    METRIC_NAMES,
    decision_metrics,
    evaluate,
    lift_top_decile,
    permutation_importance_table,
    probability_metrics,
)
from tailor.models.churn_pipeline import (
    GRADIENT_BOOSTING,
    build_pipeline,
    clip_log1p,
    column_roles,
)
from tailor.models.churn_search import default_params, new_study, suggest_params, trials_frame

PROBABILITY = "churn_probability"
NO_CALIBRATION = "none"


@contextmanager
def _as_churn_error() -> Iterator[None]:
    """The inference code's input checks, raised as this module's error with its remedy."""
    try:
        yield
    except InferenceError as exc:
        raise ChurnModelError(f"features frame: {exc}; build it with "
                              f"models.features.customer_features and the same customers "
                              f"table") from exc


@dataclass(frozen=True)
class ChurnModel:
    """Picklable predictor: ``predict(features) -> DataFrame[churn_probability]``.

    ``columns`` are the feature columns it was trained on (a :func:`customer_features` frame
    has them); ``threshold`` flags a customer for a retention offer when probability >= it.
    """

    params: dict[str, Any]
    columns: tuple[str, ...]
    numeric_columns: tuple[str, ...]
    estimator: Any
    baseline: Pipeline
    base_rate: float
    threshold: float
    trained_cutoffs: tuple[pd.Timestamp, ...]
    #: fit on history before this date (every label window ends by it); None: unknown
    as_of: pd.Timestamp | None = None
    #: BG/NBD fitted on the customers' histories before ``as_of``; its P(no purchase in
    #: ``horizon_days``) is blended in with weight ``1 - model_weight`` (see models.btyd)
    btyd: BgNbd | None = None
    model_weight: float = 1.0
    horizon_days: int = 90

    def _checked(self, frame: pd.DataFrame) -> pd.DataFrame:
        with _as_churn_error():
            return self.scorer().checked(frame)

    def scorer(self) -> ChurnScorer:
        """The inference code a logged version runs (tailor.inference), over this model."""
        return ChurnScorer(self.columns, self.numeric_columns, self.estimator,
                           None if self.btyd is None else self.btyd.params(),
                           self.model_weight, self.horizon_days)

    def inference_state(self) -> ModelState:
        """This model as the data a logged version holds (loads without tailor)."""
        return ModelState("churn", {
            "columns": list(self.columns), "numeric_columns": list(self.numeric_columns),
            "bgnbd": None if self.btyd is None else self.btyd.params(),
            "model_weight": self.model_weight, "horizon_days": self.horizon_days,
            "threshold": self.threshold,
            "as_of": None if self.as_of is None else self.as_of.isoformat()},
            estimator=self.estimator)

    def model_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The supervised model's probability alone (no BG/NBD blend)."""
        with _as_churn_error():
            return self.scorer().model_proba(frame)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn probability per row of ``frame`` (float64 array)."""
        with _as_churn_error():
            return self.scorer().probability(frame)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per input row (same index): ``churn_probability`` in [0, 1]."""
        return pd.DataFrame({PROBABILITY: self.predict_proba(frame)}, index=frame.index)

    def baseline_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Recency-only baseline probability (same rows, same holdout)."""
        if frame.empty:
            return np.zeros(0)
        return self.baseline.predict_proba(self._checked(frame)[["recency_days"]])[:, 1]


@dataclass(frozen=True)
class ChurnFit:
    """Result of :func:`fit_twin_and_served`."""

    params: dict[str, Any]
    validation_metrics: dict[str, float]
    twin: ChurnModel
    served: ChurnModel


# ---------------------------------------------------------------------------------- tuning


def validation_predictions(params: Mapping[str, Any], split: TuningSplit,
                           settings: ChurnSettings) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of one configuration on the tuning split: the validation
    window's rows (out of time), or every row predicted by the fold that did not train on it
    (customer-grouped folds)."""
    if split.method == OUT_OF_TIME:
        assert split.validation is not None
        model = fit_churn_model(params, split.train, settings)
        return (split.validation.labels.to_numpy(),
                model.predict_proba(split.validation.features))
    y = split.train.labels.to_numpy()
    p = np.empty(len(y))
    for train_rows, test_rows in _grouped_folds(split.train, split.folds):
        part = ChurnFrame(split.train.features.iloc[train_rows],
                          split.train.labels.iloc[train_rows])
        model = fit_churn_model(params, part, settings)
        p[test_rows] = model.predict_proba(split.train.features.iloc[test_rows])
    return y, p


class ChurnObjective:
    """Optuna objective: validation log loss of the trial's model (minimise)."""

    def __init__(self, data: ChurnData, settings: ChurnSettings) -> None:
        self.data = data
        self.settings = settings

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest_params(trial, self.settings)
        y, p = validation_predictions(params, self.data.tuning, self.settings)
        metrics = probability_metrics(y, p)
        for name in ("roc_auc", "pr_auc", "brier", "lift_top_decile"):
            trial.set_user_attr(name, metrics[name])
        return metrics["log_loss"]


def tune(study: optuna.Study, data: ChurnData, settings: ChurnSettings,
         n_trials: int | None = None, timeout: float | None = None,
         callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = ()
         ) -> dict[str, Any]:
    """Run trials on the caller's study (must minimise); return the best parameters."""
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ValueError("the churn study must minimise validation log loss "
                         "(optuna.create_study(direction='minimize'), or use new_study)")
    study.optimize(ChurnObjective(data, settings),
                   n_trials=settings.n_trials if n_trials is None else n_trials,
                   timeout=settings.timeout_s if timeout is None else timeout,
                   callbacks=list(callbacks))
    return dict(study.best_params)


# ------------------------------------------------------------------------------------ fit


def _grouped_folds(frame: ChurnFrame, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Calibration folds grouped by customer: one customer's cutoffs never straddle folds."""
    groups = frame.features.index.get_level_values(CUSTOMER_ID).to_numpy()
    n_splits = min(folds, len(np.unique(groups)))
    splitter = GroupKFold(n_splits=n_splits)
    return list(splitter.split(frame.features, frame.labels, groups))


def _recency_baseline(frame: ChurnFrame) -> Pipeline:
    baseline = Pipeline([("log", FunctionTransformer(clip_log1p)), ("scale", StandardScaler()),
                         ("model", LogisticRegression())])
    return baseline.fit(frame.features[["recency_days"]], frame.labels.to_numpy())


def _check_trainable(frame: ChurnFrame) -> None:
    classes = np.unique(frame.labels.to_numpy())
    if len(classes) < 2:
        raise ChurnModelError(
            f"churn training rows ({len(frame.labels)}) all have label {classes.tolist()}: "
            f"need churners and returners; check the cutoffs and horizon")


def fit_churn_model(params: Mapping[str, Any], frame: ChurnFrame, settings: ChurnSettings,
                    threshold: float = 0.5, as_of: pd.Timestamp | None = None) -> ChurnModel:
    """Fit (and calibrate, unless ``calibration`` is ``none``) one parameter set on ``frame``."""
    _check_trainable(frame)
    roles = column_roles(frame.features)
    x = frame.features.loc[:, list(roles.inputs)]
    y = frame.labels.to_numpy()
    pipeline = build_pipeline(params, roles, settings.max_attribute_levels, settings.seed)
    method = params.get("calibration", NO_CALIBRATION)
    # single-threaded: OpenMP threads of gradient boosting oversubscribe a busy 2-core box
    # (10x slower) and one thread gives the same result on every machine.
    with threadpool_limits(limits=1):
        if method == NO_CALIBRATION:
            estimator: Any = pipeline.fit(x, y)
        else:
            folds = _grouped_folds(frame, settings.calibration_folds)
            estimator = CalibratedClassifierCV(pipeline, method=method, cv=folds).fit(x, y)
    numeric = tuple(c for c in roles.inputs if c not in roles.categorical)
    return ChurnModel(params=dict(params), columns=roles.inputs, numeric_columns=numeric,
                      estimator=estimator, baseline=_recency_baseline(frame),
                      base_rate=float(y.mean()), threshold=float(threshold),
                      trained_cutoffs=frame.cutoffs, as_of=as_of)


def choose_threshold(labels: np.ndarray, probabilities: np.ndarray, cost_ratio: float) -> float:
    """Threshold minimising ``cost_ratio * missed churners + wasted offers`` (flag p >= t).

    Ties go to the higher threshold (fewer offers). With no candidate flagged the threshold is
    just above the highest probability.
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if len(y) == 0:
        raise ChurnModelError("cannot choose a threshold on an empty validation set")
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    hits = np.concatenate([[0.0], np.cumsum(y_sorted)])  # churners among the top k
    k = np.arange(len(p) + 1)
    cost = cost_ratio * (y.sum() - hits) + (k - hits)
    # only cut between distinct probabilities: equal scores get the same decision
    allowed = np.ones(len(p) + 1, dtype=bool)
    allowed[1:-1] = p_sorted[:-1] > p_sorted[1:]
    best = int(np.flatnonzero(allowed)[np.argmin(cost[allowed])])
    if best == 0:
        return float(np.nextafter(p_sorted[0], np.inf))
    return float(p_sorted[best - 1])


def with_threshold(model: ChurnModel, threshold: float) -> ChurnModel:
    return replace(model, threshold=float(threshold))


def validation_btyd(split: TuningSplit, horizon_days: int) -> np.ndarray:
    """BG/NBD's P(no purchase in H) for the rows :func:`validation_predictions` scores, fitted
    per cutoff on the histories before it (no labels needed)."""
    frame = split.validation if split.method == OUT_OF_TIME else split.train
    assert frame is not None
    q = np.empty(len(frame.labels))
    cutoffs = frame.features.index.get_level_values("cutoff")
    for cutoff in frame.cutoffs:
        rows = np.flatnonzero(cutoffs == cutoff)
        summary = btyd.summary(frame.features.iloc[rows])
        q[rows] = btyd.fit_bgnbd(summary).p_no_purchase(summary, horizon_days)
    return q


def choose_model_weight(labels: np.ndarray, model: np.ndarray, baseline: np.ndarray,
                        weights: Sequence[float]) -> float:
    """The weight of the model against BG/NBD with the lowest log loss (ties: more model)."""
    best, loss = 1.0, np.inf
    for weight in sorted(weights, reverse=True):
        p = np.clip(weight * model + (1.0 - weight) * baseline, 1e-9, 1 - 1e-9)
        value = log_loss(labels, p, labels=[0, 1])
        if value < loss - 1e-12:
            best, loss = float(weight), value
    return best


def with_btyd(model: ChurnModel, features: pd.DataFrame, weight: float,
              horizon_days: int) -> ChurnModel:
    """``model`` blended with BG/NBD fitted on ``features`` (the customers at its date)."""
    if weight >= 1.0:
        return replace(model, btyd=None, model_weight=1.0, horizon_days=horizon_days)
    fitted = btyd.fit_bgnbd(btyd.summary(features))
    return replace(model, btyd=fitted, model_weight=float(weight), horizon_days=horizon_days)


def fit_twin_and_served(params: Mapping[str, Any], data: ChurnData,
                        settings: ChurnSettings) -> ChurnFit:
    """On the tuning validation: the blend weight against BG/NBD, then the threshold and the
    metrics; then the same configuration fit before the holdout (twin) and before as_of
    (served), each blended with BG/NBD fitted at its own date."""
    horizon = data.windows.horizon_days
    y, p = validation_predictions(params, data.tuning, settings)
    weight = 1.0
    if any(w < 1.0 for w in settings.btyd_weights):
        q = validation_btyd(data.tuning, horizon)
        weight = choose_model_weight(y, p, q, settings.btyd_weights)
        p = weight * p + (1.0 - weight) * q
    threshold = choose_threshold(y, p, settings.cost_ratio)
    metrics = probability_metrics(y, p) | decision_metrics(y, p, threshold, settings.cost_ratio)
    metrics["model_weight"] = weight
    twin = with_btyd(fit_churn_model(params, data.twin, settings, threshold=threshold,
                                     as_of=data.windows.holdout_start),
                     data.holdout.features, weight, horizon)
    served = with_btyd(fit_churn_model(params, data.served, settings, threshold=threshold,
                                       as_of=data.windows.as_of),
                       data.current, weight, horizon)
    return ChurnFit(params=dict(params), validation_metrics=metrics, twin=twin, served=served)


__all__ = [
    "BASELINE_RATE_PREFIX",
    "BASELINE_RECENCY_PREFIX",
    "GRADIENT_BOOSTING",
    "METRIC_NAMES",
    "PROBABILITY",
    "ChurnFit",
    "ChurnModel",
    "ChurnModelError",
    "ChurnObjective",
    "choose_model_weight",
    "choose_threshold",
    "default_params",
    "evaluate",
    "fit_churn_model",
    "fit_twin_and_served",
    "lift_top_decile",
    "new_study",
    "permutation_importance_table",
    "probability_metrics",
    "suggest_params",
    "trials_frame",
    "tune",
    "validation_btyd",
    "validation_predictions",
    "with_btyd",
    "with_threshold",
]
