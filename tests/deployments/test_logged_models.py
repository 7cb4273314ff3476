"""Each champion is an MLflow 3 logged model that a service loads without tailor.

The world's three champions are checked as a service sees them: a LoggedModel linked to its
training run, a signature whose params carry the serving options, a state that answers exactly as
tailor's own predictor, and a fresh virtualenv holding only the model's ``requirements.txt``
that loads each one by its local path, predicts on its input example and honours ``k``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.models import Model

from tailor import inference
from tailor.adapters.pyfunc import PREDICTOR_ARTIFACT, load_predictor

from .conftest import World, champion

KINDS = ("segmentation", "recommender", "churn")
#: packages a service's environment must not need (the training stack and tailor itself)
TRAINING_ONLY = ("tailor", "lightfm", "optuna", "pymc_marketing", "lightgbm", "prefect")


def _local_model(world: World, kind: str, root: Path) -> Path:
    """The champion's model directory, downloaded as a service would (no tailor involved)."""
    source = world.client.get_model_version_download_uri(f"tailor-{kind}", champion(world, kind))
    return Path(mlflow.artifacts.download_artifacts(
        artifact_uri=source, dst_path=str(root / kind), tracking_uri=world.client.tracking_uri))


@pytest.fixture(scope="module")
def local_models(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("champions")
    return {kind: _local_model(world, kind, root) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_each_version_is_a_logged_model_of_its_run(world: World, kind: str,
                                                   local_models: dict[str, Path]) -> None:
    version = world.client.get_model_version(f"tailor-{kind}", champion(world, kind))
    outputs = world.client.get_run(version.run_id).outputs.model_outputs
    assert len(outputs) == 1, "one logged model per training run"
    logged = world.client.get_logged_model(outputs[0].model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == version.run_id
    # (the sqlite registry keeps no model_id column: the version points at the model's files)
    assert version.source == logged.artifact_location
    assert Model.load(str(local_models[kind])).model_id == logged.model_id
    # the run's holdout metrics are recorded against the model too (the Models tab shows them)
    holdout = {k: v for k, v in world.client.get_run(version.run_id).data.metrics.items()
               if k.startswith("holdout_")}
    assert holdout and {m.key: m.value for m in logged.metrics}.items() >= holdout.items()


def test_recommender_signature_declares_its_serving_params(
        world: World, local_models: dict[str, Path]) -> None:
    params = {p.name: p for p in Model.load(str(local_models["recommender"])).signature.params}
    predictor = load_predictor(world.client, "tailor-recommender", champion(world))
    assert set(params) == {"k", "exclude_purchased"}
    assert params["k"].default == predictor.k
    assert params["exclude_purchased"].default == predictor.exclude_purchased


def _inputs(world: World, kind: str) -> pd.DataFrame:
    if kind == "recommender":
        customers = world.customers.astype(str)
        return pd.concat([customers.head(40), customers.head(3).assign(
            customer_id=["cold-1", "cold-2", "cold-3"])], ignore_index=True)
    return world.features


@pytest.mark.parametrize("kind", KINDS)
def test_logged_state_answers_like_the_trained_predictor(
        world: World, kind: str, local_models: dict[str, Path]) -> None:
    state = inference.ModelState.load(local_models[kind] / "artifacts" / inference.STATE_ARTIFACT)
    scorer = inference.scorer_for(state)
    predictor = load_predictor(world.client, f"tailor-{kind}", champion(world, kind))
    frame = _inputs(world, kind)
    pd.testing.assert_frame_equal(scorer.predict(frame), predictor.predict(frame))
    if kind == "recommender":
        three = scorer.predict(frame, k=3, exclude_purchased=False)
        pd.testing.assert_frame_equal(
            three, predictor.predict(frame, k=3, exclude_purchased=False))
        assert three.groupby("customer_id").size().eq(3).all()


_SERVICE = """
import importlib.util, json, sys
import mlflow
from mlflow.models import Model

found = [m for m in sys.argv[2].split(",") if importlib.util.find_spec(m) is not None]
assert not found, f"importable in the service's env: {found}"
path = sys.argv[1]
model = mlflow.pyfunc.load_model(path)
example = Model.load(path).load_input_example(path)
answers = {"default": model.predict(example)}
if sys.argv[3] == "recommender":
    answers["k3"] = model.predict(example, params={"k": 3})
print(json.dumps({name: frame.to_json(orient="split") for name, frame in answers.items()}))
"""


@pytest.fixture(scope="module")
def service_python(local_models: dict[str, Path],
                   tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv holding only what the models' requirements.txt declare."""
    requirements = {kind: (path / "requirements.txt").read_text().split()
                    for kind, path in local_models.items()}
    assert len({tuple(r) for r in requirements.values()}) == 1, requirements
    env_dir = tmp_path_factory.mktemp("service") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    python = env_dir / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(local_models["churn"] / "requirements.txt")],
        capture_output=True, text=True, timeout=1200, env=_clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return env | {"MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "true"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_fresh_virtualenv_loads_and_predicts_each_champion(
        world: World, kind: str, local_models: dict[str, Path], service_python: Path,
        tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(_SERVICE)
    done = subprocess.run(
        [str(service_python), str(script), str(local_models[kind]), ",".join(TRAINING_ONLY),
         kind], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=_clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    answers = {name: pd.read_json(io.StringIO(text), orient="split", dtype=False)
               for name, text in json.loads(done.stdout.strip().splitlines()[-1]).items()}
    path = str(local_models[kind])
    example = Model.load(path).load_input_example(path)
    expected = load_predictor(world.client, f"tailor-{kind}", champion(world, kind)).predict(
        example)
    got = answers["default"]
    assert len(got) == len(expected) and list(got.columns) == list(expected.columns)
    for column in expected.columns:
        if pd.api.types.is_float_dtype(expected[column]):
            np.testing.assert_allclose(got[column], expected[column], rtol=1e-6)
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist()
    if kind == "recommender":
        per_customer = answers["k3"].groupby("customer_id").size()
        assert per_customer.eq(3).all() and len(per_customer) == example["customer_id"].nunique()


def test_the_tailor_predictor_is_stored_beside_the_state(local_models: dict[str, Path]) -> None:
    for path in local_models.values():
        artifacts = path / "artifacts"
        assert (artifacts / f"{PREDICTOR_ARTIFACT}.pkl").is_file()
        assert (artifacts / inference.STATE_ARTIFACT / inference.META_FILE).is_file()
