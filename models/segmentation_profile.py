"""Segment profiles and marketer-facing names.

A segment is only useful to a marketer if it is described in business units (days, orders,
money) and carries a name that says what to do with it. Names come from explicit, ordered rules
on *percentile scores relative to the whole population* (0.5 = a typical customer), so the same
rules work for a gift-ware wholesaler and a grocery shop whatever their currency or cadence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

PROFILE_MEAN_COLUMNS = (
    "recency_days", "frequency", "monetary", "avg_order_value", "tenure_days",
    "ipi_median_days", "distinct_products", "return_rate",
)
# Score name -> (feature column, True when a high raw value means a high score).
SCORE_COLUMNS = {
    "r_score": ("recency_days", False),
    "f_score": ("frequency", True),
    "m_score": ("monetary", True),
    "t_score": ("tenure_days", True),
}
NEUTRAL_SCORE = 0.5


@dataclass(frozen=True)
class NameRule:
    """A segment gets ``name`` when every score bound holds (scores are percentiles in [0, 1])."""

    name: str
    min_r: float = 0.0
    max_r: float = 1.0
    min_f: float = 0.0
    max_f: float = 1.0
    min_m: float = 0.0
    max_m: float = 1.0
    max_t: float = 1.0

    def matches(self, r: float, f: float, m: float, t: float) -> bool:
        return (self.min_r <= r <= self.max_r and self.min_f <= f <= self.max_f
                and self.min_m <= m <= self.max_m and t <= self.max_t)


# First matching rule wins; the order encodes priority (value and urgency first).
NAME_RULES: tuple[NameRule, ...] = (
    NameRule("champions", min_r=0.6, min_f=0.65, min_m=0.65),
    NameRule("at_risk", max_r=0.45, min_f=0.55, min_m=0.55),
    NameRule("new", min_r=0.55, max_t=0.3),
    NameRule("loyal", min_r=0.45, min_f=0.6),
    NameRule("big_spenders", min_m=0.6),
    NameRule("lost", max_r=0.2, max_f=0.4, max_m=0.4),
    NameRule("hibernating", max_r=0.35, max_f=0.45),
    NameRule("promising", min_r=0.55),
)
FALLBACK_NAME = "needs_attention"


def _scores(features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Mean population percentile of each segment's members for R, F, M and tenure."""
    out = {}
    for score, (column, higher_is_better) in SCORE_COLUMNS.items():
        if column not in features:
            out[score] = pd.Series(NEUTRAL_SCORE, index=np.unique(labels))
            continue
        pct = features[column].astype(float).rank(pct=True, method="average")
        pct = pct.fillna(NEUTRAL_SCORE)
        if not higher_is_better:
            pct = 1.0 - pct
        out[score] = pct.groupby(labels).mean()
    return pd.DataFrame(out)


def _top_categories(features: pd.DataFrame, labels: np.ndarray, prefix: str, top_n: int
                    ) -> pd.Series:
    cat_cols = [c for c in features.columns if c.startswith(prefix)]
    segments = np.unique(labels)
    if not cat_cols or top_n <= 0:
        return pd.Series("", index=segments)
    means = features[cat_cols].astype(float).groupby(labels).mean()
    means.columns = [c[len(prefix):] for c in cat_cols]
    texts = {}
    for seg, row in means.iterrows():  # one row per segment: a handful at most
        top = row.sort_values(ascending=False, kind="stable").head(top_n)
        texts[seg] = ", ".join(f"{name} ({share:.0%})" for name, share in top.items()
                               if share > 0)
    return pd.Series(texts)


def name_segments(scores: pd.DataFrame) -> list[str]:
    """Apply :data:`NAME_RULES` to each row of ``scores`` (r/f/m/t_score); names made unique.

    When two segments earn the same name, the later one (by segment id) gets ``_2``, ``_3``...
    """
    names: list[str] = []
    seen: dict[str, int] = {}
    for _, row in scores.iterrows():
        values = [float(row.get(s, NEUTRAL_SCORE)) for s in ("r_score", "f_score", "m_score",
                                                              "t_score")]
        values = [NEUTRAL_SCORE if np.isnan(v) else v for v in values]
        base = next((rule.name for rule in NAME_RULES if rule.matches(*values)), FALLBACK_NAME)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def profile_segments(
    features: pd.DataFrame,
    labels: np.ndarray | pd.Series,
    names: Sequence[str] | None = None,
    category_prefix: str = "cat_share_",
    top_n: int = 3,
) -> pd.DataFrame:
    """One row per segment: size, share, mean raw RFM-like values, scores, top categories, name.

    ``features`` is the raw customer-feature frame (business units, not the clustered space);
    columns that are absent are simply not profiled. ``names`` (by segment id) defaults to
    the rule-derived names of :func:`name_segments`.
    """
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise ValueError(f"labels has {len(labels)} rows but features has {len(features)}")
    if len(labels) == 0:
        raise ValueError("cannot profile segments of an empty features frame")
    sizes = pd.Series(labels).value_counts().sort_index()
    table = pd.DataFrame({"size": sizes.astype(int), "share": sizes / len(labels)})
    present = [c for c in PROFILE_MEAN_COLUMNS if c in features]
    if present:
        means = features[present].astype(float).groupby(labels).mean()
        table = table.join(means.add_suffix("_mean"))
    table = table.join(_scores(features, labels))
    table["top_categories"] = _top_categories(features, labels, category_prefix, top_n)
    if names is None:
        names = name_segments(table)
    elif len(names) < len(table) or max(table.index) >= len(names):
        raise ValueError(f"{len(names)} names given for segments {list(table.index)}")
    table["segment_name"] = [names[int(seg)] for seg in table.index]
    table.index.name = "segment"
    return table
