"""The serving API's per-customer endpoints: recommendations (known and cold-start customers),
segment, churn and next best action, and their 404/422 answers."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tailor.adapters import registry

from .conftest import World, champion, known_and_cold_ids, served

# --- per-customer endpoints -----------------------------------------------------------------

def test_recommendations_for_a_known_customer_are_the_predictors(api: TestClient,
                                                                  world: World) -> None:
    known, _ = known_and_cold_ids(api, world)
    body = api.get(f"/customers/{known}/recommendations", params={"k": 4}).json()
    expected = served(api, "recommender").recommend([known], k=4)
    assert body["source"] == "history" and body["model_version"] == champion(world)
    assert [i["product_id"] for i in body["items"]] == expected["product_id"].tolist()
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4]
    default = api.get(f"/customers/{known}/recommendations").json()
    assert len(default["items"]) == world.settings.serving.default_k

    # exclude_purchased drops exactly the items the customer bought
    rec = served(api, "recommender")
    row = int(np.flatnonzero(rec.user_ids == known)[0])
    bought = set(rec.item_ids[rec.repeat[row].indices])
    kept = api.get(f"/customers/{known}/recommendations",
                   params={"k": 10, "exclude_purchased": "true"}).json()
    assert bought and not bought & {i["product_id"] for i in kept["items"]}


def test_a_snapshot_customer_the_model_never_saw_gets_a_cold_start(api: TestClient,
                                                                   world: World) -> None:
    _, cold = known_and_cold_ids(api, world)
    body = api.get(f"/customers/{cold}/recommendations", params={"k": 3}).json()
    assert body["source"] == "attributes"
    row = world.customers.astype({"customer_id": str}).set_index("customer_id").loc[[cold]]
    rfm = world.features.loc[[cold], ["recency_days", "frequency", "monetary"]]
    frame = row.join(rfm)
    frame["segment"] = served(api, "segmentation").predict(world.features.loc[[cold]])["segment"]
    expected = served(api, "recommender").recommend_cold(frame, k=3)
    assert [i["product_id"] for i in body["items"]] == expected["product_id"].tolist()


def test_segment_churn_and_next_best_action(api: TestClient, world: World) -> None:
    known, _ = known_and_cold_ids(api, world)
    row = world.features.loc[[known]]
    seg = api.get(f"/customers/{known}/segment").json()
    expected = served(api, "segmentation").predict(row).iloc[0]
    assert (seg["segment"], seg["segment_name"]) == (expected["segment"],
                                                     expected["segment_name"])
    assert seg["snapshot_as_of"] == world.as_of.date().isoformat()

    churn = api.get(f"/customers/{known}/churn").json()
    model = served(api, "churn")
    p = float(model.predict_proba(row)[0])
    assert churn["churn_probability"] == pytest.approx(p)
    assert churn["at_risk"] == (p >= model.threshold)

    # the action is the one batch scoring gives the same customer
    from tailor.models.scoring import score_customers

    models = {k: (champion(world, k), served(api, k)) for k in registry.model_kinds()}
    batch = score_customers(world.features, models, world.settings.scoring, world.customers)
    batch = batch.set_index("customer_id")
    for customer in world.features.index[:25]:
        nba = api.get(f"/customers/{customer}/next-best-action").json()
        assert nba["action"] == batch.loc[customer, "next_best_action"], customer
        products = None if nba["recommendations"] is None else [
            i["product_id"] for i in nba["recommendations"]]
        carries = {r.name: r.with_recommendations for r in world.settings.scoring.actions}
        if carries.get(nba["action"], world.settings.scoring.default_with_recommendations):
            assert products == list(batch.loc[customer, "recommendations"])
        else:
            assert products is None


@pytest.mark.parametrize("endpoint", ["recommendations", "segment", "churn",
                                      "next-best-action"])
def test_unknown_customer_is_a_404_saying_so(api: TestClient, endpoint: str) -> None:
    response = api.get(f"/customers/nobody-like-this/{endpoint}")
    assert response.status_code == 404
    assert "nobody-like-this" in response.json()["detail"]


@pytest.mark.parametrize(("query", "field"), [({"k": 0}, "k"), ({"k": "ten"}, "k"),
                                              ({"k": 10_000}, "k"),
                                              ({"exclude_purchased": "maybe"},
                                               "exclude_purchased")])
def test_malformed_query_is_a_422_naming_the_field(api: TestClient, world: World,
                                                   query: dict, field: str) -> None:
    known, _ = known_and_cold_ids(api, world)
    response = api.get(f"/customers/{known}/recommendations", params=query)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["query", field]]
