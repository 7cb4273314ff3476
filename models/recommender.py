"""LightFM hybrid recommender blended with repeat purchases and popularity: fit, tune, evaluate.

- :func:`plan` gives a run's windows (:mod:`tailor.models.windows`): the twin is fit before the
  holdout start S, the served model before ``as_of``, and tuning looks only before S.
- :func:`prepare` builds point-in-time inputs (interactions + user/item features via
  :func:`tailor.models.interactions.build_interactions`, popularity) strictly before a date.
- :func:`tune` runs an Optuna study (the caller's: storage and resume are its business) on a
  validation split *inside* the history before S: train before ``S - validation_days``,
  validate on the purchases of the last ``validation_days`` before S (shortened on short
  history); the holdout is never seen.
  LightFM trains epoch by epoch (``fit_partial``), each epoch's validation precision@k is reported
  to the trial so the study's pruner can stop bad trials; the trial's value is the precision of
  the best blend (grid over LightFM / repeat / popularity weights) of the trained model.
- :func:`fit_recommender` fits the chosen parameters on all history before a date (S for the
  twin, ``as_of`` for the served model).
- :func:`evaluate` scores a model on the window after its fit date for the model and the
  popularity and repeat baselines (same users, same metrics), plus cold-start customers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM

from tailor.configs.schema import FeatureSettings, RecommenderSettings
from tailor.models.features import customer_features, history
from tailor.models.interactions import InteractionData, build_interactions, cold_user_features
from tailor.models.ranking_metrics import evaluate_ranking, top_k
from tailor.models.recommender_model import BlendWeights, RecommenderModel, minmax_rows
from tailor.models.recommender_ranker import candidates, fit_ranker, ranked_matrix, training_windows
from tailor.models.recommender_signals import (
    Holdout,
    holdout,
    popularity,
    repeat_matrix,
    row_max_normalise,
)
from tailor.models.windows import InsufficientHistoryError, Windows, first_purchase, plan_windows

SCHEDULES = ("adagrad", "adadelta")
WEIGHTED_LOSSES = ("warp", "bpr")  # LightFM's warp-kos and logistic ignore sample weights
BLEND_KEYS = ("w_lightfm", "w_repeat", "w_popularity", "repeat_half_life_days", "cold_lightfm")
COLD_LIGHTFM_GRID = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
DECAY_HALF_LIFE_DAYS = 90.0  # of the personal decayed-frequency baseline


def default_params() -> dict[str, Any]:
    """Untuned starting point (what ``fit_recommender`` uses when given no parameters)."""
    return {
        "loss": "warp", "no_components": 64, "learning_rate": 0.05,
        "learning_schedule": "adagrad", "user_alpha": 1e-6, "item_alpha": 1e-6, "epochs": 30,
        "weighting": "log", "features": "hybrid",
        "w_lightfm": 0.1, "w_repeat": 1.0, "w_popularity": 0.1, "repeat_half_life_days": None,
        "cold_lightfm": 1.0,
    }


# -- windows -----------------------------------------------------------------------------------
MIN_PRODUCTS = 2


def plan(transactions: pd.DataFrame, as_of: pd.Timestamp | str, features: FeatureSettings,
         settings: RecommenderSettings) -> Windows:
    """Windows of a recommender run; the twin's tuning needs training and validation days."""
    products = history(transactions, as_of)
    products = products.loc[products["quantity"] > 0, "product_id"].nunique()
    if products < MIN_PRODUCTS:
        raise InsufficientHistoryError(
            f"recommender: the history before {pd.Timestamp(as_of).date()} has {products} "
            f"product(s); ranking products needs at least {MIN_PRODUCTS}, so there is nothing "
            f"to recommend (segmentation and churn do not need it)")
    windows = plan_windows(
        transactions, as_of, features.horizon_days, model="recommender",
        needs_days=features.min_history_days + settings.min_validation_days,
        needs_rule=(f"the twin's tuning needs features.min_history_days "
                    f"({features.min_history_days}) of training history and "
                    f"recommender.min_validation_days ({settings.min_validation_days}) of "
                    f"validation before the holdout"),
        min_holdout_days=features.min_holdout_days)
    days = validation_days(windows, features, settings)
    if days < settings.validation_days:
        windows = windows.reduced(
            f"recommender tuning validation shortened to {days} days (from "
            f"{settings.validation_days}) to keep features.min_history_days "
            f"({features.min_history_days}) of training history before it")
    return windows


def validation_days(windows: Windows, features: FeatureSettings,
                    settings: RecommenderSettings) -> int:
    """The tuning validation window: ``validation_days``, or what the history before the
    holdout leaves after ``features.min_history_days`` of training history."""
    before = int((windows.holdout_start - windows.first_purchase) / pd.Timedelta(days=1))
    return max(settings.min_validation_days,
               min(settings.validation_days, before - features.min_history_days))


# -- inputs ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RecommenderInputs:
    """Everything known at ``as_of``: LightFM matrices, popularity and the raw history."""

    as_of: pd.Timestamp
    data: InteractionData
    popularity: np.ndarray
    transactions: pd.DataFrame

    def repeat(self, half_life_days: float | None) -> sp.csr_matrix:
        """Repeat score rows scaled to max 1 (see :func:`repeat_matrix`)."""
        return row_max_normalise(repeat_matrix(self.transactions, self.as_of, self.data.user_ids,
                                               self.data.item_ids, half_life_days))


def prepare(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    features: FeatureSettings,
    settings: RecommenderSettings,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    segments: pd.Series | None = None,
) -> RecommenderInputs:
    """Point-in-time inputs: interactions weighted per ``features.interaction_weight``, user
    features (attributes, RFM bins, segment) and item features (category, price band, tokens)."""
    as_of = pd.Timestamp(as_of)
    rfm = customer_features(transactions, as_of, features, customers=customers, products=products)
    data = build_interactions(transactions, as_of, features, customer_features=rfm,
                              customers=customers, products=products, segments=segments)
    if data.interactions.nnz == 0:
        raise ValueError(f"transactions: no purchase line before as_of={as_of}; nothing to learn")
    pop = popularity(transactions, as_of, data.item_ids, settings.popularity_days)
    return RecommenderInputs(as_of, data, pop, transactions)


# -- LightFM -----------------------------------------------------------------------------------
def _sample_weights(data: InteractionData, weighting: str) -> sp.coo_matrix | None:
    """log: ``log1p(weight)`` scaled to mean 1, so heavy buyers steer but do not blow up the
    learning rate (LightFM multiplies each step by its weight); binary: no weights."""
    if weighting == "binary":
        return None
    weights = sp.coo_matrix(data.weights, dtype=np.float32, copy=True)
    weights.data = np.log1p(np.maximum(weights.data, 0.0))
    weights.data /= max(float(weights.data.mean()), 1e-12)
    return weights


def _features(data: InteractionData, params: Mapping[str, Any]
              ) -> tuple[sp.csr_matrix | None, sp.csr_matrix | None]:
    if params.get("features", "hybrid") == "hybrid":
        return data.user_features, data.item_features
    return None, None


def fit_lightfm(
    data: InteractionData,
    params: Mapping[str, Any],
    seed: int,
    num_threads: int = 1,
    on_epoch: Callable[[int, LightFM], None] | None = None,
) -> LightFM:
    """Train LightFM epoch by epoch (``fit_partial``); ``on_epoch(epoch, model)`` after each one
    (raise from it, e.g. ``optuna.TrialPruned``, to stop)."""
    model = LightFM(
        no_components=int(params["no_components"]), loss=params["loss"],
        learning_schedule=params["learning_schedule"],
        learning_rate=float(params["learning_rate"]),
        user_alpha=float(params["user_alpha"]), item_alpha=float(params["item_alpha"]),
        random_state=np.random.RandomState(seed),
    )
    weights = (_sample_weights(data, params.get("weighting", "log"))
               if params["loss"] in WEIGHTED_LOSSES else None)
    interactions = sp.coo_matrix(data.interactions)
    user_features, item_features = _features(data, params)
    for epoch in range(int(params["epochs"])):
        model.fit_partial(interactions, user_features=user_features, item_features=item_features,
                          sample_weight=weights, epochs=1, num_threads=num_threads)
        if on_epoch is not None:
            on_epoch(epoch, model)
    return model


@dataclass(frozen=True, eq=False)
class Representations:
    """LightFM reduced to what ranking needs: ``user @ item.T + item_bias``."""

    users: np.ndarray
    items: np.ndarray
    item_biases: np.ndarray
    user_feature_embeddings: np.ndarray | None  # for cold users; None for identity-only models

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.users[rows] @ self.items.T + self.item_biases


def representations(model: LightFM, data: InteractionData, params: Mapping[str, Any]
                    ) -> Representations:
    user_features, item_features = _features(data, params)
    _, users = model.get_user_representations(user_features)
    item_biases, items = model.get_item_representations(item_features)
    feature_emb = (np.asarray(model.user_embeddings, dtype=np.float32)
                   if user_features is not None else None)
    return Representations(np.asarray(users, dtype=np.float32),
                           np.asarray(items, dtype=np.float32),
                           np.asarray(item_biases, dtype=np.float32), feature_emb)


def cold_attribute_rows(ids: np.ndarray, customers: pd.DataFrame | None) -> pd.DataFrame:
    """Attribute rows for ``ids`` from the customers table (bare ids when there is none)."""
    if customers is None:
        return pd.DataFrame({"customer_id": ids})
    table = customers.drop_duplicates("customer_id").set_index("customer_id")
    return table.reindex(pd.Index(ids, name="customer_id")).reset_index()


def cold_vectors(reps: Representations, data: InteractionData, attribute_rows: pd.DataFrame
                 ) -> np.ndarray:
    if reps.user_feature_embeddings is None:
        return np.zeros((len(attribute_rows), reps.items.shape[1]), dtype=np.float32)
    return np.asarray(cold_user_features(data, attribute_rows) @ reps.user_feature_embeddings,
                      dtype=np.float32)


# -- blend search ------------------------------------------------------------------------------
def _precision(scores: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    top = top_k(scores, k)
    rows = np.repeat(np.arange(scores.shape[0]), top.shape[1])
    return float(np.asarray(truth[rows, top.ravel()]).sum() / (k * scores.shape[0]))


def search_blend(lightfm: np.ndarray, repeats: Mapping[float | None, np.ndarray],
                 pop: np.ndarray, truth: sp.csr_matrix, k: int, settings: RecommenderSettings,
                 purchased: np.ndarray | None = None) -> tuple[dict[str, Any], float]:
    """Best (w_lightfm, w_repeat, w_popularity, half-life) on validation rows by precision@k.

    ``lightfm`` is row-min-max normalised; repeat weight is 1 (scale-free), or 0 with LightFM at
    1 (pure LightFM + popularity, the only sensible blend when purchases are excluded).
    """
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    candidates = [(wl, 1.0, wp, hl) for hl in repeats for wl in settings.blend_lightfm_weights
                  for wp in settings.blend_popularity_weights]
    candidates += [(1.0, 0.0, wp, None) for wp in settings.blend_popularity_weights]
    for wl, wr, wp, hl in candidates:
        scores = wl * lightfm + wp * pop
        if wr:
            scores = scores + wr * repeats[hl]
        if purchased is not None:
            scores = np.where(purchased, -np.inf, scores)
        value = _precision(scores, truth, k)
        if value > best[0] + 1e-12:
            best = (value, {"w_lightfm": wl, "w_repeat": wr, "w_popularity": wp,
                            "repeat_half_life_days": hl})
    return best[1], best[0]


def search_cold_blend(lightfm: np.ndarray, pop: np.ndarray, truth: sp.csr_matrix, k: int
                      ) -> tuple[float, float]:
    """Best LightFM weight (popularity weight 1) for cold users, and its precision@k."""
    best = (COLD_LIGHTFM_GRID[0], -1.0)
    for weight in COLD_LIGHTFM_GRID:
        value = _precision(weight * lightfm + pop, truth, k)
        if value > best[1] + 1e-12:
            best = (weight, value)
    return best


# -- tuning ------------------------------------------------------------------------------------
def suggest_params(trial: optuna.Trial, settings: RecommenderSettings) -> dict[str, Any]:
    """The search space."""
    params: dict[str, Any] = {
        "loss": trial.suggest_categorical("loss", list(settings.losses)),
        "no_components": trial.suggest_int("no_components", 8, 128, log=True),
        "learning_schedule": trial.suggest_categorical("learning_schedule", list(SCHEDULES)),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.2, log=True),
        "user_alpha": trial.suggest_float("user_alpha", 1e-8, 1e-3, log=True),
        "item_alpha": trial.suggest_float("item_alpha", 1e-8, 1e-3, log=True),
        "epochs": trial.suggest_int("epochs", min(5, settings.max_epochs), settings.max_epochs),
        "weighting": trial.suggest_categorical("weighting", ["binary", "log"]),
        "features": trial.suggest_categorical("features", ["hybrid", "identity"]),
    }
    return params


class RecommenderObjective:
    """Optuna objective on a validation split (see module docstring)."""

    def __init__(self, inputs: RecommenderInputs, truth: Holdout, settings: RecommenderSettings,
                 customers: pd.DataFrame | None = None) -> None:
        self.inputs = inputs
        self.settings = settings
        rows = np.flatnonzero(np.diff(truth.truth.indptr) > 0)
        if rows.size == 0:
            raise InsufficientHistoryError(
                f"recommender: no customer seen before {inputs.as_of.date()} bought a product "
                f"seen before it in the tuning validation window after it; nothing to tune on "
                f"(lower recommender.validation_days or use a later --as-of)")
        rng = np.random.default_rng(settings.seed)
        if rows.size > settings.max_eval_users:
            rows = np.sort(rng.choice(rows, settings.max_eval_users, replace=False))
        self.rows = rows
        self.truth = truth.truth[rows]
        self.repeats = {hl: inputs.repeat(hl)[rows].toarray()
                        for hl in settings.repeat_half_lives_days}
        first = next(iter(self.repeats.values()))
        self.purchased = first > 0 if settings.exclude_purchased else None
        cold = np.flatnonzero(np.diff(truth.cold_truth.indptr) > 0)
        self.cold_truth = truth.cold_truth[cold]
        self.cold_rows = cold_attribute_rows(truth.cold_ids[cold], customers)

    def lightfm_scores(self, model: LightFM, params: Mapping[str, Any]) -> np.ndarray:
        reps = representations(model, self.inputs.data, params)
        return minmax_rows(reps.scores(self.rows))

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest_params(trial, self.settings)
        k = self.settings.k

        def report(epoch: int, model: LightFM) -> None:
            scores = self.lightfm_scores(model, params)
            if self.purchased is not None:
                scores = np.where(self.purchased, -np.inf, scores)
            trial.report(_precision(scores, self.truth, k), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        model = fit_lightfm(self.inputs.data, params, self.settings.seed,
                            self.settings.num_threads, on_epoch=report)
        reps = representations(model, self.inputs.data, params)
        blend, value = search_blend(minmax_rows(reps.scores(self.rows)), self.repeats,
                                    self.inputs.popularity, self.truth, k, self.settings,
                                    self.purchased)
        cold_weight, cold_value = 1.0, float("nan")
        if self.cold_truth.shape[0]:
            vectors = cold_vectors(reps, self.inputs.data, self.cold_rows)
            lfm = minmax_rows(vectors @ reps.items.T + reps.item_biases)
            cold_weight, cold_value = search_cold_blend(lfm, self.inputs.popularity,
                                                        self.cold_truth, k)
        for key, val in {**blend, "cold_lightfm": cold_weight}.items():
            trial.set_user_attr(key, val)
        trial.set_user_attr("cold_precision", cold_value)
        return value


def validation_split(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    features: FeatureSettings,
    settings: RecommenderSettings,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    segments: pd.Series | None = None,
    days: int | None = None,
) -> tuple[RecommenderInputs, Holdout]:
    """Inputs before ``as_of - days`` and the purchases of the last ``days`` before ``as_of``
    (``days``: ``settings.validation_days`` unless given)."""
    days = settings.validation_days if days is None else days
    cut = pd.Timestamp(as_of) - pd.Timedelta(days=days)
    past = history(transactions, as_of)
    inputs = prepare(past, cut, features, settings, customers, products, segments)
    truth = holdout(past, cut, days, inputs.data.user_ids, inputs.data.item_ids)
    return inputs, truth


def tune(
    study: optuna.Study,
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    features: FeatureSettings,
    settings: RecommenderSettings,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    segments: pd.Series | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    days: int | None = None,
) -> dict[str, Any]:
    """Optimise ``study`` (direction must be "maximize") on the validation split of the
    ``days`` (default ``settings.validation_days``) before ``as_of``; return the best parameters
    (LightFM + blend weights) for :func:`fit_recommender`."""
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError("tune: the study must maximise validation precision@k")
    inputs, truth = validation_split(transactions, as_of, features, settings, customers,
                                     products, segments, days)
    objective = RecommenderObjective(inputs, truth, settings, customers)
    study.optimize(objective, n_trials=settings.n_trials if n_trials is None else n_trials,
                   timeout=settings.timeout_s if timeout is None else timeout,
                   callbacks=list(callbacks))
    return best_params(study)


def best_params(study: optuna.Study) -> dict[str, Any]:
    """The best trial's parameters plus its blend weights (stored as user attributes)."""
    trial = study.best_trial
    return {**trial.params, **{k: trial.user_attrs[k] for k in BLEND_KEYS
                               if k in trial.user_attrs}}


# -- final fit and evaluation ------------------------------------------------------------------
def fit_recommender(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    features: FeatureSettings,
    settings: RecommenderSettings,
    params: Mapping[str, Any] | None = None,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    segments: pd.Series | None = None,
    inputs: RecommenderInputs | None = None,
) -> RecommenderModel:
    """Fit on all history before ``as_of`` with ``params`` (default: :func:`default_params`)."""
    params = {**default_params(), **(params or {})}
    if inputs is None:
        inputs = prepare(transactions, as_of, features, settings, customers, products, segments)
    model = fit_lightfm(inputs.data, params, settings.seed, settings.num_threads)
    reps = representations(model, inputs.data, params)
    ranked = None
    if params.get("ranker", settings.ranker is not False):
        ranked = rank_candidates(history(transactions, inputs.as_of), inputs, features, settings)
    weights = BlendWeights(lightfm=float(params["w_lightfm"]), repeat=float(params["w_repeat"]),
                           popularity=float(params["w_popularity"]),
                           repeat_half_life_days=params["repeat_half_life_days"],
                           cold_lightfm=float(params["cold_lightfm"]))
    return RecommenderModel(
        as_of=inputs.as_of, k=settings.k, exclude_purchased=settings.exclude_purchased,
        weights=weights, user_ids=inputs.data.user_ids, item_ids=inputs.data.item_ids,
        user_embeddings=reps.users, item_embeddings=reps.items, item_biases=reps.item_biases,
        repeat=inputs.repeat(weights.repeat_half_life_days), popularity=inputs.popularity,
        user_feature_embeddings=reps.user_feature_embeddings,
        user_feature_names=inputs.data.user_feature_names,
        user_encodings=inputs.data.user_encodings, params=dict(params), ranked=ranked,
    )


def rank_candidates(past: pd.DataFrame, inputs: RecommenderInputs, features: FeatureSettings,
                    settings: RecommenderSettings) -> sp.csr_matrix | None:
    """The learned ranker's best candidates per known customer at ``inputs.as_of`` (None when
    the history holds no window to train it on)."""
    horizon = features.horizon_days
    windows = training_windows(first_purchase(past), inputs.as_of, horizon,
                               features.min_history_days, settings.min_validation_days,
                               settings)
    ranker = fit_ranker(past, windows, settings, horizon)
    if ranker is None:
        return None
    found = candidates(past, inputs.as_of, horizon, settings)
    return ranked_matrix(ranker, found, inputs.data.user_ids, inputs.data.item_ids,
                         settings.ranked_per_customer)


def choose_ranker(transactions: pd.DataFrame, as_of: pd.Timestamp, days: int,
                  features: FeatureSettings, settings: RecommenderSettings,
                  params: Mapping[str, Any], customers: pd.DataFrame | None = None,
                  products: pd.DataFrame | None = None) -> tuple[bool, dict[str, float]]:
    """Whether the learned ranker goes into the model (``settings.ranker``; ``"auto"``: when it
    beats the blend alone on the tuning validation, the ``days`` before ``as_of``), and the two
    validation precisions."""
    if settings.ranker != "auto":
        return bool(settings.ranker), {}
    past = history(transactions, as_of)
    cut = as_of - pd.Timedelta(days=days)
    model = fit_recommender(past, cut, features, settings, {**params, "ranker": True},
                            customers, products)
    if model.ranked is None:  # no window to train it on before the validation: cannot tell
        return True, {}
    k = settings.k
    ranked = evaluate(model, past, days, customers, k=k)[f"precision_at_{k}"]
    blend = evaluate(model.without_ranker(), past, days, customers, k=k)[f"precision_at_{k}"]
    return ranked > blend, {f"ranker_precision_at_{k}": ranked,
                            f"blend_precision_at_{k}": blend}


class _Scorer:
    """Score-row callables for :func:`evaluate_ranking` (model parts and baselines)."""

    def __init__(self, model: RecommenderModel, counts: sp.csr_matrix,
                 decay: sp.csr_matrix) -> None:
        self.model = model
        self.counts = counts
        self.decay = decay

    def lightfm(self, rows: np.ndarray) -> np.ndarray:
        return self.model._lightfm(self.model.user_embeddings[rows])

    def popularity(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.model.popularity, (len(rows), len(self.model.item_ids)))

    def repeat(self, rows: np.ndarray) -> np.ndarray:
        """The strongest trivial baseline: the customer's own products by distinct orders, ties
        broken and the list topped up by recent popularity."""
        return self.counts[rows].toarray() + 0.5 * self.popularity(rows)

    def decayed(self, rows: np.ndarray) -> np.ndarray:
        """Personal frequency with time decay (orders weighted 0.5^(age / 90 days)), topped up
        by popularity."""
        return self.decay[rows].toarray() + 1e-3 * self.popularity(rows)


def evaluate(
    model: RecommenderModel,
    transactions: pd.DataFrame,
    horizon_days: int,
    customers: pd.DataFrame | None = None,
    k: int | None = None,
) -> dict[str, float]:
    """Metrics on ``[model.as_of, model.as_of + horizon_days)``; see module docstring.

    Known customers (bought before as_of, >= 1 purchase in the window): ``precision_at_k``,
    ``recall_at_k``, ``ndcg_at_k``, ``map_at_k``, ``auc``, ``catalogue_coverage``; the same with
    prefixes ``blend_`` (without the learned ranker, when it has one), ``lightfm_`` (LightFM
    alone), ``baseline_popularity_``, ``baseline_repeat_`` (own products by orders, ties broken
    by popularity: the strongest trivial baseline), ``baseline_decayed_frequency_``; every
    group also has ``new_item_share_at_k`` (recommended products the customer never bought).
    Cold customers (first purchase in the window), scored from attributes alone: ``cold_*``,
    ``baseline_popularity_cold_*`` and ``baseline_random_cold_precision_at_k`` (expected).
    """
    k = model.k if k is None else k
    truth = holdout(transactions, model.as_of, horizon_days, model.user_ids, model.item_ids)
    if not (truth.n_relevant > 0).any():
        raise ValueError(f"evaluate: no known customer bought anything in the {horizon_days} "
                         f"days after {model.as_of}")
    exclude = model.repeat if model.exclude_purchased else None
    counts = repeat_matrix(transactions, model.as_of, model.user_ids, model.item_ids, None)
    decay = repeat_matrix(transactions, model.as_of, model.user_ids, model.item_ids,
                          DECAY_HALF_LIFE_DAYS)
    scorer = _Scorer(model, counts, decay)
    common = {"truth": truth.truth, "k": k, "exclude": exclude, "n_relevant": truth.n_relevant,
              "purchased": counts}
    metrics = evaluate_ranking(model.score_known, **common)
    if model.ranked is not None:
        metrics |= evaluate_ranking(model.without_ranker().score_known, prefix="blend_",
                                    **common)
    metrics |= evaluate_ranking(scorer.lightfm, prefix="lightfm_", **common)
    metrics |= evaluate_ranking(scorer.popularity, prefix="baseline_popularity_", **common)
    metrics |= evaluate_ranking(scorer.repeat, prefix="baseline_repeat_", **common)
    metrics |= evaluate_ranking(scorer.decayed, prefix="baseline_decayed_frequency_", **common)
    metrics["n_eval_users"] = float((truth.n_relevant > 0).sum())
    metrics["n_cold_users"] = float(len(truth.cold_ids))
    if len(truth.cold_ids):
        rows = cold_attribute_rows(truth.cold_ids, customers)
        vectors = model.cold_vectors(rows)
        cold = {"truth": truth.cold_truth, "k": k, "n_relevant": truth.cold_n_relevant}
        metrics |= evaluate_ranking(lambda r: model.score_cold(vectors[r]), prefix="cold_",
                                    **cold)
        metrics |= evaluate_ranking(scorer.popularity, prefix="baseline_popularity_cold_",
                                    **cold)
        known = np.diff(truth.cold_truth.indptr)[truth.cold_n_relevant > 0]
        metrics[f"baseline_random_cold_precision_at_{k}"] = float(
            np.mean(known / len(model.item_ids)))
    return metrics


__all__ = [
    "RecommenderInputs",
    "RecommenderObjective",
    "Representations",
    "best_params",
    "choose_ranker",
    "cold_attribute_rows",
    "default_params",
    "evaluate",
    "fit_lightfm",
    "fit_recommender",
    "plan",
    "prepare",
    "representations",
    "search_blend",
    "suggest_params",
    "tune",
    "validation_days",
    "validation_split",
]
