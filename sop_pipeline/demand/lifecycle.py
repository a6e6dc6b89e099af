"""The statistical forecast per portfolio SKU and month, with launches and phase-outs applied."""

from __future__ import annotations

import polars as pl

from sop_pipeline.settings.product import LifecycleSettings


def apply_lifecycle(base: pl.DataFrame, portfolio: pl.DataFrame, settings: LifecycleSettings) -> pl.DataFrame:
    """The statistical forecast per portfolio SKU and month, lifecycle applied.

    `base` holds the forecasts of SKUs with history (sku, month, model, p10, p50, p90).
    A SKU with its own forecast keeps it; a new product takes its like-item's; without a
    like-item forecast, a `launch_volume` gives a flat forecast with the band of
    `launch_volume_band` (models/product.yaml); otherwise
    the SKU has no basis (zero). Everything is multiplied by the portfolio's ramp factor, so
    launches ramp up and phase-outs reach zero at their discontinue month.
    """
    low, high = settings.launch_volume_band
    own = base.select("sku", "month", "model", "p10", "p50", "p90")
    like = base.select(
        pl.col("sku").alias("like_sku"),
        "month",
        pl.col("model").alias("like_model"),
        pl.col("p10").alias("like_p10"),
        pl.col("p50").alias("like_p50"),
        pl.col("p90").alias("like_p90"),
    )
    frame = portfolio.join(own, on=["sku", "month"], how="left").join(like, on=["like_sku", "month"], how="left")
    has_own = pl.col("p50").is_not_null()
    has_like = pl.col("like_p50").is_not_null()
    has_volume = pl.col("launch_volume").is_not_null()

    def pick(own_col: str, like_col: str, volume_factor: float) -> pl.Expr:
        return pl.when(has_own).then(pl.col(own_col)).when(has_like).then(pl.col(like_col)).when(has_volume).then(
            pl.col("launch_volume") * volume_factor
        ).otherwise(0.0) * pl.col("ramp_factor")

    model = (
        pl.when(has_own)
        .then(pl.col("model"))
        .when(has_like)
        .then(pl.format("like:{}:{}", pl.col("like_sku"), pl.col("like_model")))
        .when(has_volume)
        .then(pl.lit("launch_volume"))
        .otherwise(pl.lit("no_history"))
    )
    return frame.select(
        "cycle",
        "sku",
        "family",
        "month",
        model.alias("model"),
        pick("p10", "like_p10", low).alias("p10"),
        pick("p50", "like_p50", 1.0).alias("p50"),
        pick("p90", "like_p90", high).alias("p90"),
    ).sort("sku", "month")
