"""The champion/challenger gate: score both on the newest holdout, decide, move aliases at once.

Fairness: the challenger and the current champion are scored here, in this flow run, on the
same customers and the same window (never against a metric the champion logged on older data).
Safety: decisions for every model are made first; the alias moves are applied together by
:func:`tasks.registry.apply_moves` (all or nothing), so a failure leaves every alias as it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.schema import PromotionSettings, Settings
from models import holdout
from models.churn_data import cutoff_frame
from models.features import customer_features
from tailor.data.dataset import Dataset
from tasks import registry, tracking
from tasks.pyfunc import load_predictor
from tasks.registry import CHALLENGER, CHAMPION
from tasks.training import TrackedTraining


@dataclass(frozen=True)
class Decision:
    kind: str
    metric: str
    challenger_version: str
    champion_version: str | None
    challenger_score: float
    champion_score: float | None
    promote: bool
    reason: str

    def tags(self) -> dict[str, str]:
        return {f"tailor.gate.{k}": str(v) for k, v in asdict(self).items()}


def gate_metric(kind: str, settings: Settings) -> str:
    return {"segmentation": "segmentation_score",
            "recommender": f"precision_at_{settings.recommender.k}",
            "churn": "roc_auc"}[kind]


def holdout_scores(kind: str, predictors: Mapping[str, Any], clean: Dataset,
                   as_of: pd.Timestamp, settings: Settings) -> dict[str, float]:
    """Score each predictor on the newest holdout for ``kind`` (same customers, same window)."""
    horizon = settings.features.horizon_days
    start = as_of - pd.Timedelta(days=horizon)
    tx, customers, products = clean.transactions, clean.customers, clean.products
    if kind == "recommender":
        scores, _ = holdout.recommender_precision(predictors, tx, start, horizon,
                                                  settings.recommender.k)
        return scores
    if kind == "churn":
        frame = cutoff_frame(tx, start, horizon, settings.features, settings.churn, customers,
                             products)
        return holdout.churn_roc_auc(predictors, frame, settings.churn)
    features = customer_features(tx, as_of, settings.features, customers, products)
    return holdout.segmentation_score(predictors, features, settings.segmentation)


def decide(kind: str, metric: str, challenger: TrackedTraining, scores: Mapping[str, float],
           champion_version: str | None, promotion: PromotionSettings) -> Decision:
    """Promote when guardrails pass and the challenger beats the champion by the margin."""
    ours = scores.get(CHALLENGER, float("nan"))
    theirs = scores.get(CHAMPION) if champion_version else None
    common = dict(kind=kind, metric=metric, challenger_version=str(challenger.version),
                  champion_version=champion_version, challenger_score=ours,
                  champion_score=theirs)
    bad = sorted(k for k, v in challenger.metrics.items() if not holdout.is_finite(v))
    if not holdout.is_finite(ours):
        return Decision(**common, promote=False,
                        reason=f"challenger could not be scored on the holdout ({metric} = NaN)")
    if bad:
        return Decision(**common, promote=False, reason=f"non-finite metrics: {', '.join(bad)}")
    for name, floor in promotion.floors.get(kind, {}).items():
        value = challenger.metrics.get(name)
        if value is None or value < floor:
            return Decision(**common, promote=False,
                            reason=f"guardrail: {name} = {value} below floor {floor}")
    if champion_version is None:
        return Decision(**common, promote=True, reason="first version passing the guardrails")
    if theirs is None or not math.isfinite(theirs):
        return Decision(**common, promote=True,
                        reason=f"champion v{champion_version} cannot score the new holdout")
    margin = promotion.margin.get(kind, 0.0)
    if ours > theirs + margin:
        return Decision(**common, promote=True,
                        reason=f"{metric} {ours:.4f} beats champion {theirs:.4f} by more than "
                               f"{margin}")
    return Decision(**common, promote=False,
                    reason=f"{metric} {ours:.4f} does not beat champion {theirs:.4f} by more "
                           f"than {margin}")


@task(name="gate", cache_policy=NO_CACHE)
def evaluate_gate(kind: str, challenger: TrackedTraining, clean: Dataset, as_of: pd.Timestamp,
                  settings: Settings) -> Decision:
    """Score challenger and champion side by side and decide (moves nothing)."""
    client = tracking.client_for(settings.tracking)
    name = registry.registered_name(kind)
    champion_version = registry.alias_version(client, name, CHAMPION)
    predictors = {CHALLENGER: load_predictor(client, name, str(challenger.version))}
    if champion_version and champion_version != str(challenger.version):
        predictors[CHAMPION] = load_predictor(client, name, champion_version)
    scores = holdout_scores(kind, predictors, clean, as_of, settings)
    decision = decide(kind, gate_metric(kind, settings), challenger, scores, champion_version,
                      settings.promotion)
    _record(client, challenger.run_id, decision)
    return decision


def _record(client: MlflowClient, run_id: str, decision: Decision) -> None:
    for key, value in decision.tags().items():
        client.set_tag(run_id, key, value)
    scores = {"gate_challenger_score": decision.challenger_score}
    if decision.champion_score is not None:
        scores["gate_champion_score"] = decision.champion_score
    tracking.log_metrics(client, run_id, scores)


@task(name="move-aliases", retries=1, retry_delay_seconds=[2], cache_policy=NO_CACHE)
def apply_decisions(decisions: list[Decision], settings: Settings) -> list[registry.AliasMove]:
    """Plan every alias move first, then apply them together (all or nothing), then tag."""
    client = tracking.client_for(settings.tracking)
    actor = settings.promotion.actor
    moves = []
    for d in decisions:
        name = registry.registered_name(d.kind)
        moves.append(registry.plan_move(client, name, CHALLENGER, d.challenger_version,
                                        actor=actor, reason=d.reason))
        if d.promote:
            moves.append(registry.plan_move(
                client, name, CHAMPION, d.challenger_version, actor=actor, reason=d.reason,
                metrics={d.metric: d.challenger_score}))
    applied = registry.apply_moves(client, moves)
    for d in decisions:
        name = registry.registered_name(d.kind)
        for key, value in d.tags().items():
            client.set_model_version_tag(name, d.challenger_version, key, value)
    return applied
