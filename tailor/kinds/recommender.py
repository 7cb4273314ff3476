"""The hybrid recommender as a model kind: tune on the history before the holdout, judge the
twin, fit the served model.

Windows (:mod:`tailor.models.windows`), for a scoring date ``as_of``: Optuna tunes LightFM and
the blend inside the history before the holdout start S; the twin (those parameters, fit before
S) is judged on ``[S, as_of)`` beside the popularity, repeat and decayed-frequency baselines
(``holdout_*``, ``baseline_<name>_holdout_*``); the served version is the same configuration fit
on all history before ``as_of``, so its repeat, popularity and known-customer signals include
the last H days. ``validation_precision_at_k`` and ``validation_cold_precision_at_k`` are the
best trial's (each trial logs its own under the same names), its blend weights are params.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import optuna
import pandas as pd

from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.kinds.spec import ModelSpec, TrainedModel, TrialMetrics, remaining_trials
from tailor.models import holdout, scoring
from tailor.models.features import history
from tailor.models.recommender import (
    choose_ranker,
    evaluate,
    fit_recommender,
    plan,
    tune,
    validation_days,
)
from tailor.models.recommender_model import RecommenderModel
from tailor.models.recommender_tuning import BLEND_KEYS, cold_precision_attr
from tailor.models.windows import HOLDOUT_PREFIX, VALIDATION_PREFIX, Windows, scoped

BASELINES = ("popularity", "repeat", "decayed_frequency", "random")
"""The baselines logged beside the model, as ``baseline_<name>_holdout_<metric>``."""


def _input_example(model_ids: pd.Index, customers: pd.DataFrame | None) -> pd.DataFrame:
    """Three known customers by id, and two attribute rows for customers never seen (cold)."""
    if customers is None or customers.empty:
        return pd.DataFrame({"customer_id": [str(i) for i in model_ids[:5]]})
    frame = customers.drop(columns=[c for c in customers.columns if c.startswith("_")])
    frame = frame.astype({"customer_id": str})
    known = frame[frame["customer_id"].isin(model_ids)].head(3)
    cold = frame[~frame["customer_id"].isin(model_ids)].head(2)
    if cold.empty:  # every customer is known: show the cold path with an invented id
        cold = known.head(2).assign(customer_id=["new-customer-1", "new-customer-2"][:len(known)])
    example = pd.concat([known, cold], ignore_index=True)
    for column in example.columns:  # plain types for the signature (no arrow/categorical)
        if column != "customer_id" and not pd.api.types.is_numeric_dtype(example[column]):
            example[column] = example[column].astype(object).where(example[column].notna(),
                                                                   None).astype(str)
    return example


def fit_twin(settings: Settings, clean: Dataset, windows: Windows, params: dict,
             segments: pd.Series | None = None, before_holdout: pd.DataFrame | None = None):
    """A configuration fit on the history before the holdout (what the gate compares);
    ``before_holdout``: that history when the caller holds it already."""
    past = (history(clean.transactions, windows.holdout_start) if before_holdout is None
            else before_holdout)
    return fit_recommender(past, windows.holdout_start, settings.features,
                           settings.recommender, params, clean.customers, clean.products,
                           segments)


def validation_metrics(study: optuna.Study, k: int) -> dict[str, float]:
    """The best trial's validation figures, under the names its trial run has (the cold one
    only when the validation window had cold customers: the gate refuses a NaN metric)."""
    metrics = {f"precision_at_{k}": float(study.best_value)}
    cold = study.best_trial.user_attrs.get(cold_precision_attr(k))
    if isinstance(cold, int | float) and math.isfinite(cold):
        metrics[cold_precision_attr(k)] = float(cold)
    return metrics


def trial_metrics(settings: Settings) -> TrialMetrics:
    """A trial's value is its best blend's validation precision@k; each epoch's LightFM-alone
    precision is reported to the pruner; the blend weights it found are parameters."""
    k = settings.recommender.k
    return TrialMetrics(objective=f"precision_at_{k}",
                        intermediate=f"lightfm_precision_at_{k}", params=BLEND_KEYS)


def fit_recommender_run(
    settings: Settings,
    clean: Dataset,
    windows: Windows,
    study: optuna.Study,
    callbacks: Sequence[Callable[..., None]] = (),
    segments: pd.Series | None = None,
) -> TrainedModel:
    """Tune, judge the twin with baselines, fit the served model, without tracking."""
    # the plots import matplotlib: loaded only when training, not when scoring
    from tailor.models.recommender_plots import plot_precision_curve, precision_curve
    cfg, feats = settings.recommender, settings.features
    start, as_of = windows.holdout_start, windows.as_of
    tx = history(clean.transactions, as_of)
    past = history(tx, start)  # one copy of the history before the holdout, for all three
    customers, products = clean.customers, clean.products
    days = validation_days(windows, feats, cfg)
    params = tune(study, past, start, feats, cfg, customers, products, segments,
                  n_trials=remaining_trials(study, cfg.n_trials), callbacks=callbacks,
                  days=days)
    params["ranker"], ranker_check = choose_ranker(past, start, days, feats, cfg, params,
                                                   customers, products)
    # The served fit runs beside the twin's fit and judgement: LightFM trains without the GIL,
    # so on two free cores both fits take the time of one (each single-threaded, so the same
    # models); their candidate ranking, the memory peak, still runs one at a time.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="served-fit") as pool:
        serving = pool.submit(fit_recommender, tx, as_of, feats, cfg, params, customers,
                              products, segments)
        twin = fit_twin(settings, clean, windows, params, segments, before_holdout=past)
        holdout = evaluate(twin, tx, windows.holdout_days, customers)
        curve = precision_curve(twin, tx, windows.holdout_days, [1, 3, 5, 10, 20])
        served = serving.result()
    metrics = scoped(holdout, HOLDOUT_PREFIX, BASELINES)
    metrics |= scoped(validation_metrics(study, cfg.k) | ranker_check, VALIDATION_PREFIX)
    metrics |= {"served_customers": float(len(served.user_ids)),
                "served_products": float(len(served.item_ids))}
    stamp = tx["timestamp"]
    return TrainedModel(
        predictor=served,
        twin=twin,
        windows=windows,
        params={**params, "validation_days": days, "k": cfg.k,
                "exclude_purchased": cfg.exclude_purchased,
                "interaction_weight": feats.interaction_weight, "n_trials": cfg.n_trials},
        metrics=metrics,
        input_example=_input_example(pd.Index(served.user_ids), customers),
        figures={"holdout_precision_at_k": plot_precision_curve(curve)},
        tables={"holdout_precision_at_k": curve},
        datasets={"training_transactions": tx,
                  "holdout_transactions": tx[stamp >= start]},
    )


def refit_twin(settings: Settings, clean: Dataset, windows: Windows, predictor: Any):
    """A registered version's configuration fit before the holdout (what the gate compares)."""
    return fit_twin(settings, clean, windows, dict(predictor.params))


def holdout_scores(twins: Mapping[str, Any], clean: Dataset, windows: Windows,
                   settings: Settings) -> dict[str, float]:
    """precision@k of each twin on ``[holdout_start, as_of)``, customers every twin knows."""
    tx = history(clean.transactions, windows.as_of)
    scores, _ = holdout.recommender_precision(twins, tx, windows.holdout_start,
                                              windows.holdout_days, settings.recommender.k)
    return scores


def smoke_test(predictor: RecommenderModel) -> None:
    """Answer one known and one cold customer before serving a version."""
    if len(predictor.user_ids):
        predictor.recommend(predictor.user_ids[:1], k=1)
    predictor.recommend_cold(pd.DataFrame({"customer_id": ["smoke-test"]}), k=1)


SPEC = ModelSpec(
    kind="recommender",
    predictor_type=RecommenderModel,
    plan=lambda settings, clean, as_of: plan(clean.transactions, as_of, settings.features,
                                             settings.recommender),
    fit=fit_recommender_run,
    refit_twin=refit_twin,
    holdout_scores=holdout_scores,
    gate_metric=lambda settings: f"precision_at_{settings.recommender.k}",
    score_step=scoring.RECOMMENDER,
    seed=lambda settings: settings.recommender.seed,
    study_objective="validation precision@k",
    trial_metrics=trial_metrics,
    description="Product recommendations: a LightFM hybrid blended with repeat purchases and "
                "popularity, ranked by LambdaMART, with a cold start for new customers. "
                "Input: customer ids (and attributes); output: the top k products each. "
                "Services load tailor-recommender@champion.",
    per_request=True,
    serve_check=smoke_test,
)
