"""Track one model training in MLflow, whatever the kind: the shared shape of every training run.

A kind's fit (:class:`~tailor.kinds.spec.ModelSpec`) produces a
:class:`~tailor.kinds.spec.TrainedModel` (plain objects: predictor, params, metrics, figures,
tables); :func:`track_training` turns it into one MLflow run with Optuna trials as child runs,
dataset lineage, standard tags, artifacts and a registered pyfunc version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mlflow.data
import optuna
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag

from tailor.adapters import tracking
from tailor.adapters.dask_trials import spread_over_cluster
from tailor.adapters.faults import fault_point
from tailor.adapters.pyfunc import log_predictor
from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.kinds.spec import ModelSpec, TrainedModel, TrialMetrics
from tailor.models.windows import Windows


@dataclass(frozen=True)
class TuningSummary:
    """What the Optuna study of one training did, for the run's log: its trials by state, the
    best value of its objective, and the seconds its trials took."""

    objective: str
    direction: str
    trials: int
    complete: int
    pruned: int
    failed: int
    best_value: float | None
    seconds: float


def tuning_summary(study: optuna.Study, objective: str) -> TuningSummary:
    """The study's trials counted by state (a resumed study counts its earlier trials too)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    seconds = sum((t.datetime_complete - t.datetime_start).total_seconds()
                  for t in trials if t.datetime_start and t.datetime_complete)
    return TuningSummary(
        objective=objective, direction=study.direction.name.lower(), trials=len(trials),
        complete=len(complete), pruned=states.count(TrialState.PRUNED),
        failed=states.count(TrialState.FAIL),
        best_value=float(study.best_value) if complete else None, seconds=seconds)


@dataclass(frozen=True)
class TrackedTraining:
    kind: str
    run_id: str
    experiment_id: str
    model_uri: str
    version: str | None
    metrics: Mapping[str, float]
    twin: Any = None
    windows: Windows | None = None
    tuning: TuningSummary | None = None


@dataclass(frozen=True)
class SkippedTraining:
    """A model the data cannot train (too short a history, a single product): why, in one line."""

    kind: str
    reason: str


def _log_lineage(client: MlflowClient, run_id: str, datasets: Mapping[str, pd.DataFrame],
                 fingerprint: str) -> None:
    inputs = []
    for context, frame in datasets.items():
        dataset = mlflow.data.from_pandas(frame, name=context,
                                          digest=tracking.data_fingerprint(frame))
        tags = [InputTag("mlflow.data.context", context),
                InputTag("tailor.source_fingerprint", fingerprint)]
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=tags))
    if inputs:
        client.log_inputs(run_id, datasets=inputs)


def _version_description(result: TrainedModel, fingerprint: str) -> str:
    """What one registered version is: the data it saw and the window that judged it."""
    w = result.windows.params()
    return (f"Fit on every purchase before {w['as_of']} (data fingerprint {fingerprint}); "
            f"judged by its twin, fit before the {w['holdout_days']}-day holdout starting "
            f"{w['holdout_start']} and scored on it (holdout_* metrics of the run).")


def _experiment(client: MlflowClient, settings: Settings, kind: str,
                parent_run_id: str | None) -> str:
    """The parent's experiment (the UI nests runs only within one experiment), else
    ``<prefix>-<kind>`` for a training on its own."""
    if parent_run_id:
        return client.get_run(parent_run_id).info.experiment_id
    prefix = settings.tracking.experiment_prefix
    return tracking.ensure_experiment(
        client, f"{prefix}-{kind}", tracking.artifact_location(settings.tracking, kind),
        description=f"tailor {kind} trained on its own (outside a retrain): one run per "
                    "training, its Optuna trials nested beneath it, with the holdout twin's "
                    "metrics (holdout_*, baseline_<name>_holdout_*), the tuning validation's "
                    f"(validation_*) and the model registered as tailor-{kind}. Retrains "
                    f"(`tailor train`) put their model runs under their parent run in "
                    f"{prefix}-retrain.")


def supersede_earlier_attempts(client: MlflowClient, experiment_id: str, parent_run_id: str,
                               kind: str) -> list[str]:
    """Close the runs an earlier attempt of this training left RUNNING under the same parent.

    Under a retrain's lock only this task trains ``kind`` for ``parent_run_id``, so such a run
    belongs to an attempt that died with its worker (Dask re-runs the task elsewhere): it is
    marked KILLED and says why, and the retrain keeps one finished run per model."""
    from tailor.adapters.reconcile import RECONCILED

    earlier = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}' and "
                         f"tags.`tailor.model` = '{kind}' and attributes.status = 'RUNNING'")
    for run in earlier:
        client.set_tag(run.info.run_id, RECONCILED,
                       "superseded: the task was re-run (its worker was lost)")
        client.set_terminated(run.info.run_id, "KILLED")
    return [run.info.run_id for run in earlier]


def track_training(
    settings: Settings,
    kind: str,
    run_name: str,
    fingerprint: str,
    seed: int,
    train: Callable[[optuna.Study, list[Callable[..., None]]], TrainedModel],
    study_direction: str = "maximize",
    study_objective: str = "objective",
    parent_run_id: str | None = None,
    register: bool = True,
    description: str | None = None,
    trial_metrics: TrialMetrics | None = None,
) -> TrackedTraining:
    """Run ``train`` inside one MLflow run and register the resulting model.

    ``train`` receives the persisted Optuna study (resumed when its name exists) and the
    callbacks that log each trial as a child run (named by ``trial_metrics``); it must tune,
    fit and evaluate. With a parent run the run goes into the parent's experiment, so the MLflow
    UI nests it (and its trials) under the retrain.
    """
    client = tracking.client_for(settings.tracking)
    experiment = _experiment(client, settings, kind, parent_run_id)
    if parent_run_id:
        supersede_earlier_attempts(client, experiment, parent_run_id, kind)
    tags = tracking.standard_tags(settings, fingerprint, seed, **{"tailor.model": kind})
    run_id = tracking.start_run(client, experiment, run_name, tags=tags,
                                parent_run_id=parent_run_id)
    try:
        # Same run name and same settings: the study resumes. Changed settings: a new study
        # (resuming trials drawn from another search space would mix two experiments).
        study_hash = tracking.config_hash(settings, ("data", "features", kind))
        storage = tracking.optuna_storage(settings.tracking)
        study = tracking.create_study(
            storage,
            f"{settings.tracking.experiment_prefix}-{kind}-{run_name}-{study_hash[:8]}",
            study_direction, seed)
        logger = tracking.TrialRunLogger(client, experiment, run_id, kind, trial_metrics)
        # on a Dask worker (the dask runner) the trials spread over the cluster's workers
        result = train(spread_over_cluster(study, storage, seed), [logger])
        tracking.log_params(client, run_id, {**result.windows.params(), **result.params})
        tracking.log_metrics(client, run_id, result.metrics)
        _log_lineage(client, run_id, result.datasets, fingerprint)
        for name, figure in result.figures.items():
            tracking.log_figure(client, run_id, figure, f"plots/{name}.png")
        for name, table in result.tables.items():
            tracking.log_frame(client, run_id, table, f"tables/{name}.csv")
        tracking.log_study(client, run_id, study, study_objective)
        registered = f"tailor-{kind}" if register else None  # = ModelSpec.registered_name
        logged = log_predictor(client, run_id, result.predictor, result.input_example,
                               registered_model_name=registered,
                               params_example=result.params_example,
                               model_description=description,
                               version_description=_version_description(result, fingerprint))
        fault_point("after-register")
        tracking.end_run(client, run_id, ok=True)
    except BaseException:
        tracking.end_run(client, run_id, ok=False)
        raise
    return TrackedTraining(kind, run_id, experiment, logged.model_uri, logged.version,
                           result.metrics, result.twin, result.windows,
                           tuning_summary(study, study_objective))


def train_model(
    spec: ModelSpec,
    settings: Settings,
    clean: Dataset,
    as_of: pd.Timestamp,
    run_name: str,
    fingerprint: str,
    parent_run_id: str | None = None,
    **options: Any,
) -> TrackedTraining:
    """One tracked training of ``spec`` as of a date: plan its windows and prepare its data
    (a shortfall raises before any run opens), then tune, fit and register in one run.
    ``options`` go to the kind's fit (e.g. ``truth`` for segmentation on generated data)."""
    windows = spec.plan(settings, clean, as_of)
    if spec.prepare is not None:
        options["prepared"] = spec.prepare(settings, clean, windows)
    return track_training(
        settings, spec.kind, run_name, fingerprint, spec.seed(settings),
        lambda study, callbacks: spec.fit(settings, clean, windows, study, callbacks, **options),
        study_direction=spec.study_direction, study_objective=spec.study_objective,
        parent_run_id=parent_run_id, description=spec.description or None,
        trial_metrics=spec.trial_metrics(settings))
