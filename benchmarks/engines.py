"""Benchmark: the customer features and the interaction weights in the product, DuckDB and
Polars, side by side on one validated data set.

The issue asked whether another engine beats pandas/numpy for the feature and interaction
building. This times, in one process and interleaved round by round, the product's
:func:`tailor.models.features.customer_features` (its 17 base columns) and the interaction
weights of :func:`tailor.models.interactions.build_interactions` (distinct customer-product
pairs, lines per pair), against the same results from DuckDB (the product's own query,
:data:`tailor.models.customer_features_sql.BASE_SQL`, on one thread and on every core) and
from Polars, each checked equal to the product's before any time counts.

The product's base features were numpy until this comparison (2026-12-07: DuckDB 1.45x on one
thread, 2.6x on two, at 10M lines; docs/benchmarks.md) and are that DuckDB query since; the
interaction weights stay numpy (DuckDB and Polars gain 1.3x only on two threads, and lose on
one).

Usage:
    .venv/bin/pip install polars==2.1.0   # not a dependency of the product
    .venv/bin/python benchmarks/engines.py --data DIR [--rounds 3]

Prints one markdown table (medians over rounds, each against the product's job) and one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tailor.configs import load_settings
from tailor.configs.schema import FeatureSettings
from tailor.data.io import read_dataset
from tailor.data.validate import validate_dataset
from tailor.models.customer_features_sql import BASE_SQL
from tailor.models.features import BASE_COLUMNS, customer_features, default_as_of

PAIRS_SQL = """
SELECT customer_id, product_id, count(*)::DOUBLE AS weight
FROM tx WHERE "timestamp" < $as_of AND quantity > 0
GROUP BY customer_id, product_id ORDER BY customer_id, product_id
"""


def _bounds(as_of: pd.Timestamp, window_days: int) -> dict[str, Any]:
    window = pd.Timedelta(days=window_days)
    return {"as_of": as_of.to_pydatetime(), "recent_from": (as_of - window).to_pydatetime(),
            "previous_from": (as_of - 2 * window).to_pydatetime()}


def duckdb_features(tx: pd.DataFrame, as_of: pd.Timestamp, window_days: int,
                    threads: int) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect(config={"threads": threads})
    con.register("tx", tx)
    out = con.execute(BASE_SQL, _bounds(as_of, window_days)).df()
    con.close()
    return out.set_index("customer_id")


def duckdb_pairs(tx: pd.DataFrame, as_of: pd.Timestamp, threads: int) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect(config={"threads": threads})
    con.register("tx", tx)
    out = con.execute(PAIRS_SQL, {"as_of": as_of.to_pydatetime()}).df()
    con.close()
    return out


def polars_features(tx: pd.DataFrame, as_of: pd.Timestamp, window_days: int) -> pd.DataFrame:
    import polars as pl

    bounds = _bounds(as_of, window_days)
    frame = pl.from_pandas(tx[["customer_id", "order_id", "product_id", "timestamp", "quantity",
                               "unit_price"]])
    past = frame.lazy().filter(pl.col("timestamp") < bounds["as_of"])
    b = past.filter(pl.col("quantity") > 0).with_columns(
        q=pl.col("quantity").cast(pl.Float64), v=pl.col("quantity") * pl.col("unit_price"))
    c = b.group_by("customer_id").agg(
        gross=pl.col("v").sum(), units=pl.col("q").sum(), first=pl.col("timestamp").min(),
        last=pl.col("timestamp").max(), lines=pl.len(),
        distinct_products=pl.col("product_id").n_unique(),
        active_months=pl.col("timestamp").dt.truncate("1mo").n_unique())
    oc = (b.group_by("customer_id", "order_id").agg(start=pl.col("timestamp").min())
          .group_by("customer_id").agg(
              frequency=pl.len().cast(pl.Float64),
              recent=(pl.col("start") >= bounds["recent_from"]).sum().cast(pl.Float64),
              previous=((pl.col("start") >= bounds["previous_from"])
                        & (pl.col("start") < bounds["recent_from"])).sum().cast(pl.Float64)))
    days = (b.select("customer_id", day=pl.col("timestamp").dt.truncate("1d")).unique()
            .sort("customer_id", "day")
            .with_columns(gap=(pl.col("day").diff().over("customer_id").dt.total_days()
                               .cast(pl.Float64))))
    gs = days.group_by("customer_id").agg(
        purchase_days=pl.len().cast(pl.Float64), ipi_mean=pl.col("gap").mean(),
        ipi_median=pl.col("gap").median(), ipi_std=pl.col("gap").std(ddof=0))
    r = past.filter(pl.col("quantity") < 0).group_by("customer_id").agg(
        returned_units=(-pl.col("quantity")).sum().cast(pl.Float64),
        returned_value=(-pl.col("quantity") * pl.col("unit_price")).sum())
    day = 86_400_000_000.0
    tenure = (pl.lit(bounds["as_of"]) - pl.col("first")).dt.total_microseconds() / day
    out = (c.join(oc, on="customer_id").join(gs, on="customer_id")
           .join(r, on="customer_id", how="left")
           .select(
               "customer_id",
               recency_days=(pl.lit(bounds["as_of"]) - pl.col("last")).dt.total_microseconds()
               / day,
               frequency="frequency",
               monetary=(pl.col("gross") - pl.col("returned_value").fill_null(0)).clip(0),
               avg_order_value=pl.col("gross") / pl.col("frequency"),
               tenure_days=tenure,
               active_months=pl.col("active_months").cast(pl.Float64),
               ipi_mean_days=pl.col("ipi_mean").fill_null(tenure),
               ipi_std_days=pl.col("ipi_std").fill_null(0.0),
               ipi_median_days=pl.col("ipi_median").fill_null(tenure),
               basket_units_mean=pl.col("units") / pl.col("frequency"),
               basket_lines_mean=pl.col("lines") / pl.col("frequency"),
               distinct_products=pl.col("distinct_products").cast(pl.Float64),
               return_rate=(pl.col("returned_units").fill_null(0) / pl.col("units")).clip(0, 1),
               orders_recent="recent", orders_previous="previous",
               trend=(pl.col("recent") - pl.col("previous"))
               / (pl.col("recent") + pl.col("previous") + 1),
               purchase_days="purchase_days")
           .sort("customer_id").collect())
    return out.to_pandas().set_index("customer_id")


def polars_pairs(tx: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    import polars as pl

    frame = pl.from_pandas(tx[["customer_id", "product_id", "timestamp", "quantity"]])
    out = (frame.lazy().filter((pl.col("timestamp") < as_of.to_pydatetime())
                               & (pl.col("quantity") > 0))
           .group_by("customer_id", "product_id").agg(weight=pl.len().cast(pl.Float64))
           .sort("customer_id", "product_id").collect())
    return out.to_pandas()


def product_pairs(tx: pd.DataFrame, as_of: pd.Timestamp,
                  settings: FeatureSettings) -> pd.DataFrame:
    """The product's interaction weights (the count scheme) as a (customer, product, weight)
    frame: what build_interactions aggregates, by its own two steps, before the matrices."""
    from tailor.models.interactions import _pair_weights, _users_and_items

    past = (tx["timestamp"] < as_of).to_numpy(dtype=bool)
    quantity = tx["quantity"].to_numpy()
    bought = past & (quantity > 0)
    users, user_of_line, items, item_of_line = _users_and_items(tx, past, bought, None)
    u, i, weight = _pair_weights(user_of_line, item_of_line, quantity[bought],
                                 tx["timestamp"].to_numpy()[bought], len(items), as_of,
                                 settings.model_copy(update={"interaction_weight": "count"}))
    return pd.DataFrame({"customer_id": np.asarray(users, dtype=object)[u],
                         "product_id": np.asarray(items, dtype=object)[i], "weight": weight})


def _same_features(got: pd.DataFrame, want: pd.DataFrame, name: str) -> None:
    got = got.reindex(columns=want.columns)
    if not got.index.astype(str).equals(want.index.astype(str)):
        raise AssertionError(f"{name}: other customers or order")
    for col in want.columns:
        np.testing.assert_allclose(got[col].to_numpy(dtype=float), want[col].to_numpy(),
                                   rtol=1e-9, atol=1e-9, err_msg=f"{name}: {col}")


def _same_pairs(got: pd.DataFrame, want: pd.DataFrame, name: str) -> None:
    for col in ("customer_id", "product_id"):
        if not (got[col].astype(str).to_numpy() == want[col].astype(str).to_numpy()).all():
            raise AssertionError(f"{name}: other pairs ({col})")
    np.testing.assert_array_equal(got["weight"].to_numpy(dtype=float), want["weight"].to_numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    tx = validate_dataset(read_dataset(args.data), settings.data).dataset.transactions
    as_of = default_as_of(tx)
    window = settings.features.trend_window_days
    cores = os.cpu_count() or 1

    jobs: dict[str, tuple[str, Callable[[], pd.DataFrame]]] = {
        "features: product": (
            "features", lambda: customer_features(tx, as_of, settings.features)[
                list(BASE_COLUMNS)]),
        "features: DuckDB, 1 thread": ("features",
                                       lambda: duckdb_features(tx, as_of, window, 1)),
        f"features: DuckDB, {cores} threads": (
            "features", lambda: duckdb_features(tx, as_of, window, cores)),
        "features: Polars": ("features", lambda: polars_features(tx, as_of, window)),
        "pairs: product (numpy)": ("pairs", lambda: product_pairs(tx, as_of, settings.features)),
        "pairs: DuckDB, 1 thread": ("pairs", lambda: duckdb_pairs(tx, as_of, 1)),
        f"pairs: DuckDB, {cores} threads": ("pairs", lambda: duckdb_pairs(tx, as_of, cores)),
        "pairs: Polars": ("pairs", lambda: polars_pairs(tx, as_of)),
    }
    reference = {"features": jobs["features: product"][1](),
                 "pairs": jobs["pairs: product (numpy)"][1]()}
    for name, (kind, job) in jobs.items():  # every engine gives the product's answer
        (_same_features if kind == "features" else _same_pairs)(job(), reference[kind], name)

    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(args.rounds):
        for name, (_, job) in jobs.items():
            t0 = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - t0)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{len(tx):,} lines, {len(reference['features']):,} customers, "
          f"{len(reference['pairs']):,} pairs; medians of {args.rounds} interleaved rounds")
    print("| job | median s | product / this |")
    print("|---|---:|---:|")
    for name, value in medians.items():
        base = medians["features: product" if name.startswith("features")
                       else "pairs: product (numpy)"]
        print(f"| {name} | {value:.2f} | {base / value:.2f}x |")
    print(json.dumps({"lines": len(tx), "rounds": args.rounds, "times": times}))


if __name__ == "__main__":
    main()
