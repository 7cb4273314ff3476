"""The data contracts: what a data set must look like once validated, and the frames built
from it that cross task boundaries.

A data set is a directory holding ``transactions`` and optionally ``customers`` and
``products`` (each ``.parquet`` or ``.csv``). These pandera models are the types at task
boundaries; rows that break them are quarantined by :mod:`tailor.data.validate`, never dropped.

:class:`CustomerFeatures` (what :func:`tailor.models.features.customer_features` builds, and what
the serving snapshot holds) and :class:`CustomerScores` (one row per customer of the campaign
table, :func:`tailor.models.scoring.score_customers`) are not quarantined row by row: they are
built by code, so a frame breaking them is a bug or a corrupt file and is refused whole.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors
from pandera.typing import DataFrame, Index, Series

TABLES = ("transactions", "customers", "products")


class Transactions(pa.DataFrameModel):
    """One order line. Negative quantity is a return; extra columns are kept."""

    order_id: Series[str] = pa.Field(str_length={"min_value": 1})
    customer_id: Series[str] = pa.Field(str_length={"min_value": 1})
    product_id: Series[str] = pa.Field(str_length={"min_value": 1})
    quantity: Series[int] = pa.Field(ne=0)
    unit_price: Series[float] = pa.Field(gt=0)
    timestamp: Series[pd.Timestamp] = pa.Field()

    class Config:
        strict = False
        coerce = False


class Customers(pa.DataFrameModel):
    """One row per customer; every other column is an attribute (becomes a user feature)."""

    customer_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})

    class Config:
        strict = False


class Products(pa.DataFrameModel):
    """One row per product; category, description, price and other columns become item features."""

    product_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    category: Series[str] | None = pa.Field(nullable=True)
    description: Series[str] | None = pa.Field(nullable=True)
    price: Series[float] | None = pa.Field(nullable=True, ge=0)

    class Config:
        strict = False


#: closed range [0, 1] (shares, rates, probabilities)
_UNIT = {"min_value": 0.0, "max_value": 1.0}


class CustomerFeatures(pa.DataFrameModel):
    """One row per customer with a purchase before ``as_of`` (see :mod:`tailor.models.features`
    for what each column means). The base columns are float64 and never null; ``cat_share_*``
    and ``attr_*`` columns depend on the data set, so extra columns are allowed. The rules are
    the ones that hold for any contract-valid history, so a frame breaking one was not built
    by ``customer_features`` (or was corrupted since)."""

    customer_id: Index[str] = pa.Field(unique=True, check_name=True)
    recency_days: Series[float] = pa.Field(ge=0)
    frequency: Series[float] = pa.Field(ge=1)
    monetary: Series[float] = pa.Field(ge=0)
    avg_order_value: Series[float] = pa.Field(ge=0)
    tenure_days: Series[float] = pa.Field(ge=0)
    active_months: Series[float] = pa.Field(ge=1)
    ipi_mean_days: Series[float] = pa.Field(ge=0)
    ipi_std_days: Series[float] = pa.Field(ge=0)
    ipi_median_days: Series[float] = pa.Field(ge=0)
    basket_units_mean: Series[float] = pa.Field(gt=0)
    basket_lines_mean: Series[float] = pa.Field(ge=1)
    distinct_products: Series[float] = pa.Field(ge=1)
    return_rate: Series[float] = pa.Field(in_range=_UNIT)
    orders_recent: Series[float] = pa.Field(ge=0)
    orders_previous: Series[float] = pa.Field(ge=0)
    trend: Series[float] = pa.Field(gt=-1.0, lt=1.0)
    purchase_days: Series[float] = pa.Field(ge=1)
    cat_share: Series[float] | None = pa.Field(alias=r"^cat_share_.+$", regex=True,
                                               in_range=_UNIT)

    @pa.dataframe_check(name="tenure_days >= recency_days")
    def first_purchase_before_last(cls, frame: pd.DataFrame) -> pd.Series:
        """The first purchase cannot be more recent than the last one."""
        return frame["tenure_days"] >= frame["recency_days"]

    class Config:
        strict = False
        coerce = False


def _product_lists(cell: object) -> bool:
    return isinstance(cell, list) and all(isinstance(p, str) for p in cell)


class CustomerScores(pa.DataFrameModel):
    """One row per customer of the campaign table: each built-in kind's columns (null when the
    kind has no champion), the next best action and the version that scored each column.
    Kinds registered later add their own columns (and ``<kind>_version``): allowed."""

    customer_id: Series[str] = pa.Field(unique=True)
    segment: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    segment_name: Series[str] = pa.Field(nullable=True)
    recommendations: Series[object] = pa.Field(nullable=True)
    churn_probability: Series[float] = pa.Field(nullable=True, in_range=_UNIT)
    next_best_action: Series[str] = pa.Field(str_length={"min_value": 1})
    segmentation_version: Series[str] = pa.Field(nullable=True)
    recommender_version: Series[str] = pa.Field(nullable=True)
    churn_version: Series[str] = pa.Field(nullable=True)

    @pa.check("recommendations", name="list of product ids")
    def product_id_lists(cls, cells: pd.Series) -> pd.Series:
        """Ranked product ids per cell (a list of str), so every writer can type the column."""
        return cells.map(_product_lists).astype(bool)

    class Config:
        strict = False
        coerce = False


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def first_failure(exc: SchemaErrors) -> str:
    """The first failure of a lazy validation, as ``column 'x', rule r, e.g. customer 'c'
    (value v), n failure cases``: worded like :mod:`tailor.data.validate`'s errors, instead
    of pandera's full report (which can run to megabytes)."""
    cases = exc.failure_cases
    first = cases.iloc[0]
    context, rule, case, at = (first["schema_context"], first["check"], first["failure_case"],
                               first["index"])
    if context == "DataFrameSchema" and rule == "column_in_dataframe":
        return f"column {case!r} missing (rule {rule})"
    if at is None or pd.isna(at):
        example, count = f"found {case}", ""
    elif context == "Column":
        example = f"e.g. customer {_shown(at)} (value {_shown(case)})"
        count = f", {len(cases)} failure cases"
    else:  # the index, or a check across columns (one case per cell of the row)
        example = f"e.g. customer {_shown(at)}"
        count = f", {cases['index'].nunique()} customers"
    where = {"Column": "column ", "Index": "index "}.get(context, "")
    where = f"{where}{first['column']!r}, " if where else ""
    return f"{where}rule {rule}, {example}{count}"

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "transactions": ("order_id", "customer_id", "product_id", "quantity", "unit_price",
                     "timestamp"),
    "customers": ("customer_id",),
    "products": ("product_id",),
}

__all__ = [
    "REQUIRED_COLUMNS",
    "TABLES",
    "CustomerFeatures",
    "CustomerScores",
    "Customers",
    "DataFrame",
    "Products",
    "Transactions",
    "first_failure",
]
