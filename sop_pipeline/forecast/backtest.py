"""The rolling-origin backtest: where the history is cut, the actuals each cut is scored
against, and the error measures (per SKU for selection, overall for the report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sop_pipeline.forecast.panel import _Panel, _right_aligned
from sop_pipeline.settings.forecast import ForecastSettings


@dataclass(frozen=True)
class _Backtest:
    """The backtest's geometry on the absolute month axis, and its actuals."""

    c: int  # the cycle month: first forecast month
    H: int  # forecast horizon
    S: int  # steps scored per origin
    origins: np.ndarray  # B origins, earliest first: the first month each backtest forecasts
    lens: np.ndarray  # n_sku x B: months of history before each origin
    act: np.ndarray  # n_sku x B x S: actual sales (NaN where the SKU or the month is missing)


def _backtest(panel: _Panel, c: int, settings: ForecastSettings, horizon: int) -> _Backtest:
    """Origins every `spacing` months before the cycle; a SKU is scored at an origin once it
    has history before it, on the months up to the cycle."""
    H = int(horizon)
    S = int(min(settings.backtest.max_step, H))
    origins = np.array([c - settings.backtest.spacing * k for k in range(settings.backtest.origins, 0, -1)], dtype=np.int64)
    lens = origins[None, :] - panel.start[:, None]
    Y, _ = _right_aligned(panel.ys)  # every SKU's history ends at month c - 1
    cols = origins[:, None] + np.arange(S)[None, :]  # B x S absolute months
    ok = (cols < c)[None, :, :] & (lens > 0)[:, :, None]
    if Y.size:
        act = np.where(ok, Y[:, np.clip(cols - (c - Y.shape[1]), 0, Y.shape[1] - 1)], np.nan)
    else:
        act = np.full(ok.shape, np.nan)
    return _Backtest(c=c, H=H, S=S, origins=origins, lens=lens, act=act)


def _errors(fc: np.ndarray, act: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Per-SKU error measures over the backtest points where both exist. fc/act: (..., n_sku, B, S)."""
    ok = np.isfinite(fc) & np.isfinite(act)
    e = np.where(ok, fc - act, 0.0)
    a = np.where(ok, act, 0.0)
    cnt = ok.sum(axis=(-1, -2))
    sae = np.abs(e).sum(axis=(-1, -2))
    sa = np.abs(a).sum(axis=(-1, -2))
    den = np.abs(np.where(ok, fc, 0.0)) + np.abs(a)
    sm = np.where(ok & (den > 0), 200 * np.abs(e) / np.where(den > 0, den, 1), 0.0).sum(axis=(-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "n": cnt,
            "wape": np.where((cnt > 0) & (sa > 0), sae / sa, np.where(cnt > 0, np.where(sae > 0, np.inf, 0.0), np.nan)),
            "mase": np.where(
                (cnt > 0) & (scale > 0),
                sae / np.maximum(cnt, 1) / np.where(scale > 0, scale, 1),
                np.where(cnt > 0, np.where(sae > 0, np.inf, 0.0), np.nan),
            ),
            "smape": np.where(cnt > 0, sm / np.maximum(cnt, 1), np.nan),
            "bias": np.where((cnt > 0) & (sa > 0), e.sum(axis=(-1, -2)) / np.where(sa > 0, sa, 1), np.nan),
        }
    return out


def _summary(chosen: np.ndarray, snaive: np.ndarray | None, act: np.ndarray, scale: np.ndarray, regular: np.ndarray) -> dict[str, Any]:
    """Overall backtest accuracy of the published forecast against seasonal naive, on the
    points both have: WAPE (volume-weighted), MASE (mean of per-SKU MASE, m = season length)
    and sMAPE (M-competition). sMAPE is taken over regular SKUs only: on a month with zero
    sales any non-zero forecast scores the maximum 200, which says nothing about a slow mover's
    rate forecast."""
    ok = np.isfinite(chosen) & np.isfinite(act)
    if snaive is not None:
        ok &= np.isfinite(snaive)
    out: dict[str, Any] = {"backtest_points": int(ok.sum())}
    for nm, f in (("chosen", chosen), ("seasonal_naive", snaive)):
        if f is None:
            continue
        e = _errors(np.where(ok, f, np.nan), np.where(ok, act, np.nan), scale)
        a = np.abs(np.where(ok, act, 0)).sum()
        sae = np.abs(np.where(ok, f - act, 0)).sum()
        okr = ok & regular[:, None, None]
        den = np.abs(f) + np.abs(act)
        sm = np.where(okr & (den > 0), 200 * np.abs(f - act) / np.where(okr & (den > 0), den, 1), 0.0)
        mase = e["mase"][np.isfinite(e["mase"])]
        out[f"{nm}_wape"] = float(sae / a) if a > 0 else float("nan")
        out[f"{nm}_mase"] = float(mase.mean()) if mase.size else float("nan")
        out[f"{nm}_smape"] = float(sm.sum() / okr.sum()) if okr.any() else float("nan")
    return out
