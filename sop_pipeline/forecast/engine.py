"""`forecast_demand`: the stages of one statistical forecast, in order.

prepare the panel -> fit every candidate -> add the ensemble -> select per SKU -> calibrate
the quantiles -> build the frames. Each stage takes and returns arrays (SKU x model x origin x
step) in small dataclasses; the idea behind them is in the package docstring."""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from sop_pipeline.forecast.backtest import _Backtest, _backtest
from sop_pipeline.forecast.global_model import _run_global
from sop_pipeline.forecast.intervals import _calibrate
from sop_pipeline.forecast.local_models import _local_fits, _seasonal_naive, _silenced
from sop_pipeline.forecast.panel import _month_index, _Panel, _prepare, _Profile, _profile
from sop_pipeline.forecast.result import ForecastResult, _result
from sop_pipeline.forecast.selection import _select, _with_ensemble
from sop_pipeline.settings.forecast import ForecastSettings
from sop_pipeline.settings.product import SegmentationSettings


def forecast_demand(
    history: pl.DataFrame,
    cycle_month: _dt.date,
    settings: ForecastSettings,
    horizon: int,
    future_prices: pl.DataFrame | None = None,
    indicators: pl.DataFrame | None = None,
    intermittent: pl.DataFrame | None = None,
    segmentation: SegmentationSettings | None = None,
) -> ForecastResult:
    """Statistical forecast with backtest-based choice and calibrated p10/p50/p90 per SKU.

    `history` holds sku, month (Date, first of month), quantity, net_price, promotion, one row
    per SKU and month, zero-filled from each SKU's first sale to the month before
    `cycle_month`. The forecast covers `horizon` months (the planning calendar's) from
    `cycle_month`. `intermittent` (sku, intermittent) is the product review's segmentation;
    without it the same rule runs on the history with `segmentation`'s cut-offs.
    """
    t_start = time.perf_counter()
    c = _month_index(cycle_month)
    panel = _prepare(history, c, int(horizon), future_prices, indicators)
    geo = _backtest(panel, c, settings, horizon)
    known = dict(intermittent.select("sku", "intermittent").iter_rows()) if intermittent is not None else None
    prof = _profile(panel, settings, segmentation or SegmentationSettings(), known)
    fits = _fit_candidates(panel, geo, prof, settings)
    cands = _with_ensemble(fits.final, fits.bt, fits.usable, settings, geo.act, prof.scale, geo.origins)
    choice = _select(cands, geo.act, prof, settings, geo.origins)
    bands = _calibrate(choice.point, choice.bt, geo.act, prof.scale, prof.segment, settings)
    result = _result(panel.skus, geo, prof, cands, choice, bands, settings, {"models": fits.seconds, "global_models": fits.seconds_global})
    result.metrics["seconds_total"] = round(time.perf_counter() - t_start, 3)
    return result


@dataclass(frozen=True)
class _Fits:
    """Every candidate on every SKU: NaN where it did not run, failed or lacks history."""

    final: np.ndarray  # J x n_sku x H, non-negative
    bt: np.ndarray  # J x n_sku x B x S, non-negative
    usable: np.ndarray  # J x n_sku: a finite forecast from enough history
    seconds: float  # fitting every candidate
    seconds_global: float  # of which the global models


def _fit_candidates(panel: _Panel, geo: _Backtest, prof: _Profile, settings: ForecastSettings) -> _Fits:
    """Fit each candidate where its segment (or `score_all_segments`) says so. Local models go
    to worker processes first; the parent computes the vectorised baseline and the global
    model meanwhile, then collects."""
    t_fit = time.perf_counter()
    t_global = 0.0
    specs = list(settings.candidate_list)
    n, H, S, B = len(panel.ys), geo.H, geo.S, geo.origins.shape[0]
    m = int(settings.season_length)
    final = np.full((len(specs), n, H), np.nan)
    bt = np.full((len(specs), n, B, S), np.nan)
    run = np.array([(prof.segment == s.segment) | settings.backtest.all_segments for s in specs]).reshape(len(specs), n)
    local_j = [j for j, s in enumerate(specs) if not s.is_global and s.model != "NaiveSeasonal"]
    with _local_fits([specs[j] for j in local_j], panel.ys, geo.lens, run[local_j], H, S, settings) as collect:
        for j, s in enumerate(specs):
            if s.model == "NaiveSeasonal":
                final[j], bt[j] = _seasonal_naive(panel.ys, geo.lens, int(s.params.get("K", m)), s.min_history, H, S)
            elif s.is_global:
                t_g = time.perf_counter()
                with _silenced():
                    final[j], bt[j] = _run_global(s, panel, geo.c, geo.origins, H, S, m, settings.execution.random_state)
                t_global += time.perf_counter() - t_g
        final[local_j], bt[local_j] = collect()
    final = np.where(run[:, :, None], final, np.nan)
    bt = np.where(run[:, :, None, None], bt, np.nan)
    t_models = time.perf_counter() - t_fit

    # a candidate is usable for a SKU when it produced a finite, non-absurd forecast
    final = np.where(np.isfinite(final), final, np.nan)
    usable = np.all(np.isfinite(final), axis=2) & (prof.nobs[None, :] >= np.array([s.min_history for s in specs])[:, None])
    return _Fits(
        final=np.where(usable[:, :, None], np.maximum(final, 0.0), np.nan),
        bt=np.where(usable[:, :, None, None], np.maximum(bt, 0.0), np.nan),
        usable=usable,
        seconds=t_models,
        seconds_global=t_global,
    )
