"""The generator's vectorised draws: row-wise categorical sampling, and the seasonal calendar that
order times are drawn from (by inverting its cumulative intensity)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailor.configs.schema import GenerateSettings

_WEEKDAY = np.array([0.92, 0.95, 0.97, 1.0, 1.08, 1.22, 0.86])  # Monday .. Sunday


def _row_cdf(probs: np.ndarray) -> np.ndarray:
    """Flattened, row-offset CDFs: row r spans (r, r+1], so one searchsorted samples any row."""
    totals = probs.sum(axis=1, keepdims=True)
    cdf = np.cumsum(probs / np.where(totals > 0, totals, 1.0), axis=1)
    cdf[:, -1] = 1.0
    np.minimum(cdf, 1.0, out=cdf)
    return (cdf + np.arange(len(probs))[:, None]).ravel()


def _draw(flat_cdf: np.ndarray, width: int, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sample a column index for each ``rows[i]`` from its row of ``flat_cdf`` (u in [0, 1))."""
    rows = rows.astype(np.int64, copy=False)
    found = np.searchsorted(flat_cdf, rows + u, side="right")
    return np.minimum(found - rows * width, width - 1)


def _draw_by_group(rng: np.random.Generator, probs: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return _draw(_row_cdf(probs), probs.shape[1], groups, rng.random(len(groups)))


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class _Calendar:
    """Cumulative order intensity on an hourly grid (in 'effective days'), one per curve."""

    edges: np.ndarray  # bin edges in days since start
    cum: np.ndarray  # shape (curves, bins + 1); curve 0 general, curve 1 gifts
    days: int

    def integral(self, curve: int, t_days: np.ndarray) -> np.ndarray:
        return np.interp(t_days, self.edges, self.cum[curve])

    def invert(self, curve: int, level: np.ndarray) -> np.ndarray:
        return np.interp(level, self.cum[curve], self.edges)


def _bump(doy: np.ndarray, center: float, width: float) -> np.ndarray:
    dist = np.abs(doy - center)
    dist = np.minimum(dist, 365.25 - dist)
    return np.exp(-0.5 * (dist / width) ** 2)


def _calendar(settings: GenerateSettings) -> _Calendar:
    dates = np.datetime64(settings.start, "D") + np.arange(settings.days)
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64).astype(float)
    weekday = _WEEKDAY[(dates.astype(np.int64) + 3) % 7]  # 1970-01-01 was a Thursday
    general = (1 + 1.0 * _bump(doy, 348, 14) + 0.6 * _bump(doy, 329, 3)
               - 0.15 * _bump(doy, 205, 25)) * weekday
    gifts = (0.12 + 5.0 * _bump(doy, 344, 16) + 1.2 * _bump(doy, 44, 4)
             + 0.6 * _bump(doy, 130, 5)) * weekday
    hours = np.arange(24) + 0.5
    hour = (0.04 + np.exp(-0.5 * ((hours - 12.5) / 2.0) ** 2)
            + 1.3 * np.exp(-0.5 * ((hours - 20.0) / 1.8) ** 2))
    hour = hour / hour.sum()
    cums = []
    for daily in (general, gifts):
        daily = daily / daily.mean()
        per_bin = (daily[:, None] * hour[None, :]).ravel()
        cums.append(np.concatenate([[0.0], np.cumsum(per_bin)]))
    edges = np.arange(settings.days * 24 + 1) / 24.0
    return _Calendar(edges=edges, cum=np.vstack(cums), days=settings.days)
