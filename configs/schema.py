"""Typed, frozen, strict settings: every YAML key is checked here, unknown keys are rejected."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


def _registered_kind(kind: str) -> str:
    """A model kind must be registered (:mod:`tailor.kinds`): checked when settings load."""
    from tailor import kinds

    kinds.get(kind)  # raises ValueError naming the known kinds
    return kind


def _all_kinds() -> list[str]:
    from tailor import kinds

    return list(kinds.kinds())


ModelKind = Annotated[str, AfterValidator(_registered_kind)]
"""The name of a registered model kind (``segmentation``, ``recommender``, ``churn``, ...)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")


class DataSettings(_Section):
    """Rules of the data contract that a retailer may want to tune."""

    max_abs_quantity: int = Field(10_000, gt=0, description="|quantity| above this is absurd")
    max_unit_price: float = Field(1_000_000.0, gt=0, description="unit_price above this is absurd")
    max_rejected_share: float = Field(
        0.5, ge=0, le=1, description="stop when more than this share of rows is quarantined"
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


class FeatureSettings(_Section):
    """Point-in-time features, the churn label and the interaction matrix."""

    horizon_days: int = Field(90, gt=0, description="churn label: no purchase within H days")
    min_history_days: int = Field(
        30, ge=1, description="least history before any fit date (segmentation, recommender)")
    min_holdout_days: int = Field(
        14, ge=1, description="shortest holdout a run may shrink to on short history; below "
                              "it the model is skipped with an error naming the dates")
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
    """Synthetic data with known truth: a retailer (segments, churn times, tastes), or one
    product bought repeatedly (who is still a customer, how regularly they buy)."""

    kind: Literal["retailer", "repeat_buying"] = "retailer"
    customers: int = Field(2_000, gt=0)
    products: int = Field(400, gt=0)
    categories: int = Field(12, ge=2)
    seed: int = 42
    start: dt.date = dt.date(2023, 1, 1)
    days: int = Field(730, gt=30)
    messy_share: float = Field(0.01, ge=0, le=0.5)
    return_share: float = Field(0.02, ge=0, le=0.5)
    timestamp_as_text: bool = Field(
        False, description="write timestamps as text so unparsable ones can be injected"
    )
    acquisition_days: int = Field(
        84, gt=0, description="repeat_buying: first purchases fall in the first N days")


class SegmentationSettings(_Section):
    """K-means segmentation: features, k range and tuning budget."""

    k_min: int = Field(3, ge=2)
    k_max: int = Field(10, ge=2)
    n_trials: int = Field(20, ge=1, description="TPE draws when the space exceeds exhaustive_limit")
    exhaustive_limit: int = Field(
        64, ge=0, description="try every point of a search space this small (0: always TPE)")
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
    log_choices: list[bool] = Field(
        default_factory=lambda: [True], min_length=1,
        description="[true, false] lets Optuna try raw values; silhouette then favours splitting "
                    "off the few biggest customers (measured), so the default keeps log on",
    )
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
    objective: Literal["silhouette", "silhouette_stability_floor",
                       "silhouette_plus_stability"] = Field(
        "silhouette_plus_stability",
        description="silhouette alone; penalised below stability_floor; or plus stability_ari",
    )
    stability_floor: float = Field(
        0.8, ge=0, le=1, description="objective silhouette_stability_floor: stability wanted"
    )


class RecommenderSettings(_Section):
    """LightFM hybrid recommender and its blend with repeat purchases."""

    k: int = Field(10, ge=1)
    n_trials: int = Field(20, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    seed: int = 42
    validation_days: int = Field(
        90, gt=0, description="tuning validation: the last N days before the holdout (shortened "
                              "on short history, never below min_validation_days)"
    )
    min_validation_days: int = Field(14, ge=1, description="shortest tuning validation window")
    max_epochs: int = Field(40, ge=1, description="upper bound of the tuned epoch count")
    losses: list[Literal["warp", "bpr", "warp-kos"]] = Field(
        default_factory=lambda: ["warp", "bpr", "warp-kos"], min_length=1
    )
    exclude_purchased: bool = Field(
        False, description="never recommend items the customer already bought (False: repeats)"
    )
    popularity_days: int = Field(30, gt=0, description="window of the popularity signal")
    blend_lightfm_weights: list[float] = Field(
        default_factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.5, 1.0], min_length=1,
        description="grid for the LightFM weight (repeat weight is 1)",
    )
    blend_popularity_weights: list[float] = Field(
        default_factory=lambda: [0.01, 0.1, 0.3], min_length=1
    )
    repeat_half_lives_days: list[float | None] = Field(
        default_factory=lambda: [None, 180.0], min_length=1,
        description="grid for the repeat score's recency decay (null = plain order count)",
    )
    max_eval_users: int = Field(3_000, ge=10, description="validation users sampled per trial")
    num_threads: int = Field(1, ge=1, description="LightFM threads (1 = deterministic)")
    ranker: bool | Literal["auto"] = Field(
        True, description="rank candidates with LambdaMART (models/recommender_ranker.py): "
                          "true, false, or auto (only when it beats the blend on the tuning "
                          "validation, which is one noisy window on short history)")
    ranker_windows: int = Field(2, ge=1, description="label windows the ranker is trained on")
    ranker_step_days: int = Field(30, ge=1, description="days between the ranker's windows")
    ranker_trees: int = Field(300, ge=1)
    ranker_leaves: int = Field(7, ge=2)
    candidates_popular: int = Field(50, ge=0, description="best sellers added as candidates")
    candidates_neighbours: int = Field(30, ge=0, description="co-purchase candidates")
    max_own_candidates: int = Field(300, ge=1, description="own products kept as candidates")
    ranked_per_customer: int = Field(
        100, ge=1, description="ranked candidates stored per known customer (>= serving.max_k)")


class ChurnSettings(_Section):
    """Purchase-probability / churn model. The horizon is features.horizon_days."""

    n_trials: int = Field(20, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    seed: int = 42
    n_cutoffs: int = Field(6, ge=1, description="stacked training cutoffs, step_days apart")
    step_days: int = Field(30, ge=1, description="days between stacked training cutoffs")
    min_history_days: int = Field(
        60, ge=0, description="skip cutoffs with less purchase history than this before them"
    )
    seasonal_cutoffs: int = Field(
        3, ge=0, description="extra cutoffs around the same date a season_days earlier"
    )
    season_days: int = Field(364, gt=0, description="seasonal lag (364: same weekday)")
    families: list[Literal["logistic", "hist_gradient_boosting"]] = Field(
        default_factory=lambda: ["logistic", "hist_gradient_boosting"], min_length=1
    )
    calibration_methods: list[Literal["none", "sigmoid", "isotonic"]] = Field(
        default_factory=lambda: ["sigmoid", "isotonic"], min_length=1,
        description="Optuna picks one by validation log loss",
    )
    calibration_folds: int = Field(3, ge=2, description="customer-grouped folds for calibration")
    validation_folds: int = Field(
        3, ge=2, description="customer-grouped folds for tuning when the history is too short "
                             "for an out-of-time validation cutoff")
    cost_ratio: float = Field(
        3.0, gt=0, description="cost of a missed churner / cost of a wasted retention offer"
    )
    btyd_weights: list[float] = Field(
        default_factory=lambda: [1.0, 0.75, 0.5, 0.25, 0.0], min_length=1,
        description="weights of the model against BG/NBD's P(no purchase) tried on the tuning "
                    "validation ([1.0]: no BG/NBD)")
    use_attributes: bool = Field(True, description="use attr_* customer columns (one-hot)")
    use_category_shares: bool = Field(
        False, description="use cat_share_* columns (their set can change between cutoffs)"
    )
    max_attribute_levels: int = Field(20, ge=1, description="one-hot levels per attribute")
    importance_repeats: int = Field(5, ge=1, description="permutation-importance repeats")
    reliability_bins: int = Field(10, ge=2)

    @field_validator("btyd_weights")
    @classmethod
    def _weights_in_unit_interval(cls, value: list[float]) -> list[float]:
        if any(not 0.0 <= w <= 1.0 for w in value):
            raise ValueError("every weight must be in [0, 1]")
        return value


class TrackingSettings(_Section):
    """Where runs, models and studies live. Every store is a URL; nothing assumes one process."""

    mlflow_tracking_uri: str | None = Field(
        None, description="None: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db"
    )
    optuna_storage: str = "sqlite:///mlruns/optuna.db"
    experiment_prefix: str = "tailor"


class RegistrySettings(_Section):
    """Model registry: what `tailor models` shows, and how retrains share one store."""

    key_metrics: dict[ModelKind, list[str]] = Field(
        default_factory=dict,
        description="per model kind, the run metrics shown by `tailor models`; absent: all",
    )
    lock_wait_seconds: float = Field(
        0.0, ge=0, description="how long a retrain waits for another one on the same store "
                               "to finish before failing (0: fail at once)")
    stale_run_hours: float = Field(
        24.0, gt=0, description="a RUNNING record whose process cannot be checked (another "
                                "host, no owner tags) is repaired once it is this old")


class PromotionSettings(_Section):
    """The champion/challenger gate: both configurations, fit before the challenger's holdout,
    are scored on it in the same run."""

    margin: dict[ModelKind, float] = Field(
        default_factory=lambda: {"segmentation": 0.01, "recommender": 0.002, "churn": 0.002},
        description="the challenger must beat the champion's score by more than this",
    )
    floors: dict[ModelKind, dict[str, float]] = Field(
        default_factory=lambda: {
            "segmentation": {"silhouette": 0.05, "smallest_cluster_share": 0.01},
            "recommender": {"holdout_precision_at_10": 0.01},
            "churn": {"holdout_roc_auc": 0.55},
        },
        description="guardrails on the challenger's logged metrics (holdout_* are its twin's "
                    "out-of-time figures): below any floor it is never promoted",
    )
    actor: str = Field("tailor train", min_length=1, description="recorded on every alias move")


ScalarValue = bool | int | float | str


class ActionCondition(_Section):
    """One test on a scored column: ``column op value`` (a null cell never matches)."""

    column: str = Field(min_length=1, description="a scored/feature column, or <column>_pct")
    op: Literal["lt", "le", "gt", "ge", "eq", "in"]
    value: ScalarValue | list[ScalarValue]

    @model_validator(mode="after")
    def _value_fits_op(self) -> ActionCondition:
        if self.op == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op 'in' on {self.column!r} needs a non-empty list value")
        elif isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} on {self.column!r} needs one value, not a list")
        elif self.op != "eq" and (isinstance(self.value, bool | str)):
            raise ValueError(f"op {self.op!r} on {self.column!r} needs a number")
        return self


class ActionRule(_Section):
    """A next-best-action rule: every condition must hold (AND); the first matching rule wins."""

    name: str = Field(min_length=1)
    conditions: list[ActionCondition] = Field(min_length=1)
    with_recommendations: bool = Field(
        True, description="the action carries the customer's top recommendations")


def _default_actions() -> list[ActionRule]:
    def cond(column: str, op: str, value: ScalarValue | list[ScalarValue]) -> ActionCondition:
        return ActionCondition(column=column, op=op, value=value)  # type: ignore[arg-type]

    return [
        ActionRule(name="retention_offer", conditions=[cond("churn_probability", "ge", 0.6),
                                                       cond("monetary_pct", "ge", 0.7)]),
        ActionRule(name="win_back", conditions=[cond("churn_probability", "ge", 0.6)]),
        ActionRule(name="onboarding", conditions=[cond("tenure_days", "lt", 60)]),
        ActionRule(name="upsell", conditions=[cond("segment_group", "in", ["champions"])]),
        ActionRule(name="cross_sell", conditions=[
            cond("segment_group", "in", ["loyal", "big_spenders"])]),
    ]


class ScoringSettings(_Section):
    """Batch scoring (``tailor score``): list length, next-best-action rules, serving snapshot."""

    k: int = Field(10, ge=1, description="recommendations per customer")
    default_action: str = Field("nurture", min_length=1, description="when no rule matches")
    default_with_recommendations: bool = True
    actions: list[ActionRule] = Field(
        default_factory=_default_actions,
        description="first matching rule wins; derived columns: <column>_pct (percentile "
                    "within the scored population), segment_group (segment_name without _2)",
    )
    snapshot_dir: str = Field("out/snapshot", min_length=1,
                              description="customer features + attributes for the serving API")
    keep_snapshots: int = Field(
        3, ge=1, description="snapshot directories kept after a publish (newest first; the "
                             "published one is always kept), so a rollback or a slow reader "
                             "still finds the previous ones")

    @model_validator(mode="after")
    def _unique_names(self) -> ScoringSettings:
        names = [rule.name for rule in self.actions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"action names must be unique: {dupes} repeated")
        return self


class ServingSettings(_Section):
    """The serving API (``tailor serve``): where it listens, what it serves, when it reloads."""

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=1, le=65535)
    models: list[ModelKind] = Field(
        default_factory=_all_kinds, min_length=1,
        description="champions loaded; /ready waits for all of them",
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


class DeploymentSettings(_Section):
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
        default_factory=_all_kinds, min_length=1
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


class Settings(_Section):
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
    serving: ServingSettings = Field(default_factory=ServingSettings)
