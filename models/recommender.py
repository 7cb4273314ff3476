"""LightFM hybrid recommender blended with repeat purchases and popularity: fit, tune, evaluate.

The steps of a run, each importable from here:

- :func:`plan` gives a run's windows and :func:`prepare` builds point-in-time inputs strictly
  before a date (:mod:`tailor.models.recommender_inputs`).
- :func:`tune` runs an Optuna study on a validation split inside the history before the
  holdout start S, so the holdout is never seen (:mod:`tailor.models.recommender_tuning`;
  LightFM itself is trained by :mod:`tailor.models.recommender_lightfm`).
- :func:`fit_recommender` (here) fits the chosen parameters on all history before a date (S
  for the twin, ``as_of`` for the served model); :func:`choose_ranker` decides whether the
  learned ranker goes into the model.
- :func:`evaluate` scores a model on the window after its fit date for the model and the
  popularity and repeat baselines (same users, same metrics), plus cold-start customers
  (:mod:`tailor.models.recommender_evaluation`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pandas as pd
import scipy.sparse as sp

from tailor.configs.schema import FeatureSettings, RecommenderSettings
from tailor.models.customer_sample import customers_sample
from tailor.models.features import history
from tailor.models.recommender_evaluation import evaluate
from tailor.models.recommender_inputs import RecommenderInputs, plan, prepare, validation_days
from tailor.models.recommender_lightfm import (
    Representations,
    cold_attribute_rows,
    fit_lightfm,
    representations,
)
from tailor.models.recommender_model import BlendWeights, RecommenderModel
from tailor.models.recommender_ranker import (
    candidate_signals,
    fit_ranker,
    ranked_everyone,
    training_windows,
)
from tailor.models.recommender_tuning import (
    RecommenderObjective,
    best_params,
    search_blend,
    suggest_params,
    tune,
    validation_split,
)
from tailor.models.windows import first_purchase

#: One candidate-ranking pass at a time in a process. Fits may run side by side (LightFM trains
#: without the GIL), but the ranker's training windows and candidate signals are a fit's
#: memory peak (a 10M-line retrain that ranked two fits' candidates at once peaked at 22 GB).
_RANKING = threading.Lock()


def default_params() -> dict[str, Any]:
    """Untuned starting point (what ``fit_recommender`` uses when given no parameters)."""
    return {
        "loss": "warp", "no_components": 64, "learning_rate": 0.05,
        "learning_schedule": "adagrad", "user_alpha": 1e-6, "item_alpha": 1e-6, "epochs": 30,
        "weighting": "log", "features": "hybrid",
        "w_lightfm": 0.1, "w_repeat": 1.0, "w_popularity": 0.1, "repeat_half_life_days": None,
        "cold_lightfm": 1.0,
    }


# -- final fit and ranker choice ---------------------------------------------------------------
def fit_recommender(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    features: FeatureSettings,
    settings: RecommenderSettings,
    params: Mapping[str, Any] | None = None,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    segments: pd.Series | None = None,
    inputs: RecommenderInputs | None = None,
) -> RecommenderModel:
    """Fit on all history before ``as_of`` with ``params`` (default: :func:`default_params`)."""
    params = {**default_params(), **(params or {})}
    if inputs is None:
        inputs = prepare(transactions, as_of, features, settings, customers, products, segments)
    model = fit_lightfm(inputs.data, params, settings.seed, settings.num_threads)
    reps = representations(model, inputs.data, params)
    ranked = None
    if params.get("ranker", settings.ranker is not False):
        with _RANKING:
            ranked = rank_candidates(history(transactions, inputs.as_of), inputs, features,
                                     settings)
    weights = BlendWeights(lightfm=float(params["w_lightfm"]), repeat=float(params["w_repeat"]),
                           popularity=float(params["w_popularity"]),
                           repeat_half_life_days=params["repeat_half_life_days"],
                           cold_lightfm=float(params["cold_lightfm"]))
    return RecommenderModel(
        as_of=inputs.as_of, k=settings.k, exclude_purchased=settings.exclude_purchased,
        weights=weights, user_ids=inputs.data.user_ids, item_ids=inputs.data.item_ids,
        user_embeddings=reps.users, item_embeddings=reps.items, item_biases=reps.item_biases,
        repeat=inputs.repeat(weights.repeat_half_life_days), popularity=inputs.popularity,
        user_feature_embeddings=reps.user_feature_embeddings,
        user_feature_names=inputs.data.user_feature_names,
        user_encodings=inputs.data.user_encodings, params=dict(params), ranked=ranked,
    )


def rank_candidates(past: pd.DataFrame, inputs: RecommenderInputs, features: FeatureSettings,
                    settings: RecommenderSettings) -> sp.csr_matrix | None:
    """The learned ranker's best candidates per known customer at ``inputs.as_of`` (None when
    the history holds no window to train it on)."""
    horizon = features.horizon_days
    windows = training_windows(first_purchase(past), inputs.as_of, horizon,
                               features.min_history_days, settings.min_validation_days,
                               settings)
    ranker = fit_ranker(past, windows, settings, horizon)
    if ranker is None:
        return None
    signals = candidate_signals(past, inputs.as_of, horizon, settings)
    return ranked_everyone(ranker, signals, inputs.data.user_ids, inputs.data.item_ids,
                           settings.ranked_per_customer, settings)


def choose_ranker(transactions: pd.DataFrame, as_of: pd.Timestamp, days: int,
                  features: FeatureSettings, settings: RecommenderSettings,
                  params: Mapping[str, Any], customers: pd.DataFrame | None = None,
                  products: pd.DataFrame | None = None) -> tuple[bool, dict[str, float]]:
    """Whether the learned ranker goes into the model (``settings.ranker``; ``"auto"``: when it
    beats the blend alone on the tuning validation, the ``days`` before ``as_of``), and the two
    validation precisions. A choice of the tuning, made on its customers: at most
    ``settings.tuning_max_customers`` seeded ones (on everyone it is one more full fit, with
    every customer's candidates ranked)."""
    if settings.ranker != "auto":
        return bool(settings.ranker), {}
    past = customers_sample(history(transactions, as_of), settings.tuning_max_customers,
                            settings.seed)
    cut = as_of - pd.Timedelta(days=days)
    model = fit_recommender(past, cut, features, settings, {**params, "ranker": True},
                            customers, products)
    if model.ranked is None:  # no window to train it on before the validation: cannot tell
        return True, {}
    k = settings.k
    ranked = evaluate(model, past, days, customers, k=k)[f"precision_at_{k}"]
    blend = evaluate(model.without_ranker(), past, days, customers, k=k)[f"precision_at_{k}"]
    return ranked > blend, {f"ranker_precision_at_{k}": ranked,
                            f"blend_precision_at_{k}": blend}


__all__ = [
    "RecommenderInputs",
    "RecommenderObjective",
    "Representations",
    "best_params",
    "choose_ranker",
    "cold_attribute_rows",
    "default_params",
    "evaluate",
    "fit_lightfm",
    "fit_recommender",
    "plan",
    "prepare",
    "representations",
    "search_blend",
    "suggest_params",
    "tune",
    "validation_days",
    "validation_split",
]
