"""Request and response models of the serving API: the OpenAPI schema is built from these.

Every response has a model here, so clients (and schemathesis) can check answers against the
published schema; errors are :class:`ErrorDetail` (400, 401, 403, 404, 413, 503) or a validation
error (422: ``loc`` names the offending field, ``input`` is at most a short excerpt).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ModelKind = Annotated[str, Field(description="a registered model kind, e.g. churn")]
#: a cold customer's attribute value (JSON scalars; null = unknown)
AttributeValue = str | int | float | bool | None


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorDetail(_Response):
    """Every error except validation errors (422) answers with this body."""

    detail: str = Field(description="What went wrong and what to do about it")


class Health(_Response):
    status: Literal["ok"] = "ok"


class Readiness(_Response):
    ready: bool = Field(description="True when every served model and the snapshot are loaded")
    models: dict[str, str | None] = Field(description="kind -> served version (null: none)")
    snapshot_loaded: bool
    missing: list[str] = Field(description="what is not loaded yet (empty when ready)")


class LoadFailure(_Response):
    """The newest attempt to load something that failed; the previous one keeps serving."""

    version: str | None = Field(description="the version that failed (null: not a model)")
    error: str
    at: datetime


class ServedModel(_Response):
    kind: ModelKind
    name: str = Field(description="registered model name, e.g. tailor-recommender")
    version: str | None = Field(description="the version answering requests (null: none yet)")
    loaded_at: datetime | None
    champion_version: str | None = Field(
        description="where @champion pointed at the last registry check")
    last_error: LoadFailure | None = Field(
        description="the last failed load of this model (cleared by a successful load)")


class SnapshotInfo(_Response):
    path: str = Field(description="serving.snapshot_dir")
    loaded: bool
    directory: str | None = Field(
        description="the published snapshot directory served (null: none loaded)")
    loaded_at: datetime | None
    customers: int = Field(description="customers with features in the snapshot")
    manifest: dict[str, Any] = Field(description="the snapshot's manifest.json, as written")
    last_error: LoadFailure | None


class ModelsReport(_Response):
    models: list[ServedModel]
    snapshot: SnapshotInfo
    errors: dict[str, LoadFailure] = Field(
        description="tables built over the snapshot that failed (next_best_action, "
                    "cold_start): their endpoints answer 503 until a reload succeeds")
    last_check_at: datetime | None = Field(description="the last registry check")
    reload_interval_s: float | None = Field(description="registry polling (null: only on demand)")


class Recommendation(_Response):
    rank: int = Field(ge=1, description="1 = best")
    product_id: str
    score: float


class CustomerRecommendations(_Response):
    customer_id: str
    source: Literal["history", "attributes"] = Field(
        description="history: a customer the model was trained on; attributes: cold start")
    model_version: str
    items: list[Recommendation]
    ignored_attributes: list[str] = Field(
        default_factory=list, description="given attributes the model does not use")


class BatchCustomer(BaseModel):
    """A known customer by id, or a new one described by attribute columns."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=200)
    attributes: dict[str, AttributeValue] | None = Field(
        None,
        description="for customers the model has never seen: customers-table columns "
                    "(e.g. region, channel), rfm feature columns (recency_days, frequency, "
                    "monetary) and segment; ignored for customers the model knows",
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: list[BatchCustomer] = Field(min_length=1)
    k: int | None = Field(None, ge=1, description="items per customer (default: serving.default_k)")
    exclude_purchased: bool | None = Field(
        None, description="drop items the customer bought (default: the model's setting)")


class BatchResponse(_Response):
    model_version: str
    results: list[CustomerRecommendations] = Field(description="in request order")


class Segment(_Response):
    customer_id: str
    segment: int
    segment_name: str
    model_version: str
    snapshot_as_of: str | None


class Churn(_Response):
    customer_id: str
    churn_probability: float = Field(ge=0, le=1)
    at_risk: bool = Field(description="probability >= the model's cost-based threshold")
    threshold: float | None
    model_version: str
    snapshot_as_of: str | None


class NextBestAction(_Response):
    customer_id: str
    action: str
    segment_name: str | None
    churn_probability: float | None
    recommendations: list[Recommendation] | None = Field(
        description="top products (scoring.k) when the action carries them, else null")
    model_versions: dict[str, str]
    snapshot_as_of: str | None


class ReloadReport(_Response):
    """What one reload did: versions swapped in, and what failed (the old one kept serving)."""

    changed: dict[str, str] = Field(description="kind -> version newly served")
    failed: dict[str, LoadFailure]
    snapshot_reloaded: bool
    models: dict[str, str | None] = Field(description="kind -> version served after the reload")
