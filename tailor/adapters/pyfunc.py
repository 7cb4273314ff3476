"""One pyfunc wrapper for every tailor model, so serving never depends on a model's flavour.

The trained predictor (a plain picklable object from ``models/`` with ``predict(frame)``) is
stored as an artifact; :class:`PredictorModel` loads it and forwards ``predict``. Loading needs
tailor installed in the serving environment (``mlflow models serve --env-manager local``).
"""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

PREDICTOR_ARTIFACT = "predictor"
MODEL_ARTIFACT = "model"


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
    """Forwards ``predict`` to the pickled predictor from ``models/``."""

    def load_context(self, context: Any) -> None:
        self.predictor = load_pickle(context.artifacts[PREDICTOR_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        kwargs = dict(params or {})
        return self.predictor.predict(model_input, **kwargs)


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
    """Save ``predictor`` as a pyfunc model under ``run_id`` and register it when a name is given.

    Uses only the explicit client (no global tracking URI, no active run), so concurrent tasks and
    different stores never leak into each other. The signature is inferred from the input
    example and the predictor's own answer to it: a model that cannot answer is never logged.
    """
    output_example = predictor.predict(input_example, **(params_example or {}))
    signature = infer_signature(input_example, output_example, params=params_example)
    with tempfile.TemporaryDirectory() as tmp:
        pickled = Path(tmp) / "predictor.pkl"
        with open(pickled, "wb") as handle:
            pickle.dump(predictor, handle, protocol=pickle.HIGHEST_PROTOCOL)
        model_dir = Path(tmp) / MODEL_ARTIFACT
        mlflow.pyfunc.save_model(
            path=str(model_dir),
            python_model=PredictorModel(),
            artifacts={PREDICTOR_ARTIFACT: str(pickled)},
            signature=signature,
            input_example=input_example,
        )
        client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT)
    uri = f"runs:/{run_id}/{MODEL_ARTIFACT}"
    version = None
    if registered_model_name:
        try:
            client.create_registered_model(registered_model_name, description=model_description)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT}"
        version = client.create_model_version(registered_model_name, source, run_id=run_id,
                                              description=version_description).version
    return LoggedPredictor(uri, None if version is None else str(version))


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
