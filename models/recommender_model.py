"""The fitted recommender as a small picklable predictor; it scores through
:class:`tailor.inference.RecommenderScorer`, the code a logged version runs without tailor.

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

from tailor.inference import ModelState, RecommenderScorer, minmax_rows
from tailor.models.interactions import ColumnEncoding


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

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_scorer"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._index = pd.Index(self.user_ids)

    @property
    def scorer(self) -> RecommenderScorer:
        """The inference code a logged version runs (tailor.inference), over these arrays."""
        scorer = self.__dict__.get("_scorer")
        if scorer is None:
            w = self.weights
            scorer = RecommenderScorer(
                self.k, self.exclude_purchased,
                {"lightfm": w.lightfm, "repeat": w.repeat, "popularity": w.popularity,
                 "cold_lightfm": w.cold_lightfm},
                self.user_ids, self.item_ids, self.user_embeddings, self.item_embeddings,
                self.item_biases, self.repeat, self.popularity, self.user_feature_embeddings,
                self.user_feature_names,
                tuple((e.column, e.prefix, e.edges) for e in self.user_encodings), self.ranked)
            self.__dict__["_scorer"] = scorer
        return scorer

    def inference_state(self) -> ModelState:
        """This model as the data a logged version holds (loads without tailor)."""
        s = self.scorer
        state = ModelState("recommender", {
            "k": self.k, "exclude_purchased": self.exclude_purchased, "weights": s.weights,
            "encodings": [[c, p, None if e is None else [float(x) for x in e]]
                          for c, p, e in s.encodings],
            "as_of": self.as_of.isoformat()}, {
            "user_ids": self.user_ids, "item_ids": self.item_ids,
            "user_embeddings": self.user_embeddings, "item_embeddings": self.item_embeddings,
            "item_biases": self.item_biases, "popularity": self.popularity,
            "user_feature_names": self.user_feature_names})
        if self.user_feature_embeddings is not None:
            state.arrays["user_feature_embeddings"] = self.user_feature_embeddings
        state.put_sparse("repeat", self.repeat)
        state.put_sparse("ranked", self.ranked)
        return state

    def serving_params(self) -> dict[str, object]:
        """The options a caller may pass per request, with this model's defaults."""
        return {"k": self.k, "exclude_purchased": self.exclude_purchased}

    # -- scoring -------------------------------------------------------------------------------
    def score_known(self, rows: np.ndarray) -> np.ndarray:
        """Blended scores (len(rows) x items) for user positions ``rows``."""
        return self.scorer.score_known(rows)

    def without_ranker(self) -> RecommenderModel:
        """The same model ranking by the blend alone (to measure what the ranker adds)."""
        return replace(self, ranked=None)

    def cold_vectors(self, attribute_rows: pd.DataFrame) -> np.ndarray:
        """LightFM user representations built from attribute columns alone."""
        return self.scorer.cold_vectors(attribute_rows)

    def score_cold(self, vectors: np.ndarray) -> np.ndarray:
        """Blended scores for cold users: LightFM from features + popularity (no repeat)."""
        return self.scorer.score_cold(vectors)

    # -- public API ----------------------------------------------------------------------------
    def known(self, customer_ids: pd.Series | np.ndarray | list[str]) -> np.ndarray:
        """Boolean mask: which ids the model has seen (bought before ``as_of``)."""
        return self._index.get_indexer(np.asarray(customer_ids, dtype=object)) >= 0

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
        return self.scorer.recommend(ids, k, exclude_purchased)

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
        top, scores = self.scorer.top_known(np.array([row]), k, exclude_purchased)
        best = top[0]
        return Ranked(self.item_ids[best], scores[0, best].astype(np.float64))

    def recommend_cold(self, attribute_rows: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
        """Top-k for unseen customers from their attribute columns (``customer_id`` column or
        index gives the id in the output; other columns as in the customers table)."""
        return self.scorer.recommend_cold(attribute_rows, k)

    def predict(self, frame: pd.DataFrame, k: int | None = None,
                exclude_purchased: bool | None = None) -> pd.DataFrame:
        """pyfunc entry point: rows with a known ``customer_id`` get :meth:`recommend`, the others
        :meth:`recommend_cold` from whatever attribute columns the frame carries (a frame
        without ``customer_id`` is an InferenceError, a ValueError)."""
        return self.scorer.predict(frame, k, exclude_purchased)


__all__ = ["BlendWeights", "Ranked", "RecommenderModel", "minmax_rows"]
