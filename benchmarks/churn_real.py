"""Benchmark: churn model on UCI Online Retail, out of time.

Test window: customers with a purchase before 2011-09-10, churned = no purchase in
[2011-09-10, 2011-12-09) (H = 90 days). Everything is trained, tuned and thresholded on
history before 2011-09-10 only (validation cutoff 2011-06-12; training cutoffs 2011-03-14 and
earlier, limited by the data starting 2010-12-01 and churn.min_history_days). Prints ROC-AUC
and friends for recency alone, a log-RFM logistic regression, both untuned families and the
Optuna-tuned model (refit on all cutoffs up to 2011-06-12, as it would be served).

Usage:
    .venv/bin/python benchmarks/churn_real.py [--trials 30] [--data ../shared/data/...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from configs import load_settings
from models.churn import (
    default_params,
    evaluate,
    new_study,
    permutation_importance_table,
    trials_frame,
    tune,
    validate_and_refit,
)
from models.churn_data import ChurnFrame, cutoff_frame, prepare_churn_data
from tailor.data.importers.online_retail import import_online_retail
from tailor.data.validate import validate_dataset

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "online-retail" / "online_retail.parquet"
TEST_CUTOFF = pd.Timestamp("2011-09-10")
SHOWN = ("roc_auc", "pr_auc", "brier", "log_loss", "lift_top_decile", "threshold",
         "precision_at_threshold", "recall_at_threshold", "churn_rate")


def _log_rfm_auc(train: ChurnFrame, test: ChurnFrame) -> float:
    """The colleague's reference: logistic regression on log1p(R, F, M) of the refit rows."""
    cols = ["recency_days", "frequency", "monetary"]
    model = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression())
    model.fit(train.features[cols], train.labels)
    return float(roc_auc_score(test.labels, model.predict_proba(test.features[cols])[:, 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = load_settings()
    churn = settings.churn
    # a third of the lines are guest checkouts without a customer: quarantined, not a failure
    data_settings = settings.data.model_copy(update={"max_rejected_share": 0.5})
    t0 = time.perf_counter()
    clean = validate_dataset(import_online_retail(args.data), data_settings).dataset
    data = prepare_churn_data(clean.transactions, TEST_CUTOFF, settings.features, churn,
                              clean.customers, clean.products)
    test = cutoff_frame(clean.transactions, TEST_CUTOFF, settings.features.horizon_days,
                        settings.features, churn, clean.customers, clean.products)
    print(f"data ready in {time.perf_counter() - t0:.1f}s")
    plan = data.plan
    print("train cutoffs:", [c.date().isoformat() for c in plan.train])
    print("validation cutoff:", plan.validation.date().isoformat())
    print("refit cutoffs:", [c.date().isoformat() for c in plan.refit])
    print(f"rows: train {len(data.train.labels)}, validation {len(data.validation.labels)}, "
          f"refit {len(data.refit.labels)}, test {len(test.labels)} "
          f"(test churn rate {test.labels.mean():.3f})")

    rows: dict[str, dict[str, float]] = {}
    rows["log-RFM logistic (refit rows)"] = {"roc_auc": _log_rfm_auc(data.refit, test)}
    for family in ("logistic", "hist_gradient_boosting"):
        fit = validate_and_refit(default_params(family), data, churn)
        rows[f"{family} (default params)"] = evaluate(fit.final, test, churn)

    t0 = time.perf_counter()
    study = new_study(churn)
    best = tune(study, data, churn, n_trials=args.trials)
    fit = validate_and_refit(best, data, churn)
    tuned = evaluate(fit.final, test, churn)
    rows["tuned (Optuna, validation log loss)"] = tuned
    rows["recency alone"] = {k.removeprefix("baseline_recency_"): v for k, v in tuned.items()
                             if k.startswith("baseline_recency_")}
    print(f"tuning {args.trials} trials + refit: {time.perf_counter() - t0:.1f}s")
    print("best params:", best)
    print("validation metrics (2011-06-12 window):",
          {k: round(fit.validation_metrics[k], 4) for k in SHOWN})

    table = pd.DataFrame(rows).T.reindex(columns=list(SHOWN))
    print("\nout-of-time test, cutoff 2011-09-10, H=90:")
    print(table.round(4).to_string())
    print(f"\nbaseline_rate_brier {tuned['baseline_rate_brier']:.4f}, "
          f"baseline_rate_log_loss {tuned['baseline_rate_log_loss']:.4f}")
    best_trials = trials_frame(study).sort_values("log_loss").head(5)
    print("\ntop trials:\n", best_trials.round(4).to_string(index=False))
    importance = permutation_importance_table(fit.final, test, churn)
    print("\npermutation importance on the test window:\n", importance.round(4).to_string())


if __name__ == "__main__":
    main()
