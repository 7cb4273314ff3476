"""Recommender evaluation: a model against trivial baselines on the window after its fit date.

:func:`evaluate` scores the model and the popularity and repeat baselines on the same users
with the same metrics, plus cold-start customers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.models.ranking_metrics import evaluate_ranking, list_lengths
from tailor.models.recommender_lightfm import cold_attribute_rows
from tailor.models.recommender_model import RecommenderModel
from tailor.models.recommender_signals import holdout, repeat_matrix

DECAY_HALF_LIFE_DAYS = 90.0  # of the personal decayed-frequency baseline


class _Scorer:
    """Score-row callables for :func:`evaluate_ranking` (model parts and baselines)."""

    def __init__(self, model: RecommenderModel, counts: sp.csr_matrix,
                 decay: sp.csr_matrix) -> None:
        self.model = model
        self.counts = counts
        self.decay = decay

    def lightfm(self, rows: np.ndarray) -> np.ndarray:
        return self.model.scorer.lightfm_scores(self.model.user_embeddings[rows])

    def popularity(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.model.popularity, (len(rows), len(self.model.item_ids)))

    def repeat(self, rows: np.ndarray) -> np.ndarray:
        """The strongest trivial baseline: the customer's own products by distinct orders, ties
        broken and the list topped up by recent popularity."""
        return self.counts[rows].toarray() + 0.5 * self.popularity(rows)

    def decayed(self, rows: np.ndarray) -> np.ndarray:
        """Personal frequency with time decay (orders weighted 0.5^(age / 90 days)), topped up
        by popularity."""
        return self.decay[rows].toarray() + 1e-3 * self.popularity(rows)


def evaluate(
    model: RecommenderModel,
    transactions: pd.DataFrame,
    horizon_days: int,
    customers: pd.DataFrame | None = None,
    k: int | Sequence[int] | None = None,
    with_auc: bool = True,
) -> dict[str, float]:
    """Metrics on ``[model.as_of, model.as_of + horizon_days)``; see module docstring.

    Known customers (bought before as_of, >= 1 purchase in the window): ``precision_at_k``,
    ``recall_at_k``, ``ndcg_at_k``, ``map_at_k``, ``auc``, ``catalogue_coverage``; the same with
    prefixes ``blend_`` (without the learned ranker, when it has one), ``lightfm_`` (LightFM
    alone), ``baseline_popularity_``, ``baseline_repeat_`` (own products by orders, ties broken
    by popularity: the strongest trivial baseline), ``baseline_decayed_frequency_``; every
    group also has ``new_item_share_at_k`` (recommended products the customer never bought).
    Cold customers (first purchase in the window), scored from attributes alone: ``cold_*``,
    ``baseline_popularity_cold_*`` and ``baseline_random_cold_precision_at_k`` (expected).
    ``k`` may be several list lengths (each metric is then named for each; see
    :func:`tailor.models.ranking_metrics.evaluate_ranking`).
    """
    k = model.k if k is None else k
    truth = holdout(transactions, model.as_of, horizon_days, model.user_ids, model.item_ids)
    if not (truth.n_relevant > 0).any():
        raise ValueError(f"evaluate: no known customer bought anything in the {horizon_days} "
                         f"days after {model.as_of}")
    exclude = model.repeat if model.exclude_purchased else None
    counts = repeat_matrix(transactions, model.as_of, model.user_ids, model.item_ids, None)
    decay = repeat_matrix(transactions, model.as_of, model.user_ids, model.item_ids,
                          DECAY_HALF_LIFE_DAYS)
    scorer = _Scorer(model, counts, decay)
    common = {"truth": truth.truth, "k": k, "exclude": exclude, "n_relevant": truth.n_relevant,
              "purchased": counts, "with_auc": with_auc}
    metrics = evaluate_ranking(model.score_known, **common)
    if model.ranked is not None:
        metrics |= evaluate_ranking(model.without_ranker().score_known, prefix="blend_",
                                    **common)
    metrics |= evaluate_ranking(scorer.lightfm, prefix="lightfm_", **common)
    metrics |= evaluate_ranking(scorer.popularity, prefix="baseline_popularity_", **common)
    metrics |= evaluate_ranking(scorer.repeat, prefix="baseline_repeat_", **common)
    metrics |= evaluate_ranking(scorer.decayed, prefix="baseline_decayed_frequency_", **common)
    metrics["n_eval_users"] = float((truth.n_relevant > 0).sum())
    metrics["n_cold_users"] = float(len(truth.cold_ids))
    if len(truth.cold_ids):
        rows = cold_attribute_rows(truth.cold_ids, customers)
        vectors = model.cold_vectors(rows)
        cold = {"truth": truth.cold_truth, "k": k, "n_relevant": truth.cold_n_relevant,
                "with_auc": with_auc}
        metrics |= evaluate_ranking(lambda r: model.score_cold(vectors[r]), prefix="cold_",
                                    **cold)
        metrics |= evaluate_ranking(scorer.popularity, prefix="baseline_popularity_cold_",
                                    **cold)
        known = np.diff(truth.cold_truth.indptr)[truth.cold_n_relevant > 0]
        expected = float(np.mean(known / len(model.item_ids)))
        for at in list_lengths(k):
            metrics[f"baseline_random_cold_precision_at_{at}"] = expected
    return metrics


__all__ = [
    "DECAY_HALF_LIFE_DAYS",
    "evaluate",
]
