"""Registered models any service can load: MLflow 3 logged models that need no tailor.

Each version is a LoggedModel linked to its training run. Its code is ``tailor/inference.py``
(logged as the model's code) and its state is plain data (``artifacts/state``), so a service's
virtualenv holding only the model's ``requirements.txt`` (mlflow-skinny, numpy, pandas, scipy,
scikit-learn and two of their helpers) loads and predicts with it. The signature's params
carry the serving options (the recommender's ``k`` and ``exclude_purchased``). The full tailor
predictor is stored beside it (``artifacts/predictor.pkl``) for tailor's own gate and serving,
which score through the same inference code.
"""

from __future__ import annotations

import functools
import pickle
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, Run
from mlflow.exceptions import MlflowException
from mlflow.models import Model, infer_signature

from tailor import inference

PREDICTOR_ARTIFACT = "predictor"
MODEL_ARTIFACT = "model"
#: what the model's code imports, pinned to the versions it was logged with
INFERENCE_REQUIREMENTS = ("mlflow-skinny", "numpy", "pandas", "scipy", "scikit-learn",
                          "cloudpickle", "threadpoolctl")


_IMPORT_NAMES = {"mlflow-skinny": "mlflow", "scikit-learn": "sklearn"}


def _installed_version(distribution: str) -> str:
    """The installed version of ``distribution``; from the module's ``__version__`` when the
    package metadata lookup fails (seen once in a CI run, for cloudpickle, while three model
    trainings logged their models at once)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        import importlib

        return str(importlib.import_module(_IMPORT_NAMES.get(distribution, distribution))
                   .__version__)


@functools.cache
def _pinned_requirements() -> tuple[str, ...]:
    return tuple(f"{name}=={_installed_version(name)}" for name in INFERENCE_REQUIREMENTS)


def inference_requirements() -> list[str]:
    """The pins of what the model's code imports, read once per process."""
    return list(_pinned_requirements())


@dataclass(frozen=True)
class LoggedPredictor:
    model_uri: str
    version: str | None


_MOVED = ("models.", "tasks.", "configs.")


class _Unpickler(pickle.Unpickler):
    """Loads versions registered before the code moved under the ``tailor`` namespace
    (``models.churn.ChurnModel`` is now ``tailor.models.churn.ChurnModel``)."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(_MOVED):
            module = f"tailor.{module}"
        return super().find_class(module, name)


def load_pickle(path: str | Path) -> Any:
    with open(path, "rb") as handle:
        return _Unpickler(handle).load()


class PredictorModel(mlflow.pyfunc.PythonModel):
    """The pyfunc of versions logged before models carried their own code (they name this
    class): forwards ``predict`` to the pickled tailor predictor, so such versions still load
    where tailor is installed."""

    def load_context(self, context: Any) -> None:
        self.predictor = load_pickle(context.artifacts[PREDICTOR_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.predictor.predict(model_input, **dict(params or {}))


def log_predictor(
    client: MlflowClient,
    run_id: str,
    predictor: Any,
    input_example: pd.DataFrame,
    registered_model_name: str | None = None,
    params_example: dict[str, Any] | None = None,
    model_description: str | None = None,
    version_description: str | None = None,
) -> LoggedPredictor:
    """Log ``predictor`` as a LoggedModel of ``run_id`` and register it when a name is given.

    Uses only the explicit client (no global tracking URI, no active run), so concurrent tasks and
    different stores never leak into each other. The signature is inferred from the input
    example and the logged inference code's own answer to it: a model that cannot answer is
    never logged.
    """
    # A kind whose predictor exports its state is logged self-contained; another (a kind added
    # outside tailor) is logged as its pickled predictor, loadable where its code is installed.
    state = predictor.inference_state() if hasattr(predictor, "inference_state") else None
    params = params_example or (predictor.serving_params()
                                if hasattr(predictor, "serving_params") else None)
    answer = predictor if state is None else inference.scorer_for(state)
    output_example = answer.predict(input_example, **(params or {}))
    signature = infer_signature(input_example, output_example, params=params)
    run = client.get_run(run_id)
    kind = run.data.tags.get("tailor.model", "") if state is None else state.kind
    logged = client.create_logged_model(run.info.experiment_id, name=MODEL_ARTIFACT,
                                        source_run_id=run_id, model_type=kind or None,
                                        tags={"tailor.model": kind,
                                              "tailor.self_contained": str(state is not None)})
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    _link_metrics(client, run, logged.model_id)
    with tempfile.TemporaryDirectory() as tmp:
        pickled = Path(tmp) / f"{PREDICTOR_ARTIFACT}.pkl"
        with open(pickled, "wb") as handle:
            pickle.dump(predictor, handle, protocol=pickle.HIGHEST_PROTOCOL)
        artifacts = {PREDICTOR_ARTIFACT: str(pickled)}
        if state is not None:
            artifacts[inference.STATE_ARTIFACT] = str(state.save(Path(tmp) / "state"))
        model_dir = Path(tmp) / MODEL_ARTIFACT
        mlflow.pyfunc.save_model(
            path=str(model_dir),
            python_model=PredictorModel() if state is None else inference.__file__,
            artifacts=artifacts,
            signature=signature,
            input_example=input_example,
            pip_requirements=None if state is None else inference_requirements(),
            mlflow_model=Model(artifact_path=logged.artifact_location,
                               model_uuid=logged.model_id, run_id=run_id,
                               model_id=logged.model_id),
        )
        client.log_model_artifacts(logged.model_id, str(model_dir))
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    uri = f"models:/{logged.model_id}"
    version = None
    if registered_model_name:
        try:
            client.create_registered_model(registered_model_name, description=model_description)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        # The artifact location, not models:/<id>: the store would resolve that through the
        # global tracking URI, not this client's.
        version = client.create_model_version(registered_model_name, logged.artifact_location,
                                              run_id=run_id,
                                              model_id=logged.model_id,
                                              description=version_description).version
    return LoggedPredictor(uri, None if version is None else str(version))


def _link_metrics(client: MlflowClient, run: Run, model_id: str) -> None:
    """The run's metrics, also recorded against its logged model (as ``Model.log`` does), so
    the experiment's Models tab shows them beside each model."""
    run_id = run.info.run_id
    metrics = [Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id, run_id=run_id)
               for key in run.data.metrics for m in client.get_metric_history(run_id, key)]
    for start in range(0, len(metrics), 1000):  # the store's batch limit
        client.log_batch(run_id, metrics=metrics[start:start + 1000])


def load_predictor(client: MlflowClient, name: str, version: str) -> Any:
    """The plain predictor of one registered version, resolved with the explicit client.

    Downloads the version's artifacts and unpickles the predictor directly (no global tracking
    URI), so flows and services can hold several versions side by side.
    """
    source = client.get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{source.rstrip('/')}/artifacts/{PREDICTOR_ARTIFACT}.pkl",
            dst_path=tmp, tracking_uri=client.tracking_uri)
        return load_pickle(local)
