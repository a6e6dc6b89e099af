"""Product review: which SKUs the plan covers, month by month, and how each one behaves.

The first S&OP step decides the portfolio before anybody forecasts it: a new product has no
history of its own and borrows a like-item's, scaled by a launch ramp; a product being phased
out fades to zero by its discontinue month. The segmentation (ABC by revenue, XYZ by demand
variability, Syntetos-Boylan intermittency) tells later steps which forecasting method and
which service level fit each SKU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from sop_pipeline.warehouse import add_months, cycle_label, cycle_month


@dataclass(frozen=True)
class ProductSettings:
    horizon_months: int = 24
    npi_ramp_months: int = 3
    phase_out_ramp_months: int = 3
    window_months: int = 24
    abc_revenue_window_months: int = 12
    abc_thresholds: tuple[float, float] = (0.80, 0.95)
    xyz_thresholds: tuple[float, float] = (0.50, 1.00)
    intermittent_adi: float = 1.32
    intermittent_cv2: float = 0.49
    min_history_months: int = 6


def load_product_settings(path: str | Path) -> ProductSettings:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    lifecycle = raw.get("lifecycle", {})
    seg = raw.get("segmentation", {})
    settings = ProductSettings(
        horizon_months=int(raw.get("horizon_months", 24)),
        npi_ramp_months=int(lifecycle.get("npi_ramp_months", 3)),
        phase_out_ramp_months=int(lifecycle.get("phase_out_ramp_months", 3)),
        window_months=int(seg.get("window_months", 24)),
        abc_revenue_window_months=int(seg.get("abc_revenue_window_months", 12)),
        abc_thresholds=tuple(seg.get("abc_thresholds", (0.80, 0.95))),
        xyz_thresholds=tuple(seg.get("xyz_thresholds", (0.50, 1.00))),
        intermittent_adi=float(seg.get("intermittent_adi", 1.32)),
        intermittent_cv2=float(seg.get("intermittent_cv2", 0.49)),
        min_history_months=int(seg.get("min_history_months", 6)),
    )
    if not 12 <= settings.horizon_months <= 36:
        raise ValueError(f"{path}: horizon_months must be between 12 and 36, got {settings.horizon_months}")
    return settings


def horizon_months(cycle: str, months: int) -> pl.Series:
    start = cycle_month(cycle)
    return pl.Series("month", [add_months(start, i) for i in range(months)], dtype=pl.Date)


def _months_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    return (later.dt.year() * 12 + later.dt.month()) - (earlier.dt.year() * 12 + earlier.dt.month())


def build_product_portfolio(products: pl.DataFrame, cycle: str, settings: ProductSettings) -> pl.DataFrame:
    """One row per SKU and horizon month with its lifecycle status and ramp factor.

    The ramp factor multiplies the SKU's (or its like-item's) forecast: 0 before launch and
    from the discontinue month on, rising linearly over the launch ramp and falling linearly
    over the phase-out ramp. Products discontinued before the cycle are out of the portfolio.
    Status comes from the dates, not only the status column, so that a product marked active
    with a future launch month is still treated as a launch.
    """
    start = cycle_month(cycle)
    up, down = settings.npi_ramp_months, settings.phase_out_ramp_months
    in_scope = products.filter(pl.col("discontinue_month").is_null() | (pl.col("discontinue_month") > pl.lit(start)))
    grid = in_scope.select("sku", "family", "status", "launch_month", "discontinue_month", "like_sku", "launch_volume").join(
        horizon_months(cycle, settings.horizon_months).to_frame(), how="cross"
    )
    since_launch = _months_between(pl.col("month"), pl.col("launch_month"))
    to_end = _months_between(pl.col("discontinue_month"), pl.col("month"))
    launching = pl.col("launch_month").is_not_null() & (pl.col("launch_month") >= pl.lit(start))
    ramp_up = pl.when(launching & (since_launch < 0)).then(0.0).when(launching & (since_launch < up)).then(
        (since_launch + 1).cast(pl.Float64) / up
    ).otherwise(1.0)
    ramp_down = pl.when(pl.col("discontinue_month").is_null()).then(1.0).when(to_end <= 0).then(0.0).when(to_end <= down).then(
        to_end.cast(pl.Float64) / (down + 1)
    ).otherwise(1.0)
    status = (
        pl.when(pl.col("discontinue_month").is_not_null() & (to_end <= 0)).then(pl.lit("discontinued"))
        .when(launching & (since_launch < 0)).then(pl.lit("pre_launch"))
        .when(launching & (since_launch < up - 1)).then(pl.lit("ramp_up"))
        .when(pl.col("discontinue_month").is_not_null() & (to_end <= down)).then(pl.lit("phase_out"))
        .otherwise(pl.lit("active"))
    )
    return (
        grid.with_columns(
            pl.lit(cycle_label(cycle)).alias("cycle"),
            status.alias("lifecycle_status"),
            (ramp_up * ramp_down).alias("ramp_factor"),
        )
        .select("cycle", "sku", "family", "month", "lifecycle_status", "like_sku", "launch_volume", "ramp_factor")
        .sort("sku", "month")
    )


def segment_products(products: pl.DataFrame, sales: pl.DataFrame, cycle: str, settings: ProductSettings) -> pl.DataFrame:
    """ABC, XYZ and intermittency class per SKU, from the recent history before the cycle.

    ABC ranks SKUs by revenue over the last `abc_revenue_window_months`; XYZ uses the
    coefficient of variation of monthly units over `window_months`; intermittency follows
    Syntetos-Boylan (average demand interval and squared CV of non-zero sizes). SKUs with
    fewer than `min_history_months` months of history are classed 'new' (C, Z): their
    statistics would be noise.
    """
    start = cycle_month(cycle)
    window_start = add_months(start, -settings.window_months)
    abc_start = add_months(start, -settings.abc_revenue_window_months)
    # Sorted so that float sums add up in the same order on every run: reruns must be identical.
    recent = sales.filter((pl.col("month") >= pl.lit(window_start)) & (pl.col("month") < pl.lit(start))).sort("sku", "month")
    stats = recent.group_by("sku", maintain_order=True).agg(
        pl.len().alias("history_months"),
        (pl.col("quantity") > 0).sum().alias("nonzero_months"),
        pl.col("quantity").mean().alias("mean_quantity"),
        pl.col("quantity").std(ddof=0).alias("std_quantity"),
        pl.col("quantity").filter(pl.col("quantity") > 0).mean().alias("mean_size"),
        pl.col("quantity").filter(pl.col("quantity") > 0).std(ddof=0).alias("std_size"),
        pl.col("revenue").filter(pl.col("month") >= pl.lit(abc_start)).sum().alias("revenue_12m"),
    )
    frame = products.select("sku", "family").sort("sku").join(stats, on="sku", how="left", maintain_order="left").with_columns(
        pl.col("history_months").fill_null(0),
        pl.col("nonzero_months").fill_null(0),
        pl.col("revenue_12m").fill_null(0.0),
    )
    total_revenue = frame["revenue_12m"].sum() or 1.0
    a_cut, b_cut = settings.abc_thresholds
    x_cut, y_cut = settings.xyz_thresholds
    frame = frame.sort(["revenue_12m", "sku"], descending=[True, False]).with_columns(
        (pl.col("revenue_12m") / total_revenue).alias("revenue_share"),
    ).with_columns(
        (pl.col("revenue_share").cum_sum() - pl.col("revenue_share")).alias("_share_before"),
        (pl.col("std_quantity") / pl.col("mean_quantity")).fill_nan(None).alias("demand_cv"),
        pl.when(pl.col("nonzero_months") > 0)
        .then(pl.col("history_months") / pl.col("nonzero_months"))
        .otherwise(float(settings.window_months))
        .alias("adi"),
        ((pl.col("std_size") / pl.col("mean_size")) ** 2).fill_nan(None).fill_null(0.0).alias("cv2"),
    )
    is_new = pl.col("history_months") < settings.min_history_months
    no_demand = pl.col("nonzero_months") == 0
    intermittent = ~is_new & (no_demand | (pl.col("adi") >= settings.intermittent_adi))
    lumpy_sizes = pl.col("cv2") >= settings.intermittent_cv2
    return frame.with_columns(
        pl.lit(cycle_label(cycle)).alias("cycle"),
        pl.when(is_new).then(pl.lit("C")).when(pl.col("_share_before") < a_cut).then(pl.lit("A"))
        .when(pl.col("_share_before") < b_cut).then(pl.lit("B")).otherwise(pl.lit("C")).alias("abc_class"),
        pl.when(is_new | no_demand | pl.col("demand_cv").is_null()).then(pl.lit("Z"))
        .when(pl.col("demand_cv") < x_cut).then(pl.lit("X")).when(pl.col("demand_cv") < y_cut).then(pl.lit("Y"))
        .otherwise(pl.lit("Z")).alias("xyz_class"),
        intermittent.alias("intermittent"),
        pl.when(is_new).then(pl.lit("new")).when(no_demand).then(pl.lit("no_demand"))
        .when(~intermittent & ~lumpy_sizes).then(pl.lit("smooth"))
        .when(~intermittent).then(pl.lit("erratic"))
        .when(~lumpy_sizes).then(pl.lit("intermittent"))
        .otherwise(pl.lit("lumpy")).alias("demand_class"),
        pl.col("history_months").cast(pl.Int64),
        pl.col("nonzero_months").cast(pl.Int64),
    ).select(
        "cycle", "sku", "family", "revenue_12m", "revenue_share", "abc_class", "demand_cv", "xyz_class",
        "adi", "cv2", "intermittent", "demand_class", "history_months", "nonzero_months",
    ).sort("sku")


def portfolio_findings(products: pl.DataFrame, sales_skus: pl.Series, cycle: str) -> pl.DataFrame:
    """Every SKU that breaks a portfolio rule, with the rule and the detail a planner needs.

    Rules: every SKU with sales exists in the product master; every product launching in the
    horizon has a like_sku with history or an explicit launch_volume; a discontinue month falls
    after the launch month. An empty frame means the portfolio is sound.
    """
    start = cycle_month(cycle)
    history = products.filter(pl.col("lifetime_quantity") > 0).select(pl.col("sku").alias("like_sku"), pl.lit(True).alias("like_has_history"))
    unknown = (
        pl.DataFrame({"sku": sales_skus.unique().sort()})
        .join(products.select("sku"), on="sku", how="anti")
        .with_columns(
            pl.lit("sales_for_unknown_sku").alias("rule"),
            pl.lit("has sales history but is not in the product master").alias("detail"),
        )
    )
    launching = products.filter(
        (pl.col("status") == "npi") | (pl.col("launch_month").is_not_null() & (pl.col("launch_month") >= pl.lit(start)))
    ).join(history, on="like_sku", how="left")
    no_basis = launching.filter(pl.col("like_has_history").is_null() & pl.col("launch_volume").is_null()).select(
        "sku",
        pl.lit("new_product_without_basis").alias("rule"),
        pl.format(
            "launches {} with like_sku {} that has no sales history and no launch_volume",
            pl.col("launch_month").dt.strftime("%Y-%m").fill_null("(no month)"),
            pl.col("like_sku").fill_null("(none)"),
        ).alias("detail"),
    )
    bad_dates = products.filter(
        pl.col("launch_month").is_not_null() & pl.col("discontinue_month").is_not_null() & (pl.col("discontinue_month") <= pl.col("launch_month"))
    ).select(
        "sku",
        pl.lit("phase_out_before_launch").alias("rule"),
        pl.format(
            "discontinue month {} is not after launch month {}",
            pl.col("discontinue_month").dt.strftime("%Y-%m"),
            pl.col("launch_month").dt.strftime("%Y-%m"),
        ).alias("detail"),
    )
    return pl.concat([unknown, no_basis, bad_dates], how="vertical").sort("rule", "sku")


def describe_findings(findings: pl.DataFrame, limit: int = 20) -> str:
    """A planner-readable summary: one line per offending SKU (the first `limit`)."""
    if findings.height == 0:
        return "portfolio is sound"
    lines = [f"{row['sku']}: {row['rule']} - {row['detail']}" for row in findings.head(limit).iter_rows(named=True)]
    more = f"\n... and {findings.height - limit} more" if findings.height > limit else ""
    return "\n".join(lines) + more

