"""Top-k ranking metrics computed in row chunks, so a large catalogue never needs a dense
users x items matrix in memory.

Scores come from a callable ``score_rows(rows) -> ndarray (len(rows), n_items)``; truth is a
binary users x items CSR matrix. Only users with at least one relevant item are evaluated (the
usual convention: a user with nothing to find has no defined precision or recall).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from tailor.inference import CHUNK_CELLS, chunks, mask_rows, top_k

ScoreRows = Callable[[np.ndarray], np.ndarray]


def _hits(top: np.ndarray, truth: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Boolean (len(rows), k): is the item at each rank relevant for that user."""
    sub = truth[rows]
    k = top.shape[1]
    flat = np.asarray(sub[np.repeat(np.arange(len(rows)), k), top.ravel()]).ravel()
    return (flat > 0).reshape(len(rows), k)


def _auc(scores: np.ndarray, truth_rows: sp.csr_matrix) -> np.ndarray:
    """Per-row AUC over the non-excluded (finite) items; ties count one half."""
    pos = truth_rows.toarray() > 0
    finite = np.isfinite(scores)
    pos &= finite
    ranks = rankdata(np.where(finite, scores, -np.inf), axis=1)
    n_excluded = (~finite).sum(axis=1)
    n_pos = pos.sum(axis=1)
    n_neg = finite.sum(axis=1) - n_pos
    rank_sum = np.where(pos, ranks, 0.0).sum(axis=1) - n_pos * n_excluded
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return auc


def evaluate_ranking(
    score_rows: ScoreRows,
    truth: sp.csr_matrix,
    k: int,
    exclude: sp.csr_matrix | None = None,
    n_relevant: np.ndarray | None = None,
    with_auc: bool = True,
    prefix: str = "",
    purchased: sp.csr_matrix | None = None,
) -> dict[str, float]:
    """precision/recall/ndcg/map at k, AUC and catalogue coverage over users with truth;
    with ``purchased`` (users x items bought before), ``new_item_share_at_k``: the share of
    recommended items the customer never bought (a repeat-only model cannot hide).

    ``n_relevant`` (per user) lets recall count relevant items outside the catalogue the model
    can rank (e.g. products first sold in the holdout window); default: the row sums of truth.
    ``exclude`` cells are never recommended (and do not count in AUC).
    """
    truth = sp.csr_matrix(truth)
    n_items = truth.shape[1]
    if n_relevant is None:
        n_relevant = np.diff(truth.indptr).astype(np.float64)
    rows = np.flatnonzero(n_relevant > 0)
    if rows.size == 0:
        raise ValueError("evaluate_ranking: no user has a relevant item in truth")
    kk = min(k, n_items)
    discounts = 1.0 / np.log2(np.arange(2, kk + 2))
    sums = {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0}
    if purchased is not None:
        sums["new_item_share"] = 0.0
    auc_sum, auc_n = 0.0, 0
    shown = np.zeros(n_items, dtype=bool)
    for part in chunks(rows, n_items):
        scores = np.array(score_rows(part), dtype=np.float64)
        mask_rows(scores, exclude, part)
        top = top_k(scores, kk)
        offered = np.isfinite(np.take_along_axis(scores, top, axis=1))  # excluded: never shown
        shown[top[offered]] = True
        hits = _hits(top, truth, part) & offered
        n_rel = n_relevant[part]
        n_hit = hits.sum(axis=1)
        sums["precision"] += float((n_hit / k).sum())
        sums["recall"] += float((n_hit / n_rel).sum())
        ideal_n = np.minimum(n_rel, kk).astype(int)
        ideal = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_n]
        sums["ndcg"] += float(((hits * discounts).sum(axis=1) / ideal).sum())
        precision_at = np.cumsum(hits, axis=1) / np.arange(1, kk + 1)
        sums["map"] += float(((precision_at * hits).sum(axis=1) / np.minimum(n_rel, kk)).sum())
        if purchased is not None:
            sums["new_item_share"] += float((~_hits(top, purchased, part)).mean(axis=1).sum())
        if with_auc:
            auc = _auc(scores, truth[part])
            ok = np.isfinite(auc)
            auc_sum += float(auc[ok].sum())
            auc_n += int(ok.sum())
    n = len(rows)
    out = {f"{prefix}{name}_at_{k}": value / n for name, value in sums.items()}
    if with_auc:
        out[f"{prefix}auc"] = auc_sum / auc_n if auc_n else float("nan")
    out[f"{prefix}catalogue_coverage"] = float(shown.mean())
    return out


__all__ = ["CHUNK_CELLS", "ScoreRows", "chunks", "evaluate_ranking", "mask_rows", "top_k"]
