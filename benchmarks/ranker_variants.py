"""Benchmark: the recommender's learned ranker alone, variant against variant, on Online Retail.

For comparing ranker settings and feature sets quickly (about 20-60 s per cutoff, against
several minutes for a whole `tailor train`): the ranker is trained on the history before each
cutoff exactly as the product trains it (:func:`tailor.models.recommender_ranker.training_windows`,
:func:`~tailor.models.recommender_ranker.fit_ranker`), its top-10 candidates per customer are judged
like `benchmarks/product_path.py` judges the campaign table, beside the tie-broken repeat
baseline. The product's lists also pass through the model's item index and the blend, so its
figures differ from these by up to about 0.004: compare variants with each other here, and
confirm a winner with `benchmarks/product_path.py`.

Usage:
  .venv/bin/python benchmarks/ranker_variants.py [--cutoffs 2011-06-01,2011-07-15,2011-08-10]
      [--set ranker_trees=300 ...] [--drop due,item_due,...]
Prints one JSON line per cutoff.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from product_path import (
    HORIZON,
    ONLINE_RETAIL,
    _clean_transactions,
    _lists,
    _source,
    recommender_figures,
)

import tailor.models.recommender_ranker as ranker_module
from tailor.configs import load_settings
from tailor.models.windows import first_purchase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutoffs", default="2011-06-01,2011-07-15,2011-08-10")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="recommender setting=integer")
    parser.add_argument("--drop", default="", help="ranker features to leave out, comma-separated")
    parser.add_argument("--export", type=Path, default=ONLINE_RETAIL)
    args = parser.parse_args()
    dropped = {f for f in args.drop.split(",") if f}
    unknown = dropped - set(ranker_module.FEATURES)
    if unknown:
        raise SystemExit(f"unknown ranker feature(s) {sorted(unknown)}; "
                         f"known: {', '.join(ranker_module.FEATURES)}")
    ranker_module.FEATURES = tuple(f for f in ranker_module.FEATURES if f not in dropped)
    settings = load_settings()
    update = {k: int(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    rec = settings.recommender.model_copy(update=update)
    horizon = settings.features.horizon_days
    with tempfile.TemporaryDirectory(prefix="tailor-ranker-") as tmp:
        tx = _clean_transactions(_source("online-retail", Path(tmp), 0, 0, args.export))
    for cutoff in args.cutoffs.split(","):
        start = time.perf_counter()
        as_of = pd.Timestamp(cutoff)
        hist = tx[tx["timestamp"] < as_of]
        future = tx[(tx["timestamp"] >= as_of) & (tx["timestamp"] < as_of + HORIZON)
                    & (tx["quantity"] > 0)]
        windows = ranker_module.training_windows(
            first_purchase(hist), as_of, horizon, settings.features.min_history_days,
            rec.min_validation_days, rec)
        fitted = ranker_module.fit_ranker(hist, windows, rec, horizon)
        if fitted is None:
            raise SystemExit(f"{cutoff}: no label window to train the ranker on")
        found = ranker_module.candidates(hist, as_of, horizon, rec).frame
        lists = _lists(found.assign(key=fitted.score(found)), "key")
        scores = pd.DataFrame({"customer_id": list(lists),
                               "recommendations": [v[:10] for v in lists.values()]})
        figures = recommender_figures(hist[hist["quantity"] > 0], future, scores, as_of)
        print(json.dumps({"cutoff": cutoff, "set": update, "drop": sorted(dropped),
                          "p_at_10": round(figures["p_at_10"], 4),
                          "repeat_tiebreak_p_at_10": round(figures["repeat_tiebreak_p_at_10"], 4),
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
