"""The financial plan: every scenario's shipped units, and the unconstrained consensus, in money."""

from __future__ import annotations

import polars as pl

from sop_pipeline import registry
from sop_pipeline.finance.common import as_month, shipped_units
from sop_pipeline.finance.costs import overtime_allocation, routing_variance, unit_costs
from sop_pipeline.finance.prices import price_by_sku_month
from sop_pipeline.periods import cycle_label
from sop_pipeline.settings.scenarios import BASELINE
from sop_pipeline.settings.supply import CostSettings


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
    numbers = ["demand", "shortfall", "production", "open_supply", "ending_inventory"]
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


def late_cost_per_unit(costs: CostSettings) -> pl.Expr:
    """Money per unit of the month-end shortfall, beside the revenue it loses: per month in
    backlog (backorders) or once per lost unit (lost sales), x max(price, cost); the figure the
    supply LP minimises (`sop_pipeline.supply.common.shortfall_cost`, which also charges the
    lost revenue because the LP has no revenue term)."""
    rate = costs.lost_sale_cost_rate if costs.shortfall_mode == "lost_sales" else costs.late_cost_rate_per_month
    return rate * pl.max_horizontal(pl.col("price"), pl.col("unit_cost_master").fill_null(0.0))


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
    costs: CostSettings | None = None,
    production_plan: pl.DataFrame | None = None,
    inventory: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """planning.financial_plan: one row per scenario x family x month of the horizon.

    volume and revenue are the constrained plan (shipped units, see the package docstring);
    unconstrained_volume and unconstrained_revenue the scenario's own demand (the consensus
    changed by its overlays) at the same prices, so a scenario ships at most what it asks for.
    One cost basis (`costs.cost_basis`, default standard = product master unit_cost) values
    cogs = shipped x valuation cost, opening_inventory_value, receipts_value (production and
    open supply) and inventory_value (month-end stock). The rolled-up cost is kept beside it:
    material_cost and conversion_cost are shipped x BOM and preferred-routing cost, and
    cost_variance = material_variance (rolled-up - valuation cost of the shipped units) +
    conversion_variance (alternate routings' extra hours of the month's load) + overtime_cost
    (the premium), so cogs + cost_variance is the rolled-up cost. lateness_cost = late_units
    (month-end backlog, or units lost) x the late cost of `models/supply.yaml`; gross_margin =
    revenue - cogs - cost_variance - lateness_cost. Every family of the consensus or the supply
    plan gets a row in every month of every scenario, zero where nothing happens.
    """
    costs = (costs or CostSettings()).model_copy(update={"shortfall_mode": shortfall_mode})
    label = cycle_label(cycle)
    sp = as_month(supply_plan)
    months = pl.concat([sp.select("month"), as_month(consensus).select("month")]).unique(maintain_order=True)["month"]
    prices = price_by_sku_month(products, price_plan, months)
    unit = unit_costs(products, bom, materials, routings, resources, costs.cost_basis).select(
        "sku",
        pl.col("material_cost").alias("unit_material"),
        pl.col("conversion_cost").alias("unit_conversion"),
        "valuation_cost",
        pl.col("material_variance").alias("unit_material_variance"),
    )
    detail = (
        sku_detail(products, sp, consensus, prices, shortfall_mode)
        .join(unit, on="sku", how="left")
        .join(products.select("sku", pl.col("unit_cost").cast(pl.Float64).alias("unit_cost_master")), on="sku", how="left")
        .join(_opening_stock(inventory), on="sku", how="left")
        .with_columns(
            pl.col("ending_inventory")
            .shift(1)
            .over("scenario", "sku")
            .fill_null(pl.col("on_hand").fill_null(0.0))
            .alias("opening_inventory")
        )
    )
    by_family = detail.group_by("scenario", "family", "month", maintain_order=True).agg(
        pl.col("shipped").sum().alias("volume"),
        (pl.col("shipped") * pl.col("price")).sum().alias("revenue"),
        pl.col("demand").sum().alias("unconstrained_volume"),
        (pl.col("demand") * pl.col("price")).sum().alias("unconstrained_revenue"),
        (pl.col("shipped") * pl.col("valuation_cost")).sum().alias("cogs"),
        (pl.col("shipped") * pl.col("unit_material")).sum().alias("material_cost"),
        (pl.col("shipped") * pl.col("unit_conversion")).sum().alias("conversion_cost"),
        (pl.col("shipped") * pl.col("unit_material_variance")).sum().alias("material_variance"),
        (pl.col("opening_inventory") * pl.col("valuation_cost")).sum().alias("opening_inventory_value"),
        ((pl.col("production") + pl.col("open_supply")) * pl.col("valuation_cost")).sum().alias("receipts_value"),
        (pl.col("ending_inventory") * pl.col("valuation_cost")).sum().alias("inventory_value"),
        pl.col("shortfall").sum().alias("late_units"),
        (pl.col("shortfall") * late_cost_per_unit(costs)).sum().alias("lateness_cost"),
    )
    overtime = (
        overtime_allocation(capacity_plan, resources, routings, sp, products)
        .sort("scenario", "family", "month", "resource")
        .group_by("scenario", "family", "month", maintain_order=True)
        .agg(pl.col("overtime_hours").sum(), pl.col("overtime_cost").sum())
    )
    routing = routing_variance(production_plan, sp, products, routings, resources)
    grid = (
        detail.select("scenario")
        .unique(maintain_order=True)
        .join(detail.select("family").unique(maintain_order=True), how="cross")
        .join(detail.select("month").unique(maintain_order=True), how="cross")
    )
    derived = ("cycle", "scenario", "family", "month", "cost_variance", "gross_margin")
    numbers = [c for c in registry.table("financial_plan").column_names if c not in derived]
    return (
        grid.join(by_family, on=["scenario", "family", "month"], how="left")
        .join(overtime, on=["scenario", "family", "month"], how="left")
        .join(routing, on=["scenario", "family", "month"], how="left")
        .with_columns([pl.col(c).fill_null(0.0) for c in numbers])
        .with_columns((pl.col("material_variance") + pl.col("conversion_variance") + pl.col("overtime_cost")).alias("cost_variance"))
        .with_columns(
            (pl.col("revenue") - pl.col("cogs") - pl.col("cost_variance") - pl.col("lateness_cost")).alias("gross_margin"),
            pl.lit(label).alias("cycle"),
        )
        .select(registry.table("financial_plan").column_names)
        .sort("scenario", "family", "month")
    )


def _opening_stock(inventory: pl.DataFrame | None) -> pl.DataFrame:
    if inventory is None or inventory.height == 0:
        return pl.DataFrame(schema={"sku": pl.String, "on_hand": pl.Float64})
    return inventory.group_by("sku").agg(pl.col("on_hand").cast(pl.Float64).sum())


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
