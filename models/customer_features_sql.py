"""The base columns of :func:`tailor.models.features.customer_features` as one DuckDB query.

Measured side by side on 10M order lines (``benchmarks/engines.py``, docs/benchmarks.md),
DuckDB computes these per-customer aggregates 1.45x faster than the numpy code it replaced on
one thread and 2.6x on two, with the same values (relative error below 1e-9). DuckDB scans
the pandas frame in place (only the columns the query reads) and returns 150k rows, so nothing
of the 10M lines is copied or converted.
"""

from __future__ import annotations

import os
import threading

import duckdb
import numpy as np
import pandas as pd

BASE_SQL = """
WITH b AS (
    SELECT customer_id, order_id, product_id, "timestamp" AS ts,
           quantity::DOUBLE AS q, quantity * unit_price AS v
    FROM tx WHERE "timestamp" < $as_of AND quantity > 0),
c AS (
    SELECT customer_id, sum(v) AS gross, sum(q) AS units, min(ts) AS first, max(ts) AS last,
           count(*)::DOUBLE AS lines, count(DISTINCT product_id)::DOUBLE AS distinct_products,
           count(DISTINCT date_trunc('month', ts))::DOUBLE AS active_months
    FROM b GROUP BY customer_id),
o AS (SELECT customer_id, order_id, min(ts) AS start FROM b GROUP BY customer_id, order_id),
oc AS (
    SELECT customer_id, count(*)::DOUBLE AS frequency,
           count(*) FILTER (WHERE start >= $recent_from)::DOUBLE AS recent,
           count(*) FILTER (WHERE start >= $previous_from AND start < $recent_from)::DOUBLE
               AS previous
    FROM o GROUP BY customer_id),
d AS (SELECT DISTINCT customer_id, epoch_us(ts) // 86400000000 AS day FROM b),
g AS (
    SELECT customer_id,
           (day - lag(day) OVER (PARTITION BY customer_id ORDER BY day))::DOUBLE AS gap
    FROM d),
gs AS (
    SELECT customer_id, count(*)::DOUBLE AS purchase_days, avg(gap) AS ipi_mean,
           quantile_cont(gap, 0.5) AS ipi_median, stddev_pop(gap) AS ipi_std
    FROM g GROUP BY customer_id),
r AS (
    SELECT customer_id, sum(-quantity)::DOUBLE AS returned_units,
           sum(-quantity * unit_price) AS returned_value
    FROM tx WHERE "timestamp" < $as_of AND quantity < 0 GROUP BY customer_id),
t AS (
    SELECT c.*, oc.frequency, oc.recent, oc.previous, gs.purchase_days, gs.ipi_mean,
           gs.ipi_median, gs.ipi_std, coalesce(r.returned_units, 0) AS returned_units,
           coalesce(r.returned_value, 0) AS returned_value,
           (epoch_us($as_of) - epoch_us(c.first)) / 86400e6 AS tenure
    FROM c JOIN oc USING (customer_id) JOIN gs USING (customer_id)
    LEFT JOIN r USING (customer_id))
SELECT customer_id,
       (epoch_us($as_of) - epoch_us(last)) / 86400e6 AS recency_days,
       frequency,
       greatest(gross - returned_value, 0) AS monetary,
       gross / frequency AS avg_order_value,
       tenure AS tenure_days,
       active_months,
       coalesce(ipi_mean, tenure) AS ipi_mean_days,
       coalesce(ipi_std, 0) AS ipi_std_days,
       coalesce(ipi_median, tenure) AS ipi_median_days,
       units / frequency AS basket_units_mean,
       lines / frequency AS basket_lines_mean,
       distinct_products,
       least(greatest(returned_units / units, 0), 1) AS return_rate,
       recent AS orders_recent,
       previous AS orders_previous,
       (recent - previous) / (recent + previous + 1) AS trend,
       purchase_days
FROM t ORDER BY customer_id
"""


_lock = threading.Lock()
_shared: dict[int, duckdb.DuckDBPyConnection] = {}


def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process (a forked child opens its own), opened on first use:
    opening costs ~30 ms, more than the query on a small data set. Each call takes a cursor
    of its own."""
    with _lock:
        pid = os.getpid()
        if pid not in _shared:
            _shared.clear()
            _shared[pid] = duckdb.connect(config={"threads": os.cpu_count() or 1})
        return _shared[pid]


def base_features(transactions: pd.DataFrame, as_of: pd.Timestamp, trend_window_days: int,
                  columns: tuple[str, ...]) -> pd.DataFrame:
    """``columns`` (base feature names the query gives) for every customer with a purchase
    line before ``as_of``, indexed by ``customer_id`` in byte order, all float64.

    ``transactions`` is scanned where it is; ``timestamp`` is naive datetime64 (the contract's
    type) and ids are strings."""
    window = pd.Timedelta(days=trend_window_days)
    bounds = {"as_of": as_of.to_pydatetime(), "recent_from": (as_of - window).to_pydatetime(),
              "previous_from": (as_of - 2 * window).to_pydatetime()}
    with _database().cursor() as con:  # a connection of its own: calls may run in threads
        con.register("tx", transactions)
        out = con.execute(BASE_SQL, bounds).df()
    frame = out[list(columns)].astype("float64")
    frame.index = pd.Index(np.asarray(out["customer_id"], dtype=object), name="customer_id")
    return frame


__all__ = ["BASE_SQL", "base_features"]
