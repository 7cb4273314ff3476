"""A toy fourth model kind, added the way a maintainer adds one: this module and one spec.

The popularity recommender offers every customer the best sellers of the last ``days`` before
its fit date; ``days`` is tuned by Optuna on the twin's holdout-free history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd

from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.kinds.spec import ModelSpec, TrainedModel, remaining_trials
from tailor.models import holdout
from tailor.models.features import history
from tailor.models.scoring import ScoreStep
from tailor.models.windows import HOLDOUT_PREFIX, Windows, plan_windows, prefixed

COLUMN = "popular_products"
K = 5


class PopularityModel:
    """The same top products for everyone; ``as_of`` is its fit date (as every predictor's)."""

    def __init__(self, products: list[str], customers: list[str], as_of: pd.Timestamp,
                 params: dict[str, Any]) -> None:
        self.products = products
        self.customers = set(customers)
        self.as_of = as_of
        self.params = params

    def known(self, ids: Any) -> np.ndarray:
        return np.array([str(i) in self.customers for i in ids], dtype=bool)

    def recommend(self, ids: Any, k: int = K) -> pd.DataFrame:
        top = self.products[:k]
        return pd.DataFrame({"customer_id": np.repeat(np.asarray(ids, dtype=object), len(top)),
                             "product_id": top * len(ids),
                             "rank": list(range(1, len(top) + 1)) * len(ids)})

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({COLUMN: [",".join(self.products[:K])] * len(frame)},
                            index=frame.index)


def fit(transactions: pd.DataFrame, as_of: pd.Timestamp, params: dict[str, Any]
        ) -> PopularityModel:
    tx = history(transactions, as_of)
    recent = tx[tx["timestamp"] >= as_of - pd.Timedelta(days=params["days"])]
    counts = recent.groupby("product_id")["quantity"].sum().sort_values(ascending=False)
    return PopularityModel([str(p) for p in counts.index], tx["customer_id"].astype(str).unique(),
                           as_of, params)


def holdout_scores(twins: Mapping[str, Any], clean: Dataset, windows: Windows,
                   settings: Settings) -> dict[str, float]:
    tx = history(clean.transactions, windows.as_of)
    scores, _ = holdout.recommender_precision(twins, tx, windows.holdout_start,
                                              windows.holdout_days, K)
    return scores


def fit_run(settings: Settings, clean: Dataset, windows: Windows, study: optuna.Study,
            callbacks: Sequence[Callable[..., None]] = ()) -> TrainedModel:
    tx, start = clean.transactions, windows.holdout_start
    inner = Windows(start, windows.horizon_days, windows.first_purchase,
                    start - pd.Timedelta(days=windows.holdout_days))

    def objective(trial: optuna.Trial) -> float:
        model = fit(tx, inner.holdout_start, {"days": trial.suggest_int("days", 7, 120)})
        return holdout_scores({"m": model}, clean, inner, settings)["m"]

    study.optimize(objective, n_trials=remaining_trials(study, 3), callbacks=list(callbacks))
    params = {"days": int(study.best_params["days"])}
    twin = fit(tx, start, params)
    served = fit(tx, windows.as_of, params)
    metrics = prefixed(holdout_scores({"m": twin}, clean, windows, settings), HOLDOUT_PREFIX)
    return TrainedModel(
        predictor=served, twin=twin, windows=windows, params=params,
        metrics={f"{HOLDOUT_PREFIX}precision_at_{K}": metrics[f"{HOLDOUT_PREFIX}m"]},
        input_example=pd.DataFrame({"customer_id": ["a", "b"]}))


def _score(model: PopularityModel, frame: pd.DataFrame, customers: Any, scoring: Any
           ) -> pd.DataFrame:
    return pd.DataFrame({COLUMN: [list(model.products[:K])] * len(frame)}, index=frame.index)


SPEC = ModelSpec(
    kind="popularity",
    predictor_type=PopularityModel,
    plan=lambda settings, clean, as_of: plan_windows(
        clean.transactions, as_of, settings.features.horizon_days, model="popularity",
        needs_days=settings.features.min_history_days, needs_rule="popularity needs history",
        min_holdout_days=settings.features.min_holdout_days),
    fit=fit_run,
    refit_twin=lambda settings, clean, windows, predictor: fit(
        clean.transactions, windows.holdout_start, dict(predictor.params)),
    holdout_scores=holdout_scores,
    gate_metric=lambda settings: f"precision_at_{K}",
    score_step=ScoreStep("popularity", (COLUMN,), _score,
                         lambda index: pd.DataFrame({COLUMN: [None] * len(index)}, index=index)),
)
