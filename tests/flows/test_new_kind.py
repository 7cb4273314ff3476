"""The extension point: a fourth model kind, added through one module and one spec entry, is
trained, gated, promoted and scored by the product's own flows, with nothing else changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tailor import kinds
from tailor.configs import ConfigError, load_settings
from tailor.data.generate import generate, write_generated
from tailor.flows.score import score_customers
from tailor.flows.train import train_models

from .popularity_kind import COLUMN, SPEC


@pytest.fixture
def popularity_kind() -> Iterator[str]:
    kinds.register(SPEC)
    try:
        yield SPEC.kind
    finally:
        kinds.unregister(SPEC.kind)


def test_settings_refuse_an_unregistered_kind() -> None:
    with pytest.raises(ConfigError, match="unknown model kind 'popularity'"):
        load_settings(overrides=["serving.models=[segmentation, popularity]"])


@pytest.mark.usefixtures("prefect_harness")
def test_a_new_kind_is_trained_gated_and_scored(tmp_path: Path, popularity_kind: str) -> None:
    store = tmp_path / "store"
    overrides = [f"tracking.mlflow_tracking_uri=sqlite:///{store / 'mlflow.db'}",
                 f"tracking.optuna_storage=sqlite:///{store / 'optuna.db'}",
                 "segmentation.n_trials=2", "segmentation.exhaustive_limit=0",
                 "promotion.margin.popularity=0.0"]
    settings = load_settings(overrides=[*overrides, "generate.customers=300",
                                        "generate.products=80"])
    assert settings.serving.models[-1] == popularity_kind  # defaults follow the registry
    write_generated(generate(settings.generate), tmp_path / "data")

    summary = train_models(str(tmp_path / "data"), str(tmp_path / "out"),
                           models=["segmentation", popularity_kind], overrides=overrides)
    row = {r["model"]: r for r in summary["models"]}[popularity_kind]
    assert row["version"] == "1" and row["promoted"], row
    assert row["gate_metric"] == "holdout_precision_at_5"
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("tailor-popularity", "champion")
    assert str(champion.version) == "1"
    assert champion.tags["tailor.gate.promote"] == "True"

    out = tmp_path / "scores.parquet"
    scored = score_customers(str(tmp_path / "data"), str(out), overrides=overrides,
                             snapshot_dir=str(tmp_path / "snapshot"))
    assert scored["model_versions"][popularity_kind] == "1"
    table = pd.read_parquet(out)
    assert {COLUMN, "popularity_version", "segment"} <= set(table.columns)
    lists = table[COLUMN].map(list)
    assert lists.map(len).eq(5).all()  # every customer gets the five best sellers
    assert lists.map(tuple).nunique() == 1
    assert table["popularity_version"].eq("1").all()
