"""The two macro series of the demo company, drawn before demand because demand answers them.

Both run over the history and the horizon (the forecast may use them as covariates); each
family's sensitivity to them is drawn with the family (see `families.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sop_pipeline.demo.months import Window, month_column


@dataclass(frozen=True)
class Indicators:
    consumer_confidence: np.ndarray  # over model time, rounded as written
    industrial_production: np.ndarray


def draw_indicators(rng: np.random.Generator, window: Window) -> Indicators:
    """A consumer-confidence index with a soft dip early in the history and a slowly growing
    industrial-production index: smooth AR(1) noise so that they carry real signal for a
    covariate model instead of being decoration."""
    T, H = window.length, window.history
    eps = rng.normal(size=(2, T + 3))
    ar = np.zeros((2, T + 3))
    for t in range(1, T + 3):  # T is ~72: a loop over months only
        ar[:, t] = 0.85 * ar[:, t - 1] + eps[:, t]
    smooth = (ar[:, 1:-2] + ar[:, 2:-1] + ar[:, 3:]) / 3  # 3-month moving average
    t = np.arange(T, dtype=float)
    cc = 100 + 1.6 * smooth[0] - 5.0 * np.exp(-0.5 * ((t - H / 8) / (H / 10)) ** 2) + 0.03 * (t - H)
    ip = 100 * np.exp(0.0015 * (t - H) + 0.006 * smooth[1])
    return Indicators(np.round(cc, 2), np.round(ip, 2))


def indicators_frame(window: Window, ind: Indicators) -> pl.DataFrame:
    """Long format, month-major: one row per month and series."""
    T = window.length
    months_all = np.repeat(np.arange(T), 2)
    return pl.DataFrame(
        {
            "month": month_column(window.first + months_all),
            "indicator": ["consumer_confidence", "industrial_production"] * T,
            "value": np.stack([ind.consumer_confidence, ind.industrial_production], axis=1).ravel(),
        }
    )
