"""The data contract: what a data set must look like once validated.

A data set is a directory holding ``transactions`` and optionally ``customers`` and
``products`` (each ``.parquet`` or ``.csv``). These pandera models are the types at task
boundaries; rows that break them are quarantined by :mod:`tailor.data.validate`, never dropped.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import DataFrame, Series

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


REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "transactions": ("order_id", "customer_id", "product_id", "quantity", "unit_price",
                     "timestamp"),
    "customers": ("customer_id",),
    "products": ("product_id",),
}

__all__ = [
    "REQUIRED_COLUMNS",
    "TABLES",
    "Customers",
    "DataFrame",
    "Products",
    "Transactions",
]
