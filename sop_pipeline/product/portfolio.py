"""The portfolio per horizon month: lifecycle status and the ramp factor on each SKU's forecast."""

from __future__ import annotations

import polars as pl

from sop_pipeline.periods import cycle_label, cycle_month, horizon_months, months_between
from sop_pipeline.settings.product import LifecycleSettings


def build_product_portfolio(products: pl.DataFrame, cycle: str, settings: LifecycleSettings, horizon: int) -> pl.DataFrame:
    """One row per SKU and horizon month with its lifecycle status and ramp factor.

    The ramp factor multiplies the SKU's (or its like-item's) forecast: 0 before launch and
    from the discontinue month on, rising linearly over the launch ramp and falling linearly
    over the phase-out ramp. Products discontinued before the cycle are out of the portfolio.
    Status comes from the dates, not only the status column, so that a product marked active
    with a future launch month is still treated as a launch. `successor_sku` is carried for
    the demand review, which moves what the phase-out cuts to the successor.
    """
    start = cycle_month(cycle)
    up, down = settings.npi_ramp_months, settings.phase_out_ramp_months
    in_scope = products.filter(pl.col("discontinue_month").is_null() | (pl.col("discontinue_month") > pl.lit(start)))
    lifecycle = ("sku", "family", "status", "launch_month", "discontinue_month", "like_sku", "launch_volume", "successor_sku")
    grid = in_scope.select(*lifecycle).join(horizon_months(cycle, horizon).to_frame(), how="cross")
    since_launch = months_between(pl.col("month"), pl.col("launch_month"))
    to_end = months_between(pl.col("discontinue_month"), pl.col("month"))
    launching = pl.col("launch_month").is_not_null() & (pl.col("launch_month") >= pl.lit(start))
    ramp_up = (
        pl.when(launching & (since_launch < 0))
        .then(0.0)
        .when(launching & (since_launch < up))
        .then((since_launch + 1).cast(pl.Float64) / up)
        .otherwise(1.0)
    )
    ramp_down = (
        pl.when(pl.col("discontinue_month").is_null())
        .then(1.0)
        .when(to_end <= 0)
        .then(0.0)
        .when(to_end <= down)
        .then(to_end.cast(pl.Float64) / (down + 1))
        .otherwise(1.0)
    )
    status = (
        pl.when(pl.col("discontinue_month").is_not_null() & (to_end <= 0))
        .then(pl.lit("discontinued"))
        .when(launching & (since_launch < 0))
        .then(pl.lit("pre_launch"))
        .when(launching & (since_launch < up - 1))
        .then(pl.lit("ramp_up"))
        .when(pl.col("discontinue_month").is_not_null() & (to_end <= down))
        .then(pl.lit("phase_out"))
        .otherwise(pl.lit("active"))
    )
    return (
        grid.with_columns(
            pl.lit(cycle_label(cycle)).alias("cycle"),
            status.alias("lifecycle_status"),
            (ramp_up * ramp_down).alias("ramp_factor"),
        )
        .select("cycle", "sku", "family", "month", "lifecycle_status", "like_sku", "launch_volume", "successor_sku", "ramp_factor")
        .sort("sku", "month")
    )
