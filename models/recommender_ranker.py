"""Learning to rank the recommender's candidates: LambdaMART (LightGBM) over repeat-purchase,
popularity and co-purchase signals, trained on windows inside the history.

Retail baskets repeat, so the question for most customers is which of their own products they
buy again in the next H days, and what to add for those who buy few. A learned ranker answers it
from signals that a fixed blend weighs badly:

- **personal frequency**: orders of the product (``n``), the same with 30/90/365-day half-life
  decay (TIFU-KNN's time-decayed frequency, Hu et al. 2020), days since the first and last
  order of it, its share of the customer's orders and its rank among the customer's products;
- **repurchase cycle**: the customer's mean days between orders of the product and how far past
  it they are (``due``), and the same against the product's median cycle over all customers;
- **popularity**: distinct buyers in the last 7 and 30 days (share of the best seller's), the
  trend between them, days since anyone last bought it (discontinued products stop selling),
  the share of its buyers who bought it again;
- **co-purchase**: cosine item-item neighbours of the customer's products, weighted by how
  recently they bought them;
- **season**: orders of the product by the customer, and its buyers, in the same H days a year
  earlier (zero while the history is shorter than a year: the ranker then learns nothing from
  them).

Candidates per customer: their own products (at most ``max_own_candidates``, most ordered
first), the ``candidates_popular`` best sellers of the last 30 days and their
``candidates_neighbours`` best co-purchase products. The ranker is trained on
``ranker_windows`` label windows of H days ending at T, T - step, ... (shorter when the history
is short): features at each window's start, label = bought in the window, grouped by customer
and restricted to customers who bought anything in it (the question is what, given they buy;
above ``ranker_max_customers`` of them, a seeded sample: 21 signals need no more rows to learn).
Popularity and ranks enter the trees with monotone constraints (more orders or more buyers never
lowers a score), which kept the ranker from over-fitting one season's window (measured on
Online Retail: see docs/benchmarks.md).

Everything reads only the history strictly before the date it is computed at.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.configs.schema import RecommenderSettings
from tailor.models.customer_sample import sample_ids
from tailor.models.features import _sorted_unique
from tailor.models.recommender_signals import DAY, purchase_orders

#: added to the ranker's candidates so they always rank before the blend's other products
RANKED_OFFSET = 10.0
FEATURES = (
    "n", "dec30", "dec90", "dec365", "last", "first", "share", "r_n", "own_cycle", "due",
    "item_due", "pop7_share", "pop30_share", "r_pop30", "pop_trend", "i_last_sold",
    "i_reprate", "cos", "c_repeat_share", "season_n", "season_pop_share",
)
#: +1: a larger value never lowers the score; -1: never raises it (ranks: 1 is best)
MONOTONE = {"n": 1, "share": 1, "dec90": 1, "pop30_share": 1, "r_n": -1, "r_pop30": -1}
NEIGHBOURS_PER_ITEM = 50  # co-purchase neighbours kept per product
ITEM_BLOCK = 1_024  # products per block of the item x item cosine
DENSE_CELLS = 25_000_000  # cells of one dense block of customer x item co-purchase scores
RANK_BLOCK = 20_000  # customers whose candidates are built and ranked at once


@dataclass(frozen=True, eq=False)
class Candidates:
    """Candidate (customer, product) pairs at one date with their :data:`FEATURES`."""

    frame: pd.DataFrame  # customer_id, product_id, FEATURES...
    as_of: pd.Timestamp


def _rank_in_rows(rows: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of the sorted ``rows``."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(rows)) + 1]
    return np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))


def _top_per_row(matrix: sp.csr_matrix, k: int) -> sp.coo_matrix:
    """The ``k`` largest entries of each row (ties by column), as COO."""
    coo = matrix.tocoo()
    if coo.nnz == 0:
        return coo
    order = np.lexsort((coo.col, -coo.data, coo.row))
    keep = order[_rank_in_rows(coo.row[order]) < k]
    return sp.coo_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)


def _item_neighbours(bought: sp.csr_matrix, k: int, block: int = ITEM_BLOCK) -> sp.csr_matrix:
    """items x items: each product's ``k`` nearest products by the cosine of their buyer
    vectors (itself left out), a block of products at a time, so the whole item x item product
    (30k products: up to 900M cells) is never held; each row is what the whole product gives."""
    norms = np.sqrt(np.asarray(bought.sum(axis=0)).ravel()) + 1e-9
    scaled = sp.csc_matrix(bought.multiply(1.0 / norms[None, :]))
    left = sp.csr_matrix(scaled.T)
    n_items = bought.shape[1]
    rows, cols, data = [], [], []
    for start in range(0, n_items, block):
        part = sp.csr_matrix(left[start:start + block] @ scaled).tocoo()
        keep = (part.row + start != part.col) & (part.data != 0)
        part = sp.csr_matrix((part.data[keep], (part.row[keep], part.col[keep])),
                             shape=part.shape)
        top = _top_per_row(part, k)
        rows.append(top.row + start)
        cols.append(top.col)
        data.append(top.data)
    if not rows:
        return sp.csr_matrix((n_items, n_items))
    return sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n_items, n_items))


def _top_dense(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the ``k`` largest positive cells of each row, ties by column: the cells
    :func:`_top_per_row` keeps of the same matrix held sparse (its zeros are its empty cells)."""
    kk = min(k, block.shape[1])
    if kk == 0 or block.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    picked = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
    kth = np.take_along_axis(block, picked, axis=1).min(axis=1)[:, None]
    greater = block > kth
    ties = (block == kth) & (kth > 0)
    room = kk - greater.sum(axis=1, keepdims=True)
    chosen = greater | (ties & (np.cumsum(ties, axis=1) <= room))
    return np.nonzero(chosen)


def _candidate_pairs(own_u: np.ndarray, own_i: np.ndarray, popular: np.ndarray,
                     asked: np.ndarray, weights: sp.csr_matrix, similar: sp.csr_matrix,
                     neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct ``user * n_items + item`` keys of the candidates (own products, the
    popular ones, the ``neighbours`` best co-purchase products) and each one's co-purchase
    strength, a block of customers at a time: the customers x items co-purchase scores reach
    thousands of products per customer (150k customers: 1.6G cells, 19 GB as one sparse
    matrix), so each block is scored dense, its best kept, and dropped. ``own_u`` is sorted."""
    n_users, n_items = weights.shape
    towards = sp.csr_matrix(similar.T)
    block = max(1, DENSE_CELLS // max(n_items, 1))
    keys, strengths = [], []
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        if not asked[start:stop].any():
            continue
        co = (weights[start:stop] @ towards).toarray()
        near_u, near_i = _top_dense(co, neighbours)
        lo, hi = np.searchsorted(own_u, [start, stop])
        users = start + np.flatnonzero(asked[start:stop])
        cand_u = np.concatenate([own_u[lo:hi], np.repeat(users, len(popular)), near_u + start])
        cand_i = np.concatenate([own_i[lo:hi], np.tile(popular, len(users)), near_i])
        key = np.unique(cand_u.astype(np.int64) * n_items + cand_i)
        keys.append(key)
        strengths.append(co[key // n_items - start, key % n_items])
    if not keys:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(keys), np.concatenate(strengths)


def _distinct_buyers(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    if len(users) == 0:
        return np.zeros(n_items)
    pairs = np.unique(users.astype(np.int64) * n_items + items)
    return np.bincount(pairs % n_items, minlength=n_items).astype(np.float64)


@dataclass(frozen=True, eq=False)
class CandidateSignals:
    """What every customer's candidates read at one date, from every customer's purchases:
    per (customer, product) pair, per product and per customer, and the co-purchase
    neighbours. Built once, then turned into candidates a block of customers at a time
    (:func:`block_candidates`), so the candidate rows never have to be held for everyone."""

    as_of: pd.Timestamp
    user_ids: np.ndarray  # object: customers with a purchase before as_of
    item_ids: np.ndarray  # object: products bought before as_of
    pair: np.ndarray  # sorted user * n_items + item of every bought pair
    pair_features: dict[str, np.ndarray]  # per pair: n, dec*, last, first, own_cycle, season_n
    pop7: np.ndarray
    pop30: np.ndarray
    buyers: np.ndarray
    repeaters: np.ndarray
    last_sold: np.ndarray
    cycles: np.ndarray  # per product: median own cycle of its buyers
    season_pop: np.ndarray
    popular: np.ndarray  # the candidates_popular best sellers (item positions)
    c_orders: np.ndarray  # per customer: distinct orders
    c_repeat_share: np.ndarray
    similar: sp.csr_matrix  # items x items: NEIGHBOURS_PER_ITEM cosine neighbours

    @property
    def n_users(self) -> int:
        return len(self.user_ids)


def candidate_signals(transactions: pd.DataFrame, as_of: pd.Timestamp | str,
                      horizon_days: int, settings: RecommenderSettings) -> CandidateSignals:
    """The :class:`CandidateSignals` of the purchases strictly before ``as_of``."""
    as_of = pd.Timestamp(as_of)
    orders = purchase_orders(transactions, as_of)
    u, user_ids = pd.factorize(orders["customer_id"])
    i, item_ids = pd.factorize(orders["product_id"])
    n_users, n_items = len(user_ids), len(item_ids)
    age = (as_of.to_datetime64() - orders["timestamp"].to_numpy()) / DAY
    pair, pair_of = _sorted_unique(u.astype(np.int64) * n_items + i, inverse=True)
    pu, pi = pair // n_items, pair % n_items
    n = np.bincount(pair_of).astype(np.float64)
    feats = {"n": n}
    for half_life in (30, 90, 365):
        feats[f"dec{half_life}"] = np.bincount(pair_of, weights=0.5 ** (age / half_life))
    last = np.full(len(pair), np.inf)
    np.minimum.at(last, pair_of, age)
    first = np.zeros(len(pair))
    np.maximum.at(first, pair_of, age)
    own_cycle = np.where(n > 1, (first - last) / np.maximum(n - 1, 1), np.nan)
    season = (age >= 365 - horizon_days) & (age < 365)
    feats |= {"last": last, "first": first, "own_cycle": own_cycle,
              "season_n": np.bincount(pair_of, weights=season.astype(float),
                                      minlength=len(pair))}

    def recent(days: int) -> np.ndarray:
        mask = age < days
        return _distinct_buyers(u[mask], i[mask], n_items)

    pop7, pop30 = recent(7), recent(30)
    buyers = np.bincount(pi, minlength=n_items).astype(np.float64)
    last_sold = np.full(n_items, np.inf)
    np.minimum.at(last_sold, i, age)
    customer_orders = orders.groupby("customer_id", sort=False)["order_id"].nunique()
    repeat_lines = np.bincount(pu, weights=n - 1, minlength=n_users)
    popular = np.argsort(-(pop30 + buyers / (buyers.max() + 1.0)), kind="stable")
    bought = sp.csr_matrix((np.ones(len(pair)), (pu, pi)), shape=(n_users, n_items))
    return CandidateSignals(
        as_of=as_of, user_ids=np.asarray(user_ids, dtype=object),
        item_ids=np.asarray(item_ids, dtype=object), pair=pair, pair_features=feats,
        pop7=pop7, pop30=pop30, buyers=buyers,
        repeaters=np.bincount(pi, weights=(n > 1).astype(float), minlength=n_items),
        last_sold=last_sold,
        cycles=pd.Series(own_cycle).groupby(pi).median().reindex(range(n_items)).to_numpy(),
        season_pop=_distinct_buyers(u[season], i[season], n_items),
        popular=popular[:settings.candidates_popular],
        c_orders=customer_orders.reindex(user_ids).to_numpy(dtype=np.float64),
        c_repeat_share=repeat_lines / np.maximum(np.bincount(u, minlength=n_users), 1),
        similar=_item_neighbours(bought, NEIGHBOURS_PER_ITEM))


def block_candidates(signals: CandidateSignals, asked: np.ndarray,
                     settings: RecommenderSettings) -> Candidates:
    """Candidates and their features for the customers ``asked`` (a mask over
    ``signals.user_ids``): their own products (most ordered first), the popular ones and their
    co-purchase neighbours. A customer's rows do not depend on who else is asked for."""
    s = signals
    n_users, n_items = s.n_users, len(s.item_ids)
    pair, feats = s.pair, s.pair_features
    pu, pi = pair // n_items, pair % n_items
    mine = asked[pu]
    weights = sp.csr_matrix((feats["dec90"][mine], (pu[mine], pi[mine])),
                            shape=(n_users, n_items))
    own = pd.DataFrame({"u": pu[mine], "i": pi[mine], "n": feats["n"][mine],
                        "last": feats["last"][mine]})
    own = own.sort_values(["u", "n", "last"], ascending=[True, False, True], kind="stable")
    own = own[own.groupby("u").cumcount() < settings.max_own_candidates]
    key, cos = _candidate_pairs(own["u"].to_numpy(), own["i"].to_numpy(), s.popular, asked,
                                weights, s.similar, settings.candidates_neighbours)
    cu, ci = key // n_items, key % n_items
    at = np.minimum(np.searchsorted(pair, key), max(len(pair) - 1, 0))
    owned = pair[at] == key if len(pair) else np.zeros(len(key), dtype=bool)
    frame = pd.DataFrame({"customer_id": s.user_ids[cu], "product_id": s.item_ids[ci]})
    for name in ("n", "dec30", "dec90", "dec365", "season_n"):
        frame[name] = np.where(owned, feats[name][at], 0.0)
    for name in ("last", "first"):
        frame[name] = np.where(owned, feats[name][at], 9999.0)
    cycle = np.where(owned, feats["own_cycle"][at], np.nan)
    item_cycle = np.where(owned, s.cycles[ci], np.nan)
    frame["own_cycle"] = cycle
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["due"] = np.where(cycle > 0, frame["last"] / cycle, np.nan)
        frame["item_due"] = np.where(item_cycle > 0, frame["last"] / item_cycle, np.nan)
    frame["share"] = frame["n"] / s.c_orders[cu]
    frame["pop7_share"] = s.pop7[ci] / max(s.pop7.max(), 1.0)
    frame["pop30_share"] = s.pop30[ci] / max(s.pop30.max(), 1.0)
    frame["pop_trend"] = (s.pop7[ci] + 1.0) / (s.pop30[ci] / 4.0 + 1.0)
    frame["i_last_sold"] = s.last_sold[ci]
    frame["i_reprate"] = s.repeaters[ci] / np.maximum(s.buyers[ci], 1.0)
    frame["cos"] = cos
    frame["c_repeat_share"] = s.c_repeat_share[cu]
    frame["season_pop_share"] = s.season_pop[ci] / max(s.season_pop.max(), 1.0)
    groups = frame.groupby("customer_id", sort=False)
    frame["r_n"] = groups["n"].rank(ascending=False, method="min")
    frame["r_pop30"] = groups["pop30_share"].rank(ascending=False, method="min")
    return Candidates(frame[["customer_id", "product_id", *FEATURES]], s.as_of)


def candidates(transactions: pd.DataFrame, as_of: pd.Timestamp | str, horizon_days: int,
               settings: RecommenderSettings, only: np.ndarray | None = None) -> Candidates:
    """Candidates and their features from the purchases strictly before ``as_of``, for the
    customers ``only`` (None: every customer). Product and co-purchase signals always come
    from every customer's purchases, so a customer's rows do not depend on who else is asked
    for."""
    signals = candidate_signals(transactions, as_of, horizon_days, settings)
    asked = (np.ones(signals.n_users, dtype=bool) if only is None
             else pd.Index(signals.user_ids).isin(pd.Index(only)))
    return block_candidates(signals, asked, settings)


@dataclass(frozen=True, eq=False)
class Ranker:
    """A fitted LambdaMART over :data:`FEATURES`, and the windows it was trained on."""

    booster: lgb.Booster
    windows: tuple[tuple[pd.Timestamp, int], ...]  # (window start, label days)

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(frame[list(FEATURES)].to_numpy(dtype=np.float64),
                                    num_threads=1)


def training_windows(first_purchase: pd.Timestamp, as_of: pd.Timestamp, horizon_days: int,
                     min_history_days: int, min_label_days: int,
                     settings: RecommenderSettings) -> list[tuple[pd.Timestamp, int]]:
    """(start, label days) of the ranker's windows before ``as_of``: H days each when the history
    allows, ``ranker_step_days`` apart; fewer and shorter on short history; none below
    ``min_label_days``."""
    out = []
    for j in range(settings.ranker_windows):
        end = as_of - pd.Timedelta(days=j * settings.ranker_step_days)
        room = int((end - first_purchase) / pd.Timedelta(days=1)) - min_history_days
        days = min(horizon_days, room)
        if days < min_label_days:
            break
        out.append((end - pd.Timedelta(days=days), days))
    return out


def labelled(transactions: pd.DataFrame, start: pd.Timestamp, days: int,
             settings: RecommenderSettings, horizon_days: int) -> pd.DataFrame:
    """Candidates at ``start`` with ``label`` (bought in [start, start + days)), for the
    customers who bought anything in that window (at most ``settings.ranker_max_customers`` of
    them, seeded)."""
    stamp = transactions["timestamp"]
    window = transactions.loc[(stamp >= start) & (stamp < start + pd.Timedelta(days=days))
                              & (transactions["quantity"] > 0), ["customer_id", "product_id"]]
    bought = window.drop_duplicates().assign(label=1)
    chosen = sample_ids(bought["customer_id"], settings.ranker_max_customers, settings.seed)
    if chosen is not None:
        bought = bought[bought["customer_id"].isin(chosen)]
    buyers = pd.unique(bought["customer_id"].to_numpy(dtype=object))
    frame = candidates(transactions, start, horizon_days, settings, only=buyers).frame
    frame = frame.merge(bought, on=["customer_id", "product_id"], how="left")
    return frame.assign(label=frame["label"].fillna(0).astype(int))


def make_ranker(settings: RecommenderSettings) -> lgb.LGBMRanker:
    """The unfitted LambdaMART the product trains (one definition for the product and its
    benchmarks)."""
    return lgb.LGBMRanker(
        objective="lambdarank", n_estimators=settings.ranker_trees, learning_rate=0.05,
        num_leaves=settings.ranker_leaves, min_child_samples=50, subsample=0.8,
        subsample_freq=1, colsample_bytree=0.8, lambdarank_truncation_level=20,
        monotone_constraints=[MONOTONE.get(f, 0) for f in FEATURES],
        random_state=settings.seed, n_jobs=1, deterministic=True, force_row_wise=True,
        verbose=-1)


def fit_ranker(transactions: pd.DataFrame, windows: list[tuple[pd.Timestamp, int]],
               settings: RecommenderSettings, horizon_days: int) -> Ranker | None:
    """LambdaMART on the labelled candidates of ``windows`` (None when no window has both a
    bought and an unbought candidate)."""
    parts = []
    for number, (start, days) in enumerate(windows):
        part = labelled(transactions, start, days, settings, horizon_days)
        parts.append(part.assign(window=number))
    if not parts:
        return None
    data = pd.concat(parts, ignore_index=True).sort_values(["window", "customer_id"],
                                                           kind="stable")
    if data.empty or data["label"].nunique() < 2:
        return None
    groups = data.groupby(["window", "customer_id"], sort=False).size().to_numpy()
    model = make_ranker(settings)
    model.fit(data[list(FEATURES)].to_numpy(dtype=np.float64), data["label"].to_numpy(),
              group=groups)
    return Ranker(model.booster_, tuple(windows))


def _ranked_cells(ranker: Ranker, found: Candidates, users: pd.Index, items: pd.Index,
                  keep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of the ``keep`` best candidates of each customer in ``found``."""
    frame = found.frame
    rows = users.get_indexer(frame["customer_id"].to_numpy(dtype=object))
    cols = items.get_indexer(frame["product_id"].to_numpy(dtype=object))
    ok = (rows >= 0) & (cols >= 0)
    rows, cols = rows[ok], cols[ok]
    score = ranker.score(frame.loc[ok])
    order = np.lexsort((cols, -score, rows))
    rows, cols = rows[order], cols[order]
    rank = _rank_in_rows(rows)
    top = rank < keep
    value = RANKED_OFFSET + 1.0 / (1.0 + rank[top])
    return rows[top], cols[top], value.astype(np.float32)


def ranked_everyone(ranker: Ranker, signals: CandidateSignals, user_ids: np.ndarray,
                    item_ids: np.ndarray, keep: int, settings: RecommenderSettings,
                    block: int = RANK_BLOCK) -> sp.csr_matrix:
    """users x items: the ``keep`` best candidates per customer by the ranker, valued
    ``RANKED_OFFSET`` + a score in (0, 1] that falls with the rank (others empty). Built and
    ranked ``block`` customers at a time: a customer's best do not depend on the others, and
    the candidate rows of everyone at once (12M rows x 23 columns at 10M order lines) were a
    fit's memory peak."""
    users, items = pd.Index(user_ids), pd.Index(item_ids)
    rows, cols, values = [], [], []
    for start in range(0, signals.n_users, block):
        asked = np.zeros(signals.n_users, dtype=bool)
        asked[start:start + block] = True
        r, c, v = _ranked_cells(ranker, block_candidates(signals, asked, settings), users,
                                items, keep)
        rows.append(r)
        cols.append(c)
        values.append(v)
    if not rows:
        return sp.csr_matrix((len(user_ids), len(item_ids)), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(user_ids), len(item_ids)))


__all__ = ["FEATURES", "RANKED_OFFSET", "CandidateSignals", "Candidates", "Ranker",
           "block_candidates", "candidate_signals", "candidates", "fit_ranker", "labelled",
           "make_ranker", "ranked_everyone", "training_windows"]
