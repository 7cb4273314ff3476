"""The seeded customer sample that bounds the recommender's tuning and ranker training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailor.configs.schema import GenerateSettings, Settings
from tailor.data.generate import generate
from tailor.models.customer_sample import customers_sample, sample_ids
from tailor.models.recommender import validation_split


def _lines(customers: int, per_customer: int = 3) -> pd.DataFrame:
    ids = np.repeat([f"c{n:04d}" for n in range(customers)], per_customer)
    return pd.DataFrame({"customer_id": ids, "line": np.arange(len(ids))})


def test_no_sample_when_there_are_few_enough_customers() -> None:
    lines = _lines(50)
    assert sample_ids(lines["customer_id"], 50, seed=1) is None
    assert sample_ids(lines["customer_id"], None, seed=1) is None
    assert customers_sample(lines, 50, seed=1) is lines


def test_sample_keeps_every_line_of_exactly_that_many_customers() -> None:
    lines = _lines(500)
    part = customers_sample(lines, 120, seed=1)
    assert part["customer_id"].nunique() == 120
    assert part.groupby("customer_id").size().eq(3).all()


def test_same_seed_same_customers_whatever_the_row_order() -> None:
    lines = _lines(500)
    shuffled = lines.sample(frac=1.0, random_state=9)
    first = sample_ids(lines["customer_id"], 100, seed=4)
    assert list(first) == list(sample_ids(shuffled["customer_id"], 100, seed=4))
    assert list(first) != list(sample_ids(lines["customer_id"], 100, seed=5))
    assert list(first) == sorted(first)


@pytest.mark.parametrize("cap", [None, 150])
def test_tuning_split_covers_at_most_the_capped_customers(cap: int | None) -> None:
    ds = generate(GenerateSettings(customers=600, products=120, days=400, messy_share=0.0,
                                   seed=3)).dataset
    settings = Settings()
    rec = settings.recommender.model_copy(update={"tuning_max_customers": cap})
    as_of = ds.transactions["timestamp"].max().normalize()
    inputs, truth = validation_split(ds.transactions, as_of, settings.features, rec,
                                     ds.customers, ds.products)
    seen = len(inputs.data.user_ids) + len(truth.cold_ids)
    everyone = ds.transactions.loc[ds.transactions["timestamp"] < as_of, "customer_id"]
    if cap is None:
        assert len(inputs.data.user_ids) > 300
    else:
        assert 100 < seen <= cap
    assert seen <= everyone.nunique()
