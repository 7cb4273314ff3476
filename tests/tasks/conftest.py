"""Fixtures for tracked training: a private MLflow store and Optuna storage per test module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from configs import Settings, load_settings
from models.features import customer_features, default_as_of
from tailor.data.generate import GeneratedData, generate


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


def tracked_settings(store: Path, *overrides: str) -> Settings:
    return load_settings(overrides=[
        f"tracking.mlflow_tracking_uri=sqlite:///{store / 'mlflow.db'}",
        f"tracking.optuna_storage=sqlite:///{store / 'optuna.db'}",
        *overrides,
    ])


@pytest.fixture(scope="session")
def small_retailer() -> GeneratedData:
    """A small generated retailer (fast) with known segments, churn times and tastes."""
    settings = load_settings(overrides=["generate.customers=700", "generate.products=150",
                                        "generate.messy_share=0"])
    return generate(settings.generate)


@pytest.fixture(scope="session")
def small_features(small_retailer: GeneratedData) -> pd.DataFrame:
    tx = small_retailer.dataset.transactions
    settings = load_settings()
    return customer_features(tx, default_as_of(tx), settings.features,
                             customers=small_retailer.dataset.customers,
                             products=small_retailer.dataset.products)


def predict_in_fresh_process(model_uri: str, tracking_uri: str, frame: pd.DataFrame,
                             tmp_path: Path) -> pd.DataFrame:
    """Load ``model_uri`` with mlflow.pyfunc in a new Python process and predict ``frame``."""
    inp, out = tmp_path / "input.parquet", tmp_path / "output.parquet"
    frame.to_parquet(inp)
    code = (
        "import sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({tracking_uri!r}); mlflow.set_registry_uri({tracking_uri!r})\n"
        f"model = mlflow.pyfunc.load_model({model_uri!r})\n"
        f"pd.DataFrame(model.predict(pd.read_parquet({str(inp)!r}))).to_parquet({str(out)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    return pd.read_parquet(out)
