"""Forecast accuracy and value added: earlier cycles' layers scored against actuals."""

from __future__ import annotations

import polars as pl

from sop_pipeline.demand import CONSENSUS, STATISTICAL
from sop_pipeline.periods import cycle_label, cycle_month, months_between


def _layer_vectors(layers: pl.DataFrame) -> pl.DataFrame:
    """Expand the stored layers (statistical in full, inputs only where they touched) into the
    complete plan after each layer, plus `consensus` = the plan after the last layer."""
    stat = layers.filter(pl.col("layer") == STATISTICAL).select("cycle", "sku", "month", pl.col("quantity").alias("statistical"))
    inputs = layers.filter(pl.col("layer") != STATISTICAL)
    ranks = layers.select("cycle", "layer", "layer_rank").unique(maintain_order=True)
    vectors = [stat.select("cycle", "sku", "month", pl.lit(STATISTICAL).alias("layer"), pl.col("statistical").alias("forecast"))]
    for cycle, layer, rank in ranks.filter(pl.col("layer") != STATISTICAL).iter_rows():
        latest = (
            inputs.filter((pl.col("cycle") == cycle) & (pl.col("layer_rank") <= rank))
            .sort("layer_rank")
            .group_by("cycle", "sku", "month", maintain_order=True)
            .agg(pl.col("quantity").last().alias("touched"))
        )
        vectors.append(
            stat.filter(pl.col("cycle") == cycle)
            .join(latest, on=["cycle", "sku", "month"], how="left")
            .select("cycle", "sku", "month", pl.lit(layer).alias("layer"), pl.coalesce("touched", "statistical").alias("forecast"))
        )
    latest_all = (
        inputs.sort("layer_rank").group_by("cycle", "sku", "month", maintain_order=True).agg(pl.col("quantity").last().alias("touched"))
    )
    vectors.append(
        stat.join(latest_all, on=["cycle", "sku", "month"], how="left").select(
            "cycle", "sku", "month", pl.lit(CONSENSUS).alias("layer"), pl.coalesce("touched", "statistical").alias("forecast")
        )
    )
    return pl.concat(vectors, how="vertical")


def score_accuracy(layers: pl.DataFrame, actuals: pl.DataFrame, products: pl.DataFrame, cycle: str, max_lag: int = 12) -> pl.DataFrame:
    """Score earlier cycles' forecasts, layer by layer, against the actuals now known.

    `layers`: demand_plan_layers of earlier cycles; `actuals`: sku, month, quantity before
    `cycle`. Lag 1 is the forecast for the cycle's own first month (made with actuals up to the
    month before). Per forecast cycle, layer, family (and `ALL`) and lag: WAPE, bias, MASE
    against the seasonal naive forecast made at the same cycle (sum of absolute errors over the
    naive's), and forecast value added: the WAPE points a layer gained over the statistical
    forecast and over the naive forecast (positive = the layer helped).
    """
    start = cycle_month(cycle)
    vectors = _layer_vectors(layers.with_columns(pl.col("month").cast(pl.Date)))
    vectors = (
        vectors.with_columns(
            pl.col("cycle").str.strptime(pl.Date, "%Y-%m").alias("cycle_month"),
        )
        .with_columns((months_between(pl.col("month"), pl.col("cycle_month")) + 1).alias("lag"))
        .filter((pl.col("month") < pl.lit(start)) & (pl.col("lag") >= 1) & (pl.col("lag") <= max_lag))
    )
    if vectors.height == 0:
        return _empty_accuracy()
    actual = actuals.select("sku", "month", pl.col("quantity").alias("actual"))
    # Seasonal naive at the forecast cycle: the same month one year earlier (two years for
    # lags beyond 12, so that it only uses what was known at the cycle).
    naive = actuals.select("sku", pl.col("month").dt.offset_by("12mo").alias("month"), pl.col("quantity").alias("naive"))
    scored = (
        vectors.join(actual, on=["sku", "month"], how="left")
        .join(naive, on=["sku", "month"], how="left")
        .join(products.select("sku", "family"), on="sku", how="left")
        .with_columns(
            pl.col("actual").fill_null(0.0),
            pl.col("naive").fill_null(0.0),
            pl.col("family").fill_null("(unknown)"),
        )
    )
    by = ["cycle", "layer", "family", "lag"]
    both = pl.concat([scored, scored.with_columns(pl.lit("ALL").alias("family"))], how="vertical")
    agg = both.group_by(by, maintain_order=True).agg(
        pl.len().alias("points"),
        pl.col("actual").sum().alias("actual"),
        pl.col("forecast").sum().alias("forecast"),
        (pl.col("forecast") - pl.col("actual")).abs().sum().alias("abs_error"),
        (pl.col("naive") - pl.col("actual")).abs().sum().alias("naive_abs_error"),
    )
    safe_actual = pl.when(pl.col("actual") > 0).then(pl.col("actual")).otherwise(None)
    agg = agg.with_columns(
        (pl.col("abs_error") / safe_actual).alias("wape"),
        ((pl.col("forecast") - pl.col("actual")) / safe_actual).alias("bias"),
        (pl.col("abs_error") / pl.when(pl.col("naive_abs_error") > 0).then(pl.col("naive_abs_error")).otherwise(None)).alias("mase"),
        (pl.col("naive_abs_error") / safe_actual).alias("naive_wape"),
    )
    stat_wape = agg.filter(pl.col("layer") == STATISTICAL).select("cycle", "family", "lag", pl.col("wape").alias("statistical_wape"))
    return (
        agg.join(stat_wape, on=["cycle", "family", "lag"], how="left")
        .with_columns(
            (pl.col("naive_wape") - pl.col("wape")).alias("fva_vs_naive"),
            (pl.col("statistical_wape") - pl.col("wape")).alias("fva_vs_statistical"),
            pl.lit(cycle_label(cycle)).alias("scored_in_cycle"),
        )
        .rename({"cycle": "forecast_cycle"})
        .rename({"scored_in_cycle": "cycle"})
        .select(
            "cycle",
            "forecast_cycle",
            "layer",
            "family",
            "lag",
            "points",
            "actual",
            "forecast",
            "abs_error",
            "wape",
            "bias",
            "mase",
            "naive_wape",
            "fva_vs_naive",
            "fva_vs_statistical",
        )
        .sort("forecast_cycle", "layer", "family", "lag")
    )


def _empty_accuracy() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "cycle": pl.Utf8,
            "forecast_cycle": pl.Utf8,
            "layer": pl.Utf8,
            "family": pl.Utf8,
            "lag": pl.Int64,
            "points": pl.UInt32,
            "actual": pl.Float64,
            "forecast": pl.Float64,
            "abs_error": pl.Float64,
            "wape": pl.Float64,
            "bias": pl.Float64,
            "mase": pl.Float64,
            "naive_wape": pl.Float64,
            "fva_vs_naive": pl.Float64,
            "fva_vs_statistical": pl.Float64,
        }
    )


def accuracy_summary(accuracy: pl.DataFrame) -> pl.DataFrame:
    """Accuracy by layer and lag over all scored cycles (family `ALL`): the table a demand
    planner reads first."""
    overall = accuracy.filter(pl.col("family") == "ALL")
    return (
        overall.group_by("layer", "lag", maintain_order=True)
        .agg(
            pl.col("points").sum(),
            (pl.col("abs_error").sum() / pl.col("actual").sum()).alias("wape"),
            ((pl.col("forecast").sum() - pl.col("actual").sum()) / pl.col("actual").sum()).alias("bias"),
            (pl.col("naive_wape") * pl.col("actual")).sum().truediv(pl.col("actual").sum()).alias("naive_wape"),
        )
        .sort("lag", "layer")
    )
