"""Small renderers for Prefect markdown artifacts and terminal summaries."""

from __future__ import annotations

import pandas as pd


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-style markdown table (no extra dependency)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return "" if value is None else str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
