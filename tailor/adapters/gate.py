"""The champion/challenger gate: both configurations judged on one holdout neither has seen.

Plain library code (no Prefect) so the rule can be tested and reused on its own; the
``gate`` and ``move-aliases`` tasks in :mod:`tailor.tasks.gate` only wrap
:func:`evaluate` and :func:`apply`.

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
:func:`registry.apply_moves` (all or nothing), so a failure leaves every alias as it was.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from mlflow import MlflowClient

from tailor import kinds
from tailor.adapters import promotion_intent, registry, tracking
from tailor.adapters.faults import fault_point
from tailor.adapters.pyfunc import load_predictor
from tailor.adapters.registry import CHALLENGER, CHAMPION
from tailor.adapters.training import TrackedTraining
from tailor.configs.schema import PromotionSettings, Settings
from tailor.data.dataset import Dataset
from tailor.models import holdout
from tailor.models.windows import HOLDOUT_PREFIX, Windows, fit_until

log = logging.getLogger(__name__)


RUN_TAG_FIELDS = ("metric", "champion_version", "promote", "reason")
"""What the challenger's run is tagged with (as ``tailor.gate.<field>``)."""


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
        """The verdict as text tags of the challenger's run (the scores are metrics:
        :func:`gate_metrics`)."""
        fields = asdict(self)
        return {f"tailor.gate.{k}": str(fields[k]) for k in RUN_TAG_FIELDS}


def gate_metrics(decision: Decision, prefix: str = "gate_") -> dict[str, float]:
    """Both scores as numeric metrics, to chart and compare runs by: ``<prefix>challenger_score``
    and, when there is a champion, ``<prefix>champion_score`` (its configuration's score on the
    challenger's holdout). The retrain's parent run logs them as ``gate_<kind>_*``."""
    scores = {f"{prefix}challenger_score": decision.challenger_score}
    if decision.champion_score is not None:
        scores[f"{prefix}champion_score"] = decision.champion_score
    return scores


def gate_metric(kind: str, settings: Settings) -> str:
    """The holdout metric the gate compares (the challenger logs it under the same name)."""
    return HOLDOUT_PREFIX + kinds.get(kind).gate_metric(settings)


def refit_before_holdout(kind: str, predictor: Any, clean: Dataset, windows: Windows,
                         settings: Settings) -> Any:
    """The predictor's configuration fit on the history before ``windows.holdout_start``."""
    return kinds.get(kind).refit_twin(settings, clean, windows, predictor)


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
    return kinds.get(kind).holdout_scores(twins, clean, windows, settings)


def decide(kind: str, metric: str, challenger: TrackedTraining, scores: Mapping[str, float],
           champion_version: str | None, promotion: PromotionSettings,
           higher_is_better: bool = True) -> Decision:
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
    gain = ours - theirs if higher_is_better else theirs - ours
    if gain > margin:
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


def evaluate(kind: str, challenger: TrackedTraining, clean: Dataset,
             settings: Settings) -> Decision:
    """Score challenger and champion configurations side by side and decide; the decision is
    recorded on the challenger's run (moves nothing)."""
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
                      settings.promotion, kinds.get(kind).higher_is_better)
    _record(client, challenger.run_id, decision)
    return decision


def _record(client: MlflowClient, run_id: str, decision: Decision) -> None:
    for key, value in decision.tags().items():
        client.set_tag(run_id, key, value)
    tracking.log_metrics(client, run_id, gate_metrics(decision))


def still_current(client: MlflowClient, decision: Decision) -> Decision:
    """Compare-and-swap: a promotion stands only if the champion is still the version the gate
    scored; otherwise it is withdrawn, with the reason (the next retrain gates against the new
    champion)."""
    if not decision.promote:
        return decision
    name = registry.registered_name(decision.kind)
    current = registry.alias_version(client, name, CHAMPION)
    if current == decision.champion_version:
        return decision
    return replace(decision, promote=False, reason=(
        f"not promoted: {name}@champion moved from v{decision.champion_version} to v{current} "
        f"after the gate scored it; the next retrain is gated against v{current}"))


def _tag_decision(client: MlflowClient, decision: Decision) -> None:
    """One tag that tools read (``tailor.gate.promote``: the version was gated, see
    :func:`registry.check_decided` and :mod:`reconcile`); the verdict, metric and both scores
    go into the version's description, for a person."""
    name = registry.registered_name(decision.kind)
    client.set_model_version_tag(name, decision.challenger_version, registry.GATE_PROMOTE,
                                 str(decision.promote))
    version = client.get_model_version(name, decision.challenger_version)
    champion = ("no champion" if decision.champion_score is None else
                f"champion v{decision.champion_version} {decision.champion_score:.4f}")
    verdict = (f"Gate ({decision.metric} on the same holdout): challenger "
               f"{decision.challenger_score:.4f}, {champion}. {decision.reason}")
    client.update_model_version(name, decision.challenger_version,
                                description="\n\n".join(filter(None, [version.description,
                                                                      verdict])))


def _plan(client: MlflowClient, decision: Decision, actor: str) -> list[registry.AliasMove]:
    name = registry.registered_name(decision.kind)
    moves = [registry.plan_move(client, name, CHALLENGER, decision.challenger_version,
                                actor=actor, reason=decision.reason)]
    if decision.promote:
        champion = registry.plan_move(client, name, CHAMPION, decision.challenger_version,
                                      actor=actor, reason=decision.reason,
                                      metrics={decision.metric: decision.challenger_score})
        # from the version the gate scored, not whatever the registry says now
        moves.append(replace(champion, from_version=decision.champion_version))
    return moves


def apply(decisions: list[Decision], settings: Settings) -> list[Decision]:
    """Record every decision on its version, write the planned alias moves as one durable
    intent, then apply them together (all or nothing) and close the intent.

    Not to be retried: a retry would move aliases planned against a registry that may have
    changed; an interrupted promotion is repaired by :func:`tailor.adapters.reconcile.reconcile`
    instead. Returns the decisions as applied (a promotion withdrawn by the compare-and-swap
    says why).
    """
    client = tracking.client_for(settings.tracking)
    final = [still_current(client, d) for d in decisions]
    for decision in final:
        _tag_decision(client, decision)
    moves = [m for d in final for m in _plan(client, d, settings.promotion.actor)
             if m.from_version != m.to_version]
    if not moves:
        return final
    intent = promotion_intent.open_intent(
        client, moves, "promote " + ", ".join(f"{m.model}@{m.alias}->v{m.to_version}"
                                              for m in moves))
    try:
        applied = registry.apply_moves(client, [replace(m, intent=intent) for m in moves],
                                       tag_versions=False,
                                       after_each=lambda: fault_point("between-moves"))
    except BaseException:
        promotion_intent.close_intent(client, intent, promotion_intent.REVERTED)
        raise
    fault_point("before-tags")
    for move in applied:
        registry.tag_version(client, move)
    promotion_intent.close_intent(client, intent, promotion_intent.APPLIED)
    return final
