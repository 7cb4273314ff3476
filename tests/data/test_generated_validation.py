"""The validator and the generator agree: exactly the deliberately broken rows are quarantined.

This ties two independent pieces together on data whose truth is known, in both the typed
(parquet) and the text-timestamp (CSV export) forms.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tailor.configs import load_settings
from tailor.data.generate import generate, write_generated
from tailor.data.io import read_dataset
from tailor.data.validate import validate_dataset


@pytest.mark.parametrize("as_text", [False, True], ids=["typed", "text-timestamps"])
def test_quarantine_matches_generated_truth(tmp_path: Path, as_text: bool) -> None:
    settings = load_settings(overrides=[
        "generate.customers=300", "generate.products=120", "generate.messy_share=0.03",
        f"generate.timestamp_as_text={str(as_text).lower()}",
    ])
    data = generate(settings.generate)
    write_generated(data, tmp_path)
    result = validate_dataset(read_dataset(tmp_path), settings.data)

    quarantined = result.quarantine["transactions"][["_source_row", "_rule"]]
    got = quarantined.rename(columns={"_rule": "rule"}).sort_values("_source_row")
    want = data.truth["messy"][["_source_row", "rule"]].sort_values("_source_row")
    assert len(want) > 0
    assert as_text == (want["rule"] == "unparsable_timestamp").any()
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True),
                                  check_dtype=False)
    # Nothing else is lost: every other row is accepted.
    assert len(result.dataset.transactions) == len(data.dataset.transactions) - len(want)
