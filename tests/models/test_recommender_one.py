"""``recommend_one`` (the serving path for one customer) answers exactly what ``recommend`` does."""

from __future__ import annotations

import numpy as np
import pytest

from tailor.models.recommender_model import RecommenderModel

from . import test_recommender

# the small model fitted on generated data in test_recommender (module-scoped fixtures)
generated, settings, fitted = (test_recommender.generated, test_recommender.settings,
                               test_recommender.fitted)


def _spread(model: RecommenderModel, n: int = 12) -> list[str]:
    """Known customers from the whole id range, not only the first rows."""
    at = np.linspace(0, len(model.user_ids) - 1, n).astype(int)
    return [str(model.user_ids[i]) for i in at]


@pytest.mark.parametrize("ranker", [True, False], ids=["with-ranker", "blend-only"])
@pytest.mark.parametrize(("k", "exclude"), [(1, None), (5, None), (10, True), (10, False),
                                            (None, None)])
def test_recommend_one_is_recommend_for_that_customer(
        fitted: tuple[RecommenderModel, dict], ranker: bool, k: int | None,
        exclude: bool | None) -> None:
    model = fitted[0] if ranker else fitted[0].without_ranker()
    if ranker:
        assert model.ranked is not None, "the fixture model should carry a ranker"
    for customer in _spread(model):
        one = model.recommend_one(customer, k=k, exclude_purchased=exclude)
        batch = model.recommend([customer], k=k, exclude_purchased=exclude)
        assert one is not None
        assert one.product_ids.tolist() == batch["product_id"].tolist(), customer
        np.testing.assert_array_equal(one.scores, batch["score"].to_numpy())
        assert one.scores.dtype == np.float64 and len(one.scores) == (k or model.k)


def test_recommend_one_matches_a_many_customer_batch(
        fitted: tuple[RecommenderModel, dict]) -> None:
    model, _ = fitted
    ids = _spread(model, 20)
    batch = model.recommend(ids, k=6)
    for customer, rows in batch.groupby("customer_id", sort=False):
        one = model.recommend_one(str(customer), k=6)
        assert one is not None
        assert one.product_ids.tolist() == rows["product_id"].tolist(), customer
        np.testing.assert_allclose(one.scores, rows["score"].to_numpy(), rtol=1e-6)


def test_recommend_one_excludes_purchases_and_knows_nobody_new(
        fitted: tuple[RecommenderModel, dict]) -> None:
    model, _ = fitted
    row = int(np.argmax(np.diff(model.repeat.indptr)))  # the customer with most products bought
    customer = str(model.user_ids[row])
    bought = set(model.item_ids[model.repeat[row].indices])
    assert len(bought) > 10 and len(model.item_ids) - len(bought) >= 10
    kept = model.recommend_one(customer, k=10, exclude_purchased=True)
    allowed = model.recommend_one(customer, k=10, exclude_purchased=False)
    assert kept is not None and allowed is not None
    assert not bought & set(kept.product_ids) and bought & set(allowed.product_ids)
    assert np.isfinite(kept.scores).all()
    assert list(kept.scores) == sorted(kept.scores, reverse=True)
    assert model.recommend_one("nobody-like-this") is None
