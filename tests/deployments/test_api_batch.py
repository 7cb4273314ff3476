"""The serving API's batch recommendations (POST /recommendations): known ids and cold attribute
rows mixed, unknown ids, malformed bodies and the configured batch size."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tailor.deployments.api.app import create_app

from .conftest import World, known_and_cold_ids, served

# --- batch -----------------------------------------------------------------------------------

def test_batch_mixes_known_ids_and_cold_attribute_rows(api: TestClient, world: World) -> None:
    known, cold = known_and_cold_ids(api, world)
    new = {"region": "north", "channel": "app", "age_band": "25-34", "recency_days": 12,
           "frequency": 3.0, "favourite_colour": "blue"}
    body = {"customers": [{"customer_id": known}, {"customer_id": "brand-new", "attributes": new},
                          {"customer_id": cold}, {"customer_id": known}], "k": 5}
    response = api.post("/recommendations", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["customer_id"] for r in results] == [known, "brand-new", cold, known]
    assert [r["source"] for r in results] == ["history", "attributes", "attributes", "history"]
    rec = served(api, "recommender")
    assert [i["product_id"] for i in results[0]["items"]] == \
        rec.recommend([known], k=5)["product_id"].tolist()
    assert results[3] == results[0]
    expected = rec.recommend_cold(pd.DataFrame([{"customer_id": "brand-new", **new}]), k=5)
    assert [i["product_id"] for i in results[1]["items"]] == expected["product_id"].tolist()
    assert results[1]["ignored_attributes"] == ["favourite_colour"]


def test_batch_with_an_unknown_id_and_no_attributes_is_a_404(api: TestClient,
                                                            world: World) -> None:
    known, _ = known_and_cold_ids(api, world)
    response = api.post("/recommendations", json={"customers": [{"customer_id": known},
                                                                {"customer_id": "ghost-1"}]})
    assert response.status_code == 404
    assert "ghost-1" in response.json()["detail"]


@pytest.mark.parametrize(("body", "loc"), [
    ({"customers": []}, ["body", "customers"]),
    ({}, ["body", "customers"]),
    ({"customers": [{"id": "x"}]}, ["body", "customers", 0, "customer_id"]),
    ({"customers": [{"customer_id": "x", "attributes": {"region": {"a": 1}}}]},
     ["body", "customers", 0, "attributes", "region"]),
    ({"customers": [{"customer_id": "x"}], "k": -1}, ["body", "k"]),
    ({"customers": [{"customer_id": "x"}], "colour": "red"}, ["body", "colour"]),
])
def test_malformed_batch_is_a_422_naming_the_field(api: TestClient, body: dict,
                                                   loc: list) -> None:
    response = api.post("/recommendations", json=body)
    assert response.status_code == 422
    locs = [e["loc"][:len(loc)] for e in response.json()["detail"]]
    assert loc in locs, locs


def test_batch_larger_than_configured_is_a_422(world: World) -> None:
    app = create_app(world.with_("serving.max_batch=2"))
    with TestClient(app) as client:
        body = {"customers": [{"customer_id": str(i)} for i in range(3)]}
        response = client.post("/recommendations", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "customers"]
