"""Typed, frozen, strict settings: every YAML key is checked here, unknown keys are rejected."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")


class DataSettings(_Section):
    """Rules of the data contract that a retailer may want to tune."""

    max_abs_quantity: int = Field(10_000, gt=0, description="|quantity| above this is absurd")
    max_unit_price: float = Field(1_000_000.0, gt=0, description="unit_price above this is absurd")
    max_rejected_share: float = Field(
        0.25, ge=0, le=1, description="stop when more than this share of rows is quarantined"
    )
    require_known_products: bool = Field(
        True, description="quarantine lines whose product is missing from products (if given)"
    )
    require_known_customers: bool = Field(
        False, description="quarantine lines whose customer is missing from customers (if given)"
    )


class FeatureSettings(_Section):
    """Point-in-time features, the churn label and the interaction matrix."""

    horizon_days: int = Field(90, gt=0, description="churn label: no purchase within H days")
    trend_window_days: int = Field(90, gt=0, description="recent window for the trend feature")
    interaction_weight: Literal["binary", "count", "quantity", "decay"] = "count"
    decay_half_life_days: float = Field(180.0, gt=0)
    top_categories: int = Field(12, ge=1, description="category-mix columns kept")
    price_bands: int = Field(5, ge=1)
    description_tokens: int = Field(300, ge=0, description="vocabulary size for item tokens")
    min_token_count: int = Field(3, ge=1)
    quantile_bins: int = Field(
        5, ge=2, description="bins for RFM and numeric attribute user/item features"
    )


class GenerateSettings(_Section):
    """Synthetic retailer with known truth (segments, churn times, tastes)."""

    customers: int = Field(2_000, gt=0)
    products: int = Field(400, gt=0)
    categories: int = Field(12, ge=2)
    seed: int = 42
    start: dt.date = dt.date(2023, 1, 1)
    days: int = Field(730, gt=30)
    messy_share: float = Field(0.01, ge=0, le=0.5)
    return_share: float = Field(0.02, ge=0, le=0.5)


class SegmentationSettings(_Section):
    """K-means segmentation: features, k range and tuning budget (issue 3)."""

    k_min: int = Field(3, ge=2)
    k_max: int = Field(10, ge=2)
    n_trials: int = Field(20, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    seed: int = 42
    features: list[str] = Field(
        default_factory=lambda: [
            "recency_days", "frequency", "monetary", "avg_order_value",
            "ipi_median_days", "distinct_products", "return_rate",
        ],
        min_length=1,
        description="customer-feature columns clustered on (cat_share_* added when chosen)",
    )
    log_columns: list[str] = Field(
        default_factory=lambda: [
            "recency_days", "frequency", "monetary", "avg_order_value",
            "ipi_median_days", "distinct_products",
        ],
        description="heavy-tailed columns that get a signed log1p when a trial turns log on",
    )
    category_prefix: str = Field("cat_share_", min_length=1)
    log_choices: list[bool] = Field(default_factory=lambda: [True, False], min_length=1)
    category_mix_choices: list[bool] = Field(
        default_factory=lambda: [False, True], min_length=1
    )
    clip_quantile_choices: list[float] = Field(
        default_factory=lambda: [1.0, 0.99], min_length=1,
        description="clip each column to its [1-q, q] quantiles; 1.0 means no clipping",
    )
    n_init: int = Field(10, ge=1, description="k-means restarts per fit")
    silhouette_sample: int = Field(5_000, ge=100, description="rows scored by silhouette")
    min_cluster_share: float = Field(
        0.02, ge=0, lt=1, description="trials whose smallest cluster is smaller are penalised"
    )
    stability_resamples: int = Field(5, ge=2, description="bootstrap fits for stability_ari")
    stability_sample: int = Field(5_000, ge=100, description="rows per stability bootstrap")
    objective: Literal["silhouette", "silhouette_stability_floor"] = Field(
        "silhouette_stability_floor",
        description="silhouette alone, or silhouette penalised below stability_floor",
    )
    stability_floor: float = Field(0.8, ge=0, le=1, description="stability_ari wanted")


class RecommenderSettings(_Section):
    """LightFM hybrid recommender and its blend with repeat purchases (issue 3)."""

    k: int = Field(10, ge=1)
    n_trials: int = Field(20, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    seed: int = 42


class ChurnSettings(_Section):
    """Purchase-probability / churn model (issue 3)."""

    n_trials: int = Field(20, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    seed: int = 42


class TrackingSettings(_Section):
    """Where runs, models and studies live. Every store is a URL; nothing assumes one process."""

    mlflow_tracking_uri: str | None = Field(
        None, description="None: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db"
    )
    optuna_storage: str = "sqlite:///mlruns/optuna.db"
    experiment_prefix: str = "tailor"


class Settings(_Section):
    data: DataSettings = DataSettings()
    features: FeatureSettings = FeatureSettings()
    generate: GenerateSettings = GenerateSettings()
    segmentation: SegmentationSettings = SegmentationSettings()
    recommender: RecommenderSettings = RecommenderSettings()
    churn: ChurnSettings = ChurnSettings()
    tracking: TrackingSettings = TrackingSettings()
