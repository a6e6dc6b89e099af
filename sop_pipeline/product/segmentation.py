"""ABC / XYZ / Syntetos-Boylan segmentation of the SKUs from their recent history."""

from __future__ import annotations

import polars as pl

from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.rules import intermittent_flags
from sop_pipeline.settings.product import SegmentationSettings


def segment_products(products: pl.DataFrame, sales: pl.DataFrame, cycle: str, settings: SegmentationSettings) -> pl.DataFrame:
    """ABC, XYZ and intermittency class per SKU, from the recent history before the cycle.

    ABC ranks SKUs by revenue over the last `abc_revenue_window_months`; XYZ uses the
    coefficient of variation of monthly units over `window_months`; intermittency follows
    Syntetos-Boylan (average demand interval and squared CV of non-zero sizes). SKUs with
    fewer than `min_history_months` months of history are classed 'new' (C, Z): their
    statistics would be noise.
    """
    frame = _measures(products, sales, cycle, settings)
    return _classes(frame, cycle, settings)


def _measures(products: pl.DataFrame, sales: pl.DataFrame, cycle: str, settings: SegmentationSettings) -> pl.DataFrame:
    """Per SKU of the product master: months, non-zero months, variability, sizes, revenue share."""
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
    frame = (
        products.select("sku", "family")
        .sort("sku")
        .join(stats, on="sku", how="left", maintain_order="left")
        .with_columns(
            pl.col("history_months").fill_null(0),
            pl.col("nonzero_months").fill_null(0),
            pl.col("revenue_12m").fill_null(0.0),
        )
    )
    total_revenue = frame["revenue_12m"].sum() or 1.0
    frame = (
        frame.sort(["revenue_12m", "sku"], descending=[True, False])
        .with_columns(
            (pl.col("revenue_12m") / total_revenue).alias("revenue_share"),
        )
        .with_columns(
            (pl.col("revenue_share").cum_sum() - pl.col("revenue_share")).alias("_share_before"),
            (pl.col("std_quantity") / pl.col("mean_quantity")).fill_nan(None).alias("demand_cv"),
            pl.when(pl.col("nonzero_months") > 0)
            .then(pl.col("history_months") / pl.col("nonzero_months"))
            .otherwise(float(settings.window_months))
            .alias("adi"),
            ((pl.col("std_size") / pl.col("mean_size")) ** 2).fill_nan(None).fill_null(0.0).alias("cv2"),
        )
    )
    flags = intermittent_flags(
        frame["history_months"].to_numpy(), frame["nonzero_months"].to_numpy(), settings.intermittent_adi, settings.min_history_months
    )
    return frame.with_columns(pl.Series("intermittent", flags, dtype=pl.Boolean))


def _classes(frame: pl.DataFrame, cycle: str, settings: SegmentationSettings) -> pl.DataFrame:
    """ABC, XYZ and the Syntetos-Boylan demand class from the measures."""
    a_cut, b_cut = settings.abc_thresholds
    x_cut, y_cut = settings.xyz_thresholds
    is_new = pl.col("history_months") < settings.min_history_months
    no_demand = pl.col("nonzero_months") == 0
    intermittent = pl.col("intermittent")
    lumpy_sizes = pl.col("cv2") >= settings.intermittent_cv2
    return (
        frame.with_columns(
            pl.lit(cycle_label(cycle)).alias("cycle"),
            pl.when(is_new)
            .then(pl.lit("C"))
            .when(pl.col("_share_before") < a_cut)
            .then(pl.lit("A"))
            .when(pl.col("_share_before") < b_cut)
            .then(pl.lit("B"))
            .otherwise(pl.lit("C"))
            .alias("abc_class"),
            pl.when(is_new | no_demand | pl.col("demand_cv").is_null())
            .then(pl.lit("Z"))
            .when(pl.col("demand_cv") < x_cut)
            .then(pl.lit("X"))
            .when(pl.col("demand_cv") < y_cut)
            .then(pl.lit("Y"))
            .otherwise(pl.lit("Z"))
            .alias("xyz_class"),
            intermittent.alias("intermittent"),
            pl.when(is_new)
            .then(pl.lit("new"))
            .when(no_demand)
            .then(pl.lit("no_demand"))
            .when(~intermittent & ~lumpy_sizes)
            .then(pl.lit("smooth"))
            .when(~intermittent)
            .then(pl.lit("erratic"))
            .when(~lumpy_sizes)
            .then(pl.lit("intermittent"))
            .otherwise(pl.lit("lumpy"))
            .alias("demand_class"),
            pl.col("history_months").cast(pl.Int64),
            pl.col("nonzero_months").cast(pl.Int64),
        )
        .select(
            "cycle",
            "sku",
            "family",
            "revenue_12m",
            "revenue_share",
            "abc_class",
            "demand_cv",
            "xyz_class",
            "adi",
            "cv2",
            "intermittent",
            "demand_class",
            "history_months",
            "nonzero_months",
        )
        .sort("sku")
    )
