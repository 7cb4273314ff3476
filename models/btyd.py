"""Buy-till-you-die models: BG/NBD and Pareto/NBD, fitted with PyMC-Marketing.

Both describe a customer by three numbers from their history before a date, in days:
``frequency`` x (repeat purchase days: distinct purchase days - 1), ``recency`` t_x (first to
last purchase) and ``T`` (first purchase to the date). They are fitted by maximum a posteriori
(``fit(method="map")``) on those summaries alone, with no labels, which is why they stay strong
on a young cohort where few labelled churn windows exist.

They serve twice:

- as **baselines** in every churn run, fitted on the history before the holdout and scored on
  it (P(no purchase in the window)): ``baseline_bgnbd_holdout_*`` and
  ``baseline_pareto_nbd_holdout_*``;
- as a **signal** of the churn model: its probability is blended with BG/NBD's
  P(no purchase in H), the weight chosen on the tuning validation (see :mod:`tailor.models.churn`).

Why PyMC-Marketing: it is the maintained home of these models (the ``lifetimes`` package points
its users there and is no longer developed), it installs from PyPI on the pinned numpy and
scipy, and MAP fits take 1-5 s on thousands of customers once PyTensor's compile cache is warm
(about 20 s the first time on a machine).

The churn model scores BG/NBD from the fitted parameters with the closed forms below, so a
served model needs no PyMC at prediction time. P(alive) is Fader, Hardie & Lee (2005) eq. 13;
P(no purchase in (T, T + t]) = 1 - P(alive) + P(alive) ((alpha + T)/(alpha + T + t))^(r + x),
because a BG/NBD customer alive at T stays alive while not purchasing. Both equal
PyMC-Marketing's ``expected_probability_alive`` and (for x > 0) ``expected_probability_no_purchase``
(tests/models/test_btyd.py). For x = 0, PyMC-Marketing 0.18's ``expected_probability_no_purchase``
keeps a dropout term that its own P(alive) leaves out (a customer who never came back cannot
have dropped out after a repeat purchase); we follow P(alive).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailor.inference import bgnbd_counts, bgnbd_p_alive, bgnbd_p_no_purchase

FREQUENCY, RECENCY, AGE = "frequency", "recency", "T"
BGNBD, PARETO_NBD = "bgnbd", "pareto_nbd"


def summary(features: pd.DataFrame) -> pd.DataFrame:
    """(customer_id, frequency, recency, T) in days from :func:`customer_features` columns."""
    index = features.index
    ids = index.get_level_values("customer_id") if "customer_id" in (index.names or ()) else index
    repeat, last, tenure = bgnbd_counts(features)
    return pd.DataFrame({"customer_id": np.arange(len(ids)), FREQUENCY: repeat, RECENCY: last,
                         AGE: tenure}, index=pd.Index(ids, name="customer_id"))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """PyMC and PyTensor report compile and BLAS notes at WARNING: not the user's business."""
    loggers = [logging.getLogger(n) for n in ("pymc", "pymc_marketing", "pytensor")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _fit(kind: str, data: pd.DataFrame):
    with _quiet():
        from pymc_marketing import clv

        model = {BGNBD: clv.BetaGeoModel, PARETO_NBD: clv.ParetoNBDModel}[kind](
            data=data.reset_index(drop=True))
        model.fit(method="map", progressbar=False)
    return model


@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD population parameters (purchase rate gamma(r, alpha), dropout beta(a, b))."""

    r: float
    alpha: float
    a: float
    b: float

    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def p_alive(self, data: pd.DataFrame) -> np.ndarray:
        return bgnbd_p_alive(self.params(), *_columns(data))

    def p_no_purchase(self, data: pd.DataFrame, days: float) -> np.ndarray:
        """P(no purchase in the ``days`` after T), per row of a :func:`summary` frame."""
        return bgnbd_p_no_purchase(self.params(), *_columns(data), days)


def _columns(data: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(data[c].to_numpy(dtype=np.float64) for c in (FREQUENCY, RECENCY, AGE))


def fit_bgnbd(data: pd.DataFrame) -> BgNbd:
    """BG/NBD fitted by MAP on a :func:`summary` frame."""
    result = _fit(BGNBD, data).fit_result
    return BgNbd(**{k: float(np.asarray(result[k]).ravel()[0]) for k in ("r", "alpha", "a", "b")})


def baseline_probabilities(fit_on: pd.DataFrame, score: pd.DataFrame, days: float,
                           bgnbd: BgNbd | None = None) -> dict[str, np.ndarray]:
    """P(no purchase in ``days``) for ``score``'s customers from BG/NBD and Pareto/NBD, both
    fitted on ``fit_on`` (the same customers' summaries at the same date); ``bgnbd``: a BG/NBD
    already fitted on ``fit_on``, reused instead of fitting it again."""
    pareto = _fit(PARETO_NBD, fit_on)
    with _quiet():
        p_pareto = np.asarray(pareto.expected_purchase_probability(
            data=score.reset_index(drop=True), n_purchases=0, future_t=days)).ravel()
    bgnbd = bgnbd if bgnbd is not None else fit_bgnbd(fit_on)
    return {BGNBD: bgnbd.p_no_purchase(score, days),
            PARETO_NBD: np.clip(p_pareto, 0.0, 1.0)}


__all__ = ["BGNBD", "PARETO_NBD", "BgNbd", "baseline_probabilities", "fit_bgnbd", "summary"]
