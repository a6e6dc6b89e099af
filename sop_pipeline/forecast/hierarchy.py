"""Family and total forecasts with their own bands.

Quantiles do not add: the sum of SKU p90s is far above the family's p90, because SKU errors
partly cancel when they are added up. So the family (and the total, family ``ALL``) gets:

* **p50 = the sum of its SKUs' p50** (coherent: the family plan is the SKUs' plan), and
* **p10/p90 from the family's own backtest errors**: each SKU's published backtest forecast
  (nested, see `selection`) and actual are added up per family, origin and step, and the
  family's errors are normalised by the family's seasonal-naive scale and pooled over every
  family and the total. A company has a handful of families, so there are a few dozen points
  per step, too few for per-step quantiles (the conformal correction alone would push a p90 to
  the largest error seen): the step's effect is taken as a power law h**b, b fitted on the mean
  absolute error per step, and one pair of quantiles is taken over all points divided by
  h**b. The coverage reported is leave-one-origin-out, like the SKU level's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sop_pipeline.forecast.intervals import _band, _beyond_backtest
from sop_pipeline.forecast.panel import _mase_scale
from sop_pipeline.settings.forecast import ForecastSettings

TOTAL = "ALL"


@dataclass(frozen=True)
class FamilyForecast:
    """`forecast`: family, month, p10, p50, p90 (family ALL = every SKU). `backtest`: family,
    origin, horizon_step, skus, actual, forecast and the leave-one-origin-out p10/p90 around it.
    `coverage`: share of those backtest actuals inside their band."""

    forecast: pl.DataFrame
    backtest: pl.DataFrame
    coverage: float


def _with_total(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([frame, frame.with_columns(pl.lit(TOTAL).alias("family"))])


def family_forecast(
    sku_forecast: pl.DataFrame,
    published_backtest: pl.DataFrame,
    history: pl.DataFrame,
    families: pl.DataFrame,
    settings: ForecastSettings,
) -> FamilyForecast:
    """Family and total forecast around the sum of the SKU p50s.

    `sku_forecast` (sku, month, p50) is the statistical forecast as published (lifecycle
    applied); `published_backtest` (sku, origin, horizon_step, actual, forecast) the published
    forecast's backtest; `history` (sku, month, quantity) the sales the family scale is measured
    on; `families` (sku, family) the mapping."""
    fam = families.select(pl.col("sku").cast(pl.String), pl.col("family").cast(pl.String)).unique("sku", keep="first")
    point = (
        _with_total(sku_forecast.select("sku", "month", "p50").join(fam, on="sku", how="inner"))
        .group_by("family", "month")
        .agg(pl.col("p50").sum())
        .sort("family", "month")
    )
    names = point["family"].unique().sort().to_list()
    bt = (
        _with_total(published_backtest.filter(pl.col("actual").is_finite() & pl.col("forecast").is_finite()).join(fam, on="sku"))
        .group_by("family", "origin", "horizon_step")
        .agg(pl.len().alias("skus"), pl.col("actual").sum(), pl.col("forecast").sum())
        .filter(pl.col("family").is_in(names))
        .sort("family", "origin", "horizon_step")
    )
    scale = _family_scales(history, fam, names, int(settings.season_length))
    H = point.group_by("family").len()["len"].max() if point.height else 0
    lo, hi = _pooled_widths(bt, scale, settings, int(H or 0))

    # the forecast: p50 per family and month, the band in the family's scale units by step
    step = pl.col("month").rank("dense").over("family").cast(pl.Int64) - 1
    fc = point.with_columns(step.alias("_h")).join(scale, on="family")
    h = fc["_h"].to_numpy()
    p10, p90 = _band(fc["p50"].to_numpy(), fc["scale"].to_numpy(), lo[h], hi[h])
    forecast = fc.select("family", "month", pl.Series("p10", p10), "p50", pl.Series("p90", p90))

    backtest, coverage = _left_out_bands(bt, scale, settings, int(H or 0), (lo, hi))
    return FamilyForecast(forecast=forecast, backtest=backtest, coverage=coverage)


def _family_scales(history: pl.DataFrame, fam: pl.DataFrame, names: list[str], m: int) -> pl.DataFrame:
    """Each family's (and the total's) MASE scale: in-sample seasonal-naive MAE of its monthly
    sales, the unit its errors are pooled in."""
    monthly = (
        _with_total(history.select(pl.col("sku").cast(pl.String), "month", pl.col("quantity").cast(pl.Float64)).join(fam, on="sku"))
        .group_by("family", "month")
        .agg(pl.col("quantity").sum())
        .sort("family", "month")
        .group_by("family", maintain_order=True)
        .agg(pl.col("quantity"))
    )
    have = {r["family"]: _mase_scale(np.asarray(r["quantity"], dtype=float), m) for r in monthly.iter_rows(named=True)}
    return pl.DataFrame(
        {"family": names, "scale": [float(have.get(nm, 0.0)) for nm in names]}, schema={"family": pl.String, "scale": pl.Float64}
    )


def _residuals(bt: pl.DataFrame, scale: pl.DataFrame) -> pl.DataFrame:
    return bt.join(scale, on="family").with_columns(
        ((pl.col("actual") - pl.col("forecast")) / pl.when(pl.col("scale") > 0).then(pl.col("scale")).otherwise(1.0)).alias("r")
    )


def _widths(r: np.ndarray, step: np.ndarray, settings: ForecastSettings, H: int) -> tuple[np.ndarray, np.ndarray]:
    """Low and high quantile curves (scale units) for steps 1..H: q * h**b, b from the mean
    absolute error per step (log-log slope, clipped to [0, 1])."""
    hs = np.arange(1, H + 1, dtype=float)
    ok = np.isfinite(r)
    r, step = r[ok], step[ok].astype(float)
    if r.size == 0:
        return np.zeros(H), np.zeros(H)
    b = float(settings.quantiles.default_exponent)
    steps = np.unique(step)
    mae = np.array([np.mean(np.abs(r[step == s])) for s in steps])
    if steps.size >= 3 and np.all(mae > 0):
        x, y = np.log(steps), np.log(mae)
        var = np.var(x)
        b = float(np.clip(np.mean((x - x.mean()) * (y - y.mean())) / var, 0.0, 1.0)) if var > 0 else b
    z = r / step**b
    lo = min(float(np.quantile(z, settings.quantiles.low)), 0.0)
    hi = max(float(np.quantile(z, settings.quantiles.high)), 0.0)
    last = int(np.max(step))
    return -_beyond_backtest(-lo * hs**b, last, settings), _beyond_backtest(hi * hs**b, last, settings)


def _pooled_widths(bt: pl.DataFrame, scale: pl.DataFrame, settings: ForecastSettings, H: int) -> tuple[np.ndarray, np.ndarray]:
    res = _residuals(bt, scale)
    return _widths(res["r"].to_numpy(), res["horizon_step"].to_numpy(), settings, max(H, 1))


def _left_out_bands(
    bt: pl.DataFrame, scale: pl.DataFrame, settings: ForecastSettings, H: int, full: tuple[np.ndarray, np.ndarray]
) -> tuple[pl.DataFrame, float]:
    """Every family backtest point with the band fitted without its origin (the full fit when
    the rest is too thin), and the share of actuals inside."""
    res = _residuals(bt, scale)
    out = []
    width = max(H, int(res["horizon_step"].max() or 1) if res.height else 1)
    for origin in res["origin"].unique().sort().to_list():
        test = res.filter(pl.col("origin") == origin)
        train = res.filter(pl.col("origin") != origin)
        lo, hi = (
            _widths(train["r"].to_numpy(), train["horizon_step"].to_numpy(), settings, width)
            if train.height >= settings.quantiles.min_points
            else full
        )
        if lo.shape[0] < width:
            lo, hi = np.resize(lo, width), np.resize(hi, width)
        s_ = test["horizon_step"].to_numpy() - 1
        p10, p90 = _band(test["forecast"].to_numpy(), test["scale"].to_numpy(), lo[s_], hi[s_])
        out.append(test.with_columns(pl.Series("p10", p10), pl.Series("p90", p90)))
    schema = {
        "family": pl.String,
        "origin": pl.Date,
        "horizon_step": pl.Int32,
        "skus": pl.Int64,
        "actual": pl.Float64,
        "forecast": pl.Float64,
        "p10": pl.Float64,
        "p90": pl.Float64,
    }
    if not out:
        return pl.DataFrame(schema=schema), float("nan")
    frame = pl.concat(out).select(list(schema)).cast(schema).sort("family", "origin", "horizon_step")
    inside = (frame["actual"] >= frame["p10"] - 1e-9) & (frame["actual"] <= frame["p90"] + 1e-9)
    return frame, float(inside.mean())
