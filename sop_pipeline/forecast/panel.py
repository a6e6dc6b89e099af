"""The SKU panel: the long history frame turned into per-SKU arrays on one absolute month axis
(month index = year * 12 + month - 1), with the covariates the global model reads and the
per-SKU facts (length, sales share, segment, MASE scale) the later stages need."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from sop_pipeline.rules import intermittent_flags
from sop_pipeline.settings.forecast import INTERMITTENT, REGULAR, ForecastSettings
from sop_pipeline.settings.product import SegmentationSettings


@dataclass
class _Panel:
    """History as arrays: one row per SKU, aligned on absolute month index."""

    skus: list[str]
    start: np.ndarray  # absolute month index of each SKU's first month
    ys: list[np.ndarray]  # each SKU's sales from its first month to the month before the cycle
    price: np.ndarray | None  # n_sku x (T + H) log price relative to the last season's; None if no prices
    promo: np.ndarray | None  # n_sku x (T + H) promotion share; None if never promoted
    t0: int  # absolute index of column 0 in price/promo
    indicators: np.ndarray | None  # (T + H) x k, standardised


# ---------------------------------------------------------------------------------------------
# months


def _month_index(d: _dt.date) -> int:
    return d.year * 12 + d.month - 1


def _month_index_expr() -> pl.Expr:
    """`_month_index` of a frame's Date column `month`, as column `m`."""
    return (pl.col("month").dt.year().cast(pl.Int64) * 12 + pl.col("month").dt.month().cast(pl.Int64) - 1).alias("m")


def _index_to_date(idx: np.ndarray) -> pl.Series:
    idx = np.asarray(idx, dtype=np.int64)
    return pl.select(pl.date(pl.lit(pl.Series(idx // 12)), pl.lit(pl.Series(idx % 12 + 1)), 1)).to_series()


# ---------------------------------------------------------------------------------------------
# preparation


def _prepare(history: pl.DataFrame, c: int, H: int, future_prices: pl.DataFrame | None, indicators: pl.DataFrame | None) -> _Panel:
    """Turn the long history into per-SKU arrays. Missing months inside a SKU's span (the
    caller zero-fills, this is a safety net) count as zero sales, as the contract says."""
    h = (
        history.select(
            pl.col("sku").cast(pl.String),
            _month_index_expr(),
            pl.col("quantity").cast(pl.Float64).fill_null(0.0).fill_nan(0.0).clip(lower_bound=0.0),
            (pl.col("net_price").cast(pl.Float64) if "net_price" in history.columns else pl.lit(None, pl.Float64)).alias("net_price"),
            (pl.col("promotion").cast(pl.Float64) if "promotion" in history.columns else pl.lit(0.0)).fill_null(0.0).alias("promotion"),
        )
        .filter(pl.col("m") < c)
        .sort("sku", "m")
    )
    skus_s = h.get_column("sku").unique(maintain_order=True)
    n = skus_s.len()
    code = _sku_codes(h, skus_s)
    m = h.get_column("m").to_numpy()
    start = np.full(n, c, dtype=np.int64)
    np.minimum.at(start, code, m)
    t0 = int(start.min()) if n else c
    T = c - t0
    Y = np.zeros((n, T))
    Y[code, m - t0] = h.get_column("quantity").to_numpy()
    ys = [Y[i, start[i] - t0 :].copy() for i in range(n)]
    promo = np.zeros((n, T + H))
    promo[code, m - t0] = np.clip(h.get_column("promotion").to_numpy(), 0.0, 1.0)
    P = np.full((n, T + H), np.nan)
    P[code, m - t0] = h.get_column("net_price").fill_nan(None).to_numpy()
    P[~(P > 0)] = np.nan
    price = _relative_price(P, promo, T, _planned_prices(future_prices, skus_s, c, H, t0))
    return _Panel(
        skus=skus_s.to_list(),
        start=start,
        ys=ys,
        price=price,
        promo=promo if promo.any() else None,
        t0=t0,
        indicators=_indicator_matrix(indicators, t0, T, H),
    )


def _sku_codes(frame: pl.DataFrame, skus: pl.Series) -> np.ndarray:
    """Row number in the panel of each row's SKU."""
    return frame.get_column("sku").cast(pl.Enum(skus)).to_physical().to_numpy().astype(np.int64)


def _planned_prices(
    future_prices: pl.DataFrame | None, skus: pl.Series, c: int, H: int, t0: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The price plan's positive horizon prices of panel SKUs as (row, column, price)."""
    if future_prices is None or not future_prices.height:
        return None
    fp = future_prices.select(
        pl.col("sku").cast(pl.String),
        _month_index_expr(),
        pl.col("net_price").cast(pl.Float64),
    ).filter(pl.col("sku").is_in(skus.implode()) & (pl.col("m") >= c) & (pl.col("m") < c + H) & (pl.col("net_price") > 0))
    return _sku_codes(fp, skus), fp.get_column("m").to_numpy() - t0, fp.get_column("net_price").to_numpy()


def _relative_price(
    P: np.ndarray, promo: np.ndarray, T: int, planned: tuple[np.ndarray, np.ndarray, np.ndarray] | None
) -> np.ndarray | None:
    """Log price relative to the last season's, carried forward/back over gaps and held flat
    into the horizon unless the plan says otherwise; None when there is no price signal.
    `P` (n x (T + H)) holds the positive history prices, NaN elsewhere; it is filled in place."""
    if not np.isfinite(P).any():
        return None
    n = P.shape[0]
    # Without a price plan the future price is the last *regular* price: a promotion in the
    # last month must not be extrapolated as a permanent discount.
    regular = np.where(promo[:, :T] < 0.5, P[:, :T], np.nan)
    flat = _ffill(regular)[:, -1] if T else np.full(n, np.nan)
    flat = np.where(np.isfinite(flat), flat, _ffill(P[:, :T])[:, -1] if T else np.nan)
    P[:, T:] = flat[:, None]
    if planned is not None:
        rows, cols, values = planned
        P[rows, cols] = values
    Pf = _bfill(_ffill(P))
    # Relative to the geometric mean of the last season's prices: the same window the
    # global model's level normalisation uses, so price and level speak of the same base.
    with np.errstate(invalid="ignore", divide="ignore"):
        lp = np.log(Pf)
        ref = np.nanmean(lp[:, max(0, T - 12) : T], axis=1) if T else np.zeros(n)
        price = np.nan_to_num(lp - ref[:, None], nan=0.0, posinf=0.0, neginf=0.0)
    return price if np.any(price != 0) else None


def _indicator_matrix(indicators: pl.DataFrame | None, t0: int, T: int, H: int) -> np.ndarray | None:
    """Economic indicators as a (T + H) x k matrix from column t0, one column per indicator
    (sorted by name), gaps carried forward/back, standardised on the history months."""
    if indicators is None or not indicators.height:
        return None
    iv = indicators.select(
        _month_index_expr(),
        pl.col("indicator").cast(pl.String),
        pl.col("value").cast(pl.Float64),
    )
    names = sorted(iv.get_column("indicator").unique().to_list())
    ind = np.full((T + H, len(names)), np.nan)
    for k, nm in enumerate(names):  # indicators are few: a loop over names only
        sub = iv.filter(pl.col("indicator") == nm)
        mm = sub.get_column("m").to_numpy() - t0
        ok = (mm >= 0) & (mm < T + H)
        ind[mm[ok], k] = sub.get_column("value").to_numpy()[ok]
    ind = _bfill(_ffill(ind.T)).T
    hist = ind[:T]
    mu = np.nanmean(hist, axis=0) if T else np.zeros(len(names))
    sd = np.nanstd(hist, axis=0) if T else np.ones(len(names))
    return np.nan_to_num((ind - mu) / np.where(sd > 0, sd, 1.0))


def _ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along axis 1."""
    if a.size == 0:
        return a
    mask = np.isfinite(a)
    idx = np.where(mask, np.arange(a.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = a[np.arange(a.shape[0])[:, None], idx]
    out[~np.maximum.accumulate(mask, axis=1)] = np.nan
    return out


def _bfill(a: np.ndarray) -> np.ndarray:
    return _ffill(a[:, ::-1])[:, ::-1]


def _right_aligned(ys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Series of different lengths as one matrix, each ending in the last column, NaN before
    its start, and the lengths: per-SKU look-ups (actuals, seasonal naive) become one index."""
    lens = np.fromiter((y.shape[0] for y in ys), dtype=np.int64, count=len(ys))
    width = int(lens.max()) if lens.size else 0
    out = np.full((len(ys), width), np.nan)
    total = int(lens.sum())
    if total:
        rows = np.repeat(np.arange(len(ys)), lens)
        cols = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(width - lens, lens)
        out[rows, cols] = np.concatenate(ys)
    return out, lens


# ---------------------------------------------------------------------------------------------
# per-SKU facts


def _mase_scale(y: np.ndarray, m: int) -> float:
    """In-sample MAE of the seasonal naive forecast: the yardstick of MASE, and the unit in
    which backtest errors are pooled across SKUs of very different sizes."""
    if y.shape[0] > m:
        s = float(np.mean(np.abs(y[m:] - y[:-m])))
    elif y.shape[0] > 1:
        s = float(np.mean(np.abs(np.diff(y))))
    else:
        s = float(np.abs(y).mean()) if y.size else 0.0
    if s <= 0:  # constant series: fall back to a share of the level so intervals are not empty
        s = 0.1 * float(np.abs(y).mean()) if y.size else 0.0
    return s


@dataclass(frozen=True)
class _Profile:
    """What is known of each SKU before any model runs."""

    nobs: np.ndarray  # months of history
    share: np.ndarray  # share of those months with sales
    intermittent: np.ndarray  # bool: in the intermittent segment
    segment: np.ndarray  # REGULAR | INTERMITTENT
    has_intermittent_method: bool  # some candidate serves the intermittent segment
    scale: np.ndarray  # MASE scale: the unit of normalised errors
    recent_mean: np.ndarray  # mean of the last three months: the level when no model can fit


def _profile(
    panel: _Panel, settings: ForecastSettings, segmentation: SegmentationSettings, known: dict[str, bool] | None = None
) -> _Profile:
    Y, nobs = _right_aligned(panel.ys)
    nonzero = np.count_nonzero(np.isfinite(Y) & (Y != 0), axis=1).astype(np.int64)
    share = np.where(nobs > 0, nonzero / np.maximum(nobs, 1), 0.0)
    has_int = np.bool_(any(s.segment == INTERMITTENT for s in settings.candidate_list))
    # Intermittent is the segmentation's rule (sop_pipeline.rules): the product review's flag
    # when it is given, else the same rule on the last `window_months` of history.
    window = Y[:, -segmentation.window_months :] if Y.shape[1] else Y
    in_window = np.isfinite(window).sum(axis=1)
    flags = intermittent_flags(
        in_window,
        np.count_nonzero(np.isfinite(window) & (window != 0), axis=1),
        segmentation.intermittent_adi,
        segmentation.min_history_months,
    )
    if known is not None:
        flags = np.array([known.get(sku, bool(f)) for sku, f in zip(panel.skus, flags)], dtype=bool)
    intermittent = has_int & flags
    recent = np.nanmean(Y[:, -3:], axis=1) if Y.shape[1] else np.zeros(len(panel.ys))
    return _Profile(
        nobs=nobs,
        share=share,
        intermittent=intermittent,
        segment=np.where(intermittent, INTERMITTENT, REGULAR),
        has_intermittent_method=bool(has_int),
        scale=np.array([_mase_scale(y, int(settings.season_length)) for y in panel.ys]),
        recent_mean=recent,
    )
