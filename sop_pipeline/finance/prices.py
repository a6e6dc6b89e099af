"""Selling prices per SKU and month: the product master changed by the price plan."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from sop_pipeline.finance.common import as_month, months_frame


def price_by_sku_month(products: pl.DataFrame, price_plan: pl.DataFrame | None, months: Iterable[dt.date] | pl.Series) -> pl.DataFrame:
    """The selling price of every product in every month: sku, month, price.

    `price_plan` (optional input `price_plan.csv`): level ('sku' | 'family'), key (the SKU or
    family), month, price_change_pct. A row changes the price by that percentage relative to
    the product master's unit_price from its month on, and the change persists: the plan lists
    changes not yet in unit_price. Several changes of one key compound (+5% in January and +2%
    in July give x1.05 from January and x1.071 from July), and a family change and a SKU change
    multiply: price = unit_price x prod(1 + family changes so far) x prod(1 + SKU changes so far).
    Rows dated before the horizon apply to every horizon month.
    """
    grid = products.select("sku", "family", pl.col("unit_price").cast(pl.Float64)).join(months_frame(months), how="cross")
    if price_plan is None or price_plan.height == 0:
        return grid.select("sku", "month", pl.col("unit_price").alias("price")).sort("sku", "month")
    plan = as_month(price_plan).select(
        "level",
        pl.col("key").cast(pl.String),
        pl.col("month").alias("from_month"),
        (1 + pl.col("price_change_pct").cast(pl.Float64) / 100).alias("factor"),
    )
    family_changes = plan.filter(pl.col("level") == "family").select(pl.col("key").alias("family"), "from_month", "factor")
    sku_changes = plan.filter(pl.col("level") == "sku").select(pl.col("key").alias("sku"), "from_month", "factor")
    by_family = (
        grid.select("sku", "family", "month")
        .join(family_changes, on="family", how="inner")
        .filter(pl.col("from_month") <= pl.col("month"))
        .group_by("sku", "month", maintain_order=True)
        .agg(pl.col("factor").product().alias("family_factor"))
    )
    by_sku = (
        grid.select("sku", "month")
        .join(sku_changes, on="sku", how="inner")
        .filter(pl.col("from_month") <= pl.col("month"))
        .group_by("sku", "month", maintain_order=True)
        .agg(pl.col("factor").product().alias("sku_factor"))
    )
    return (
        grid.join(by_family, on=["sku", "month"], how="left")
        .join(by_sku, on=["sku", "month"], how="left")
        .select(
            "sku",
            "month",
            (pl.col("unit_price") * pl.col("family_factor").fill_null(1.0) * pl.col("sku_factor").fill_null(1.0)).alias("price"),
        )
        .sort("sku", "month")
    )
