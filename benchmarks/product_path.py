"""Benchmark: what a user of tailor gets, through the product, at several cutoffs.

For each cutoff D: keep only the history before D, run `tailor train --as-of D` and
`tailor score --as-of D` (subprocesses, a fresh MLflow store each), then judge the campaign
table on what customers really did in [D, D + 90 days), beside trivial baselines computed from
the same history in the same run:

- recommender: precision@10 of the top-10 lists over returning customers who buy a known
  product in the window; baselines: popularity (last 90 days), own items by count topped up
  with popularity, the same with ties broken by last-30-days popularity (the strongest trivial
  one), and personal frequency with a 90-day time decay;
- churn (no purchase in the window): ROC-AUC over customers active before D; baselines: recency
  alone, a logistic regression on log recency, frequency and monetary fit on the window
  before (features at D - 90, labels on [D - 90, D)), and BG/NBD and Pareto/NBD fitted on the
  history before D (P(no purchase in the 90 days));
- segmentation (generated data): ARI of the table's segments against the latent segments;
- the holdout figures the training run logged for its twin (fit before D - 90, judged on
  [D - 90, D)), so the honest out-of-time estimate can be read beside the real outcome.

Data: `online-retail` (the UCI export through `tailor data import online-retail`, guests
quarantined as the product does), `retailer` or `repeat-buying` (generated, `--customers`,
`--seed`; cutoffs count back from the end).

Usage:
  .venv/bin/python benchmarks/product_path.py online-retail [--cutoffs 2011-06-01,...]
      [--models segmentation,recommender,churn] [--set section.key=value ...]
  .venv/bin/python benchmarks/product_path.py retailer --cutoffs end-90,end-180
Prints one JSON line per cutoff, then a table with the median over cutoffs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from tailor.configs.schema import FeatureSettings
from tailor.models import btyd
from tailor.models.features import customer_features

ROOT = Path(__file__).resolve().parents[1]
TAILOR = Path(sys.executable).with_name("tailor")
ONLINE_RETAIL = ROOT.parent / "shared" / "data" / "online-retail" / "online_retail.parquet"
HORIZON = pd.Timedelta(days=90)
K = 10
DEFAULT_CUTOFFS = {"online-retail": "2011-06-01,2011-07-15,2011-08-10,2011-09-10",
                   "retailer": "end-90,end-180,end-270", "repeat-buying": "end-90,end-180"}


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([str(TAILOR), *args], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"tailor {' '.join(args[:1])} failed ({done.returncode}):\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def _source(kind: str, work: Path, customers: int, seed: int, export: Path) -> Path:
    """The full data set in the contract layout (before any cut)."""
    out = work / "full"
    env = dict(os.environ)
    if kind == "online-retail":
        _run(["data", "import", "online-retail", str(export), "--out", str(out)], env)
    else:
        _run(["data", "generate", "--kind", kind, "--customers", str(customers),
              "--seed", str(seed), "--out", str(out)], env)
    return out


def _clean_transactions(data: Path) -> pd.DataFrame:
    """The contract-valid purchase lines the product trains on (same validator)."""
    from tailor.configs import load_settings
    from tailor.data.io import read_dataset
    from tailor.data.validate import validate_dataset

    return validate_dataset(read_dataset(data), load_settings().data).dataset.transactions


def _cut(full: Path, tx: pd.DataFrame, as_of: pd.Timestamp, out: Path) -> Path:
    """The history before ``as_of``: every table as it was, transactions cut by timestamp."""
    out.mkdir(parents=True)
    raw = pd.read_parquet(full / "transactions.parquet")
    stamp = pd.to_datetime(raw["timestamp"], errors="coerce")
    raw[stamp < as_of].to_parquet(out / "transactions.parquet", index=False)
    for name in ("customers", "products"):
        if (full / f"{name}.parquet").exists():
            (out / f"{name}.parquet").write_bytes((full / f"{name}.parquet").read_bytes())
    return out


def _lists(frame: pd.DataFrame, key: str) -> dict[str, list[str]]:
    ordered = frame.sort_values(["customer_id", key], ascending=[True, False], kind="stable")
    return ordered.groupby("customer_id")["product_id"].agg(list).to_dict()


def _topped(own: dict[str, list[str]], filler: list[str], ids: pd.Index) -> list[list[str]]:
    out = []
    for c in ids:
        mine = own.get(c, [])[:K]
        out.append((mine + [p for p in filler if p not in mine])[:K])
    return out


def recommender_figures(hist: pd.DataFrame, future: pd.DataFrame, scores: pd.DataFrame,
                        as_of: pd.Timestamp) -> dict[str, float]:
    """Served lists and the baselines, defined as the team's product-path referee defines them
    (counts are order lines; popularity is lines in the window)."""
    truth = future[future["customer_id"].isin(hist["customer_id"])
                   & future["product_id"].isin(hist["product_id"])]
    truth = truth.groupby("customer_id")["product_id"].agg(set)

    def precision(lists: list[list[str]]) -> float:
        return float(np.mean([len(set(lst[:K]) & t) / K for lst, t in zip(lists, truth,
                                                                        strict=True)]))

    served = scores.set_index("customer_id")["recommendations"].reindex(truth.index)
    pop90 = hist[hist["timestamp"] >= as_of - HORIZON]["product_id"].value_counts()
    pop30 = hist[hist["timestamp"] >= as_of - pd.Timedelta(days=30)]["product_id"].value_counts()
    counts = hist.groupby(["customer_id", "product_id"]).size().rename("n").reset_index()
    by_count = _lists(counts.assign(key=counts["n"]), "key")
    tie = counts.assign(key=counts["n"] + counts["product_id"].map(pop30).fillna(0)
                        / (pop30.max() + 1.0))
    orders = hist.drop_duplicates(["customer_id", "product_id", "order_id"])
    age = (as_of - orders["timestamp"]).dt.total_seconds() / 86_400
    decayed = orders.assign(w=np.power(0.5, age / 90.0)).groupby(
        ["customer_id", "product_id"])["w"].sum().rename("key").reset_index()
    return {
        "p_at_10": precision([list(r) if isinstance(r, list | np.ndarray) else []
                              for r in served]),
        "popularity_p_at_10": precision([list(pop90.index[:K])] * len(truth)),
        "repeat_p_at_10": precision(_topped(by_count, list(pop90.index), truth.index)),
        "repeat_tiebreak_p_at_10": precision(_topped(_lists(tie, "key"), list(pop30.index),
                                                     truth.index)),
        "decayed_frequency_p_at_10": precision(_topped(_lists(decayed, "key"),
                                                       list(pop30.index), truth.index)),
        "rec_customers": float(len(truth)),
        "missing_recs": float(served.isna().sum()),
    }


def _rfm(buy: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    past = buy[buy["timestamp"] < at]
    value = past["quantity"] * past["unit_price"]
    return pd.DataFrame({
        "recency": (at - past.groupby("customer_id")["timestamp"].max()).dt.days,
        "frequency": past.groupby("customer_id")["order_id"].nunique(),
        "monetary": value.groupby(past["customer_id"]).sum().clip(lower=0),
    })


def churn_figures(hist: pd.DataFrame, future: pd.DataFrame, scores: pd.DataFrame,
                  as_of: pd.Timestamp) -> dict[str, float]:
    buy = hist[hist["quantity"] > 0]
    rfm = _rfm(buy, as_of)
    active = set(future.loc[future["quantity"] > 0, "customer_id"])
    y = (~rfm.index.isin(active)).astype(int)
    p = scores.set_index("customer_id")["churn_probability"].reindex(rfm.index)
    before = _rfm(buy, as_of - HORIZON)
    window = buy[buy["timestamp"] >= as_of - HORIZON]
    y_before = (~before.index.isin(set(window["customer_id"]))).astype(int)
    logit = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression())
    logit.fit(before, y_before)
    summary = btyd.summary(customer_features(hist, as_of, FeatureSettings()).reindex(rfm.index))
    horizon = HORIZON / pd.Timedelta(days=1)
    bt = {f"{name}_auc": float(roc_auc_score(y, p)) for name, p in
          btyd.baseline_probabilities(summary, summary, horizon).items()}
    return bt | {
        "churn_auc": float(roc_auc_score(y, p.to_numpy(dtype=float))),
        "recency_auc": float(roc_auc_score(y, rfm["recency"])),
        "log_rfm_logit_auc": float(roc_auc_score(y, logit.predict_proba(rfm)[:, 1])),
        "churn_rate": float(y.mean()),
        "churn_customers": float(len(y)),
        "missing_churn": float(p.isna().sum()),
    }


def segmentation_figures(full: Path, scores: pd.DataFrame) -> dict[str, float]:
    """ARI of the campaign table's segments against the generator's latent segments."""
    truth_file = full / "truth" / "customers.parquet"
    if not truth_file.exists() or scores["segment"].isna().all():
        return {}
    truth = pd.read_parquet(truth_file)
    if "segment" not in truth.columns:
        return {}
    truth = truth.set_index("customer_id")["segment"]
    scored = scores.dropna(subset=["segment"])
    scored = scored[scored["customer_id"].isin(truth.index)]
    return {"segmentation_ari": float(adjusted_rand_score(
        truth.loc[scored["customer_id"]], scored["segment"].astype(int))),
        "segments": float(scored["segment"].nunique())}


def _holdout_figures(store: str) -> dict[str, float]:
    """The twin's logged out-of-time figures of each registered model's version 1."""
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    wanted = {"recommender": ["holdout_precision_at_10",
                              "baseline_repeat_holdout_precision_at_10",
                              "validation_ranker_precision_at_10",
                              "validation_blend_precision_at_10"],
              "churn": ["holdout_roc_auc", "baseline_recency_holdout_roc_auc",
                        "baseline_bgnbd_holdout_roc_auc", "baseline_pareto_nbd_holdout_roc_auc",
                        "validation_model_weight"]}
    out = {}
    for kind, names in wanted.items():
        try:
            run = client.get_run(client.get_model_version(f"tailor-{kind}", "1").run_id)
        except Exception:  # noqa: BLE001 - the model was not trained in this run
            continue
        out |= {f"logged_{n}": run.data.metrics[n] for n in names if n in run.data.metrics}
        if kind == "recommender":
            out["ranker_used"] = float(run.data.params.get("ranker") == "True")
    return out


def _cutoffs(spec: str, tx: pd.DataFrame) -> list[pd.Timestamp]:
    end = tx["timestamp"].max().normalize() + pd.Timedelta(days=1)
    out = []
    for item in spec.split(","):
        item = item.strip()
        if item.startswith("end-"):
            out.append(end - pd.Timedelta(days=int(item[4:])))
        else:
            out.append(pd.Timestamp(item))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", choices=["online-retail", "retailer", "repeat-buying"])
    parser.add_argument("--cutoffs", default=None)
    parser.add_argument("--models", default="segmentation,recommender,churn")
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--export", type=Path, default=ONLINE_RETAIL,
                        help="the Online Retail export (default: ../shared/data/...)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tailor-bench-") as tmp:
        work = Path(tmp)
        full = _source(args.data, work, args.customers, args.seed, args.export)
        tx = _clean_transactions(full)
        for as_of in _cutoffs(args.cutoffs or DEFAULT_CUTOFFS[args.data], tx):
            here = work / as_of.date().isoformat()
            data = _cut(full, tx, as_of, here / "data")
            store = f"sqlite:///{here / 'mlflow.db'}"
            env = {**os.environ, "MLFLOW_TRACKING_URI": store}
            env.pop("PREFECT_API_URL", None)
            sets = [a for item in [f"tracking.optuna_storage=sqlite:///{here / 'optuna.db'}",
                                   *args.overrides] for a in ("--set", item)]
            day = as_of.date().isoformat()
            t_train = _run(["train", "--data", str(data), "--out", str(here / "out"),
                            "--models", args.models, "--as-of", day, *sets], env)
            out = here / "scores.parquet"
            t_score = _run(["score", "--data", str(data), "--out", str(out), "--as-of", day,
                            "--k", str(K), "--snapshot-dir", str(here / "snapshot"), *sets], env)
            scores = pd.read_parquet(out).astype({"customer_id": str})
            hist = tx[tx["timestamp"] < as_of]
            future = tx[(tx["timestamp"] >= as_of) & (tx["timestamp"] < as_of + HORIZON)]
            row: dict[str, object] = {"data": args.data, "as_of": day,
                                      "train_s": round(t_train, 1),
                                      "score_s": round(t_score, 1)}
            if "recommender" in args.models and scores["recommendations"].notna().any():
                row |= recommender_figures(hist, future, scores, as_of)
            if "churn" in args.models:
                row |= churn_figures(hist, future, scores, as_of)
            if "segmentation" in args.models:
                row |= segmentation_figures(full, scores)
            row |= _holdout_figures(store)
            row = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            print(json.dumps(row), flush=True)
            rows.append(row)
    table = pd.DataFrame(rows).set_index("as_of").drop(columns="data")
    table.loc["median"] = table.median(numeric_only=True)
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.T.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
