"""Benchmark: how far the models' own inputs can go, when fitted on the answer itself.

A goal figure is only worth chasing if the history holds the information to reach it. This
script measures that ceiling on Online Retail at each cutoff D by cheating on purpose: the
models are trained on the *evaluation window* [D, D + 90 days) itself, under cross-validation
over customers (each customer is scored by a fit that never saw their own label), with the
features the product computes at D:

- churn: the product's customer features at D (``models.churn_data.cutoff_frame``, default
  settings), 5-fold stratified cross-validation of a logistic regression on log1p-scaled
  features, of gradient boosting, and of the logistic regression with a log-count bag of every
  product the customer bought (what they buy, not only how often);
- recommender: the product's ranker candidates and features at D
  (``models.recommender_ranker.labelled``), LambdaMART with the product's settings trained on
  half the window's customers and judged on the other half (2 folds), and the candidate
  oracle (each customer's candidates sorted by what they really bought: the recall ceiling of
  the candidate set).

No product setting may be chosen from these figures: they use the future on purpose. They say
whether a gap to a goal is the method's (the served figure is far below the ceiling) or the
data's (the ceiling itself is below the goal).

Usage:
  .venv/bin/python benchmarks/goal_ceilings.py [--cutoffs 2011-06-01,2011-07-15,...]
Prints one JSON line per cutoff.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from product_path import (
    HORIZON,
    ONLINE_RETAIL,
    _clean_transactions,
    _lists,
    _source,
    recommender_figures,
)
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler

from tailor.configs import load_settings
from tailor.configs.schema import Settings
from tailor.models import recommender_ranker
from tailor.models.churn_data import cutoff_frame

SEED = 0


def _product_bag(tx: pd.DataFrame, customers: pd.Index, as_of: pd.Timestamp) -> sp.csr_matrix:
    """customers x products: log1p of order lines before ``as_of``."""
    past = tx[tx["timestamp"] < as_of]
    rows = customers.get_indexer(past["customer_id"])
    known = rows >= 0
    products = pd.Index(past["product_id"].unique())
    cols = products.get_indexer(past["product_id"])
    bag = sp.csr_matrix((np.ones(int(known.sum())), (rows[known], cols[known])),
                        shape=(len(customers), len(products)))
    bag.data = np.log1p(bag.data)
    return bag


def churn_ceilings(tx: pd.DataFrame, as_of: pd.Timestamp, settings: Settings,
                   days: int) -> dict[str, float]:
    frame = cutoff_frame(tx, as_of, days, settings.features, settings.churn)
    numeric = frame.features.select_dtypes("number").astype(float).fillna(0.0)
    y = frame.labels.astype(int).to_numpy()
    scaled = StandardScaler().fit_transform(np.log1p(numeric.clip(lower=0.0)))
    customers = pd.Index(frame.features.index.get_level_values("customer_id"))
    with_bag = sp.hstack([sp.csr_matrix(scaled), _product_bag(tx, customers, as_of)]).tocsr()
    folds = StratifiedKFold(5, shuffle=True, random_state=SEED)
    fits = {
        "logit": (LogisticRegression(max_iter=3000), scaled),
        "boosting": (HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05,
                                                    max_leaf_nodes=15, min_samples_leaf=50,
                                                    random_state=SEED), numeric.to_numpy()),
        "logit_with_products": (LogisticRegression(C=0.05, max_iter=3000), with_bag),
    }
    out = {"churn_customers": float(len(y)), "churn_rate": float(y.mean())}
    for name, (model, x) in fits.items():
        p = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
        out[f"churn_ceiling_{name}_auc"] = float(roc_auc_score(y, p))
    return out


def _top10(frame: pd.DataFrame, key: np.ndarray) -> pd.DataFrame:
    lists = _lists(frame.assign(key=key), "key")
    return pd.DataFrame({"customer_id": list(lists),
                         "recommendations": [v[:10] for v in lists.values()]})


def recommender_ceilings(tx: pd.DataFrame, as_of: pd.Timestamp, settings: Settings,
                         days: int) -> dict[str, float]:
    rec, features = settings.recommender, list(recommender_ranker.FEATURES)
    hist = tx[tx["timestamp"] < as_of]
    future = tx[(tx["timestamp"] >= as_of) & (tx["timestamp"] < as_of + HORIZON)
                & (tx["quantity"] > 0)]
    data = recommender_ranker.labelled(tx[tx["timestamp"] < as_of + HORIZON], as_of, days,
                                       rec, settings.features.horizon_days)
    data = data.sort_values("customer_id", kind="stable").reset_index(drop=True)
    customers = data["customer_id"].unique()
    fold_of = pd.Series(np.random.default_rng(SEED).integers(0, 2, len(customers)),
                        index=customers)
    fold = fold_of.reindex(data["customer_id"]).to_numpy()
    score = np.zeros(len(data))
    for k in (0, 1):
        train = data[fold != k]
        model = recommender_ranker.make_ranker(settings.recommender)
        model.fit(train[features].to_numpy(dtype=np.float64), train["label"].to_numpy(),
                  group=train.groupby("customer_id", sort=False).size().to_numpy())
        score[fold == k] = model.predict(data.loc[fold == k, features].to_numpy(np.float64))
    bought = hist[hist["quantity"] > 0]
    learned = recommender_figures(bought, future, _top10(data, score), as_of)
    # the label first, then the candidate order as given (most ordered own products first)
    oracle_key = data["label"].to_numpy() + np.linspace(1e-3, 0.0, len(data))
    oracle = recommender_figures(bought, future, _top10(data, oracle_key), as_of)
    return {"ranker_ceiling_p_at_10": learned["p_at_10"],
            "candidate_oracle_p_at_10": oracle["p_at_10"],
            "repeat_tiebreak_p_at_10": learned["repeat_tiebreak_p_at_10"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutoffs", default="2011-06-01,2011-07-15,2011-08-10,2011-09-10")
    parser.add_argument("--export", type=Path, default=ONLINE_RETAIL)
    args = parser.parse_args()
    settings = load_settings()
    days = settings.features.horizon_days
    with tempfile.TemporaryDirectory(prefix="tailor-ceilings-") as tmp:
        tx = _clean_transactions(_source("online-retail", Path(tmp), 0, 0, args.export))
    for cutoff in args.cutoffs.split(","):
        start = time.perf_counter()
        as_of = pd.Timestamp(cutoff)
        figures = (churn_ceilings(tx, as_of, settings, days)
                   | recommender_ceilings(tx, as_of, settings, days))
        print(json.dumps({"cutoff": cutoff} | {k: round(v, 4) for k, v in figures.items()}
                         | {"seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
