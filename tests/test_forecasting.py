"""The statistical forecast engine (sop_pipeline.forecast) on small synthetic panels.

The panels mimic the demo company (seasonal families, trends, price steps, promotions,
lognormal noise, a tail of intermittent slow movers) but are built here, so the tests pin the
engine's rules, not the generator's. Few SKUs and origins keep the whole file fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sop_pipeline.forecast import forecast_demand
from sop_pipeline.forecast.local_models import _seasonal_naive
from sop_pipeline.forecast.selection import ENSEMBLE, PUBLISHED
from sop_pipeline.settings import SettingsError, load_settings
from sop_pipeline.settings.forecast import ForecastSettings

ROOT = Path(__file__).resolve().parents[1]
CYCLE = dt.date(2026, 11, 1)
C = CYCLE.year * 12 + CYCLE.month - 1
H = 24


def _months(idx: np.ndarray) -> pl.Series:
    idx = np.asarray(idx, dtype=np.int64)
    return pl.select(pl.date(pl.lit(pl.Series(idx // 12)), pl.lit(pl.Series(idx % 12 + 1)), 1)).to_series()


def _frame(
    series: dict[str, np.ndarray], prices: dict[str, np.ndarray] | None = None, promos: dict[str, np.ndarray] | None = None
) -> pl.DataFrame:
    """History frame in the caller's contract: one row per SKU and month up to the month
    before the cycle, zero-filled."""
    rows = []
    for sku, y in series.items():
        n = len(y)
        rows.append(
            pl.DataFrame(
                {
                    "sku": [sku] * n,
                    "month": _months(np.arange(C - n, C)),
                    "quantity": np.asarray(y, dtype=float),
                    "net_price": (prices or {}).get(sku, np.full(n, 10.0)),
                    "promotion": (promos or {}).get(sku, np.zeros(n)),
                }
            )
        )
    return pl.concat(rows)


def demo_like_panel(n: int = 40, months: int = 48, seed: int = 3) -> pl.DataFrame:
    """Seasonal families with trend, price steps, promotions and noise; ~15% intermittent."""
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    moy = (C - months + t) % 12
    shapes = np.stack(
        [
            1 + 0.8 * np.exp(-0.5 * ((moy - 6) / 1.3) ** 2),
            1 + 0.9 * np.exp(-0.5 * (np.minimum(np.abs(moy - 11), 12 - np.abs(moy - 11)) / 1.4) ** 2),
            np.ones(months) + 0.05 * np.sin(2 * np.pi * moy / 12),
            1 + 0.6 * np.exp(-0.5 * ((moy - 3) / 1.2) ** 2),
        ]
    )
    series, prices, promos = {}, {}, {}
    for i in range(n):
        sku = f"SKU-{i:03d}"
        if i % 7 == 6:  # slow mover: orders in a minority of months
            occurs = rng.random(months) < rng.uniform(0.15, 0.4)
            series[sku] = np.where(occurs, 1 + rng.poisson(2, months), 0).astype(float)
            continue
        base = np.exp(rng.uniform(np.log(20), np.log(2000)))
        trend = np.exp(rng.uniform(-0.08, 0.1) * (t - months) / 12)
        step = np.where(t >= rng.integers(8, months - 8), 1.06, 1.0)  # a price increase
        price = 10 * step
        promo = np.where(rng.random(months) < 0.1, rng.uniform(0.3, 1.0, months), 0.0)
        noise = np.exp(rng.normal(0, rng.uniform(0.08, 0.25), months))
        y = base * shapes[i % 4] * trend * step**-1.3 * (1 + 0.6 * promo) * noise
        series[sku], prices[sku], promos[sku] = np.round(y), price, promo
    return _frame(series, prices, promos)


def small_settings(n_jobs: int | None = None) -> ForecastSettings:
    """Company candidates with a lighter backtest (3 origins) so a test run takes seconds."""
    s = load_settings(ROOT / "models").forecast
    update = {"backtest": s.backtest.model_copy(update={"origins": 3, "spacing": 4})}
    if n_jobs is not None:
        update["execution"] = s.execution.model_copy(update={"n_jobs": n_jobs})
    return s.model_copy(update=update)


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    return demo_like_panel()


@pytest.fixture(scope="module")
def result(panel):
    return forecast_demand(panel, CYCLE, small_settings(), H)


def test_forecast_is_complete_nonnegative_and_quantiles_ordered_for_every_sku_and_horizon_month(panel, result):
    fc = result.forecast
    months = _months(np.arange(C, C + H))
    expected = pl.DataFrame({"sku": panel["sku"].unique().sort()}).join(pl.DataFrame({"month": months}), how="cross")
    assert fc.select("sku", "month").sort("sku", "month").equals(expected.sort("sku", "month"))
    assert fc["month"].min() == CYCLE
    for col in ("p10", "p50", "p90"):
        assert fc[col].is_finite().all() and (fc[col] >= 0).all()
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all()
    assert fc["model"].null_count() == 0
    # the band is a band: most SKUs get a real interval, not a point
    assert (fc["p90"] > fc["p10"]).mean() > 0.9


def test_backtest_table_contains_every_candidate_per_sku(result):
    candidates = set(small_settings().candidates) | {ENSEMBLE, PUBLISHED}
    per_sku = result.backtest.group_by("sku").agg(pl.col("model").unique())
    assert per_sku.height == result.selection.height
    for models in per_sku["model"].to_list():
        assert set(models) == candidates
    errors = result.backtest_errors
    assert errors.height == result.selection.height * len(candidates)
    assert set(errors.columns) >= {"sku", "model", "n", "wape", "mase", "smape", "bias"}
    # the long table and the aggregate agree
    one = (
        result.backtest.filter(pl.col("model") == "ets")
        .group_by("sku")
        .agg(((pl.col("forecast") - pl.col("actual")).abs().sum() / pl.col("actual").sum()).alias("w"))
    )
    joined = one.join(errors.filter(pl.col("model") == "ets"), on="sku")
    assert np.allclose(joined["w"].to_numpy(), joined["wape"].to_numpy())
    assert set(result.backtest["horizon_step"].unique()) == set(range(1, 13))


def test_p10_p90_coverage_on_a_demo_like_set_is_near_80_percent(result):
    assert 0.65 <= result.coverage <= 0.95
    assert result.metrics["coverage_p10_p90"] == result.coverage
    # the published forecast beats seasonal naive on the backtest overall
    assert result.metrics["chosen_wape"] < result.metrics["seasonal_naive_wape"]
    assert result.metrics["chosen_mase"] < result.metrics["seasonal_naive_mase"]


def test_strongly_seasonal_sku_gets_a_model_that_beats_seasonal_naive_in_backtest():
    rng = np.random.default_rng(11)
    t = np.arange(60)
    season = 1 + 0.9 * np.sin(2 * np.pi * t / 12)
    series = {f"S{i}": np.round(300 * season * np.exp(rng.normal(0, 0.12, 60))) for i in range(24)}
    res = forecast_demand(_frame(series), CYCLE, small_settings(), H)
    sel = res.selection
    assert (sel["segment"] == "regular").all()
    chosen = sel["backtest_mase"].to_numpy()
    naive = sel["seasonal_naive_mase"].to_numpy()
    # one noisy year (seasonal naive) loses to models that average the season over five; on
    # the odd SKU where naive happened to win the backtest it may be published, no harm
    assert np.mean(chosen < naive) >= 0.75
    # regular SKUs publish the weighted ensemble (selection.method: ensemble)
    assert sel["model"].str.starts_with("ensemble:inverse_error(").all()
    assert res.metrics["chosen_mase"] < 0.85 * res.metrics["seasonal_naive_mase"]
    assert (sel["model"] != "seasonal_naive").mean() >= 0.75
    # and the published forecast keeps the season: summer peak well above the winter trough
    fc = res.forecast.filter(pl.col("sku") == "S0").sort("month")["p50"].to_numpy()
    assert fc.max() > 3 * max(fc.min(), 1.0)


def test_intermittent_and_all_zero_series_get_the_intermittent_method():
    rng = np.random.default_rng(5)
    series = {f"R{i}": np.round(200 + 20 * rng.normal(size=48)) for i in range(10)}
    series |= {f"I{i}": np.where(rng.random(48) < 0.2, rng.integers(1, 6, 48), 0).astype(float) for i in range(6)}
    series["ZERO"] = np.zeros(36)
    res = forecast_demand(_frame(series), CYCLE, small_settings(), H)
    sel = {r["sku"]: r for r in res.selection.iter_rows(named=True)}
    for sku in [f"I{i}" for i in range(6)] + ["ZERO"]:
        assert sel[sku]["segment"] == "intermittent"
        assert sel[sku]["model"] == "tsb"
    for i in range(10):
        assert sel[f"R{i}"]["segment"] == "regular" and sel[f"R{i}"]["model"] != "tsb"
    zero = res.forecast.filter(pl.col("sku") == "ZERO")
    assert (zero["p90"] == 0).all()
    slow = res.forecast.filter(pl.col("sku") == "I0")
    assert 0 < slow["p50"][0] < 3  # a rate: probability x size, not the last order


def test_short_series_still_get_a_forecast_from_simpler_candidates():
    rng = np.random.default_rng(2)
    series = {f"L{i}": np.round(100 + 10 * rng.normal(size=48)) for i in range(8)}
    series |= {"NEW4": np.array([30.0, 42.0, 38.0, 45.0]), "NEW15": np.round(80 + 5 * rng.normal(size=15)), "ONE": np.array([7.0])}
    res = forecast_demand(_frame(series), CYCLE, small_settings(), H)
    fc = res.forecast
    assert set(fc["sku"]) == set(series)
    assert fc.group_by("sku").len()["len"].to_list() == [24] * len(series)
    sel = {r["sku"]: r["model"] for r in res.selection.iter_rows(named=True)}
    # 15 months: enough for seasonal naive, ETS, Theta and the global model, not for CES (24)
    assert sel["NEW15"].startswith("ensemble:") and "ets" in sel["NEW15"] and "ces" not in sel["NEW15"]
    # 4 months and 1 month: no candidate has enough history, the recent mean stands in
    assert sel["NEW4"] == sel["ONE"] == "fallback:recent_mean"
    new4 = fc.filter(pl.col("sku") == "NEW4")["p50"].to_numpy()
    assert 30 <= new4[0] <= 45  # a level from its few months, nothing wild
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all()


def test_results_are_deterministic(panel, result):
    again = forecast_demand(panel, CYCLE, small_settings(), H)
    assert again.forecast.equals(result.forecast)
    assert again.backtest.equals(result.backtest)
    assert again.selection.equals(result.selection)
    assert again.coverage == result.coverage
    # and independent of how the SKUs are split over worker processes
    single = forecast_demand(panel, CYCLE, small_settings(n_jobs=1), H)
    assert np.allclose(single.forecast["p50"].to_numpy(), result.forecast["p50"].to_numpy())


def test_global_model_uses_future_prices_and_indicators():
    """A planned price cut must lift the global model's forecast (it learnt the elasticity
    from price steps in history) and an indicator that drives demand must move it too."""
    rng = np.random.default_rng(9)
    months = 48
    series, prices = {}, {}
    for i in range(30):
        p = 10 * np.exp(rng.normal(0, 0.15, months))  # prices move every month
        series[f"P{i}"] = np.round(500 * p**-1.5 / 10**-1.5 * np.exp(rng.normal(0, 0.05, months)))
        prices[f"P{i}"] = p
    hist = _frame(series, prices)
    base = small_settings()
    settings = base.model_copy(
        update={
            "candidates": {k: v for k, v in base.candidates.items() if k in ("seasonal_naive", "global_gbm")},
            "selection": base.selection.model_copy(
                update={"ensemble": base.selection.ensemble.model_copy(update={"members": ("seasonal_naive", "global_gbm")})}
            ),
        }
    )
    flat = forecast_demand(hist, CYCLE, settings, H)
    last = {s: prices[s][-1] for s in prices}
    cut = pl.DataFrame(
        {
            "sku": [s for s in prices for _ in range(24)],
            "month": pl.concat([_months(np.arange(C, C + 24))] * len(prices)),
            "net_price": [0.8 * last[s] for s in prices for _ in range(24)],
        }
    )
    cheaper = forecast_demand(hist, CYCLE, settings, H, future_prices=cut)
    g0 = flat.candidate_forecasts.filter(pl.col("model") == "global_gbm")["forecast"].sum()
    g1 = cheaper.candidate_forecasts.filter(pl.col("model") == "global_gbm")["forecast"].sum()
    assert g1 > 1.2 * g0  # elasticity 1.5: a 20% cut is worth ~+40%

    ind = pl.DataFrame(
        {"month": _months(np.arange(C - months, C + 24)), "indicator": "confidence", "value": 100 + np.sin(np.arange(months + 24) / 5) * 10}
    )
    with_ind = forecast_demand(hist, CYCLE, settings, H, indicators=ind)
    assert with_ind.forecast["p50"].is_finite().all()
    assert not np.allclose(
        with_ind.candidate_forecasts.filter(pl.col("model") == "global_gbm")["forecast"].to_numpy(),
        flat.candidate_forecasts.filter(pl.col("model") == "global_gbm")["forecast"].to_numpy(),
    )


def test_vectorised_seasonal_naive_matches_darts():
    from darts import TimeSeries
    from darts.models import NaiveSeasonal

    rng = np.random.default_rng(1)
    ys = [rng.random(n) * 100 for n in (12, 13, 30, 47)]
    lens = np.array([[n - 12, n - 6] for n in (12, 13, 30, 47)])
    final, bt = _seasonal_naive(ys, lens, 12, 12, 18, 12)
    for i, y in enumerate(ys):
        ref = NaiveSeasonal(K=12).fit(TimeSeries.from_values(y)).predict(18).values()[:, 0]
        assert np.allclose(final[i], ref)
        for b, L in enumerate(lens[i]):
            if L >= 12:
                ref = NaiveSeasonal(K=12).fit(TimeSeries.from_values(y[:L])).predict(12).values()[:, 0]
                steps = min(12, len(y) - L)
                assert np.allclose(bt[i, b, :steps], ref[:steps])
            else:
                assert np.isnan(bt[i, b]).all()


def test_settings_file_and_benchmark_profile():
    s = load_settings(ROOT / "models").forecast
    assert {"seasonal_naive", "ets", "theta", "ces", "global_gbm", "tsb"} <= set(s.candidates)
    assert {c.name for c in s.candidate_list if c.segment == "intermittent"} == {"tsb"}
    assert any(c.is_global for c in s.candidate_list)
    m1 = load_settings(ROOT / "models", forecast_profile="m1").forecast
    assert "tsb" not in m1.candidates and m1.backtest.max_step == 18
    # what a company gets: the weighted ensemble for regular SKUs
    assert s.selection.method == "ensemble" and s.selection.ensemble.combine == "inverse_error"
    with pytest.raises(SettingsError, match="no profile 'no_such_profile'"):
        load_settings(ROOT / "models", forecast_profile="no_such_profile")


def test_demo_company_forecast_is_calibrated_and_beats_seasonal_naive():
    """The same rules on the demo company the pipeline runs on (its own generator)."""
    from sop_pipeline.demo import generate_demo_company

    company = generate_demo_company(skus=60, seed=7, cycle="2026-11")
    sales = company["sales_history"].with_columns(pl.col("month").str.to_date("%Y-%m"))
    last = CYCLE - dt.timedelta(days=1)
    grid = (
        sales.group_by("sku")
        .agg(pl.col("month").min().alias("first"))
        .with_columns(pl.date_ranges("first", pl.lit(last.replace(day=1)), interval="1mo").alias("month"))
        .explode("month")
        .select("sku", "month")
    )
    hist = grid.join(sales, on=["sku", "month"], how="left").with_columns(
        pl.col("quantity").cast(pl.Float64).fill_null(0.0),
        pl.col("net_price").cast(pl.Float64),
        pl.col("promotion").cast(pl.Float64).fill_null(0.0),
    )
    indicators = company["indicators"].with_columns(pl.col("month").str.to_date("%Y-%m"))
    res = forecast_demand(hist, CYCLE, small_settings(), H, indicators=indicators)
    assert res.forecast.height == hist["sku"].n_unique() * 24
    assert 0.65 <= res.coverage <= 0.95
    assert res.metrics["chosen_wape"] < res.metrics["seasonal_naive_wape"]
    assert (res.selection.filter(pl.col("segment") == "intermittent")["model"] == "tsb").all()


def _mase_scale(y: np.ndarray) -> float:
    """MASE's denominator by its definition: in-sample mean absolute seasonal (m = 12) difference."""
    return float(np.mean(np.abs(y[12:] - y[:-12])))


def test_published_backtest_weights_each_origin_on_earlier_months_only(panel, result):
    """The published forecast's backtest (model `published`, whose error the gate and the
    README report) is the inverse-squared-MASE weighted mean of the members, with the weights
    at each origin taken from backtest points in months before that origin: the earliest
    origin gets the plain mean, later ones never see their own months."""
    settings = small_settings()
    members = list(settings.ensemble_members)
    bt = result.backtest.with_columns(
        (pl.col("origin").dt.year() * 12 + pl.col("origin").dt.month() - 1 + pl.col("horizon_step") - 1).alias("m")
    )
    regular = result.selection.filter(pl.col("segment") == "regular")["sku"].to_list()
    origins = sorted(bt["origin"].unique().to_list())
    checked = 0
    for sku in regular[:8]:
        y = panel.filter(pl.col("sku") == sku).sort("month")["quantity"].to_numpy()
        scale = _mase_scale(y)
        own = bt.filter(pl.col("sku") == sku)
        for b, origin in enumerate(origins):
            o = origin.year * 12 + origin.month - 1
            at = own.filter(pl.col("origin") == origin)
            pub = at.filter(pl.col("model") == PUBLISHED).sort("horizon_step")
            if pub.height == 0:
                continue
            mem = at.filter(pl.col("model").is_in(members))
            if b == 0:
                expected = mem.group_by("horizon_step").agg(pl.col("forecast").mean()).sort("horizon_step")["forecast"].to_numpy()
            else:
                earlier = own.filter(pl.col("model").is_in(members) & (pl.col("m") < o))
                err = earlier.group_by("model").agg(((pl.col("forecast") - pl.col("actual")).abs().mean() / scale).alias("mase"))
                w = err.with_columns((1 / pl.max_horizontal(pl.col("mase"), pl.lit(0.05)) ** 2).alias("w")).select("model", "w")
                expected = (
                    mem.join(w, on="model")
                    .group_by("horizon_step")
                    .agg(((pl.col("forecast") * pl.col("w")).sum() / pl.col("w").sum()).alias("f"))
                    .sort("horizon_step")["f"]
                    .to_numpy()
                )
            assert np.allclose(pub["forecast"].to_numpy(), expected, rtol=1e-9, atol=1e-9), (sku, origin)
            checked += 1
    assert checked >= 8
    # the reported error is that nested backtest's
    pub = result.backtest.filter(pl.col("model") == PUBLISHED)
    wape = float((pub["forecast"] - pub["actual"]).abs().sum() / pub["actual"].sum())
    assert result.metrics["chosen_wape"] == pytest.approx(wape)


def test_band_past_the_backtests_last_step_widens_at_least_in_proportion_to_the_step(result):
    """The backtest scores 12 steps; months 13-24 have no evidence of their own, so the upper
    half-band at step 24 is at least twice the one at step 12 (beyond_exponent 1)."""
    fc = result.forecast.with_columns((pl.col("month").rank("dense").over("sku")).alias("h"), (pl.col("p90") - pl.col("p50")).alias("up"))
    wide = (
        fc.filter(pl.col("h") == 12)
        .select("sku", pl.col("up").alias("u12"))
        .join(fc.filter(pl.col("h") == 24).select("sku", pl.col("up").alias("u24")), on="sku")
    )
    wide = wide.filter(pl.col("u12") > 0)
    assert wide.height > 20
    assert (wide["u24"] >= 2 * wide["u12"] * (1 - 1e-9)).all()
