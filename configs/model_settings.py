"""Settings of the tuned models: one shared tuning budget, then each model's own keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from tailor.configs.base import Section


def tuning_customers(default: int | None) -> Any:
    """The ``tuning_max_customers`` key, with each model's own default."""
    return Field(default, ge=100, description=(
        "the tuning study learns its parameters on at most this many seeded customers (null: "
        "all), so a trial costs the same at any size; the served model covers every customer"))


class TuningSettings(Section):
    """The Optuna budget every tuned model shares: trials, wall-clock limit and seed.

    Each model's section inherits these keys (``segmentation.n_trials``, ``churn.seed``...), so
    the budget is defined once and reads the same for every kind.
    """

    n_trials: int = Field(20, ge=1, description="Optuna trials per retrain (resumed studies "
                                                "run only the trials still missing)")
    timeout_s: float | None = Field(
        None, gt=0, description="stop tuning after this many seconds (null: no limit)")
    seed: int = Field(42, description="seeds the sampler, the fits and any subsampling")
    tuning_max_customers: int | None = tuning_customers(None)

class SegmentationSettings(TuningSettings):
    """K-means segmentation: features, k range and tuning budget (n_trials are TPE draws, used
    when the search space has more points than exhaustive_limit)."""

    k_min: int = Field(3, ge=2)
    k_max: int = Field(10, ge=2)
    exhaustive_limit: int = Field(
        64, ge=0, description="try every point of a search space this small (0: always TPE); "
                              "the default space (8 k x 2 clips x 2 mixes = 32) is tried whole")
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


class RecommenderSettings(TuningSettings):
    """LightFM hybrid recommender and its blend with repeat purchases."""

    k: int = Field(10, ge=1, description="list length tuned and judged on (precision@k)")
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
        default_factory=lambda: [0.01, 0.1, 0.3], min_length=1,
        description="grid for the weight of recent best sellers in the blend",
    )
    repeat_half_lives_days: list[float | None] = Field(
        default_factory=lambda: [None, 180.0], min_length=1,
        description="grid for the repeat score's recency decay (null = plain order count)",
    )
    max_eval_users: int = Field(3_000, ge=10, description="validation users sampled per trial")
    tuning_max_customers: int | None = tuning_customers(8_000)
    num_threads: int = Field(1, ge=1, description="LightFM threads (1 = deterministic)")
    ranker: bool | Literal["auto"] = Field(
        True, description="rank candidates with LambdaMART (models/recommender_ranker.py): "
                          "true, false, or auto (only when it beats the blend on the tuning "
                          "validation, which is one noisy window on short history)")
    ranker_windows: int = Field(2, ge=1, description="label windows the ranker is trained on")
    ranker_step_days: int = Field(30, ge=1, description="days between the ranker's windows")
    ranker_max_customers: int | None = Field(
        10_000, ge=100, description="buyers per label window the ranker learns from, seeded "
                                    "(null: all); it still ranks every customer's candidates")
    ranker_trees: int = Field(300, ge=1)
    ranker_leaves: int = Field(7, ge=2)
    candidates_popular: int = Field(50, ge=0, description="best sellers added as candidates")
    candidates_neighbours: int = Field(30, ge=0, description="co-purchase candidates")
    max_own_candidates: int = Field(300, ge=1, description="own products kept as candidates")
    ranked_per_customer: int = Field(
        100, ge=1, description="ranked candidates stored per known customer (>= serving.max_k)")


class ChurnSettings(TuningSettings):
    """Purchase-probability / churn model. The horizon is features.horizon_days."""
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
    tuning_max_customers: int | None = tuning_customers(20_000)
    importance_repeats: int = Field(5, ge=1, description="permutation-importance repeats")
    importance_max_customers: int | None = Field(
        10_000, ge=100, description="holdout customers the permutation importance shuffles, "
                                    "seeded (null: all); the holdout metrics use every one")
    reliability_bins: int = Field(10, ge=2)

    @field_validator("btyd_weights")
    @classmethod
    def _weights_in_unit_interval(cls, value: list[float]) -> list[float]:
        if any(not 0.0 <= w <= 1.0 for w in value):
            raise ValueError("every weight must be in [0, 1]")
        return value
