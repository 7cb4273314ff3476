"""Typed, frozen, strict settings: every YAML key is checked here, unknown keys are rejected.

:class:`Settings` is the whole configuration, one section per key; the sections' fields hold
the only defaults (``tailor config defaults`` prints them).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from tailor.configs.base import ModelKind, Section, all_kinds
from tailor.configs.model_settings import (
    ChurnSettings,
    RecommenderSettings,
    SegmentationSettings,
    TuningSettings,
)
from tailor.configs.scoring_settings import ActionCondition, ActionRule, ScoringSettings

__all__ = [
    "ActionCondition", "ActionRule", "ChurnSettings", "DataSettings", "DeploymentSettings",
    "FeatureSettings", "GenerateSettings", "ModelKind", "OrchestrationSettings",
    "PromotionSettings",
    "RecommenderSettings", "RegistrySettings", "ScoringSettings", "SegmentationSettings",
    "ServingSettings", "Settings", "TrackingSettings", "TuningSettings",
]


class DataSettings(Section):
    """Rules of the data contract that a retailer may want to tune."""

    max_abs_quantity: int = Field(10_000, gt=0, description="|quantity| above this is absurd")
    max_unit_price: float = Field(1_000_000.0, gt=0, description="unit_price above this is absurd")
    max_rejected_share: float = Field(
        0.5, ge=0, le=1, description="stop when more than this share of rows is quarantined "
                                     "(Online Retail: 26%, mostly guest orders)"
    )
    require_known_products: bool = Field(
        True, description="quarantine lines whose product is missing from products (if given)"
    )
    require_known_customers: bool = Field(
        False, description="quarantine lines whose customer is missing from customers (if given)"
    )
    timestamp_dayfirst: bool = Field(
        False, description="read non-ISO dates like 01/02/2011 as day/month (UK, EU exports)"
    )
    future_tolerance_hours: float = Field(
        24.0, ge=0, description="timestamps later than the run's UTC time plus this are "
                                "quarantined (future_timestamp); the slack covers local-time "
                                "exports ahead of UTC and clock skew"
    )


class FeatureSettings(Section):
    """Point-in-time features, the churn label and the interaction matrix."""

    horizon_days: int = Field(90, gt=0, description="churn label: no purchase within H days")
    min_history_days: int = Field(
        30, ge=1, description="least history before any fit date (segmentation, recommender)")
    min_holdout_days: int = Field(
        14, ge=1, description="shortest holdout a run may shrink to on short history; below "
                              "it the model is skipped with an error naming the dates")
    trend_window_days: int = Field(90, gt=0, description="recent window for the trend feature")
    interaction_weight: Literal["binary", "count", "quantity", "decay"] = Field(
        "count", description="what a customer-product cell of the interaction matrix holds")
    decay_half_life_days: float = Field(
        180.0, gt=0, description="interaction_weight decay: an order this old counts half")
    top_categories: int = Field(12, ge=1, description="category-mix columns kept")
    price_bands: int = Field(5, ge=1, description="price quantile bands as item features")
    description_tokens: int = Field(300, ge=0, description="vocabulary size for item tokens")
    min_token_count: int = Field(3, ge=1, description="rarer description tokens are dropped")
    quantile_bins: int = Field(
        5, ge=2, description="bins for RFM and numeric attribute user/item features"
    )


class GenerateSettings(Section):
    """Synthetic data with known truth: a retailer (segments, churn times, tastes), or one
    product bought repeatedly (who is still a customer, how regularly they buy)."""

    kind: Literal["retailer", "repeat_buying"] = Field(
        "retailer", description="repeat_buying: one product, a CDNOW-like cohort")
    customers: int = Field(2_000, gt=0)
    products: int = Field(400, gt=0)
    categories: int = Field(12, ge=2)
    seed: int = 42
    start: dt.date = Field(dt.date(2023, 1, 1), description="first day of the history")
    days: int = Field(730, gt=30, description="length of the history")
    messy_share: float = Field(
        0.01, ge=0, le=0.5, description="share of rows broken on purpose (go to quarantine)")
    return_share: float = Field(0.02, ge=0, le=0.5, description="share of lines returned")
    timestamp_as_text: bool = Field(
        False, description="write timestamps as text so unparsable ones can be injected"
    )
    acquisition_days: int = Field(
        84, gt=0, description="repeat_buying: first purchases fall in the first N days")

class TrackingSettings(Section):
    """Where runs, models and studies live. Every store is a URL; nothing assumes one process."""

    mlflow_tracking_uri: str | None = Field(
        None, description="None: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db"
    )
    optuna_storage: str | None = Field(
        None, description="Optuna studies' RDB URL; None: $TAILOR_OPTUNA_STORAGE, else "
                          "sqlite:///mlruns/optuna.db (relative to the working directory)")
    experiment_prefix: str = Field(
        "tailor", description="MLflow experiments are <prefix>-<kind> and <prefix>-retrain")


class RegistrySettings(Section):
    """Model registry: what `tailor models` shows, and how retrains share one store."""

    key_metrics: dict[ModelKind, list[str]] = Field(
        default_factory=lambda: {
            "segmentation": ["served_k", "served_silhouette", "served_stability_ari",
                             "holdout_objective"],
            "recommender": ["holdout_precision_at_10", "baseline_repeat_holdout_precision_at_10",
                            "holdout_cold_precision_at_10"],
            "churn": ["holdout_roc_auc", "holdout_brier", "baseline_recency_holdout_roc_auc"],
        },
        description="per model kind, the run metrics shown by `tailor models`; absent: all",
    )
    lock_wait_seconds: float = Field(
        0.0, ge=0, description="how long a retrain waits for another one on the same store "
                               "to finish before failing (0: fail at once)")
    stale_run_hours: float = Field(
        24.0, gt=0, description="a RUNNING record whose process cannot be checked (another "
                                "host, no owner tags) is repaired once it is this old")


class PromotionSettings(Section):
    """The champion/challenger gate: both configurations, fit before the challenger's holdout,
    are scored on it in the same run."""

    margin: dict[ModelKind, float] = Field(
        default_factory=lambda: {"segmentation": 0.01, "recommender": 0.002, "churn": 0.002},
        description="the challenger must beat the champion's gate score by more than this "
                    "(absolute): segmentation's objective at as_of, the recommender's "
                    "precision@k and churn's ROC-AUC on the holdout",
    )
    floors: dict[ModelKind, dict[str, float]] = Field(
        default_factory=lambda: {
            "segmentation": {"served_silhouette": 0.05, "served_smallest_cluster_share": 0.01},
            "recommender": {"holdout_precision_at_10": 0.01},
            "churn": {"holdout_roc_auc": 0.55},
        },
        description="guardrails on the challenger's logged metrics (holdout_* are its twin's "
                    "out-of-time figures, served_* the served model's on its own fitting data): "
                    "below any floor it is never promoted",
    )
    actor: str = Field("tailor train", min_length=1, description="recorded on every alias move")

class OrchestrationSettings(Section):
    """Where a retrain's tasks run: threads of the flow's process, or a Dask cluster
    (prefect-dask's DaskTaskRunner), local or an existing scheduler."""

    runner: Literal["threads", "dask"] = Field(
        "threads", description="threads: concurrent tasks in the flow's process; dask: each "
                               "model's training (its Optuna trials spread over the workers) "
                               "and gate on Dask workers")
    dask_address: str | None = Field(
        None, min_length=1, description="an existing Dask scheduler (tcp://host:8786); "
                                        "null: a LocalCluster started for the flow run")
    dask_workers: int | None = Field(
        None, ge=1, description="LocalCluster worker processes (one thread each); null: one "
                                "per model trained, at most the machine's cores")


class ServingSettings(Section):
    """The serving API (``tailor serve``): where it listens, what it serves, when it reloads."""

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=1, le=65535)
    models: list[ModelKind] = Field(
        default_factory=all_kinds, min_length=1,
        description="champions loaded; /ready waits for all of them (default: every "
                    "registered kind)",
    )
    reload_interval_s: float | None = Field(
        60.0, gt=0, description="check @champion and the snapshot this often (null: only on "
                                "POST /admin/reload)")
    admin_token: str | None = Field(
        None, min_length=16,
        description="bearer token of /admin/*; null: $TAILOR_ADMIN_TOKEN; neither: admin off (403)",
    )
    snapshot_dir: str | None = Field(
        None, min_length=1, description="feature snapshot served; null: scoring.snapshot_dir")
    default_k: int = Field(10, ge=1, description="recommendations when k is not given")
    max_k: int = Field(100, ge=1, description="largest k a request may ask for")
    max_batch: int = Field(1000, ge=1, description="most customers in one POST /recommendations")
    log_requests: bool = Field(True, description="one log line per request with its latency")
    max_body_bytes: int = Field(
        1_048_576, ge=1, description="a request body larger than this is refused (413) before "
                                     "it is read, so big uploads cannot stall the server")


class DeploymentSettings(Section):
    """Scheduled runs on a Prefect server (``tailor deploy`` / ``tailor serve-flows``).

    Relative paths are made absolute when the deployments are registered: a scheduled run
    starts in whatever directory the serving process runs in.
    """

    retrain_cron: str = Field("0 3 * * 1", description="train-models schedule")
    score_cron: str = Field("0 5 * * *", description="score-customers schedule")
    timezone: str = Field("UTC", min_length=1, description="IANA zone the cron strings are in")
    paused: bool = Field(False, description="register the schedules paused (nothing runs)")
    data_dir: str = Field("out/sample/data", min_length=1, description="data set both flows read")
    out_dir: str = Field("out/retrain", min_length=1, description="train-models output")
    retrain_models: list[ModelKind] = Field(
        default_factory=all_kinds, min_length=1,
        description="models the scheduled retrain trains (default: every registered kind)",
    )
    score_out: str = Field(
        "out/scores/customer_scores.parquet", min_length=1,
        description="score-customers output: .parquet, .csv or <sqlalchemy url>#[schema.]table",
    )

    @field_validator("retrain_cron", "score_cron")
    @classmethod
    def _five_cron_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("needs 5 cron fields: minute hour day month weekday")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA zone name (e.g. UTC, Europe/London)") from None
        return value


class Settings(Section):
    data: DataSettings = Field(default_factory=DataSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    generate: GenerateSettings = Field(default_factory=GenerateSettings)
    segmentation: SegmentationSettings = Field(default_factory=SegmentationSettings)
    recommender: RecommenderSettings = Field(default_factory=RecommenderSettings)
    churn: ChurnSettings = Field(default_factory=ChurnSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    promotion: PromotionSettings = Field(default_factory=PromotionSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    deployments: DeploymentSettings = Field(default_factory=DeploymentSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
