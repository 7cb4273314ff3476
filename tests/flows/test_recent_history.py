"""What is served knows all history before the scoring date, in the batch table and the API.

Known truth planted in generated data, then the real path: `train-models` (the recommender
registered and promoted), `score-customers` (campaign table and serving snapshot), and the
serving API on that registry and snapshot:

- a known customer buys one unpopular product four times in the last 30 days before D: it leads
  their served recommendations, and a model fit without those purchases does not list it;
- a customer whose first purchases fall in that window is served as known (from history).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tailor.adapters.champions import clear_cache, load_champion
from tailor.adapters.snapshot import published
from tailor.adapters.tracking import client_for
from tailor.configs import load_settings
from tailor.data.dataset import Dataset
from tailor.data.generate import generate
from tailor.data.io import write_dataset
from tailor.deployments.api.app import create_app
from tailor.flows.score import score_customers
from tailor.flows.train import train_models
from tailor.models.features import default_as_of
from tailor.models.recommender import fit_recommender

DAY = pd.Timedelta(days=1)
TINY = ["recommender.n_trials=2", "recommender.max_epochs=3", "recommender.max_eval_users=200"]


@dataclass(frozen=True)
class Planted:
    root: Path
    overrides: list[str]
    as_of: pd.Timestamp
    regular: str  # a customer known long before D, who bought `fresh` 4 times in the last 30 days
    fresh: str
    newcomer: str  # first purchases in the last 30 days, all of `first_buy`
    first_buy: str
    transactions: pd.DataFrame  # without the planted rows


def _orders(customer: str, product: str, days: list[int], as_of: pd.Timestamp,
            prefix: str) -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": [f"{prefix}-{d}" for d in days], "customer_id": customer,
        "product_id": product, "quantity": 1, "unit_price": 5.0,
        "timestamp": [as_of - d * DAY + pd.Timedelta(hours=10) for d in days]})


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    root = tmp_path_factory.mktemp("recent")
    settings = load_settings(overrides=["generate.customers=400", "generate.products=100",
                                        "generate.messy_share=0", "generate.return_share=0"])
    data = generate(settings.generate).dataset
    tx = data.transactions
    as_of = default_as_of(tx)
    before = tx[tx["timestamp"] < as_of - 90 * DAY]
    counts = before.groupby("customer_id")["order_id"].nunique().sort_values(kind="stable")
    regular = str(counts[counts >= 2].index[0])  # known long before D, few orders of anything
    owned = set(tx.loc[tx["customer_id"] == regular, "product_id"])
    popularity = tx.groupby("product_id")["customer_id"].nunique().sort_values()
    fresh = str(next(p for p in popularity.index if p not in owned))
    first_buy = str(popularity.index[len(popularity) // 2])
    newcomer = "newcomer-1"
    rows = pd.concat([
        _orders(regular, fresh, [25, 18, 11, 4], as_of, "plant-regular"),
        _orders(newcomer, first_buy, [28, 14, 7], as_of, "plant-new"),
    ], ignore_index=True).astype({"timestamp": "datetime64[ns]"})
    twin = data.customers[data.customers["customer_id"] == regular]
    customers = pd.concat([data.customers, twin.assign(customer_id=newcomer)],
                          ignore_index=True)
    write_dataset(Dataset(pd.concat([tx, rows], ignore_index=True), customers, data.products),
                  root / "data")
    store = root / "store"
    overrides = [f"tracking.mlflow_tracking_uri=sqlite:///{store / 'mlflow.db'}",
                 f"tracking.optuna_storage=sqlite:///{store / 'optuna.db'}",
                 f"scoring.snapshot_dir={root / 'snapshot'}", *TINY]
    return Planted(root, overrides, as_of, regular, fresh, newcomer, first_buy, tx)


@pytest.mark.usefixtures("prefect_harness")
def test_recent_purchases_and_new_customers_reach_batch_and_api(planted: Planted) -> None:
    summary = train_models(str(planted.root / "data"), str(planted.root / "out"),
                           models=["recommender"], overrides=planted.overrides)
    assert summary["as_of"] == planted.as_of.date().isoformat()
    (row,) = summary["models"]
    assert row["promoted"], row
    out = planted.root / "scores.parquet"
    scored = score_customers(str(planted.root / "data"), str(out),
                             overrides=planted.overrides)
    assert scored["models_fit_before"]["recommender"] == planted.as_of.date().isoformat()

    scores = pd.read_parquet(out).set_index("customer_id")
    assert scores.loc[planted.regular, "recommendations"][0] == planted.fresh
    assert scores.loc[planted.newcomer, "recommendations"][0] == planted.first_buy

    # the served model knows both from history; without the planted rows it would not
    settings = load_settings(overrides=planted.overrides)
    clear_cache()
    champion = load_champion(client_for(settings.tracking), "recommender")
    assert champion is not None
    served = champion.predictor
    assert served.known([planted.regular, planted.newcomer]).all()
    without = fit_recommender(planted.transactions, planted.as_of, settings.features,
                              settings.recommender, served.params)
    assert not without.known([planted.newcomer]).any()
    top = without.recommend([planted.regular], k=10)["product_id"].tolist()
    assert planted.fresh not in top

    # the snapshot's features show the purchases too
    features = pd.read_parquet(published(planted.root / "snapshot") / "customer_features.parquet")
    features = features.set_index("customer_id")
    assert features.loc[planted.regular, "recency_days"] <= 4
    assert features.loc[planted.newcomer, "frequency"] == 3

    api_settings = load_settings(overrides=[*planted.overrides, "serving.models=[recommender]",
                                            "serving.reload_interval_s=null"])
    with TestClient(create_app(api_settings)) as api:
        for customer, product in ((planted.regular, planted.fresh),
                                  (planted.newcomer, planted.first_buy)):
            answer = api.get(f"/customers/{customer}/recommendations", params={"k": 5})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["source"] == "history"
            assert body["items"][0]["product_id"] == product
