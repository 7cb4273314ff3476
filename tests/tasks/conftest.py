"""Fixtures for tracked training: a private MLflow store and Optuna storage per test module."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from sklearn.dummy import DummyRegressor

from tailor.adapters import registry
from tailor.configs import Settings, load_settings
from tailor.data.generate import GeneratedData, generate
from tailor.models.features import customer_features, default_as_of


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


def logged_input_example(client: MlflowClient, run_id: str, tmp_path: Path) -> Path:
    """The input example of the one LoggedModel ``run_id`` produced (its only model output)."""
    outputs = client.get_run(run_id).outputs.model_outputs
    assert len(outputs) == 1, outputs
    logged = client.get_logged_model(outputs[0].model_id)
    assert logged.source_run_id == run_id and logged.status == LoggedModelStatus.READY
    return Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"{logged.artifact_location}/input_example.json", dst_path=str(tmp_path),
        tracking_uri=client.tracking_uri))


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


@contextlib.contextmanager
def mlflow_pointed_at(uri: str) -> Iterator[None]:
    """MLflow's global tracking and registry URIs (which loading ``models:/`` URIs goes
    through, and which ``set_tracking_uri`` exports) at ``uri`` for the block, then put back."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        patch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
        patch.setattr(registry_utils, "_registry_uri", registry_utils._registry_uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield


@dataclass(frozen=True)
class RegistryStore:
    """A fresh MLflow store with one logged model that test versions can point to."""

    client: MlflowClient
    source: str
    run_id: str
    experiment: str


@pytest.fixture
def registry_store(tmp_path: Path) -> Iterator[RegistryStore]:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = registry.make_client(uri)
    experiment = client.create_experiment("tailor-churn",
                                          artifact_location=(tmp_path / "art").as_uri())
    with mlflow_pointed_at(uri):
        model = DummyRegressor(strategy="constant", constant=1.0).fit(np.zeros((2, 1)), [0, 1])
        with mlflow.start_run(experiment_id=experiment) as run:
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        yield RegistryStore(client, info.model_uri, run.info.run_id, experiment)
