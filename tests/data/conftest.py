"""Raw tables for the ``test_validate_*`` modules: clean transaction lines as CSV text, tagged with
their source file and row as ``read_dataset`` hands them over, and the invariant every
validation keeps (rows in == accepted + quarantined)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailor.configs.schema import DataSettings
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW, Dataset
from tailor.data.validate import ValidationResult

DEFAULTS = DataSettings()
LOOSE = DataSettings(max_rejected_share=1.0)  # tiny tables: one bad row is a big share
COLUMNS = ("order_id", "customer_id", "product_id", "quantity", "unit_price", "timestamp")
NOW = pd.Timestamp("2024-06-01 12:00")  # the time of the run, pinned


def line(i: int, **changes: object) -> dict[str, object]:
    """A clean raw transaction line as CSV text (distinct per i), with changes applied."""
    row: dict[str, object] = {
        "order_id": f"O{i}", "customer_id": f"C{i % 3}", "product_id": f"P{i % 4}",
        "quantity": str(i % 5 + 1), "unit_price": f"{1.25 * (i + 1):.2f}",
        "timestamp": f"2023-01-{i % 28 + 1:02d} 10:{i % 60:02d}:00", "country": "UK",
    }
    row.update(changes)
    return row


def tagged(rows: list[dict[str, object]], source: str) -> pd.DataFrame:
    """Rows as ``read_dataset`` hands them over: with ``_source_file``, 1-based ``_source_row``."""
    frame = pd.DataFrame(rows)
    frame[SOURCE_FILE] = source
    frame[SOURCE_ROW] = np.arange(1, len(frame) + 1)
    return frame


def products(ids: tuple[str | None, ...] = ("P0", "P1", "P2", "P3"),
             **extra: list[object]) -> pd.DataFrame:
    return tagged([{"product_id": pid, **{k: v[i] for k, v in extra.items()}}
                   for i, pid in enumerate(ids)], "products.csv")


def customers(ids: tuple[str, ...] = ("C0", "C1", "C2")) -> pd.DataFrame:
    return tagged([{"customer_id": cid, "segment": "x"} for cid in ids], "customers.csv")


def lines_with(bad: dict[str, object], n: int = 6, at: int = 3) -> pd.DataFrame:
    """n clean lines with the line at 1-based position ``at`` replaced by ``bad`` changes."""
    rows = [line(i) for i in range(n)]
    rows[at - 1] = line(100, **bad)
    return tagged(rows, "transactions.csv")


def check_invariant(raw: Dataset, result: ValidationResult) -> None:
    """rows in == accepted + quarantined, and every source row is in exactly one place."""
    for name in ("transactions", "customers", "products"):
        frame = raw.table(name)
        if frame is None:
            assert name not in result.quarantine
            continue
        clean = result.dataset.table(name)
        quarantined = result.quarantine[name]
        assert len(frame) == len(clean) + len(quarantined)
        counted = result.summary.query("table == @name")["rows"].sum()
        assert counted == len(frame)
