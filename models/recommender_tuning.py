"""Recommender tuning: an Optuna study on a validation split inside the history before S.

:func:`tune` runs an Optuna study (the caller's: storage and resume are its business) on a
validation split *inside* the history before S: train before ``S - validation_days``, validate
on the purchases of the last ``validation_days`` before S (shortened on short history); the
holdout is never seen. Above ``tuning_max_customers`` customers the study sees a seeded sample
of them. LightFM trains epoch by epoch (``fit_partial``), each epoch's validation
precision@k is reported to the trial so the study's pruner can stop bad trials; the trial's
value is the precision of the best blend (grid over LightFM / repeat / popularity weights) of
the trained model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM

from tailor.configs.schema import FeatureSettings, RecommenderSettings
from tailor.models.customer_sample import customers_sample
from tailor.models.features import history
from tailor.models.ranking_metrics import top_k
from tailor.models.recommender_inputs import RecommenderInputs, prepare
from tailor.models.recommender_lightfm import (
    cold_attribute_rows,
    cold_vectors,
    fit_lightfm,
    representations,
)
from tailor.models.recommender_model import minmax_rows
from tailor.models.recommender_signals import Holdout, holdout
from tailor.models.windows import InsufficientHistoryError

SCHEDULES = ("adagrad", "adadelta")
BLEND_KEYS = ("w_lightfm", "w_repeat", "w_popularity", "repeat_half_life_days", "cold_lightfm")
COLD_LIGHTFM_GRID = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)


def cold_precision_attr(k: int) -> str:
    """The trial attribute holding the cold customers' validation precision@k."""
    return f"cold_precision_at_{k}"


# -- blend search ------------------------------------------------------------------------------
def _precision(scores: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    top = top_k(scores, k)
    rows = np.repeat(np.arange(scores.shape[0]), top.shape[1])
    return float(np.asarray(truth[rows, top.ravel()]).sum() / (k * scores.shape[0]))


def search_blend(lightfm: np.ndarray, repeats: Mapping[float | None, np.ndarray],
                 pop: np.ndarray, truth: sp.csr_matrix, k: int, settings: RecommenderSettings,
                 purchased: np.ndarray | None = None) -> tuple[dict[str, Any], float]:
    """Best (w_lightfm, w_repeat, w_popularity, half-life) on validation rows by precision@k.

    ``lightfm`` is row-min-max normalised; repeat weight is 1 (scale-free), or 0 with LightFM at
    1 (pure LightFM + popularity, the only sensible blend when purchases are excluded).
    """
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    candidates = [(wl, 1.0, wp, hl) for hl in repeats for wl in settings.blend_lightfm_weights
                  for wp in settings.blend_popularity_weights]
    candidates += [(1.0, 0.0, wp, None) for wp in settings.blend_popularity_weights]
    for wl, wr, wp, hl in candidates:
        scores = wl * lightfm + wp * pop
        if wr:
            scores = scores + wr * repeats[hl]
        if purchased is not None:
            scores = np.where(purchased, -np.inf, scores)
        value = _precision(scores, truth, k)
        if value > best[0] + 1e-12:
            best = (value, {"w_lightfm": wl, "w_repeat": wr, "w_popularity": wp,
                            "repeat_half_life_days": hl})
    return best[1], best[0]


def search_cold_blend(lightfm: np.ndarray, pop: np.ndarray, truth: sp.csr_matrix, k: int
                      ) -> tuple[float, float]:
    """Best LightFM weight (popularity weight 1) for cold users, and its precision@k."""
    best = (COLD_LIGHTFM_GRID[0], -1.0)
    for weight in COLD_LIGHTFM_GRID:
        value = _precision(weight * lightfm + pop, truth, k)
        if value > best[1] + 1e-12:
            best = (weight, value)
    return best


# -- tuning ------------------------------------------------------------------------------------
def suggest_params(trial: optuna.Trial, settings: RecommenderSettings) -> dict[str, Any]:
    """The search space."""
    params: dict[str, Any] = {
        "loss": trial.suggest_categorical("loss", list(settings.losses)),
        "no_components": trial.suggest_int("no_components", 8, 128, log=True),
        "learning_schedule": trial.suggest_categorical("learning_schedule", list(SCHEDULES)),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.2, log=True),
        "user_alpha": trial.suggest_float("user_alpha", 1e-8, 1e-3, log=True),
        "item_alpha": trial.suggest_float("item_alpha", 1e-8, 1e-3, log=True),
        "epochs": trial.suggest_int("epochs", min(5, settings.max_epochs), settings.max_epochs),
        "weighting": trial.suggest_categorical("weighting", ["binary", "log"]),
        "features": trial.suggest_categorical("features", ["hybrid", "identity"]),
    }
    return params


class RecommenderObjective:
    """Optuna objective on a validation split (see module docstring)."""

    def __init__(self, inputs: RecommenderInputs, truth: Holdout, settings: RecommenderSettings,
                 customers: pd.DataFrame | None = None) -> None:
        self.inputs = inputs
        self.settings = settings
        rows = np.flatnonzero(np.diff(truth.truth.indptr) > 0)
        if rows.size == 0:
            raise InsufficientHistoryError(
                f"recommender: no customer seen before {inputs.as_of.date()} bought a product "
                f"seen before it in the tuning validation window after it; nothing to tune on "
                f"(lower recommender.validation_days or use a later --as-of)")
        rng = np.random.default_rng(settings.seed)
        if rows.size > settings.max_eval_users:
            rows = np.sort(rng.choice(rows, settings.max_eval_users, replace=False))
        self.rows = rows
        self.truth = truth.truth[rows]
        self.repeats = {hl: inputs.repeat(hl)[rows].toarray()
                        for hl in settings.repeat_half_lives_days}
        first = next(iter(self.repeats.values()))
        self.purchased = first > 0 if settings.exclude_purchased else None
        cold = np.flatnonzero(np.diff(truth.cold_truth.indptr) > 0)
        self.cold_truth = truth.cold_truth[cold]
        self.cold_rows = cold_attribute_rows(truth.cold_ids[cold], customers)

    def lightfm_scores(self, model: LightFM, params: Mapping[str, Any]) -> np.ndarray:
        reps = representations(model, self.inputs.data, params)
        return minmax_rows(reps.scores(self.rows))

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest_params(trial, self.settings)
        k = self.settings.k

        def report(epoch: int, model: LightFM) -> None:
            scores = self.lightfm_scores(model, params)
            if self.purchased is not None:
                scores = np.where(self.purchased, -np.inf, scores)
            trial.report(_precision(scores, self.truth, k), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        model = fit_lightfm(self.inputs.data, params, self.settings.seed,
                            self.settings.num_threads, on_epoch=report)
        reps = representations(model, self.inputs.data, params)
        blend, value = search_blend(minmax_rows(reps.scores(self.rows)), self.repeats,
                                    self.inputs.popularity, self.truth, k, self.settings,
                                    self.purchased)
        cold_weight, cold_value = 1.0, float("nan")
        if self.cold_truth.shape[0]:
            vectors = cold_vectors(reps, self.inputs.data, self.cold_rows)
            lfm = minmax_rows(vectors @ reps.items.T + reps.item_biases)
            cold_weight, cold_value = search_cold_blend(lfm, self.inputs.popularity,
                                                        self.cold_truth, k)
        for key, val in {**blend, "cold_lightfm": cold_weight}.items():
            trial.set_user_attr(key, val)
        trial.set_user_attr(cold_precision_attr(k), cold_value)
        return value


def validation_split(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    features: FeatureSettings,
    settings: RecommenderSettings,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    segments: pd.Series | None = None,
    days: int | None = None,
) -> tuple[RecommenderInputs, Holdout]:
    """Inputs before ``as_of - days`` and the purchases of the last ``days`` before ``as_of``
    (``days``: ``settings.validation_days`` unless given), of at most
    ``settings.tuning_max_customers`` seeded customers."""
    days = settings.validation_days if days is None else days
    cut = pd.Timestamp(as_of) - pd.Timedelta(days=days)
    past = customers_sample(history(transactions, as_of), settings.tuning_max_customers,
                            settings.seed)
    inputs = prepare(past, cut, features, settings, customers, products, segments)
    truth = holdout(past, cut, days, inputs.data.user_ids, inputs.data.item_ids)
    return inputs, truth


def tune(
    study: optuna.Study,
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    features: FeatureSettings,
    settings: RecommenderSettings,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    segments: pd.Series | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    days: int | None = None,
) -> dict[str, Any]:
    """Optimise ``study`` (direction must be "maximize") on the validation split of the
    ``days`` (default ``settings.validation_days``) before ``as_of``, on the history of at most
    ``settings.tuning_max_customers`` seeded customers (the parameters it learns do not need
    every customer, and a trial then costs the same at any size); return the best parameters
    (LightFM + blend weights) for :func:`fit_recommender`."""
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError("tune: the study must maximise validation precision@k")
    inputs, truth = validation_split(transactions, as_of, features, settings, customers,
                                     products, segments, days)
    objective = RecommenderObjective(inputs, truth, settings, customers)
    study.optimize(objective, n_trials=settings.n_trials if n_trials is None else n_trials,
                   timeout=settings.timeout_s if timeout is None else timeout,
                   callbacks=list(callbacks))
    return best_params(study)


def best_params(study: optuna.Study) -> dict[str, Any]:
    """The best trial's parameters plus its blend weights (stored as user attributes)."""
    trial = study.best_trial
    return {**trial.params, **{k: trial.user_attrs[k] for k in BLEND_KEYS
                               if k in trial.user_attrs}}


__all__ = [
    "BLEND_KEYS",
    "COLD_LIGHTFM_GRID",
    "SCHEDULES",
    "RecommenderObjective",
    "best_params",
    "cold_precision_attr",
    "search_blend",
    "search_cold_blend",
    "suggest_params",
    "tune",
    "validation_split",
]
