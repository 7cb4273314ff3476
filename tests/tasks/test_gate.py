"""The gate's fairness rule with a planted leak: a model that has seen the holdout cannot win
because of it.

The leak is real, not mocked: the champion is a served version fit on all history before the
data's end. A backtest retrain as of 60 days earlier asks the gate to compare it with a
challenger on a holdout that lies inside the champion's training history. Scored as an
artifact, the champion would remember those purchases; the gate instead refits its
configuration on the challenger's training history and scores that.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tailor import kinds
from tailor.adapters import promotion_intent, registry
from tailor.adapters.gate import Decision, refit_before_holdout, still_current
from tailor.adapters.pyfunc import load_predictor
from tailor.adapters.tracking import client_for
from tailor.adapters.training import TrackedTraining, train_model
from tailor.configs import load_settings
from tailor.data.generate import GeneratedData
from tailor.kinds.churn import churn_data
from tailor.models import holdout
from tailor.models.churn import evaluate
from tailor.models.features import default_as_of, history
from tailor.tasks.gate import apply_decisions, evaluate_gate

from .conftest import RegistryStore, tracked_settings

DAY = pd.Timedelta(days=1)
TINY = ["recommender.n_trials=2", "recommender.max_epochs=3", "recommender.max_eval_users=200",
        "churn.n_trials=2", "churn.families=[logistic]", "churn.importance_repeats=1"]
TRAIN = {kind: lambda *args, kind=kind: train_model(kinds.get(kind), *args)
         for kind in ("recommender", "churn")}


def _leaky_score(kind: str, model: object, challenger: TrackedTraining, clean, settings
                 ) -> float:
    """What the champion artifact itself would score on the challenger's holdout."""
    windows = challenger.windows
    assert windows is not None
    tx = history(clean.transactions, windows.as_of)
    if kind == "recommender":
        scores, _ = holdout.recommender_precision({"m": model}, tx, windows.holdout_start,
                                                  windows.holdout_days, settings.recommender.k)
        return scores["m"]
    return evaluate(model, churn_data(settings, clean, windows).holdout,
                    settings.churn)["roc_auc"]


# The recommender remembers the holdout's purchases in its repeat signal: a wide gain. A
# logistic churn model trained on the holdout's own labels gains little, but still gains.
@pytest.mark.parametrize(("kind", "leak_gain"), [("recommender", 0.02), ("churn", 0.0)])
def test_a_champion_that_has_seen_the_holdout_cannot_win_by_it(
        kind: str, leak_gain: float, tmp_path: Path, small_retailer: GeneratedData) -> None:
    settings = tracked_settings(tmp_path, *TINY)
    client = client_for(settings.tracking)
    clean = small_retailer.dataset
    end = default_as_of(clean.transactions)
    first = TRAIN[kind](settings, clean, end, "latest", "fp")
    registry.promote(client, kind, first.version, actor="test", reason="leaky champion")
    champion = load_predictor(client, f"tailor-{kind}", first.version)
    backtest = TRAIN[kind](settings, clean, end - 60 * DAY, "backtest", "fp")
    assert backtest.windows is not None and champion.as_of > backtest.windows.holdout_start

    decision = evaluate_gate.fn(kind, backtest, clean, settings)
    leaky = _leaky_score(kind, champion, backtest, clean, settings)
    refit = refit_before_holdout(kind, champion, clean, backtest.windows, settings)
    honest = _leaky_score(kind, refit, backtest, clean, settings)
    assert refit.as_of == backtest.windows.holdout_start
    assert decision.champion_version == first.version
    assert decision.champion_score == pytest.approx(honest)
    assert leaky > honest + leak_gain, (leaky, honest)
    assert decision.challenger_score == pytest.approx(
        backtest.metrics[f"holdout_{'precision_at_10' if kind == 'recommender' else 'roc_auc'}"],
        abs=1e-9 if kind == "churn" else 0.02)


def test_a_challenger_twin_that_has_seen_the_holdout_is_refit(
        tmp_path: Path, small_retailer: GeneratedData) -> None:
    settings = tracked_settings(tmp_path, *TINY)
    clean = small_retailer.dataset
    end = default_as_of(clean.transactions)
    trained = train_model(kinds.get("recommender"), settings, clean, end, "run", "fp")
    served = load_predictor(client_for(settings.tracking), "tailor-recommender",
                            trained.version)
    # the served model in the twin's place: it has seen the whole holdout
    leaky = TrackedTraining(trained.kind, trained.run_id, trained.experiment_id,
                            trained.model_uri, trained.version, trained.metrics, served,
                            trained.windows)
    honest = evaluate_gate.fn("recommender", trained, clean, settings)
    guarded = evaluate_gate.fn("recommender", leaky, clean, settings)
    assert guarded.challenger_score == pytest.approx(honest.challenger_score)
    assert _leaky_score("recommender", served, trained, clean, settings) > (
        honest.challenger_score + 0.02)


def test_a_promotion_stands_only_against_the_champion_the_gate_scored(
        registry_store: RegistryStore) -> None:
    """Compare-and-swap: if the champion moved after the gate scored it, nothing is promoted,
    the reason says so, and the decision is recorded on the challenger's version."""
    client, name = registry_store.client, registry.registered_name("segmentation")
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source=registry_store.source,
                                    run_id=registry_store.run_id)
    registry.promote(client, name, "1", actor="test", reason="setup")
    decision = Decision(kind="segmentation", metric="holdout_objective",
                        challenger_version="3", champion_version="1", challenger_score=0.9,
                        champion_score=0.5, promote=True, reason="beats champion")
    assert still_current(client, decision) == decision
    registry.promote(client, name, "2", actor="someone", reason="meanwhile")  # after the gate

    settings = load_settings(overrides=[f"tracking.mlflow_tracking_uri={client.tracking_uri}"])
    [applied] = apply_decisions.fn([decision], settings)
    assert not applied.promote and "moved from v1 to v2 after the gate scored it" in applied.reason
    assert registry.alias_version(client, name, registry.CHAMPION) == "2"
    assert registry.alias_version(client, name, registry.CHALLENGER) == "3"
    version = client.get_model_version(name, "3")
    assert version.tags["tailor.gate.promote"] == "False"
    assert "after the gate scored it" in version.description
    assert set(version.tags) == {"tailor.gate.promote", "challenger_since"}
    record = client.search_runs([client.get_experiment_by_name(
        promotion_intent.INTENT_EXPERIMENT).experiment_id])[0]
    assert record.info.status == "FINISHED"
    assert record.data.tags[promotion_intent.STATE] == promotion_intent.APPLIED
