"""MLflow and Optuna adapters: where runs go, what every run is tagged with, trials as child runs.

Everything takes explicit ids and clients: MLflow's active run is thread-local, and the retrain
flow trains models concurrently, so nothing here relies on ``mlflow.active_run()``. Every store
is a URL from configuration (sqlite by default, a tracking server or PostgreSQL later).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import optuna
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from tailor.adapters.owner import owner_tags
from tailor.configs.schema import Settings, TrackingSettings
from tailor.models.windows import VALIDATION_PREFIX, scoped

if TYPE_CHECKING:
    from tailor.kinds.spec import TrialMetrics

SQLITE = "sqlite:///"
DEFAULT_STORE = Path("mlruns") / "mlflow.db"
"""The default MLflow store, relative to the working directory (as MLflow's own default)."""
DEFAULT_STUDIES = Path("mlruns") / "optuna.db"
OPTUNA_STORAGE_ENV = "TAILOR_OPTUNA_STORAGE"
"""The Optuna storage when ``tracking.optuna_storage`` is not set (``tailor stack env``)."""
SOURCE_DIR = Path(__file__).resolve().parents[2]
"""Where this code lives: only to tag runs with its git commit, never to place a store."""


def _absolute_sqlite(url: str) -> str:
    """A relative ``sqlite:///path`` made absolute against the working directory now, so a
    store stays where the run started even if a library changes directory later."""
    if url.startswith(SQLITE) and not url[len(SQLITE):].startswith("/"):
        return f"{SQLITE}{Path.cwd() / url[len(SQLITE):]}"
    return url


def tracking_uri(settings: TrackingSettings) -> str:
    """Configured URI, else $MLFLOW_TRACKING_URI, else ``./mlruns/mlflow.db`` (sqlite)."""
    return _absolute_sqlite(settings.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                            or f"{SQLITE}{DEFAULT_STORE}")


def optuna_storage(settings: TrackingSettings) -> str:
    """Configured URL, else $TAILOR_OPTUNA_STORAGE, else ``./mlruns/optuna.db``; a relative
    sqlite path is taken relative to the working directory."""
    url = _absolute_sqlite(settings.optuna_storage or os.environ.get(OPTUNA_STORAGE_ENV)
                           or f"{SQLITE}{DEFAULT_STUDIES}")
    prefix = SQLITE
    if url.startswith(prefix):
        path = Path(url[len(prefix):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"{prefix}{path}"
    return url


def client_for(settings: TrackingSettings) -> MlflowClient:
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def artifact_location(settings: TrackingSettings, name: str) -> str | None:
    """Artifacts beside a local sqlite store (not wherever the process started); servers decide."""
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "artifacts" / name).as_uri()
    return None


DESCRIPTION_TAG = "mlflow.note.content"
"""Where the MLflow UI reads an experiment's or a run's description from."""


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None,
                      description: str | None = None) -> str:
    """The experiment's id, creating it on first use (safe when two tasks race to create it);
    ``description`` is shown on its page in the MLflow UI (set once, when it has none)."""
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(
                name, artifact_location=artifact_location,
                tags={DESCRIPTION_TAG: description} if description else None)
        except mlflow.exceptions.MlflowException:
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if description and not found.tags.get(DESCRIPTION_TAG):
        client.set_experiment_tag(found.experiment_id, DESCRIPTION_TAG, description)
    return found.experiment_id


def data_fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a table (row order and values), cheap enough for millions of rows."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


def config_hash(settings: Settings, sections: tuple[str, ...] | None = None) -> str:
    """Hash of the settings (or of some sections): what a run or a study depends on."""
    dump = settings.model_dump(mode="json")
    if sections is not None:
        dump = {name: dump.get(name) for name in sections}  # a kind may have no section
    payload = json.dumps(dump, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def git_commit() -> str:
    """The commit of a source checkout, else the installed package's version."""
    if (SOURCE_DIR / ".git").exists():
        try:
            out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=SOURCE_DIR,
                                 capture_output=True, text=True, timeout=5, check=True)
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        return f"tailor=={version('tailor')}"
    except PackageNotFoundError:
        return "unknown"


def standard_tags(settings: Settings, fingerprint: str, seed: int, **extra: str) -> dict[str, str]:
    """Tags every training run carries so runs can be traced and compared in the UI."""
    return {
        "tailor.git_commit": git_commit(),
        "tailor.data_fingerprint": fingerprint,
        "tailor.config_hash": config_hash(settings),
        "tailor.seed": str(seed),
        **extra,
    }


def start_run(client: MlflowClient, experiment_id: str, run_name: str,
              tags: Mapping[str, str] | None = None, parent_run_id: str | None = None) -> str:
    """Create a run and return its id; the caller ends it with :func:`end_run`.

    The run names its owner process, so one left RUNNING by a killed process can be found and
    closed (:mod:`tailor.adapters.reconcile`)."""
    all_tags = {MLFLOW_RUN_NAME: run_name, **owner_tags(), **(tags or {})}
    if parent_run_id:
        all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    return client.create_run(experiment_id, tags=all_tags, run_name=run_name).info.run_id


def end_run(client: MlflowClient, run_id: str, ok: bool = True) -> None:
    status = RunStatus.FINISHED if ok else RunStatus.FAILED
    client.set_terminated(run_id, RunStatus.to_string(status))


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(str(k), str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start:start + 100])


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float],
                step: int = 0) -> None:
    """Log finite metrics; NaN/inf are recorded as a tag listing them instead of failing."""
    import math
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    good = [Metric(k, float(v), now, step) for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))]
    bad = sorted(k for k, v in metrics.items() if v is None or not math.isfinite(float(v)))
    for start in range(0, len(good), 500):
        client.log_batch(run_id, metrics=good[start:start + 500])
    if bad:
        client.set_tag(run_id, "tailor.non_finite_metrics", ",".join(bad))


def log_frame(client: MlflowClient, run_id: str, frame: pd.DataFrame, artifact_file: str) -> None:
    """Log a table as CSV (or HTML by extension) so it opens in the MLflow UI."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        if path.suffix == ".html":
            frame.to_html(path)
        else:
            frame.to_csv(path)
        parent = str(Path(artifact_file).parent)
        client.log_artifact(run_id, str(path), None if parent == "." else parent)


def log_figure(client: MlflowClient, run_id: str, figure: Any, artifact_file: str) -> None:
    import matplotlib.pyplot as plt

    client.log_figure(run_id, figure, artifact_file)
    plt.close(figure)


_STORAGES: dict[str, optuna.storages.BaseStorage] = {}
_STORAGES_LOCK = threading.Lock()


def study_storage(url: str) -> optuna.storages.BaseStorage:
    """One storage object per URL per process: concurrent tasks must not race to create the
    schema, and RDBStorage is safe to share between threads."""
    with _STORAGES_LOCK:
        if url not in _STORAGES:
            _STORAGES[url] = optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": 60}}
                if url.startswith("sqlite") else {"pool_pre_ping": True})
        return _STORAGES[url]


def create_study(storage: str, study_name: str, direction: str, seed: int,
                 pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create or resume a persisted study: a re-run with the same name continues its trials."""
    return optuna.create_study(
        storage=study_storage(storage),
        study_name=study_name,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner or optuna.pruners.MedianPruner(n_warmup_steps=2),
        load_if_exists=True,
    )


class TrialRunLogger:
    """Optuna callback: each finished trial becomes a child run of the training run.

    Its metrics are ``validation_*`` under the names the model's run gives the same figures
    (``names``, the kind's :class:`~tailor.kinds.spec.TrialMetrics`), so a trial and the run
    above it compare column by column in the MLflow UI."""

    def __init__(self, client: MlflowClient, experiment_id: str, parent_run_id: str,
                 run_prefix: str, names: TrialMetrics | None = None) -> None:
        from tailor.kinds.spec import TrialMetrics

        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.run_prefix = run_prefix
        self.names = names or TrialMetrics()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        names = self.names
        run_id = start_run(
            self.client, self.experiment_id, f"{self.run_prefix}-trial-{trial.number:03d}",
            tags={"tailor.trial_state": trial.state.name, "tailor.study": study.study_name},
            parent_run_id=self.parent_run_id,
        )
        attrs = trial.user_attrs
        log_params(self.client, run_id, {**trial.params, **{k: attrs[k] for k in names.params
                                                            if k in attrs}})
        values = {k: v for k, v in attrs.items() if k not in names.params
                  and isinstance(v, int | float) and not isinstance(v, bool)}
        if trial.value is not None:
            values[names.objective] = trial.value
        log_metrics(self.client, run_id, scoped(values, VALIDATION_PREFIX, names.baselines))
        step_metric = VALIDATION_PREFIX + (names.intermediate or f"{names.objective}_at_step")
        for step, value in sorted(trial.intermediate_values.items()):
            log_metrics(self.client, run_id, {step_metric: value}, step=step)
        end_run(self.client, run_id, ok=trial.state != optuna.trial.TrialState.FAIL)


_PYPLOT_LOCK = threading.Lock()  # Optuna's plots use pyplot's global state; tasks run in threads


def log_study(client: MlflowClient, run_id: str, study: optuna.Study,
              objective: str = "objective") -> None:
    """Optuna history, parameter importance and the trials table as artifacts of the run."""
    log_frame(client, run_id, study.trials_dataframe(), "optuna/trials.csv")
    with _PYPLOT_LOCK:
        for name, figure in study_figures(study, objective).items():
            log_figure(client, run_id, figure, f"optuna/{name}.png")


def _retitle(ax: Any, title: str) -> None:
    """Replace Optuna's titles (it sets them in every position) with one that says more."""
    for where in ("left", "center", "right"):
        ax.set_title("", loc=where)
    ax.set_title(title)


def study_figures(study: optuna.Study, objective: str = "objective") -> dict[str, Any]:
    """Optuna's history and importance plots, titled with what was tuned and which way is
    better, sized so that no parameter name is cut off."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.ticker import MaxNLocator
    from optuna.visualization import matplotlib as ovm

    better = ("higher" if study.direction == optuna.study.StudyDirection.MAXIMIZE
              else "lower")
    figures: dict[str, Any] = {}
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if done:
            ax = ovm.plot_optimization_history(study)
            _retitle(ax, f"Tuning history: {objective} per trial ({better} is better)")
            ax.set_ylabel(objective)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.figure.set_size_inches(8, 4.5)
            ax.figure.tight_layout()
            figures["history"] = ax.figure
        if len(done) >= 2:
            try:
                ax = ovm.plot_param_importances(study)
            except (ValueError, RuntimeError):
                ax = None  # importance needs variation in at least one parameter
            if ax is not None:
                rows = len(ax.get_yticklabels())
                _retitle(ax, f"Parameter importance for the {objective}")
                ax.figure.set_size_inches(9, max(3.5, 1.5 + 0.45 * rows))
                ax.figure.tight_layout()
                figures["param_importances"] = ax.figure
    return figures
