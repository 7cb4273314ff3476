"""The champion/challenger gate: both configurations judged on one holdout neither has seen.

The rule (README, "How models are trained, compared and promoted"): champion and challenger are
scored on the challenger's holdout ``[S, as_of)`` by models fit on the history before S only:

- the challenger by its holdout twin, trained in this run (refit here if its fit date were
  ever later than S);
- the champion by its configuration (the parameters stored with its version) refit here on the
  same history before S.

A registered version is never scored on a window it was fit on: served versions are fit on all
history before their scoring date, so scoring one on a recent window would reward memory, not
skill. Both scores use the same customers and the same window, never a metric a version logged
on older data.

Safety: decisions for every model are made first; the alias moves are applied together by
:func:`tasks.registry.apply_moves` (all or nothing), so a failure leaves every alias as it was.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mlflow import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.schema import PromotionSettings, Settings
from models import holdout
from models.churn_data import cutoff_frame
from models.features import customer_features, history
from models.windows import HOLDOUT_PREFIX, Windows, fit_until
from tailor.data.dataset import Dataset
from tasks import registry, tracking, train_churn, train_recommender, train_segmentation
from tasks.pyfunc import load_predictor
from tasks.registry import CHALLENGER, CHAMPION
from tasks.training import TrackedTraining

log = logging.getLogger(__name__)


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
    """The holdout metric the gate compares (the challenger logs it under the same name)."""
    return HOLDOUT_PREFIX + {"segmentation": train_segmentation.OBJECTIVE,
                             "recommender": f"precision_at_{settings.recommender.k}",
                             "churn": "roc_auc"}[kind]


def refit_before_holdout(kind: str, predictor: Any, clean: Dataset, windows: Windows,
                         settings: Settings) -> Any:
    """The predictor's configuration fit on the history before ``windows.holdout_start``."""
    params = dict(predictor.params)
    if kind == "recommender":
        return train_recommender.refit_twin(settings, clean, windows, params)
    if kind == "churn":
        data = train_churn.churn_data(settings, clean, windows)
        return train_churn.refit_twin(settings, data, params, predictor.threshold,
                                      getattr(predictor, "model_weight", 1.0))
    return train_segmentation.refit_twin(settings, clean, windows, params)


def unseen_twin(kind: str, predictor: Any, clean: Dataset, windows: Windows,
                settings: Settings) -> Any:
    """``predictor`` if it was fit before the holdout, else its configuration refit so."""
    until = fit_until(predictor)
    if until is not None and until <= windows.holdout_start:
        return predictor
    log.warning("%s: a model fit until %s would be scored on a window it has seen; refitting "
                "its configuration before %s", kind, until, windows.holdout_start.date())
    return refit_before_holdout(kind, predictor, clean, windows, settings)


def holdout_scores(kind: str, twins: Mapping[str, Any], clean: Dataset, windows: Windows,
                   settings: Settings) -> dict[str, float]:
    """Score each twin on ``[holdout_start, as_of)`` (same customers, same window)."""
    start, days = windows.holdout_start, windows.holdout_days
    tx = history(clean.transactions, windows.as_of)
    customers, products = clean.customers, clean.products
    if kind == "recommender":
        scores, _ = holdout.recommender_precision(twins, tx, start, days,
                                                  settings.recommender.k)
        return scores
    if kind == "churn":
        frame = cutoff_frame(tx, start, days, settings.features, settings.churn, customers,
                             products, allow_partial=True)
        return holdout.churn_roc_auc(twins, frame, settings.churn)
    features = customer_features(tx, windows.as_of, settings.features, customers, products)
    return holdout.segmentation_score(twins, features, settings.segmentation)


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
                        reason=f"champion v{champion_version}'s configuration cannot be refit "
                               f"and scored on the holdout")
    margin = promotion.margin.get(kind, 0.0)
    if ours > theirs + margin:
        return Decision(**common, promote=True,
                        reason=f"{metric} {ours:.4f} beats champion {theirs:.4f} by more than "
                               f"{margin}")
    return Decision(**common, promote=False,
                    reason=f"{metric} {ours:.4f} does not beat champion {theirs:.4f} by more "
                           f"than {margin}")


def champion_twin(kind: str, champion: Any, clean: Dataset, windows: Windows,
                  settings: Settings) -> Any | None:
    """The champion's configuration refit before the holdout; None when it cannot be."""
    try:
        return refit_before_holdout(kind, champion, clean, windows, settings)
    except Exception as exc:  # noqa: BLE001 - an old configuration this code cannot fit
        log.warning("%s: the champion's configuration cannot be refit: %s", kind, exc)
        return None


@task(name="gate", cache_policy=NO_CACHE)
def evaluate_gate(kind: str, challenger: TrackedTraining, clean: Dataset,
                  settings: Settings) -> Decision:
    """Score challenger and champion configurations side by side and decide (moves nothing)."""
    client = tracking.client_for(settings.tracking)
    name = registry.registered_name(kind)
    windows = challenger.windows
    assert windows is not None and challenger.twin is not None
    champion_version = registry.alias_version(client, name, CHAMPION)
    twins = {CHALLENGER: unseen_twin(kind, challenger.twin, clean, windows, settings)}
    if champion_version and champion_version != str(challenger.version):
        champion = champion_twin(kind, load_predictor(client, name, champion_version), clean,
                                 windows, settings)
        if champion is not None:
            twins[CHAMPION] = champion
    scores = holdout_scores(kind, twins, clean, windows, settings)
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
