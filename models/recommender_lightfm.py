"""LightFM trained epoch by epoch, and reduced to the representations that ranking needs.

Cold customers (no history) get a user vector from their attribute features alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM

from tailor.models.interactions import InteractionData, cold_user_features

WEIGHTED_LOSSES = ("warp", "bpr")  # LightFM's warp-kos and logistic ignore sample weights


def _sample_weights(data: InteractionData, weighting: str) -> sp.coo_matrix | None:
    """log: ``log1p(weight)`` scaled to mean 1, so heavy buyers steer but do not blow up the
    learning rate (LightFM multiplies each step by its weight); binary: no weights."""
    if weighting == "binary":
        return None
    weights = sp.coo_matrix(data.weights, dtype=np.float32, copy=True)
    weights.data = np.log1p(np.maximum(weights.data, 0.0))
    weights.data /= max(float(weights.data.mean()), 1e-12)
    return weights


def _features(data: InteractionData, params: Mapping[str, Any]
              ) -> tuple[sp.csr_matrix | None, sp.csr_matrix | None]:
    if params.get("features", "hybrid") == "hybrid":
        return data.user_features, data.item_features
    return None, None


def fit_lightfm(
    data: InteractionData,
    params: Mapping[str, Any],
    seed: int,
    num_threads: int = 1,
    on_epoch: Callable[[int, LightFM], None] | None = None,
) -> LightFM:
    """Train LightFM epoch by epoch (``fit_partial``); ``on_epoch(epoch, model)`` after each one
    (raise from it, e.g. ``optuna.TrialPruned``, to stop)."""
    model = LightFM(
        no_components=int(params["no_components"]), loss=params["loss"],
        learning_schedule=params["learning_schedule"],
        learning_rate=float(params["learning_rate"]),
        user_alpha=float(params["user_alpha"]), item_alpha=float(params["item_alpha"]),
        random_state=np.random.RandomState(seed),
    )
    weights = (_sample_weights(data, params.get("weighting", "log"))
               if params["loss"] in WEIGHTED_LOSSES else None)
    interactions = sp.coo_matrix(data.interactions)
    user_features, item_features = _features(data, params)
    for epoch in range(int(params["epochs"])):
        model.fit_partial(interactions, user_features=user_features, item_features=item_features,
                          sample_weight=weights, epochs=1, num_threads=num_threads)
        if on_epoch is not None:
            on_epoch(epoch, model)
    return model


@dataclass(frozen=True, eq=False)
class Representations:
    """LightFM reduced to what ranking needs: ``user @ item.T + item_bias``."""

    users: np.ndarray
    items: np.ndarray
    item_biases: np.ndarray
    user_feature_embeddings: np.ndarray | None  # for cold users; None for identity-only models

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.users[rows] @ self.items.T + self.item_biases


def representations(model: LightFM, data: InteractionData, params: Mapping[str, Any]
                    ) -> Representations:
    user_features, item_features = _features(data, params)
    _, users = model.get_user_representations(user_features)
    item_biases, items = model.get_item_representations(item_features)
    feature_emb = (np.asarray(model.user_embeddings, dtype=np.float32)
                   if user_features is not None else None)
    return Representations(np.asarray(users, dtype=np.float32),
                           np.asarray(items, dtype=np.float32),
                           np.asarray(item_biases, dtype=np.float32), feature_emb)


def cold_attribute_rows(ids: np.ndarray, customers: pd.DataFrame | None) -> pd.DataFrame:
    """Attribute rows for ``ids`` from the customers table (bare ids when there is none)."""
    if customers is None:
        return pd.DataFrame({"customer_id": ids})
    table = customers.drop_duplicates("customer_id").set_index("customer_id")
    return table.reindex(pd.Index(ids, name="customer_id")).reset_index()


def cold_vectors(reps: Representations, data: InteractionData, attribute_rows: pd.DataFrame
                 ) -> np.ndarray:
    if reps.user_feature_embeddings is None:
        return np.zeros((len(attribute_rows), reps.items.shape[1]), dtype=np.float32)
    return np.asarray(cold_user_features(data, attribute_rows) @ reps.user_feature_embeddings,
                      dtype=np.float32)


__all__ = [
    "WEIGHTED_LOSSES",
    "Representations",
    "cold_attribute_rows",
    "cold_vectors",
    "fit_lightfm",
    "representations",
]
