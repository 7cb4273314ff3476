"""What a recommender run sees: its windows, and its inputs strictly before a date.

- :func:`plan` gives a run's windows (:mod:`tailor.models.windows`): the twin is fit before the
  holdout start S, the served model before ``as_of``, and tuning looks only before S.
- :func:`prepare` builds point-in-time inputs (interactions + user/item features via
  :func:`tailor.models.interactions.build_interactions`, popularity) strictly before a date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.configs.schema import FeatureSettings, RecommenderSettings
from tailor.models.features import customer_features, history
from tailor.models.interactions import InteractionData, build_interactions
from tailor.models.recommender_signals import popularity, repeat_matrix, row_max_normalise
from tailor.models.windows import InsufficientHistoryError, Windows, plan_windows

# -- windows -----------------------------------------------------------------------------------
MIN_PRODUCTS = 2


def plan(transactions: pd.DataFrame, as_of: pd.Timestamp | str, features: FeatureSettings,
         settings: RecommenderSettings) -> Windows:
    """Windows of a recommender run; the twin's tuning needs training and validation days."""
    products = history(transactions, as_of)
    products = products.loc[products["quantity"] > 0, "product_id"].nunique()
    if products < MIN_PRODUCTS:
        raise InsufficientHistoryError(
            f"recommender: the history before {pd.Timestamp(as_of).date()} has {products} "
            f"product(s); ranking products needs at least {MIN_PRODUCTS}, so there is nothing "
            f"to recommend (segmentation and churn do not need it)")
    windows = plan_windows(
        transactions, as_of, features.horizon_days, model="recommender",
        needs_days=features.min_history_days + settings.min_validation_days,
        needs_rule=(f"the twin's tuning needs features.min_history_days "
                    f"({features.min_history_days}) of training history and "
                    f"recommender.min_validation_days ({settings.min_validation_days}) of "
                    f"validation before the holdout"),
        min_holdout_days=features.min_holdout_days)
    days = validation_days(windows, features, settings)
    if days < settings.validation_days:
        windows = windows.reduced(
            f"recommender tuning validation shortened to {days} days (from "
            f"{settings.validation_days}) to keep features.min_history_days "
            f"({features.min_history_days}) of training history before it")
    return windows


def validation_days(windows: Windows, features: FeatureSettings,
                    settings: RecommenderSettings) -> int:
    """The tuning validation window: ``validation_days``, or what the history before the
    holdout leaves after ``features.min_history_days`` of training history."""
    before = int((windows.holdout_start - windows.first_purchase) / pd.Timedelta(days=1))
    return max(settings.min_validation_days,
               min(settings.validation_days, before - features.min_history_days))


# -- inputs ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RecommenderInputs:
    """Everything known at ``as_of``: LightFM matrices, popularity and the raw history."""

    as_of: pd.Timestamp
    data: InteractionData
    popularity: np.ndarray
    transactions: pd.DataFrame

    def repeat(self, half_life_days: float | None) -> sp.csr_matrix:
        """Repeat score rows scaled to max 1 (see :func:`repeat_matrix`)."""
        return row_max_normalise(repeat_matrix(self.transactions, self.as_of, self.data.user_ids,
                                               self.data.item_ids, half_life_days))


def prepare(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    features: FeatureSettings,
    settings: RecommenderSettings,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    segments: pd.Series | None = None,
) -> RecommenderInputs:
    """Point-in-time inputs: interactions weighted per ``features.interaction_weight``, user
    features (attributes, RFM bins, segment) and item features (category, price band, tokens)."""
    as_of = pd.Timestamp(as_of)
    rfm = customer_features(transactions, as_of, features, customers=customers, products=products)
    data = build_interactions(transactions, as_of, features, customer_features=rfm,
                              customers=customers, products=products, segments=segments)
    if data.interactions.nnz == 0:
        raise ValueError(f"transactions: no purchase line before as_of={as_of}; nothing to learn")
    pop = popularity(transactions, as_of, data.item_ids, settings.popularity_days)
    return RecommenderInputs(as_of, data, pop, transactions)


__all__ = [
    "MIN_PRODUCTS",
    "RecommenderInputs",
    "plan",
    "prepare",
    "validation_days",
]
