"""The financial plan: every scenario's shipped units, and the unconstrained consensus, in money."""

from __future__ import annotations

import polars as pl

from sop_pipeline import registry
from sop_pipeline.finance.common import as_month, shipped_units
from sop_pipeline.finance.costs import overtime_allocation, standard_costs
from sop_pipeline.finance.prices import price_by_sku_month
from sop_pipeline.periods import cycle_label
from sop_pipeline.settings.scenarios import BASELINE


def sku_detail(
    products: pl.DataFrame, supply_plan: pl.DataFrame, consensus: pl.DataFrame, prices: pl.DataFrame | None, shortfall_mode: str
) -> pl.DataFrame:
    """Every scenario x SKU x month of the horizon with demand, shipped units, consensus and price.

    The grid is rectangular (every SKU of the supply plan or the consensus in every month), so
    the backlog of the previous month is the previous row and a SKU missing from one side
    counts as zero there instead of vanishing.
    """
    sp = as_month(supply_plan)
    cons = as_month(consensus).group_by("sku", "month", maintain_order=True).agg(pl.col("quantity").sum().alias("consensus"))
    scenarios = sp.select("scenario").unique(maintain_order=True)
    skus = pl.concat([sp.select("sku"), cons.select("sku")]).unique(maintain_order=True)
    months = pl.concat([sp.select("month"), cons.select("month")]).unique(maintain_order=True)
    grid = scenarios.join(skus, how="cross").join(months, how="cross")
    numbers = ["demand", "shortfall", "production", "ending_inventory"]
    present = [c for c in numbers if c in sp.columns]
    frame = (
        grid.join(sp.select("scenario", "sku", "month", *present), on=["scenario", "sku", "month"], how="left")
        .join(cons, on=["sku", "month"], how="left")
        .with_columns([pl.col(c).cast(pl.Float64).fill_null(0.0) for c in present] + [pl.col("consensus").fill_null(0.0)])
        .with_columns([pl.lit(0.0).alias(c) for c in numbers if c not in present])
        .join(products.select("sku", "family"), on="sku", how="left")
        .sort("scenario", "sku", "month")
        .with_columns(shipped_units(shortfall_mode).alias("shipped"))
    )
    if prices is not None:
        frame = frame.join(prices, on=["sku", "month"], how="left")
    return frame


def financial_plan(
    cycle: str,
    products: pl.DataFrame,
    supply_plan: pl.DataFrame,
    consensus: pl.DataFrame,
    bom: pl.DataFrame | None = None,
    materials: pl.DataFrame | None = None,
    routings: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
    capacity_plan: pl.DataFrame | None = None,
    price_plan: pl.DataFrame | None = None,
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """planning.financial_plan: one row per scenario x family x month of the horizon.

    volume and revenue are the constrained plan (shipped units, see the module docstring);
    unconstrained_volume and unconstrained_revenue the consensus at the same prices, identical
    in every scenario (a scenario's demand overlay therefore shows as a supply-side difference).
    cogs = material_cost + conversion_cost (shipped x standard cost) + overtime_cost (the
    allocated premium); gross_margin = revenue - cogs; inventory_value = month-end stock x
    standard cost. Every family of the consensus or the supply plan gets a row in every month
    of every scenario, zero where nothing happens, so a missing row is always an error.
    """
    label = cycle_label(cycle)
    sp = as_month(supply_plan)
    months = pl.concat([sp.select("month"), as_month(consensus).select("month")]).unique(maintain_order=True)["month"]
    prices = price_by_sku_month(products, price_plan, months)
    costs = standard_costs(products, bom, materials, routings, resources).select("sku", "material_cost", "conversion_cost", "standard_cost")
    detail = sku_detail(products, sp, consensus, prices, shortfall_mode).join(
        costs.rename({"material_cost": "unit_material", "conversion_cost": "unit_conversion"}), on="sku", how="left"
    )
    by_family = detail.group_by("scenario", "family", "month", maintain_order=True).agg(
        pl.col("shipped").sum().alias("volume"),
        (pl.col("shipped") * pl.col("price")).sum().alias("revenue"),
        pl.col("consensus").sum().alias("unconstrained_volume"),
        (pl.col("consensus") * pl.col("price")).sum().alias("unconstrained_revenue"),
        (pl.col("shipped") * pl.col("unit_material")).sum().alias("material_cost"),
        (pl.col("shipped") * pl.col("unit_conversion")).sum().alias("conversion_cost"),
        (pl.col("ending_inventory") * pl.col("standard_cost")).sum().alias("inventory_value"),
    )
    overtime = (
        overtime_allocation(capacity_plan, resources, routings, sp, products)
        .sort("scenario", "family", "month", "resource")
        .group_by("scenario", "family", "month", maintain_order=True)
        .agg(pl.col("overtime_hours").sum(), pl.col("overtime_cost").sum())
    )
    grid = (
        detail.select("scenario")
        .unique(maintain_order=True)
        .join(detail.select("family").unique(maintain_order=True), how="cross")
        .join(detail.select("month").unique(maintain_order=True), how="cross")
    )
    numbers = [
        c
        for c in registry.table("financial_plan").column_names
        if c not in ("cycle", "scenario", "family", "month", "cogs", "gross_margin")
    ]
    return (
        grid.join(by_family, on=["scenario", "family", "month"], how="left")
        .join(overtime, on=["scenario", "family", "month"], how="left")
        .with_columns([pl.col(c).fill_null(0.0) for c in numbers])
        .with_columns((pl.col("material_cost") + pl.col("conversion_cost") + pl.col("overtime_cost")).alias("cogs"))
        .with_columns((pl.col("revenue") - pl.col("cogs")).alias("gross_margin"), pl.lit(label).alias("cycle"))
        .select(registry.table("financial_plan").column_names)
        .sort("scenario", "family", "month")
    )


def consensus_as_supply_plan(consensus: pl.DataFrame, cycle: str) -> pl.DataFrame:
    """A baseline supply plan that ships the whole consensus: what the financial review prices
    when the supply review was skipped (no capacity and no material data). Nothing is short, so
    the plan equals the unconstrained view and inventory is not valued (ending_inventory 0)."""
    return (
        as_month(consensus)
        .group_by("sku", "month", maintain_order=True)
        .agg(pl.col("quantity").sum().cast(pl.Float64))
        .select(
            pl.lit(cycle_label(cycle)).alias("cycle"),
            pl.lit(BASELINE).alias("scenario"),
            "sku",
            "month",
            pl.col("quantity").alias("demand"),
            pl.col("quantity").alias("production"),
            pl.lit(0.0).alias("ending_inventory"),
            pl.lit(0.0).alias("shortfall"),
            pl.lit(0.0).alias("safety_stock"),
        )
        .sort("sku", "month")
    )
