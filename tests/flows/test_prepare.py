"""The prepare-data flow on generated data, run by Prefect (temporary local API)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailor.configs import load_settings
from tailor.data.generate import generate, write_generated
from tailor.flows.prepare import prepare_data


@pytest.mark.usefixtures("prefect_harness")
def test_prepare_flow_quarantines_and_writes_features(tmp_path: Path) -> None:
    settings = load_settings(overrides=["generate.customers=300", "generate.products=100"])
    data = generate(settings.generate)
    write_generated(data, tmp_path / "data")
    summary = prepare_data(str(tmp_path / "data"), str(tmp_path / "out"), "2024-06-01",
                           overrides=["features.horizon_days=60"])
    messy = data.truth["messy"]["rule"].value_counts()
    assert summary["as_of"] == "2024-06-01"
    assert summary["rows_read"] == summary["rows_accepted"] + int(messy.sum())
    quarantined = summary["rows_quarantined"]
    assert {k.split(".", 1)[1]: v for k, v in quarantined.items()
            if k.startswith("transactions.")} == messy.to_dict()
    # customers who never bought (the generator has them) are quarantined as no_transactions
    lines = data.dataset.transactions
    accepted = ~np.isin(np.arange(1, len(lines) + 1), data.truth["messy"]["_source_row"])
    buyers = lines.loc[accepted, "customer_id"].astype(str)
    never = int((~data.dataset.customers["customer_id"].astype(str).isin(buyers)).sum())
    assert never > 0
    assert {k: v for k, v in quarantined.items() if not k.startswith("transactions.")} == {
        "customers.no_transactions": never}
    features = pd.read_parquet(summary["features_path"]).set_index("customer_id")
    assert len(features) == summary["customers"] > 0
    assert (features["recency_days"] > 0).all()  # nothing on or after as_of was used
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine" / "transactions.parquet")
    assert len(quarantine) == int(messy.sum())
