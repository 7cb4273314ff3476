"""In-memory data set: the three contract tables plus where each came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"


@dataclass(frozen=True)
class Dataset:
    """Tables of one data set. Raw (as read) or validated (contract types), see the producer.

    Raw tables carry ``_source_file`` and ``_source_row`` (1-based data row in that file) so that
    every rejected row can be traced back; validation keeps them on quarantined rows only.
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame | None = None
    products: pd.DataFrame | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame | None:
        return getattr(self, name)

    def before(self, as_of: pd.Timestamp) -> Dataset:
        """The same data set with only the transactions strictly before ``as_of`` (the same
        frame when every line is: a copy of 10M lines is a gigabyte held for the whole run)."""
        tx = self.transactions
        before = (tx["timestamp"] < as_of).to_numpy(dtype=bool)
        kept = tx if before.all() else tx.loc[before]
        return Dataset(kept, self.customers, self.products, dict(self.sources))
