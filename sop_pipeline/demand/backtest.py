"""The forecast engine's backtest as the stored table, and the gate's comparison with seasonal naive."""

from __future__ import annotations

import polars as pl

from sop_pipeline.demand import NAIVE
from sop_pipeline.forecast.selection import PUBLISHED
from sop_pipeline.periods import cycle_label


def backtest_table(result, cycle: str) -> pl.DataFrame:
    """Every candidate's backtest error per SKU (planning.forecast_backtest).

    Sums of actuals and absolute errors sit next to the ratios so that errors can be
    aggregated correctly (volume-weighted) over any group of SKUs. The row `published` (flag
    set) is the published forecast's nested backtest: at every origin its weights and choice
    were fitted on earlier months only, so its error was not used to select it.
    """
    sums = result.backtest.group_by("sku", "model", maintain_order=True).agg(
        pl.len().alias("points"),
        pl.col("actual").sum().alias("actual"),
        (pl.col("forecast") - pl.col("actual")).abs().sum().alias("abs_error"),
    )
    return (
        result.backtest_errors.select("sku", "model", "wape", "mase", "smape", "bias")
        .join(sums, on=["sku", "model"], how="inner")
        .with_columns(pl.lit(cycle_label(cycle)).alias("cycle"), (pl.col("model") == PUBLISHED).alias("published"))
        .select("cycle", "sku", "model", "published", "points", "actual", "abs_error", "wape", "mase", "smape", "bias")
        .sort("sku", "model")
    )


def backtest_versus_naive(backtest: pl.DataFrame) -> dict[str, float | None]:
    """Volume-weighted backtest WAPE of the published models and of seasonal naive, over the
    SKUs where both were scored: the demand review's promise that statistics beat a naive rule."""
    naive = backtest.filter(pl.col("model") == NAIVE).select(
        "sku", pl.col("abs_error").alias("naive_error"), pl.col("actual").alias("naive_actual")
    )
    chosen = backtest.filter(pl.col("published")).join(naive, on="sku", how="inner")
    if chosen.height == 0 or chosen["naive_actual"].sum() <= 0 or chosen["actual"].sum() <= 0:
        return {"published_wape": None, "naive_wape": None, "ratio": None}
    published_wape = chosen["abs_error"].sum() / chosen["actual"].sum()
    naive_wape = chosen["naive_error"].sum() / chosen["naive_actual"].sum()
    return {"published_wape": published_wape, "naive_wape": naive_wape, "ratio": published_wape / naive_wape if naive_wape > 0 else None}
