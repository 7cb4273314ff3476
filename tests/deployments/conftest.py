"""The serving API's world, shared by the ``test_api_*`` modules: a real trained registry
(sqlite MLflow store) and a real snapshot.

One session-scoped world (it takes ~40 s to build, so it is built once per test session, or
once per xdist worker): generated data, the three models trained with tiny trial counts and
promoted, and the serving snapshot written by the score flow's writer. Tests that move aliases
put the champion back where they found it. ``api`` is a module-scoped client of the world's
app; the helpers below compute expected answers and move aliases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from tailor import kinds
from tailor.adapters import registry
from tailor.adapters.pyfunc import log_predictor
from tailor.adapters.score_output import write_snapshot
from tailor.adapters.tracking import client_for, ensure_experiment
from tailor.adapters.training import train_model
from tailor.configs import Settings, load_settings
from tailor.data.generate import generate
from tailor.deployments.api.app import create_app
from tailor.models.features import customer_features, default_as_of

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TINY = ["generate.customers=400", "generate.products=100", "generate.messy_share=0",
        "segmentation.n_trials=1", "segmentation.k_max=4", "segmentation.n_init=2",
        "segmentation.stability_resamples=2", "recommender.n_trials=1",
        "recommender.max_epochs=3", "recommender.max_eval_users=100", "churn.n_trials=1",
        "churn.families=[logistic]", "churn.importance_repeats=1",
        "churn.calibration_methods=[sigmoid]"]


@dataclass(frozen=True)
class World:
    root: Path
    settings: Settings
    client: MlflowClient
    features: pd.DataFrame
    customers: pd.DataFrame
    as_of: pd.Timestamp

    def with_(self, *overrides: str) -> Settings:
        return settings_for(self.root, *overrides)


def settings_for(root: Path, *overrides: str) -> Settings:
    return load_settings(overrides=[
        f"tracking.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"tracking.optuna_storage=sqlite:///{root / 'optuna.db'}",
        f"serving.snapshot_dir={root / 'snapshot'}", f"serving.admin_token={TOKEN}",
        "serving.reload_interval_s=null", *TINY, *overrides])


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("serving")
    settings = settings_for(root)
    data = generate(settings.generate).dataset
    as_of = default_as_of(data.transactions)
    features = customer_features(data.transactions, as_of, settings.features,
                                 customers=data.customers, products=data.products)
    client = client_for(settings.tracking)
    # trained a few weeks before the snapshot (weekly retrain, daily scoring): customers who
    # first bought since then are in the snapshot but new to the recommender (cold start)
    trained_as_of = as_of - pd.Timedelta(days=21)
    for result in (train_model(kinds.get(kind), settings, data, trained_as_of, kind[:5], "fp")
                   for kind in ("segmentation", "recommender", "churn")):
        registry.promote(client, result.kind, result.version, actor="test", reason="setup")
    write_snapshot(root / "snapshot", features, data.customers,
                   {"as_of": as_of.date().isoformat(), "customers": len(features)})
    return World(root, settings, client, features, data.customers, as_of)


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.settings)) as client:
        yield client


def served(api: TestClient, kind: str) -> Any:
    """The predictor object the app serves now (to compute expected answers independently)."""
    return api.app.state.runtime.state.models[kind].predictor  # type: ignore[attr-defined]


def known_and_cold_ids(api: TestClient, world: World) -> tuple[str, str]:
    """A customer the recommender was trained on, and a snapshot customer it never saw."""
    rec = served(api, "recommender")
    ids = world.features.index.astype(str).to_numpy(dtype=object)
    seen = rec.known(ids)
    assert seen.any() and (~seen).any(), "the world needs both kinds of customers"
    return str(ids[seen][0]), str(ids[~seen][0])


def new_version(world: World, predictor: Any) -> str:
    """Register ``predictor`` as a new version of tailor-recommender (a real logged pyfunc)."""
    experiment = ensure_experiment(world.client, "serving-test",
                                   (world.root / "serving-test-artifacts").as_uri())
    run_id = world.client.create_run(experiment).info.run_id
    example = pd.DataFrame({"customer_id": [str(predictor.user_ids[0])]})
    logged = log_predictor(world.client, run_id, predictor, example,
                           registered_model_name="tailor-recommender")
    world.client.set_terminated(run_id)
    assert logged.version is not None
    return logged.version


def champion(world: World, kind: str = "recommender") -> str:
    version = registry.alias_version(world.client, f"tailor-{kind}", "champion")
    assert version is not None
    return version


def promote(world: World, version: str, kind: str = "recommender") -> None:
    registry.promote(world.client, kind, version, actor="test", reason="serving test")
