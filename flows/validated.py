"""One data set, loaded and validated once, handed to every subflow of a run.

Prefect records each subflow's parameters on its run. Passing the validated tables themselves
would make Prefect encode every row; :class:`ValidatedData` records a summary instead (where
the data came from, rows read, accepted and quarantined, where the quarantine is).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_serializer

from tailor.configs.schema import DataSettings
from tailor.data.dataset import Dataset
from tailor.data.validate import ValidationResult
from tailor.tasks.data import load_raw, validate


class ValidatedData(BaseModel):
    """The validated data set of one run and where its quarantine was written."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    data_dir: str
    quarantine_dir: str
    rows_read: int
    result: ValidationResult

    @property
    def dataset(self) -> Dataset:
        """The contract-valid tables (quarantined rows removed)."""
        return self.result.dataset

    def rows_quarantined(self) -> dict[str, int]:
        """Quarantined rows per ``table.rule``."""
        return {f"{row.table}.{row.rule}": int(row.rows)
                for row in self.result.summary.itertuples() if row.rule != "accepted"}

    @model_serializer
    def _summary(self) -> dict[str, Any]:
        return {"data_dir": self.data_dir, "quarantine_dir": self.quarantine_dir,
                "rows_read": self.rows_read,
                "rows_accepted": len(self.result.dataset.transactions),
                "rows_quarantined": self.rows_quarantined()}


def load_validated(data_dir: str, settings: DataSettings, quarantine_dir: str) -> ValidatedData:
    """Load ``data_dir`` and validate it, writing its quarantine to ``quarantine_dir``."""
    raw = load_raw(data_dir)
    result = validate(raw, settings, quarantine_dir)
    return ValidatedData(data_dir=data_dir, quarantine_dir=quarantine_dir,
                         rows_read=len(raw.transactions), result=result)
