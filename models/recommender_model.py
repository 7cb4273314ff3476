"""The fitted recommender as a small picklable predictor (what the MLflow pyfunc wraps).

It holds precomputed LightFM representations, not the LightFM object: scoring is one matrix
product per chunk of users plus ``argpartition``, ~15,000 users/s against ~65 users/s for
``LightFM.predict`` per user. Final score per (customer, item)::

    w_lightfm * minmax_row(user_emb @ item_emb.T + item_bias)
    + w_repeat * repeat / max(repeat of the customer)
    + w_popularity * popularity
    + ranked (the learned ranker's best candidates of the customer, 10 + a score in (0, 1])

(the user bias is constant per row, so it cannot change a ranking and is left out). With a
ranker, a known customer's list is their ranked candidates first, in the ranker's order, then
the blend's; cold customers get LightFM from attributes + popularity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.models.interactions import ColumnEncoding, InteractionData, cold_user_features
from tailor.models.ranking_metrics import chunks, mask_rows, top_k


@dataclass(frozen=True)
class BlendWeights:
    """How LightFM, the customer's own repeat score and popularity are combined."""

    lightfm: float = 0.1
    repeat: float = 1.0
    popularity: float = 0.1
    repeat_half_life_days: float | None = None
    #: cold customers (no history): LightFM-from-attributes weight, popularity weight being 1
    cold_lightfm: float = 1.0

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


class Ranked(NamedTuple):
    """One customer's top-k, best first (rank = position + 1)."""

    product_ids: np.ndarray  # object
    scores: np.ndarray  # float64


def minmax_rows(scores: np.ndarray) -> np.ndarray:
    """Each row mapped to [0, 1] (constant rows to 0) so LightFM's scale cannot swamp the blend."""
    low = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - low
    return np.divide(scores - low, span, out=np.zeros_like(scores), where=span > 0)


def _empty_interaction_data(feature_names: np.ndarray,
                            encodings: tuple[ColumnEncoding, ...]) -> InteractionData:
    """Just enough of an InteractionData for :func:`cold_user_features` (names + encodings)."""
    empty = sp.coo_matrix((0, 0), dtype=np.float32)
    return InteractionData(
        interactions=empty, weights=empty, user_features=sp.csr_matrix((0, 0)),
        item_features=sp.csr_matrix((0, 0)), user_ids=np.array([], dtype=object),
        item_ids=np.array([], dtype=object), user_feature_names=feature_names,
        item_feature_names=np.array([], dtype=object), user_encodings=encodings)


@dataclass(eq=False)
class RecommenderModel:
    """Top-k recommendations for known customers (by id) and cold ones (by attributes)."""

    as_of: pd.Timestamp
    k: int
    exclude_purchased: bool
    weights: BlendWeights
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_embeddings: np.ndarray  # users x d (float32)
    item_embeddings: np.ndarray  # items x d (float32)
    item_biases: np.ndarray  # items (float32)
    repeat: sp.csr_matrix  # users x items, rows scaled to max 1 (also marks purchased items)
    popularity: np.ndarray  # items, in [0, 1]
    #: user-feature embeddings for cold users (None when the model used identity features only)
    user_feature_embeddings: np.ndarray | None = None
    user_feature_names: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    user_encodings: tuple[ColumnEncoding, ...] = ()
    params: dict[str, object] = field(default_factory=dict)
    #: users x items: each known customer's best candidates by the learned ranker, valued above
    #: any blend score (models/recommender_ranker.py); None: the blend alone ranks
    ranked: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        self._index = pd.Index(self.user_ids)

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._index = pd.Index(self.user_ids)

    # -- scoring -------------------------------------------------------------------------------
    def _lightfm(self, user_vectors: np.ndarray) -> np.ndarray:
        return user_vectors @ self.item_embeddings.T + self.item_biases

    def score_known(self, rows: np.ndarray) -> np.ndarray:
        """Blended scores (len(rows) x items) for user positions ``rows``."""
        w = self.weights
        scores = w.popularity * np.broadcast_to(self.popularity, (len(rows), len(self.item_ids)))
        scores = np.array(scores, dtype=np.float32)
        if w.lightfm:
            scores += w.lightfm * minmax_rows(self._lightfm(self.user_embeddings[rows]))
        if w.repeat:
            scores += w.repeat * self.repeat[rows].toarray()
        if self.ranked is not None:
            scores += self.ranked[rows].toarray()
        return scores

    def without_ranker(self) -> RecommenderModel:
        """The same model ranking by the blend alone (to measure what the ranker adds)."""
        return replace(self, ranked=None)

    def cold_vectors(self, attribute_rows: pd.DataFrame) -> np.ndarray:
        """LightFM user representations built from attribute columns alone."""
        dim = self.item_embeddings.shape[1]
        if self.user_feature_embeddings is None:
            return np.zeros((len(attribute_rows), dim), dtype=np.float32)
        data = _empty_interaction_data(self.user_feature_names, self.user_encodings)
        features = cold_user_features(data, attribute_rows)
        return np.asarray(features @ self.user_feature_embeddings, dtype=np.float32)

    def score_cold(self, vectors: np.ndarray) -> np.ndarray:
        """Blended scores for cold users: LightFM from features + popularity (no repeat)."""
        scores = np.array(np.broadcast_to(self.popularity, (len(vectors), len(self.item_ids))),
                          dtype=np.float32)
        if self.weights.cold_lightfm:
            scores += self.weights.cold_lightfm * minmax_rows(self._lightfm(vectors))
        return scores

    # -- public API ----------------------------------------------------------------------------
    def known(self, customer_ids: pd.Series | np.ndarray | list[str]) -> np.ndarray:
        """Boolean mask: which ids the model has seen (bought before ``as_of``)."""
        return self._index.get_indexer(np.asarray(customer_ids, dtype=object)) >= 0

    def _top_known(self, rows: np.ndarray, k: int | None, exclude_purchased: bool | None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Best-first item positions (len(rows) x k) and the scores they index: the one code
        path of :meth:`recommend` and :meth:`recommend_one`, so both answer alike."""
        exclude = self.exclude_purchased if exclude_purchased is None else exclude_purchased
        scores = self.score_known(rows)
        mask_rows(scores, self.repeat if exclude else None, rows)
        return top_k(scores, self.k if k is None else k), scores

    def _frame(self, ids: np.ndarray, top: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        k = top.shape[1]
        return pd.DataFrame({
            "customer_id": np.repeat(ids, k),
            "rank": np.tile(np.arange(1, k + 1), len(ids)),
            "product_id": self.item_ids[top.ravel()],
            "score": np.take_along_axis(scores, top, axis=1).ravel().astype(np.float64),
        })

    def recommend(self, customer_ids: pd.Series | np.ndarray | list[str], k: int | None = None,
                  exclude_purchased: bool | None = None) -> pd.DataFrame:
        """Top-k per known customer: DataFrame[customer_id, rank (1 = best), product_id, score]."""
        ids = np.asarray(customer_ids, dtype=object)
        rows = self._index.get_indexer(ids)
        if (rows < 0).any():
            unknown = ids[rows < 0]
            raise KeyError(f"recommend: {len(unknown)} customer_id(s) unseen before "
                           f"{self.as_of.date()} (e.g. {list(unknown[:5])}); use recommend_cold "
                           f"with their attribute rows")
        parts = []
        for part in chunks(np.arange(len(rows)), len(self.item_ids)):
            top, scores = self._top_known(rows[part], k, exclude_purchased)
            parts.append(self._frame(ids[part], top, scores))
        return _concat(parts)

    def recommend_one(self, customer_id: str, k: int | None = None,
                      exclude_purchased: bool | None = None) -> Ranked | None:
        """Top-k for one known customer without a DataFrame (the per-request serving path):
        the same items and scores as ``recommend([customer_id])``. None when the customer is
        unseen, so a caller can fall back to :meth:`recommend_cold` without catching."""
        try:
            row = self._index.get_loc(customer_id)
        except KeyError:
            return None
        if not isinstance(row, int | np.integer):  # not a single position: not a known id
            return None
        top, scores = self._top_known(np.array([row]), k, exclude_purchased)
        best = top[0]
        return Ranked(self.item_ids[best], scores[0, best].astype(np.float64))

    def recommend_cold(self, attribute_rows: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
        """Top-k for unseen customers from their attribute columns (``customer_id`` column or
        index gives the id in the output; other columns as in the customers table)."""
        k = self.k if k is None else k
        frame = attribute_rows.reset_index(drop="customer_id" in attribute_rows.columns)
        if "customer_id" not in frame.columns:
            frame = frame.rename(columns={frame.columns[0]: "customer_id"})
        ids = frame["customer_id"].to_numpy(dtype=object)
        parts = []
        for part in chunks(np.arange(len(frame)), len(self.item_ids)):
            scores = self.score_cold(self.cold_vectors(frame.iloc[part]))
            parts.append(self._frame(ids[part], top_k(scores, k), scores))
        return _concat(parts)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """pyfunc entry point: rows with a known ``customer_id`` get :meth:`recommend`, the others
        :meth:`recommend_cold` from whatever attribute columns the frame carries."""
        if "customer_id" not in frame.columns:
            raise ValueError("predict: expected a 'customer_id' column (plus attribute columns "
                             "for customers unseen in training)")
        ids = frame["customer_id"].astype(str).to_numpy(dtype=object)
        seen = self.known(ids)
        parts = []
        if seen.any():
            parts.append(self.recommend(ids[seen]))
        if (~seen).any():
            cold = frame.loc[~seen].assign(customer_id=ids[~seen])
            parts.append(self.recommend_cold(cold))
        return _concat(parts)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({"customer_id": pd.Series(dtype=object),
                             "rank": pd.Series(dtype=np.int64),
                             "product_id": pd.Series(dtype=object),
                             "score": pd.Series(dtype=np.float64)})
    return pd.concat(parts, ignore_index=True)


__all__ = ["BlendWeights", "Ranked", "RecommenderModel", "minmax_rows"]
