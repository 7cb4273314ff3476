"""Top-k ranking metrics on tiny score matrices whose values are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from tailor import inference
from tailor.models.ranking_metrics import chunks, evaluate_ranking, mask_rows, top_k


def rows_of(scores: np.ndarray, calls: list[np.ndarray] | None = None):
    matrix = np.asarray(scores, dtype=float)

    def score_rows(rows: np.ndarray) -> np.ndarray:
        if calls is not None:
            calls.append(np.asarray(rows).copy())
        return matrix[rows].copy()

    return score_rows


def csr(dense: list[list[int]]) -> sp.csr_matrix:
    return sp.csr_matrix(np.array(dense, dtype=float))


# ----------------------------------------------------------------------------- top_k


def test_top_k_returns_the_best_columns_best_first() -> None:
    scores = np.array([[0.1, 0.9, 0.3, 0.7],
                       [5.0, -1.0, 2.0, 3.0]])
    assert top_k(scores, 2).tolist() == [[1, 3], [0, 3]]
    assert top_k(scores, 3).tolist() == [[1, 3, 2], [0, 3, 2]]


def test_top_k_with_k_at_or_above_the_item_count_sorts_every_item() -> None:
    scores = np.array([[0.1, 0.9, 0.3], [3.0, 2.0, 1.0]])
    for k in (3, 10):
        got = top_k(scores, k)
        assert got.shape == (2, 3)
        assert got.tolist() == [[1, 2, 0], [0, 1, 2]]


def test_top_k_keeps_index_order_among_ties_when_every_item_is_ranked() -> None:
    scores = np.array([[1.0, 2.0, 1.0, 2.0]])
    assert top_k(scores, 4).tolist() == [[1, 3, 0, 2]]


def test_top_k_with_ties_picks_k_distinct_items_among_the_best() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1],
                       [1.0, 1.0, 1.0, 1.0, 1.0]])
    got = top_k(scores, 2)
    for row, picked in zip(scores, got, strict=True):
        assert len(set(picked.tolist())) == 2
        assert sorted(row[picked], reverse=True) == sorted(row, reverse=True)[:2]
        assert list(row[picked]) == sorted(row[picked], reverse=True)
    assert got[0, 0] == 1


# --------------------------------------------------------------------------- mask_rows


def test_mask_rows_sets_only_the_excluded_cells_of_the_given_rows() -> None:
    exclude = csr([[1, 0, 0],
                   [0, 0, 0],
                   [0, 1, 1]])
    rows = np.array([2, 0])  # the score block holds rows 2 then 0
    scores = np.arange(6, dtype=float).reshape(2, 3)
    mask_rows(scores, exclude, rows)
    assert scores.tolist() == [[0.0, -np.inf, -np.inf], [-np.inf, 4.0, 5.0]]


def test_mask_rows_without_exclusions_changes_nothing() -> None:
    scores = np.ones((2, 2))
    mask_rows(scores, None, np.array([0, 1]))
    assert scores.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_chunks_cover_every_row_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inference, "CHUNK_CELLS", 10)
    rows = np.arange(7)
    parts = chunks(rows, n_items=4)  # 10 // 4 = 2 rows per chunk
    assert [p.tolist() for p in parts] == [[0, 1], [2, 3], [4, 5], [6]]
    assert [p.tolist() for p in chunks(rows, n_items=100)] == [[i] for i in range(7)]


# --------------------------------------------------------------------- evaluate_ranking

SCORES = [[0.9, 0.8, 0.1, 0.5],
          [0.1, 0.2, 0.3, 0.4]]
TRUTH = [[1, 0, 0, 1],
         [0, 0, 1, 0]]


def test_metrics_at_k_match_a_hand_computation() -> None:
    got = evaluate_ranking(rows_of(SCORES), csr(TRUTH), k=2)
    # user 0: top-2 = items 0, 1 -> hits [1, 0], 2 relevant
    # user 1: top-2 = items 3, 2 -> hits [0, 1], 1 relevant
    d1, d2 = 1.0, 1.0 / math.log2(3)
    assert got["precision_at_2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert got["recall_at_2"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    assert got["ndcg_at_2"] == pytest.approx((d1 / (d1 + d2) + d2 / d1) / 2)
    # AP: user 0 (1/1) / min(2, 2); user 1 (1/2) / min(1, 2)
    assert got["map_at_2"] == pytest.approx((0.5 + 0.5) / 2)
    # AUC: user 0 ranks 3 of its 4 (pos, neg) pairs right; user 1 2 of 3
    assert got["auc"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert got["catalogue_coverage"] == 1.0
    assert set(got) == {"precision_at_2", "recall_at_2", "ndcg_at_2", "map_at_2", "auc",
                        "catalogue_coverage"}


def test_a_perfect_ranking_scores_one_everywhere() -> None:
    truth = [[1, 1, 0], [0, 0, 1]]
    scores = [[0.9, 0.8, 0.1], [0.1, 0.2, 0.3]]
    got = evaluate_ranking(rows_of(scores), csr(truth), k=1)
    assert got["precision_at_1"] == 1.0
    assert got["recall_at_1"] == pytest.approx((1 / 2 + 1) / 2)
    assert got["ndcg_at_1"] == 1.0 and got["map_at_1"] == 1.0 and got["auc"] == 1.0
    assert got["catalogue_coverage"] == pytest.approx(2 / 3)


def test_k_larger_than_the_catalogue_still_divides_precision_by_k() -> None:
    truth = [[1, 0, 1]]
    scores = [[0.2, 0.9, 0.5]]  # ranking: 1, 2, 0 -> hits [0, 1, 1]
    got = evaluate_ranking(rows_of(scores), csr(truth), k=10)
    assert got["precision_at_10"] == pytest.approx(2 / 10)
    assert got["recall_at_10"] == 1.0
    discounts = [1 / math.log2(r + 1) for r in (1, 2, 3)]
    assert got["ndcg_at_10"] == pytest.approx((discounts[1] + discounts[2])
                                              / (discounts[0] + discounts[1]))
    assert got["map_at_10"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert got["catalogue_coverage"] == 1.0


def test_users_without_relevant_items_are_not_evaluated() -> None:
    truth = [[0, 0, 0], [1, 0, 0], [0, 0, 0]]
    scores = [[0.0, 1.0, 2.0], [1.0, 0.5, 0.0], [9.0, 9.0, 9.0]]
    calls: list[np.ndarray] = []
    got = evaluate_ranking(rows_of(scores, calls), csr(truth), k=1)
    assert [c.tolist() for c in calls] == [[1]]
    assert got["precision_at_1"] == 1.0 and got["recall_at_1"] == 1.0
    assert got["catalogue_coverage"] == pytest.approx(1 / 3)


def test_no_user_with_a_relevant_item_is_an_error() -> None:
    with pytest.raises(ValueError, match="no user has a relevant item"):
        evaluate_ranking(rows_of([[1.0, 2.0]]), csr([[0, 0]]), k=1)


def test_n_relevant_lets_recall_count_items_the_model_cannot_rank() -> None:
    truth = [[1, 0, 0]]
    scores = [[0.9, 0.1, 0.0]]
    plain = evaluate_ranking(rows_of(scores), csr(truth), k=2)
    wider = evaluate_ranking(rows_of(scores), csr(truth), k=2, n_relevant=np.array([4.0]))
    assert plain["recall_at_2"] == 1.0
    assert wider["recall_at_2"] == pytest.approx(1 / 4)
    assert wider["precision_at_2"] == plain["precision_at_2"] == pytest.approx(1 / 2)
    d1, d2 = 1.0, 1.0 / math.log2(3)
    assert wider["ndcg_at_2"] == pytest.approx(d1 / (d1 + d2))


def test_excluded_cells_are_ranked_below_everything_else() -> None:
    truth = [[0, 1, 0, 1]]
    scores = [[0.9, 0.8, 0.7, 0.1]]
    exclude = csr([[1, 0, 0, 0]])  # the best-scored item was bought before
    got = evaluate_ranking(rows_of(scores), csr(truth), k=2, exclude=exclude)
    # ranking without item 0: 1, 2 -> hits [1, 0]
    assert got["precision_at_2"] == pytest.approx(1 / 2)
    # AUC over the three remaining items: positives 1 (0.8) and 3 (0.1), negative 2 (0.7)
    assert got["auc"] == pytest.approx(1 / 2)


def test_an_excluded_item_is_never_a_hit_even_when_fewer_than_k_items_remain() -> None:
    truth = [[1, 0, 1]]
    scores = [[0.9, 0.5, 0.1]]
    exclude = csr([[1, 1, 0]])  # only item 2 may be recommended
    got = evaluate_ranking(rows_of(scores), csr(truth), k=2, exclude=exclude)
    assert got["precision_at_2"] == pytest.approx(1 / 2)  # item 2 only
    assert got["recall_at_2"] == pytest.approx(1 / 2)     # item 0 is relevant but excluded
    assert got["catalogue_coverage"] == pytest.approx(1 / 3)


def test_tied_scores_count_one_half_in_auc() -> None:
    truth = [[1, 0, 0, 0]]
    got = evaluate_ranking(rows_of([[0.5, 0.5, 0.5, 0.5]]), csr(truth), k=1)
    assert got["auc"] == pytest.approx(0.5)
    # positive tied with one negative, above the other two: (1 + 1 + 0.5) / 3
    got = evaluate_ranking(rows_of([[0.5, 0.5, 0.1, 0.2]]), csr(truth), k=1)
    assert got["auc"] == pytest.approx(2.5 / 3)


def test_auc_skips_users_with_every_item_relevant() -> None:
    truth = [[1, 1], [1, 0]]
    scores = [[0.2, 0.1], [0.1, 0.2]]  # user 1 ranks its positive last: AUC 0
    got = evaluate_ranking(rows_of(scores), csr(truth), k=1)
    assert got["auc"] == 0.0
    no_auc = evaluate_ranking(rows_of(scores), csr(truth), k=1, with_auc=False)
    assert "auc" not in no_auc


def test_auc_is_nan_when_no_user_has_a_negative() -> None:
    got = evaluate_ranking(rows_of([[0.3, 0.1]]), csr([[1, 1]]), k=1)
    assert math.isnan(got["auc"])


def test_new_item_share_counts_recommendations_never_bought() -> None:
    truth = [[1, 0, 0, 0], [0, 0, 0, 1]]
    scores = [[0.9, 0.8, 0.1, 0.0], [0.0, 0.1, 0.2, 0.3]]
    purchased = csr([[1, 1, 0, 0],   # user 0's top-2 (0, 1) were both bought before: 0 new
                     [0, 0, 1, 0]])  # user 1's top-2 (3, 2): one new
    got = evaluate_ranking(rows_of(scores), csr(truth), k=2, purchased=purchased)
    assert got["new_item_share_at_2"] == pytest.approx((0 + 1 / 2) / 2)
    assert "new_item_share_at_2" not in evaluate_ranking(rows_of(scores), csr(truth), k=2)


def test_prefix_names_every_metric() -> None:
    got = evaluate_ranking(rows_of(SCORES), csr(TRUTH), k=2, prefix="holdout_")
    assert all(name.startswith("holdout_") for name in got)
    assert "holdout_precision_at_2" in got and "holdout_auc" in got


def test_chunked_evaluation_equals_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(9, 5))
    dense = (rng.random((9, 5)) < 0.3).astype(float)
    dense[0, 0] = 1.0  # at least one relevant item somewhere
    truth = sp.csr_matrix(dense)
    exclude = sp.csr_matrix((rng.random((9, 5)) < 0.2).astype(float))
    whole = evaluate_ranking(rows_of(scores), truth, k=3, exclude=exclude)
    calls: list[np.ndarray] = []
    monkeypatch.setattr(inference, "CHUNK_CELLS", 10)  # 2 rows per chunk
    parts = evaluate_ranking(rows_of(scores, calls), truth, k=3, exclude=exclude)
    assert len(calls) > 1 and all(len(c) <= 2 for c in calls)
    assert parts.keys() == whole.keys()
    for name, value in whole.items():
        assert parts[name] == pytest.approx(value, nan_ok=True), name


def test_several_list_lengths_in_one_pass_equal_one_pass_per_length() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(40, 12))  # continuous: no ties, so each head is that top list
    truth = sp.csr_matrix((rng.random((40, 12)) < 0.25).astype(float))
    purchased = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(float))
    exclude = sp.csr_matrix((rng.random((40, 12)) < 0.1).astype(float))
    lengths = (1, 3, 5, 15)
    calls: list[np.ndarray] = []
    together = evaluate_ranking(rows_of(scores, calls), truth, k=lengths, exclude=exclude,
                                purchased=purchased, prefix="p_")
    assert len(calls) == 1
    for at in lengths:
        alone = evaluate_ranking(rows_of(scores), truth, k=at, exclude=exclude,
                                 purchased=purchased, prefix="p_")
        for name, value in alone.items():
            if name != "p_catalogue_coverage":
                assert together[name] == pytest.approx(value), name
    assert together["p_catalogue_coverage"] == pytest.approx(
        evaluate_ranking(rows_of(scores), truth, k=15, exclude=exclude)["catalogue_coverage"])
    with pytest.raises(ValueError, match="list lengths"):
        evaluate_ranking(rows_of(scores), truth, k=())


def _auc_by_full_ranks(scores: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """The reference: every row ranked whole (scipy's average ranks), excluded items last."""
    from scipy.stats import rankdata

    pos = truth.toarray() > 0
    finite = np.isfinite(scores)
    pos &= finite
    ranks = rankdata(np.where(finite, scores, -np.inf), axis=1)
    n_pos = pos.sum(axis=1)
    n_neg = finite.sum(axis=1) - n_pos
    rank_sum = np.where(pos, ranks, 0.0).sum(axis=1) - n_pos * (~finite).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


@pytest.mark.parametrize("share", [0.02, 0.6])  # few relevant items per row, and many (sorted)
def test_auc_equals_the_full_rank_computation(share: float) -> None:
    from tailor.models.ranking_metrics import SORT_ABOVE_POSITIVES, _auc

    rng = np.random.default_rng(11)
    scores = np.round(rng.normal(size=(30, 200)), 1)  # rounded: many ties
    scores[rng.random(scores.shape) < 0.1] = -np.inf  # excluded cells
    scores[3] = 0.5  # one row all tied
    truth = sp.csr_matrix((rng.random(scores.shape) < share).astype(float))
    per_row = np.diff(truth.indptr)
    assert (per_row > SORT_ABOVE_POSITIVES).any() == (share > 0.5)
    np.testing.assert_allclose(_auc(scores, truth), _auc_by_full_ranks(scores, truth),
                               rtol=0, atol=1e-12, equal_nan=True)
