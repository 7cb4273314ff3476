"""What a service runs when it loads ``models:/tailor-<kind>@champion``: self-contained inference.

MLflow logs this file as the model's code (models from code) beside the model's state as plain
data (``meta.json``, ``arrays.npz`` and, for churn, the scikit-learn pipeline), so loading and
predicting need numpy, pandas, scipy, scikit-learn and mlflow only: no tailor, LightFM, Optuna
or PyMC. This file imports nothing from tailor. tailor's own predictors score through the same
scorers and helpers, so an answer served here and one measured by tailor come from one code path.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

STATE_ARTIFACT = "state"
META_FILE, ARRAYS_FILE, ESTIMATOR_FILE = "meta.json", "arrays.npz", "estimator.pkl"
#: dense cells per chunk of users x items scored at once: bounds memory at ~40 MB of float64
CHUNK_CELLS = 5_000_000
#: tenure smoothing of churn's order_rate (days): a 2-day-old customer with 1 order is not 0.5/day
RATE_PRIOR_DAYS = 30.0
MISSING_LEVEL = "missing"


class InferenceError(ValueError):
    """The input frame cannot be scored by this model (names the column and the customer)."""


# -- helpers shared with tailor's training-side predictors --------------------------------------
def minmax_rows(scores: np.ndarray) -> np.ndarray:
    """Each row mapped to [0, 1] (constant rows to 0) so LightFM's scale cannot swamp the blend."""
    low = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - low
    return np.divide(scores - low, span, out=np.zeros_like(scores), where=span > 0)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k best scores per row, best first (argpartition, then sort k)."""
    n_items = scores.shape[1]
    k = min(k, n_items)
    if k == n_items:
        part = np.tile(np.arange(n_items), (scores.shape[0], 1))
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def mask_rows(scores: np.ndarray, exclude: sp.csr_matrix | None, rows: np.ndarray) -> None:
    """Set the excluded cells of ``rows`` to -inf in place (e.g. items already bought)."""
    if exclude is None:
        return
    sub = exclude[rows].tocoo()
    scores[sub.row, sub.col] = -np.inf


def chunks(rows: np.ndarray, n_items: int) -> list[np.ndarray]:
    size = max(1, CHUNK_CELLS // max(n_items, 1))
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def value_labels(values: pd.Series) -> pd.Series:
    """Values as feature-name text; whole floats as ints (a NaN makes 3 into 3.0: same name)."""
    if pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        if np.all((numbers == np.round(numbers)) & (np.abs(numbers) < 2**53)):
            return pd.Series(numbers.astype(np.int64), index=values.index).astype(str)
    return values.astype(str)


def feature_names(values: pd.Series, prefix: str, edges: Sequence[float] | None) -> pd.Series:
    """LightFM user-feature name per attribute value (NaN where missing): ``prefix=value``, or
    ``prefix=q<bin>`` of the training quantile ``edges`` for a binned numeric column."""
    out = pd.Series(np.nan, index=values.index, dtype=object)
    if edges is None:
        present = values.notna()
        out[present] = prefix + "=" + value_labels(values[present])
        return out
    numbers = pd.to_numeric(values, errors="coerce")
    present = numbers.notna()
    bins = np.searchsorted(np.asarray(edges), numbers[present].to_numpy(), side="left")
    labels = np.array([f"{prefix}=q{k}" for k in range(1, len(edges) + 2)], dtype=object)
    out[present] = labels[bins]
    return out


def encode_attributes(table: pd.DataFrame, encodings: Sequence[tuple[str, str, Any]],
                      names: np.ndarray) -> sp.csr_matrix:
    """L1-normalised user-feature rows of customers the model has not seen, from attribute
    columns encoded exactly as in training (``encodings``: (column, prefix, edges)); values never
    seen in training are ignored, a customer with no usable value gets an all-zero row."""
    index = {name: i for i, name in enumerate(names)}
    rows, cols = [], []
    for column, prefix, edges in encodings:
        if column not in table.columns:
            continue
        col = feature_names(table[column], prefix, edges).map(index).to_numpy(dtype=np.float64)
        present = ~np.isnan(col)
        rows.append(np.flatnonzero(present))
        cols.append(col[present].astype(np.int64))
    r = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
    c = np.concatenate(cols) if cols else np.array([], dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)),
                           shape=(len(table), len(names)))
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix)


def bgnbd_counts(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD's (repeat purchases x, time of last purchase t_x, age T) in days, per row of a
    customer-features frame (``tenure_days``, ``recency_days``, ``purchase_days``)."""
    tenure = features["tenure_days"].to_numpy(dtype=np.float64)
    last = tenure - features["recency_days"].to_numpy(dtype=np.float64)
    repeat = np.maximum(features["purchase_days"].to_numpy(dtype=np.float64) - 1.0, 0.0)
    return repeat, np.where(repeat > 0, np.clip(last, 0.0, tenure), 0.0), tenure


def bgnbd_p_alive(p: Mapping[str, float], x: np.ndarray, t_x: np.ndarray,
                  age: np.ndarray) -> np.ndarray:
    ratio = ((p["alpha"] + age) / (p["alpha"] + t_x)) ** (p["r"] + x)
    odds = np.where(x > 0, p["a"] / (p["b"] + np.maximum(x, 1.0) - 1.0) * ratio, 0.0)
    return 1.0 / (1.0 + odds)


def bgnbd_p_no_purchase(p: Mapping[str, float], x: np.ndarray, t_x: np.ndarray, age: np.ndarray,
                        days: float) -> np.ndarray:
    """P(no purchase in the ``days`` after T) under BG/NBD parameters ``p`` (r, alpha, a, b)."""
    alive = bgnbd_p_alive(p, x, t_x, age)
    stay = ((p["alpha"] + age) / (p["alpha"] + age + days)) ** (p["r"] + x)
    return 1.0 - alive + alive * stay


# Steps of churn's scikit-learn pipeline (pickled by value with it, so they load without tailor).
def derive_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Add overdue_ratio = recency / (median interval + 1) and order_rate = orders per day."""
    out = frame.copy()
    out["overdue_ratio"] = frame["recency_days"] / (frame["ipi_median_days"] + 1.0)
    out["order_rate"] = frame["frequency"] / (frame["tenure_days"] + RATE_PRIOR_DAYS)
    return out


def clip_log1p(x: np.ndarray) -> np.ndarray:
    """log1p of non-negative counts/amounts (negatives cannot occur; clipped defensively)."""
    return np.log1p(np.clip(np.asarray(x, dtype=np.float64), 0.0, None))


def as_levels(x: pd.DataFrame) -> pd.DataFrame:
    """Categorical attributes as object strings, missing as its own level."""
    return x.astype(object).where(x.notna(), MISSING_LEVEL).astype(str)


def fill_mean(x: np.ndarray) -> np.ndarray:
    """Scaled numeric attributes: NaN (customer not in the customers table) -> 0, the mean."""
    return np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)


def signed_log1p(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Signed log1p of the ``mask`` columns, in place: compresses heavy tails, keeps net-negative
    monetary values meaningful."""
    if mask.any():
        x[:, mask] = np.sign(x[:, mask]) * np.log1p(np.abs(x[:, mask]))
    return x


def standardize(x: np.ndarray, log_mask: np.ndarray, fill: np.ndarray, lower: np.ndarray,
                upper: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Segmentation's fitted transform, in place on ``x``: signed log1p, fill, clip, z-score."""
    x = signed_log1p(x, log_mask)
    x = np.clip(np.where(np.isnan(x), fill, x), lower, upper)
    return (x - mean) / scale


def nearest_center(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    d = (x * x).sum(axis=1)[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(axis=1)
    return d.argmin(axis=1)


def require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InferenceError(f"input lacks column(s) {missing} the model was trained on")


def numeric_matrix(frame: pd.DataFrame, columns: Sequence[str],
                   missing_ok: bool = True) -> np.ndarray:
    """``columns`` of ``frame`` as float64; a missing or non-numeric column, an infinite value
    (or, unless ``missing_ok``, a missing one) raises naming the column and the first row."""
    require_columns(frame, columns)
    x = np.empty((len(frame), len(columns)))
    for j, col in enumerate(columns):
        values = pd.to_numeric(frame[col], errors="coerce")
        if pd.api.types.is_bool_dtype(frame[col]) or (values.isna() & frame[col].notna()).any():
            raise InferenceError(f"input column {col!r} must be numeric, got {frame[col].dtype}")
        x[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(x[:, j]) if missing_ok else ~np.isfinite(x[:, j])
        if bad.any():
            raise InferenceError(f"input column {col!r} is not a finite number for row "
                                 f"{frame.index[bad][0]!r} ({int(bad.sum())} row(s))")
    return x


# -- the state a model is logged with -----------------------------------------------------------
@dataclass
class ModelState:
    """A model as data: JSON-able ``meta``, numpy ``arrays`` (no pickles), and churn's
    scikit-learn ``estimator`` (pickled by value, so its tailor steps need no tailor)."""

    kind: str
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    estimator: Any = None

    def put_sparse(self, name: str, matrix: sp.spmatrix | None) -> None:
        if matrix is None:
            return
        m = sp.csr_matrix(matrix)
        self.arrays |= {f"{name}.data": m.data, f"{name}.indices": m.indices,
                        f"{name}.indptr": m.indptr, f"{name}.shape": np.asarray(m.shape)}

    def sparse(self, name: str) -> sp.csr_matrix | None:
        if f"{name}.data" not in self.arrays:
            return None
        a = self.arrays
        return sp.csr_matrix((a[f"{name}.data"], a[f"{name}.indices"], a[f"{name}.indptr"]),
                             shape=tuple(int(n) for n in a[f"{name}.shape"]))

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        (out / META_FILE).write_text(json.dumps({"kind": self.kind, **self.meta}, indent=1))
        np.savez(out / ARRAYS_FILE, **{k: _plain(v) for k, v in self.arrays.items()})
        if self.estimator is not None:
            import cloudpickle

            module = sys.modules[__name__]
            cloudpickle.register_pickle_by_value(module)
            try:
                (out / ESTIMATOR_FILE).write_bytes(cloudpickle.dumps(self.estimator))
            finally:
                cloudpickle.unregister_pickle_by_value(module)
        return out

    @classmethod
    def load(cls, path: str | Path) -> ModelState:
        src = Path(path)
        meta = json.loads((src / META_FILE).read_text())
        with np.load(src / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {k: (npz[k].astype(object) if npz[k].dtype.kind == "U" else npz[k])
                      for k in npz.files}
        estimator = None
        if (src / ESTIMATOR_FILE).exists():
            import cloudpickle

            estimator = cloudpickle.loads((src / ESTIMATOR_FILE).read_bytes())
        return cls(meta.pop("kind"), meta, arrays, estimator)


def _plain(values: np.ndarray) -> np.ndarray:
    """Object arrays (ids) as fixed-width text, so the arrays file loads without pickle."""
    values = np.asarray(values)
    return values.astype(str) if values.dtype == object else values


# -- scorers ------------------------------------------------------------------------------------
@dataclass
class ChurnScorer:
    """P(no purchase in ``horizon_days``): the pipeline's probability blended with BG/NBD's."""

    columns: tuple[str, ...]
    numeric_columns: tuple[str, ...]
    estimator: Any
    bgnbd: dict[str, float] | None = None
    model_weight: float = 1.0
    horizon_days: int = 90

    def checked(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The trained columns of ``frame``, every numeric one finite (else InferenceError)."""
        require_columns(frame, self.columns)
        x = frame.loc[:, list(self.columns)]
        numeric_matrix(x, self.numeric_columns, missing_ok=False)
        return x

    def model_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.zeros(0)
        x = self.checked(frame)
        with threadpool_limits(limits=1):
            return self.estimator.predict_proba(x)[:, 1]

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        p = self.model_proba(frame)
        if self.bgnbd is None or self.model_weight >= 1.0 or frame.empty:
            return p
        q = bgnbd_p_no_purchase(self.bgnbd, *bgnbd_counts(frame), self.horizon_days)
        return self.model_weight * p + (1.0 - self.model_weight) * q

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"churn_probability": self.probability(frame)}, index=frame.index)

    @classmethod
    def from_state(cls, state: ModelState) -> ChurnScorer:
        m = state.meta
        return cls(tuple(m["columns"]), tuple(m["numeric_columns"]), state.estimator,
                   m.get("bgnbd"), float(m["model_weight"]), int(m["horizon_days"]))


@dataclass
class SegmentScorer:
    """Nearest trained centre in the fitted space: log, median fill, quantile clip, z-score."""

    columns: tuple[str, ...]
    log_mask: np.ndarray
    fill: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    centers: np.ndarray
    names: tuple[str, ...]

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        x = standardize(numeric_matrix(frame, self.columns), self.log_mask, self.fill,
                        self.lower, self.upper, self.mean, self.scale)
        labels = nearest_center(x, self.centers)
        return pd.DataFrame({"segment": labels.astype("int64"),
                             "segment_name": np.asarray(self.names, dtype=object)[labels]},
                            index=frame.index)

    @classmethod
    def from_state(cls, state: ModelState) -> SegmentScorer:
        a = state.arrays
        return cls(tuple(state.meta["columns"]), a["log_mask"].astype(bool), a["fill"],
                   a["lower"], a["upper"], a["mean"], a["scale"], a["centers"],
                   tuple(state.meta["segment_names"]))


@dataclass(eq=False)
class RecommenderScorer:
    """Top-k per customer: known ones by the blend (and the learned ranker's candidates first),
    cold ones from their attribute columns. Score per (customer, item)::

        w_lightfm * minmax_row(user_emb @ item_emb.T + item_bias) + w_repeat * repeat
        + w_popularity * popularity + ranked
    """

    k: int
    exclude_purchased: bool
    weights: dict[str, float]
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_embeddings: np.ndarray
    item_embeddings: np.ndarray
    item_biases: np.ndarray
    repeat: sp.csr_matrix
    popularity: np.ndarray
    user_feature_embeddings: np.ndarray | None = None
    user_feature_names: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    encodings: tuple[tuple[str, str, Any], ...] = ()
    ranked: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        self.index = pd.Index(self.user_ids)

    def lightfm_scores(self, user_vectors: np.ndarray) -> np.ndarray:
        return user_vectors @ self.item_embeddings.T + self.item_biases

    def score_known(self, rows: np.ndarray) -> np.ndarray:
        """Blended scores (len(rows) x items) for user positions ``rows``."""
        w = self.weights
        scores = np.array(np.broadcast_to(self.popularity, (len(rows), len(self.item_ids)))
                          * w["popularity"], dtype=np.float32)
        if w["lightfm"]:
            scores += w["lightfm"] * minmax_rows(self.lightfm_scores(self.user_embeddings[rows]))
        if w["repeat"]:
            scores += w["repeat"] * self.repeat[rows].toarray()
        if self.ranked is not None:
            scores += self.ranked[rows].toarray()
        return scores

    def cold_vectors(self, attribute_rows: pd.DataFrame) -> np.ndarray:
        if self.user_feature_embeddings is None:
            return np.zeros((len(attribute_rows), self.item_embeddings.shape[1]), np.float32)
        table = attribute_rows.set_index("customer_id") \
            if "customer_id" in attribute_rows.columns else attribute_rows
        features = encode_attributes(table, self.encodings, self.user_feature_names)
        return np.asarray(features @ self.user_feature_embeddings, dtype=np.float32)

    def score_cold(self, vectors: np.ndarray) -> np.ndarray:
        scores = np.array(np.broadcast_to(self.popularity, (len(vectors), len(self.item_ids))),
                          dtype=np.float32)
        if self.weights["cold_lightfm"]:
            scores += self.weights["cold_lightfm"] * minmax_rows(self.lightfm_scores(vectors))
        return scores

    def top_known(self, rows: np.ndarray, k: int | None, exclude_purchased: bool | None
                  ) -> tuple[np.ndarray, np.ndarray]:
        exclude = self.exclude_purchased if exclude_purchased is None else exclude_purchased
        scores = self.score_known(rows)
        mask_rows(scores, self.repeat if exclude else None, rows)
        return top_k(scores, self.k if k is None else int(k)), scores

    def frame(self, ids: np.ndarray, top: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        k = top.shape[1]
        return pd.DataFrame({
            "customer_id": np.repeat(ids, k), "rank": np.tile(np.arange(1, k + 1), len(ids)),
            "product_id": self.item_ids[top.ravel()],
            "score": np.take_along_axis(scores, top, axis=1).ravel().astype(np.float64)})

    def recommend(self, ids: np.ndarray, k: int | None = None,
                  exclude_purchased: bool | None = None) -> pd.DataFrame:
        rows = self.index.get_indexer(ids)
        parts = []
        for part in chunks(np.arange(len(rows)), len(self.item_ids)):
            top, scores = self.top_known(rows[part], k, exclude_purchased)
            parts.append(self.frame(ids[part], top, scores))
        return concat_recommendations(parts)

    def recommend_cold(self, attribute_rows: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
        k = self.k if k is None else int(k)
        frame = attribute_rows.reset_index(drop="customer_id" in attribute_rows.columns)
        if "customer_id" not in frame.columns:
            frame = frame.rename(columns={frame.columns[0]: "customer_id"})
        ids = frame["customer_id"].to_numpy(dtype=object)
        parts = []
        for part in chunks(np.arange(len(frame)), len(self.item_ids)):
            scores = self.score_cold(self.cold_vectors(frame.iloc[part]))
            parts.append(self.frame(ids[part], top_k(scores, k), scores))
        return concat_recommendations(parts)

    def predict(self, frame: pd.DataFrame, k: int | None = None,
                exclude_purchased: bool | None = None) -> pd.DataFrame:
        """Rows with a known ``customer_id`` by their history, the others (cold) from whatever
        attribute columns the frame carries: DataFrame[customer_id, rank, product_id, score]."""
        if "customer_id" not in frame.columns:
            raise InferenceError("input needs a 'customer_id' column (plus attribute columns "
                                 "for customers unseen in training)")
        if k is not None and int(k) < 1:
            raise InferenceError(f"k must be at least 1, got {k}")
        ids = frame["customer_id"].astype(str).to_numpy(dtype=object)
        seen = self.index.get_indexer(ids) >= 0
        parts = []
        if seen.any():
            parts.append(self.recommend(ids[seen], k, exclude_purchased))
        if (~seen).any():
            parts.append(self.recommend_cold(frame.loc[~seen].assign(customer_id=ids[~seen]), k))
        return concat_recommendations(parts)

    @classmethod
    def from_state(cls, state: ModelState) -> RecommenderScorer:
        m, a = state.meta, state.arrays
        return cls(int(m["k"]), bool(m["exclude_purchased"]), dict(m["weights"]), a["user_ids"],
                   a["item_ids"], a["user_embeddings"], a["item_embeddings"], a["item_biases"],
                   state.sparse("repeat"), a["popularity"], a.get("user_feature_embeddings"),
                   a.get("user_feature_names", np.array([], dtype=object)),
                   tuple((c, p, None if e is None else tuple(e)) for c, p, e in m["encodings"]),
                   state.sparse("ranked"))


def concat_recommendations(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({"customer_id": pd.Series(dtype=object),
                             "rank": pd.Series(dtype=np.int64),
                             "product_id": pd.Series(dtype=object),
                             "score": pd.Series(dtype=np.float64)})
    return pd.concat(parts, ignore_index=True)


SCORERS = {"churn": ChurnScorer, "segmentation": SegmentScorer,
           "recommender": RecommenderScorer}


def scorer_for(state: ModelState) -> Any:
    return SCORERS[state.kind].from_state(state)


class TailorModel(mlflow.pyfunc.PythonModel):
    """The pyfunc: loads the state artifact, forwards ``predict`` (and its params) to the
    kind's scorer. Params the signature declares (``k``, ``exclude_purchased``) are honoured."""

    def load_context(self, context: Any) -> None:
        self.scorer = scorer_for(ModelState.load(context.artifacts[STATE_ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.scorer.predict(pd.DataFrame(model_input), **dict(params or {}))


if __name__ != "tailor.inference":  # executed by MLflow as the model's code, not imported
    mlflow.models.set_model(TailorModel())
