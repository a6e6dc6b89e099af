"""Financial review: the plan in money, against the budget, with every gap explained.

The supply review says what operations can deliver, in units. The executive meeting decides in
money: what the plan earns, how far it lands from the budget and why, and what closing the gap
would cost. This step prices every scenario's constrained plan and the unconstrained consensus
with the same prices and standard costs, so that the three views (what customers want, what
operations can ship, what the budget promised) differ only by what really differs between them:
volume the plant cannot make, demand the market does not bring, prices that moved. Each such
difference is a row of the reconciliation with its cause; the checks only prove that the
numbers tie out, because a gap is a finding for the meeting, not an error.

Conventions, chosen once for every table here:

* Shipped units. The supply plan's `shortfall` is the month-end backlog with backorders (the
  default of `models/supply.yaml`), the lost units with lost sales. Shipped in a month is
  demand + last month's backlog - this month's backlog (backorder) or demand - shortfall (lost
  sales); both reduce to "demand - shortfall" when nothing is carried over. Revenue follows the
  shipped units, so a backlog recovered next month is revenue next month.
* Standard cost per unit = material (BOM qty_per x material unit_cost) + conversion (hours per
  unit of the SKU's preferred routing, the lowest priority, x the resource's cost_per_hour). A
  SKU with neither BOM nor routing is a bought-in good: its product-master unit_cost counts as
  material. COGS = shipped units x standard cost + the overtime premium of the month.
* Overtime. Standard conversion already pays every hour at the regular rate, so an overtime
  hour adds only its premium, overtime_cost_per_hour - cost_per_hour (floored at zero), as the
  supply review's LP does. The premium is a period cost of the month it is worked in, allocated
  to families by their share of the resource's load hours that month (production x preferred
  routing hours; all routings if no preferred routing loads it; the family's share of
  production if no routing does).
* Inventory value = month-end stock x standard cost, without the overtime premium.
* Prices: product-master unit_price changed by the optional price plan (`price_by_sku_month`);
  the same price values the constrained and the unconstrained plan.

Everything is a plain function on polars frames; nothing opens a file except the gates loader,
and nothing knows about Dagster.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from sop_pipeline.warehouse import cycle_label

BASELINE = "baseline"
ALL = "ALL"
MEASURES = ("volume", "revenue", "gross_margin")
SHORTFALL_MODES = ("backorder", "lost_sales")
BRIDGE_STEPS = ("start", "volume", "mix", "price", "end")
COMPONENTS = ("demand", "price", "cost", "supply")
# Below this, an amount is floating-point noise, not a gap component.
EPS = 1e-9


@dataclass(frozen=True)
class FinancialGates:
    """Thresholds of the financial review's checkpoint (models/gates.yaml, `financial_review`)."""

    gap_tolerance_pct: float = 5.0
    gap_min_abs: float = 1.0
    tie_out_tolerance: float = 0.01
    tie_out_tolerance_rel: float = 1e-9


def load_financial_gates(path: str | Path) -> FinancialGates:
    raw = (yaml.safe_load(Path(path).read_text()) or {}).get("financial_review", {}) or {}
    gates = FinancialGates(
        gap_tolerance_pct=float(raw.get("gap_tolerance_pct", 5.0)),
        gap_min_abs=float(raw.get("gap_min_abs", 1.0)),
        tie_out_tolerance=float(raw.get("tie_out_tolerance", 0.01)),
        tie_out_tolerance_rel=float(raw.get("tie_out_tolerance_rel", 1e-9)),
    )
    if gates.gap_tolerance_pct < 0 or gates.gap_min_abs < 0 or gates.tie_out_tolerance < 0 or gates.tie_out_tolerance_rel < 0:
        raise ValueError(f"{path}: financial_review tolerances must be >= 0, got {gates}")
    return gates


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _as_month(frame: pl.DataFrame, name: str = "month") -> pl.DataFrame:
    """`name` as a first-of-month Date, whether it arrives as 'YYYY-MM' text, a datetime or a date."""
    dtype = frame.schema[name]
    if dtype == pl.String:
        expr = pl.col(name).str.slice(0, 7).str.strptime(pl.Date, "%Y-%m")
    elif isinstance(dtype, pl.Datetime):
        expr = pl.col(name).dt.date()
    else:
        expr = pl.col(name).cast(pl.Date)
    return frame.with_columns(expr.dt.month_start().alias(name))


def _safe_div(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den != 0).then(num / den).otherwise(None)


def _significant(gap: pl.Expr, reference: pl.Expr, gates: FinancialGates) -> pl.Expr:
    """A gap worth listing: above the absolute floor and above the percentage of its reference
    (any gap above the floor counts when the reference is zero). Null gaps are not gaps."""
    size = gap.abs()
    return (
        (size > gates.gap_min_abs)
        & ((reference.abs() <= 0) | (size > gates.gap_tolerance_pct / 100 * reference.abs()))
    ).fill_null(False)


def _quarter_label(month: pl.Expr) -> pl.Expr:
    return pl.format("{}-Q{}", month.dt.year(), month.dt.quarter())


def _months_frame(months: Iterable[dt.date] | pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"month": pl.Series("month", list(months), dtype=pl.Date)}).unique(maintain_order=True).sort("month")


def _shipped(shortfall_mode: str) -> pl.Expr:
    """Units shipped in the month; the frame must be sorted by scenario, sku, month and hold a
    row for every month (the previous row is the previous month's backlog)."""
    if shortfall_mode not in SHORTFALL_MODES:
        raise ValueError(f"shortfall_mode must be one of {SHORTFALL_MODES}, got {shortfall_mode!r}")
    if shortfall_mode == "lost_sales":
        return pl.col("demand") - pl.col("shortfall")
    previous = pl.col("shortfall").shift(1, fill_value=0.0).over("scenario", "sku")
    return pl.col("demand") + previous - pl.col("shortfall")


# --------------------------------------------------------------------------------------------
# Prices and standard costs
# --------------------------------------------------------------------------------------------


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
    grid = products.select("sku", "family", pl.col("unit_price").cast(pl.Float64)).join(_months_frame(months), how="cross")
    if price_plan is None or price_plan.height == 0:
        return grid.select("sku", "month", pl.col("unit_price").alias("price")).sort("sku", "month")
    plan = _as_month(price_plan).select(
        "level", pl.col("key").cast(pl.String), pl.col("month").alias("from_month"),
        (1 + pl.col("price_change_pct").cast(pl.Float64) / 100).alias("factor"),
    )
    family_changes = plan.filter(pl.col("level") == "family").select(pl.col("key").alias("family"), "from_month", "factor")
    sku_changes = plan.filter(pl.col("level") == "sku").select(pl.col("key").alias("sku"), "from_month", "factor")
    by_family = (
        grid.select("sku", "family", "month").join(family_changes, on="family", how="inner")
        .filter(pl.col("from_month") <= pl.col("month"))
        .group_by("sku", "month", maintain_order=True).agg(pl.col("factor").product().alias("family_factor"))
    )
    by_sku = (
        grid.select("sku", "month").join(sku_changes, on="sku", how="inner")
        .filter(pl.col("from_month") <= pl.col("month"))
        .group_by("sku", "month", maintain_order=True).agg(pl.col("factor").product().alias("sku_factor"))
    )
    return (
        grid.join(by_family, on=["sku", "month"], how="left").join(by_sku, on=["sku", "month"], how="left")
        .select("sku", "month", (pl.col("unit_price") * pl.col("family_factor").fill_null(1.0) * pl.col("sku_factor").fill_null(1.0)).alias("price"))
        .sort("sku", "month")
    )


def standard_costs(
    products: pl.DataFrame,
    bom: pl.DataFrame | None = None,
    materials: pl.DataFrame | None = None,
    routings: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Standard cost per unit of every product: material + conversion.

    Material = sum of BOM qty_per x material unit_cost. Conversion = hours_per_unit of the
    preferred routing (lowest priority; among equals the first resource by name) x its
    cost_per_hour: the plan's standard, whichever alternate the supply plan uses in a month. A
    SKU with neither BOM nor routing has no known make cost, so its product-master unit_cost
    stands in as material (`cost_basis` = 'unit_cost').
    Columns: sku, family, material_cost, conversion_cost, standard_cost, cost_basis,
    primary_resource, hours_per_unit.
    """
    base = products.select("sku", "family", pl.col("unit_cost").cast(pl.Float64))
    if bom is not None and materials is not None and bom.height:
        material = (
            bom.join(materials.select("material", pl.col("unit_cost").cast(pl.Float64).alias("m_cost")), on="material", how="left")
            .sort("sku", "material")
            .group_by("sku", maintain_order=True)
            .agg((pl.col("qty_per") * pl.col("m_cost").fill_null(0.0)).sum().alias("bom_cost"))
        )
    else:
        material = pl.DataFrame(schema={"sku": pl.String, "bom_cost": pl.Float64})
    if routings is not None and routings.height:
        rates = (
            resources.select("resource", pl.col("cost_per_hour").cast(pl.Float64))
            if resources is not None else pl.DataFrame(schema={"resource": pl.String, "cost_per_hour": pl.Float64})
        )
        primary = (
            routings.sort("sku", "priority", "resource")
            .group_by("sku", maintain_order=True).first()
            .join(rates, on="resource", how="left")
            .select("sku", pl.col("resource").alias("primary_resource"), pl.col("hours_per_unit").cast(pl.Float64),
                    (pl.col("hours_per_unit") * pl.col("cost_per_hour").fill_null(0.0)).alias("route_cost"))
        )
    else:
        primary = pl.DataFrame(schema={"sku": pl.String, "primary_resource": pl.String, "hours_per_unit": pl.Float64, "route_cost": pl.Float64})
    frame = base.join(material, on="sku", how="left").join(primary, on="sku", how="left")
    made = pl.col("bom_cost").is_not_null() | pl.col("route_cost").is_not_null()
    return frame.select(
        "sku", "family",
        pl.when(made).then(pl.col("bom_cost").fill_null(0.0)).otherwise(pl.col("unit_cost").fill_null(0.0)).alias("material_cost"),
        pl.when(made).then(pl.col("route_cost").fill_null(0.0)).otherwise(0.0).alias("conversion_cost"),
        pl.when(made).then(pl.lit("bom_routing")).otherwise(pl.lit("unit_cost")).alias("cost_basis"),
        "primary_resource", "hours_per_unit",
    ).with_columns((pl.col("material_cost") + pl.col("conversion_cost")).alias("standard_cost")).select(
        "sku", "family", "material_cost", "conversion_cost", "standard_cost", "cost_basis", "primary_resource", "hours_per_unit"
    ).sort("sku")


# --------------------------------------------------------------------------------------------
# SKU detail and overtime
# --------------------------------------------------------------------------------------------


def _sku_detail(products: pl.DataFrame, supply_plan: pl.DataFrame, consensus: pl.DataFrame, prices: pl.DataFrame | None, shortfall_mode: str) -> pl.DataFrame:
    """Every scenario x SKU x month of the horizon with demand, shipped units, consensus and price.

    The grid is rectangular (every SKU of the supply plan or the consensus in every month), so
    the backlog of the previous month is the previous row and a SKU missing from one side
    counts as zero there instead of vanishing.
    """
    sp = _as_month(supply_plan)
    cons = _as_month(consensus).group_by("sku", "month", maintain_order=True).agg(pl.col("quantity").sum().alias("consensus"))
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
        .with_columns(_shipped(shortfall_mode).alias("shipped"))
    )
    if prices is not None:
        frame = frame.join(prices, on=["sku", "month"], how="left")
    return frame


def overtime_allocation(
    capacity_plan: pl.DataFrame | None,
    resources: pl.DataFrame | None,
    routings: pl.DataFrame | None,
    supply_plan: pl.DataFrame,
    products: pl.DataFrame,
) -> pl.DataFrame:
    """Each resource's overtime premium of a month, split over the families that loaded it.

    Cost = overtime_hours x max(overtime_cost_per_hour - cost_per_hour, 0): standard conversion
    already pays the hour at the regular rate. Weights, first that is positive: the family's
    production x preferred-routing hours on the resource; production x hours over all its
    routings on the resource; the family's share of all production in the month. Overtime in a
    month without any production is left unallocated (the tie-out check reports it).
    Columns: scenario, resource, family, month, overtime_hours, overtime_cost.
    """
    schema = {"scenario": pl.String, "resource": pl.String, "family": pl.String, "month": pl.Date,
              "overtime_hours": pl.Float64, "overtime_cost": pl.Float64}
    if capacity_plan is None or capacity_plan.height == 0 or resources is None:
        return pl.DataFrame(schema=schema)
    premium = resources.select(
        "resource", (pl.col("overtime_cost_per_hour") - pl.col("cost_per_hour")).cast(pl.Float64).clip(lower_bound=0.0).alias("premium")
    )
    ot = (
        _as_month(capacity_plan).filter(pl.col("overtime_hours") > 0)
        .join(premium, on="resource", how="left")
        .select("scenario", "resource", "month", pl.col("overtime_hours").cast(pl.Float64).alias("ot_hours"),
                (pl.col("overtime_hours") * pl.col("premium").fill_null(0.0)).alias("ot_cost"))
    )
    if ot.height == 0:
        return pl.DataFrame(schema=schema)
    prod = (
        _as_month(supply_plan).select("scenario", "sku", "month", pl.col("production").cast(pl.Float64))
        .join(products.select("sku", "family"), on="sku", how="left")
    )
    routes = routings if routings is not None else pl.DataFrame(schema={"sku": pl.String, "resource": pl.String, "hours_per_unit": pl.Float64, "priority": pl.Int64})
    preferred = routes.sort("sku", "priority", "resource").group_by("sku", maintain_order=True).first()

    def load(route_rows: pl.DataFrame, name: str) -> pl.DataFrame:
        return (
            prod.join(route_rows.select("sku", "resource", "hours_per_unit"), on="sku", how="inner")
            .group_by("scenario", "resource", "family", "month", maintain_order=True)
            .agg((pl.col("production") * pl.col("hours_per_unit")).sum().alias(name))
        )

    family_output = prod.group_by("scenario", "family", "month", maintain_order=True).agg(pl.col("production").sum().alias("w3"))
    keys = ["scenario", "resource", "family", "month"]
    frame = (
        ot.join(family_output, on=["scenario", "month"], how="inner")
        .join(load(preferred, "w1"), on=keys, how="left")
        .join(load(routes, "w2"), on=keys, how="left")
        .with_columns(pl.col("w1", "w2", "w3").fill_null(0.0).clip(lower_bound=0.0))
        .with_columns([pl.col(w).sum().over("scenario", "resource", "month").alias(f"{w}_total") for w in ("w1", "w2", "w3")])
    )
    share = (
        pl.when(pl.col("w1_total") > 0).then(pl.col("w1") / pl.col("w1_total"))
        .when(pl.col("w2_total") > 0).then(pl.col("w2") / pl.col("w2_total"))
        .when(pl.col("w3_total") > 0).then(pl.col("w3") / pl.col("w3_total"))
        .otherwise(0.0)
    )
    return (
        frame.with_columns(share.alias("share"))
        .filter(pl.col("share") > 0)
        .select("scenario", "resource", "family", "month",
                (pl.col("ot_hours") * pl.col("share")).alias("overtime_hours"),
                (pl.col("ot_cost") * pl.col("share")).alias("overtime_cost"))
        .sort(keys)
    )


# --------------------------------------------------------------------------------------------
# The financial plan
# --------------------------------------------------------------------------------------------

FINANCIAL_PLAN_COLUMNS = (
    "cycle", "scenario", "family", "month", "volume", "revenue", "cogs", "gross_margin", "inventory_value",
    "unconstrained_volume", "unconstrained_revenue", "material_cost", "conversion_cost", "overtime_cost", "overtime_hours",
)


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
    sp = _as_month(supply_plan)
    months = pl.concat([sp.select("month"), _as_month(consensus).select("month")]).unique(maintain_order=True)["month"]
    prices = price_by_sku_month(products, price_plan, months)
    costs = standard_costs(products, bom, materials, routings, resources).select("sku", "material_cost", "conversion_cost", "standard_cost")
    detail = _sku_detail(products, sp, consensus, prices, shortfall_mode).join(
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
        detail.select("scenario").unique(maintain_order=True)
        .join(detail.select("family").unique(maintain_order=True), how="cross")
        .join(detail.select("month").unique(maintain_order=True), how="cross")
    )
    numbers = [c for c in FINANCIAL_PLAN_COLUMNS if c not in ("cycle", "scenario", "family", "month", "cogs", "gross_margin")]
    return (
        grid.join(by_family, on=["scenario", "family", "month"], how="left")
        .join(overtime, on=["scenario", "family", "month"], how="left")
        .with_columns([pl.col(c).fill_null(0.0) for c in numbers])
        .with_columns((pl.col("material_cost") + pl.col("conversion_cost") + pl.col("overtime_cost")).alias("cogs"))
        .with_columns((pl.col("revenue") - pl.col("cogs")).alias("gross_margin"), pl.lit(label).alias("cycle"))
        .select(FINANCIAL_PLAN_COLUMNS)
        .sort("scenario", "family", "month")
    )


# --------------------------------------------------------------------------------------------
# Budget gap
# --------------------------------------------------------------------------------------------


def _budget(budget: pl.DataFrame) -> pl.DataFrame:
    """The budget per family and month with cogs (revenue - gross margin when not given)."""
    frame = _as_month(budget)
    cogs = pl.col("cogs") if "cogs" in frame.columns else pl.col("revenue") - pl.col("gross_margin")
    return (
        frame.select("family", "month", pl.col("volume").cast(pl.Float64), pl.col("revenue").cast(pl.Float64),
                     pl.col("gross_margin").cast(pl.Float64), cogs.cast(pl.Float64).alias("cogs"))
        .sort("family", "month")
        .group_by("family", "month", maintain_order=True).sum()
    )


def _plan_vs_budget(plan: pl.DataFrame, budget: pl.DataFrame) -> pl.DataFrame:
    """Plan and budget side by side per cycle, scenario, family and month, over the months both
    cover: a plan month beyond the budget year has nothing to be compared with, while a family
    one side lacks in a covered month counts as zero on that side."""
    bud = _budget(budget)
    months = plan.select("month").unique(maintain_order=True).join(bud.select("month").unique(maintain_order=True), on="month", how="inner")
    p = plan.join(months, on="month", how="semi")
    b = bud.join(months, on="month", how="semi")
    heads = p.select("cycle", "scenario").unique(maintain_order=True)
    families = pl.concat([p.select("family"), b.select("family")]).unique(maintain_order=True)
    grid = heads.join(families, how="cross").join(months, how="cross")
    return (
        grid.join(p.select("cycle", "scenario", "family", "month", *[pl.col(m).alias(f"plan_{m}") for m in MEASURES]),
                  on=["cycle", "scenario", "family", "month"], how="left")
        .join(b.select("family", "month", *[pl.col(m).alias(f"budget_{m}") for m in MEASURES]), on=["family", "month"], how="left")
        .with_columns(pl.col("^(plan|budget)_.*$").fill_null(0.0))
    )


def budget_gap(financial_plan: pl.DataFrame, budget: pl.DataFrame, gates: FinancialGates = FinancialGates()) -> pl.DataFrame:
    """planning.budget_gap: plan against budget for volume, revenue and gross margin.

    One row per cycle, scenario, family (each family and `ALL`), period ('month' | 'quarter'),
    period label ('2026-11' | '2026-Q4') and measure, with plan, budget, gap = plan - budget,
    gap_pct = gap / |budget| x 100 (null when the budget is zero) and above_tolerance (the gap
    passes `gap_tolerance_pct` and `gap_min_abs`). Only months both the plan and the budget
    cover are compared; a quarter sums its covered months, so the first and last quarter of the
    horizon may be partial. `month` is set on month rows only.
    """
    wide = _plan_vs_budget(financial_plan, budget)
    value_cols = [f"{side}_{m}" for side in ("plan", "budget") for m in MEASURES]
    total = wide.sort("cycle", "scenario", "month", "family").group_by("cycle", "scenario", "month", maintain_order=True).agg(
        pl.col(value_cols).sum()
    ).with_columns(pl.lit(ALL).alias("family"))
    monthly = pl.concat([wide.select("cycle", "scenario", "family", "month", *value_cols),
                         total.select("cycle", "scenario", "family", "month", *value_cols)])
    months = monthly.with_columns(pl.lit("month").alias("period"), pl.col("month").dt.strftime("%Y-%m").alias("period_label"))
    quarters = (
        monthly.with_columns(_quarter_label(pl.col("month")).alias("period_label"))
        .sort("cycle", "scenario", "family", "month")
        .group_by("cycle", "scenario", "family", "period_label", maintain_order=True)
        .agg(pl.col(value_cols).sum())
        .with_columns(pl.lit("quarter").alias("period"), pl.lit(None, dtype=pl.Date).alias("month"))
    )
    both = pl.concat([months.select(quarters.columns), quarters], how="vertical")
    long = pl.concat(
        [both.select("cycle", "scenario", "family", "period", "period_label", "month", pl.lit(m).alias("measure"),
                     pl.col(f"plan_{m}").alias("plan"), pl.col(f"budget_{m}").alias("budget")) for m in MEASURES],
        how="vertical",
    )
    order = {m: i for i, m in enumerate(MEASURES)}
    return long.with_columns(
        (pl.col("plan") - pl.col("budget")).alias("gap"),
    ).with_columns(
        (100 * _safe_div(pl.col("gap"), pl.col("budget").abs())).alias("gap_pct"),
        _significant(pl.col("gap"), pl.col("budget"), gates).alias("above_tolerance"),
    ).sort(
        "scenario", pl.col("family") == ALL, "family", "period", "period_label", pl.col("measure").replace_strict(order, return_dtype=pl.Int32)
    ).select("cycle", "scenario", "family", "period", "period_label", "month", "measure", "plan", "budget", "gap", "gap_pct", "above_tolerance")


# --------------------------------------------------------------------------------------------
# Price / volume / mix bridge
# --------------------------------------------------------------------------------------------


def _pvm(start: pl.DataFrame, end: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Family-level price/volume/mix steps from `start` to `end` (family, volume, revenue per keys).

    With V total units, s a family's unit share and p its average price (revenue / units),
    start values indexed 0 and end values 1, per family f:
      volume_f = (V1 - V0) x s0_f x p0_f   (sums to (V1 - V0) x average start price)
      mix_f    = (s1_f - s0_f) x V1 x p0_f
      price_f  = (R1_f - R0_f) - volume_f - mix_f   (= V1_f x (p1_f - p0_f) when p0_f exists)
    Price is the residual so that the steps add up to R1 - R0 exactly, also for a family new
    on one side (its start price is its end price: it is all mix) or a budget with revenue but
    no units. SKU mix inside a family moves the family's average price, so it shows as price.
    """
    s = start.select(*keys, "family", pl.col("volume").alias("v0"), pl.col("revenue").alias("r0"))
    e = end.select(*keys, "family", pl.col("volume").alias("v1"), pl.col("revenue").alias("r1"))
    frame = s.join(e, on=[*keys, "family"], how="full", coalesce=True).with_columns(pl.col("v0", "r0", "v1", "r1").fill_null(0.0))
    frame = frame.with_columns(
        pl.col("v0").sum().over(keys).alias("V0"), pl.col("v1").sum().over(keys).alias("V1"),
    ).with_columns(
        pl.when(pl.col("V0") > 0).then(pl.col("v0") / pl.col("V0")).otherwise(0.0).alias("s0"),
        pl.when(pl.col("V1") > 0).then(pl.col("v1") / pl.col("V1")).otherwise(0.0).alias("s1"),
        pl.when(pl.col("v0") > 0).then(pl.col("r0") / pl.col("v0"))
        .when(pl.col("v1") > 0).then(pl.col("r1") / pl.col("v1")).otherwise(0.0).alias("p0"),
    ).with_columns(
        ((pl.col("V1") - pl.col("V0")) * pl.col("s0") * pl.col("p0")).alias("volume"),
        ((pl.col("s1") - pl.col("s0")) * pl.col("V1") * pl.col("p0")).alias("mix"),
    ).with_columns(
        (pl.col("r1") - pl.col("r0") - pl.col("volume") - pl.col("mix")).alias("price"),
    )
    steps = frame.unpivot(index=[*keys, "family"], on=["volume", "mix", "price"], variable_name="step", value_name="value")
    ends = frame.group_by(keys, maintain_order=True).agg(pl.col("r0").sum().alias("start"), pl.col("r1").sum().alias("end")).unpivot(
        index=keys, on=["start", "end"], variable_name="step", value_name="value"
    ).with_columns(pl.lit(ALL).alias("family"))
    order = {name: i for i, name in enumerate(BRIDGE_STEPS)}
    return pl.concat([steps, ends.select(steps.columns)], how="vertical").with_columns(
        pl.col("step").replace_strict(order, return_dtype=pl.Int32).alias("step_order")
    )


def plan_bridge(financial_plan: pl.DataFrame, budget: pl.DataFrame | None = None, last_plan: pl.DataFrame | None = None) -> pl.DataFrame:
    """planning.plan_bridge: revenue from the budget, and from last cycle's approved plan, to
    this cycle's plan, per scenario, in price / volume / mix steps (see `_pvm`).

    Rows: cycle, comparison ('budget_to_plan' | 'last_cycle_to_plan'), scenario, family, step
    ('start' | 'volume' | 'mix' | 'price' | 'end'), step_order, value. start and end carry
    family `ALL`; the effects are per family and their sum over families and steps is exactly
    end - start. budget_to_plan covers the months both the plan and the budget cover;
    last_cycle_to_plan the months both plans cover, starting from last cycle's baseline.
    """
    plan = financial_plan.select("cycle", "scenario", "family", "month", "volume", "revenue")
    keys = ["cycle", "comparison", "scenario"]
    parts = []
    if budget is not None and budget.height:
        wide = _plan_vs_budget(plan.with_columns(pl.lit(0.0).alias("gross_margin")), budget)
        agg = wide.group_by("cycle", "scenario", "family", maintain_order=True).agg(pl.col("plan_volume", "plan_revenue", "budget_volume", "budget_revenue").sum())
        agg = agg.with_columns(pl.lit("budget_to_plan").alias("comparison"))
        parts.append(_pvm(
            agg.select(*keys, "family", pl.col("budget_volume").alias("volume"), pl.col("budget_revenue").alias("revenue")),
            agg.select(*keys, "family", pl.col("plan_volume").alias("volume"), pl.col("plan_revenue").alias("revenue")),
            keys,
        ))
    if last_plan is not None and last_plan.height:
        last = _as_month(last_plan)
        if "scenario" in last.columns:
            last = last.filter(pl.col("scenario") == BASELINE)
        months = plan.select("month").unique(maintain_order=True).join(last.select("month").unique(maintain_order=True), on="month", how="inner")
        heads = plan.select("cycle", "scenario").unique(maintain_order=True).with_columns(pl.lit("last_cycle_to_plan").alias("comparison"))
        start = heads.join(
            last.join(months, on="month", how="semi").group_by("family", maintain_order=True).agg(pl.col("volume", "revenue").sum()), how="cross"
        )
        end = (
            plan.join(months, on="month", how="semi").group_by("cycle", "scenario", "family", maintain_order=True).agg(pl.col("volume", "revenue").sum())
            .with_columns(pl.lit("last_cycle_to_plan").alias("comparison"))
        )
        parts.append(_pvm(start.select(*keys, "family", "volume", "revenue"), end.select(*keys, "family", "volume", "revenue"), keys))
    if not parts:
        return pl.DataFrame(schema={"cycle": pl.String, "comparison": pl.String, "scenario": pl.String, "family": pl.String,
                                    "step": pl.String, "step_order": pl.Int32, "value": pl.Float64})
    return pl.concat(parts, how="vertical").select("cycle", "comparison", "scenario", "family", "step", "step_order", "value").sort(
        "comparison", "scenario", "step_order", "family"
    )


# --------------------------------------------------------------------------------------------
# Reconciliation of the three views
# --------------------------------------------------------------------------------------------

RECONCILIATION_COLUMNS = (
    "cycle", "scenario", "family", "month", "measure", "unconstrained", "plan", "budget", "gap", "gap_pct",
    "supply_gap", "demand_gap", "component", "cause", "driver", "amount",
    "overtime_hours", "overtime_cost", "lever_scenario", "lever_closes", "lever_extra_cogs",
)
SUPPLY_CAUSES = {"capacity": "capacity", "resource": "capacity", "material": "material", "supplier": "material",
                 "cost": "supply_cost_tradeoff", "mix": "supply_mix"}


def _exception_causes(supply_exceptions: pl.DataFrame | None) -> pl.DataFrame:
    """Per scenario, SKU and month: the cause ('capacity', 'material', ...) and the driver
    (the constraint, with its month when known) of a shortfall, read from the supply review's
    exceptions: `constraint_kind` + `constraint`, or a `binding_constraint` text such as
    'resource:R01' / 'material:M07'. Without either column the cause stays unknown."""
    schema = {"scenario": pl.String, "sku": pl.String, "month": pl.Date, "ex_cause": pl.String, "ex_driver": pl.String}
    if supply_exceptions is None or supply_exceptions.height == 0:
        return pl.DataFrame(schema=schema)
    ex = _as_month(supply_exceptions)
    if "constraint_kind" in ex.columns:
        kind = pl.col("constraint_kind")
        name = pl.col("constraint") if "constraint" in ex.columns else pl.lit(None, dtype=pl.String)
    elif "binding_constraint" in ex.columns:
        text = pl.col("binding_constraint").cast(pl.String)
        has_prefix = text.str.contains(":")
        kind = pl.when(has_prefix).then(text.str.split(":").list.first().str.strip_chars().str.to_lowercase())
        name = pl.when(has_prefix).then(text.str.split_exact(":", 1).struct.field("field_1").str.strip_chars()).otherwise(text)
    else:
        kind = pl.lit(None, dtype=pl.String)
        name = pl.lit(None, dtype=pl.String)
    cause = kind.replace_strict(SUPPLY_CAUSES, default=pl.concat_str(pl.lit("supply_"), kind), return_dtype=pl.String)
    if "constraint_month" in ex.columns:
        when = _as_month(ex, "constraint_month")["constraint_month"].dt.strftime("%Y-%m")
        ex = ex.with_columns(when.alias("_cmonth"))
        driver = pl.when(pl.col("_cmonth").is_not_null() & name.is_not_null()).then(pl.format("{} ({})", name, pl.col("_cmonth"))).otherwise(name)
    else:
        driver = name
    weight = pl.col("shortfall").cast(pl.Float64).fill_null(0.0) if "shortfall" in ex.columns else pl.lit(0.0)
    return (
        ex.with_columns(cause.alias("ex_cause"), driver.alias("ex_driver"), weight.alias("_w"))
        .sort("scenario", "sku", "month", "_w", descending=[False, False, False, True])
        .group_by("scenario", "sku", "month", maintain_order=True)
        .agg(pl.col("ex_cause").first(), pl.col("ex_driver").first())
    )


def reconciliation(
    financial_plan: pl.DataFrame,
    budget: pl.DataFrame | None,
    supply_plan: pl.DataFrame,
    consensus: pl.DataFrame,
    products: pl.DataFrame,
    supply_exceptions: pl.DataFrame | None = None,
    price_plan: pl.DataFrame | None = None,
    gates: FinancialGates = FinancialGates(),
    scenario: str = BASELINE,
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """planning.reconciliation: every gap between demand, supply and budget, split by cause.

    Per family, month and measure (volume in units, revenue and gross_margin in money) of
    `scenario`: unconstrained (consensus), plan (constrained), budget; gap = plan - budget,
    supply_gap = plan - unconstrained, demand_gap = unconstrained - budget. A family-month-
    measure is listed when any of the three gaps passes the tolerance (`_significant`), and then
    with all its non-zero components, one row each, whose amounts add up to the gap exactly
    (to supply_gap in months without budget). With pB, cB the budget's price and unit cost
    (the plan's where the budget has no units), U, C, B units and U$, C$, B$ revenue:

    * demand: U x pB - B$ for revenue, U - B for volume, U x (pB - cB) - budget margin for
      margin; cause 'demand_below_budget' or 'demand_above_budget' (by U vs B).
    * price: U$ - U x pB (revenue and margin): prices (and SKU mix) differ from the budget's.
    * cost: -(C cogs - C x cB) (margin only): standard cost and overtime premium vs the
      budget's unit cost.
    * supply: plan - unconstrained, SKU by SKU (units x price; margin at price - cB), split by
      the supply exception of the SKU-month: 'capacity' or 'material' with the binding
      constraint as driver, 'supply_cost_tradeoff' or 'supply_mix' when nothing binds,
      'supply_shortfall' when no exception says why, 'backlog_recovery' for backlog shipped
      late, 'scenario_demand' where the scenario plans a demand other than the consensus.

    Levers, on every row: overtime_hours and overtime_cost already in the family-month's plan.
    On supply rows that pull the plan down (amount < 0): the scenario whose plan of the
    family-month-measure is highest above this one's (lever_closes, in the measure's unit; it
    may exceed the row's amount) and its extra COGS for the family-month (lever_extra_cogs);
    null when no scenario does better. Scenarios are supply levers: a demand gap's levers are
    commercial, for the meeting to name.
    """
    plan = financial_plan.filter(pl.col("scenario") == scenario)
    label = plan["cycle"][0] if plan.height else None
    fm = plan.select(
        "family", "month", pl.col("volume").alias("C"), pl.col("revenue").alias("C_rev"), pl.col("cogs").alias("C_cogs"),
        pl.col("gross_margin").alias("C_gm"), pl.col("unconstrained_volume").alias("U"), pl.col("unconstrained_revenue").alias("U_rev"),
        "overtime_hours", "overtime_cost",
    )
    if budget is not None and budget.height:
        bud = _budget(budget)
        covered = fm.select("month").unique(maintain_order=True).join(bud.select("month").unique(maintain_order=True), on="month", how="inner").with_columns(pl.lit(True).alias("has_budget"))
        bud = bud.join(covered, on="month", how="semi").select(
            "family", "month", pl.col("volume").alias("B"), pl.col("revenue").alias("B_rev"),
            pl.col("cogs").alias("B_cogs"), pl.col("gross_margin").alias("B_gm"),
        )
        fm = fm.join(bud, on=["family", "month"], how="full", coalesce=True).join(covered, on="month", how="left")
    else:
        fm = fm.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in ("B", "B_rev", "B_cogs", "B_gm")).with_columns(
            pl.lit(None, dtype=pl.Boolean).alias("has_budget")
        )
    has_budget = pl.col("has_budget").fill_null(False)
    fm = fm.with_columns(
        pl.col("C", "C_rev", "C_cogs", "C_gm", "U", "U_rev", "overtime_hours", "overtime_cost").fill_null(0.0),
        *[pl.when(has_budget).then(pl.col(c).fill_null(0.0)).alias(c) for c in ("B", "B_rev", "B_cogs", "B_gm")],
    ).with_columns(
        pl.when(pl.col("B") > 0).then(pl.col("B_rev") / pl.col("B"))
        .when(pl.col("U") > 0).then(pl.col("U_rev") / pl.col("U")).otherwise(0.0).alias("pB"),
        pl.when(pl.col("B") > 0).then(pl.col("B_cogs") / pl.col("B"))
        .when(pl.col("C") > 0).then(pl.col("C_cogs") / pl.col("C")).otherwise(0.0).alias("cB"),
    )

    # Supply components, SKU by SKU.
    months = fm["month"].unique(maintain_order=True)
    prices = price_by_sku_month(products, price_plan, months)
    detail = _sku_detail(products, supply_plan.filter(pl.col("scenario") == scenario), consensus, prices, shortfall_mode)
    causes = _exception_causes(supply_exceptions)
    detail = detail.join(causes, on=["scenario", "sku", "month"], how="left").join(fm.select("family", "month", "cB"), on=["family", "month"], how="left")
    late = pl.col("shipped") - pl.col("demand")
    short_rows = detail.select(
        "family", "month", "price", "cB", late.alias("d"),
        pl.when(late < 0).then(pl.col("ex_cause").fill_null("supply_shortfall")).otherwise(pl.lit("backlog_recovery")).alias("cause"),
        pl.when(late < 0).then(pl.col("ex_driver")).otherwise(None).alias("driver"),
    )
    demand_rows = detail.select(
        "family", "month", "price", "cB", (pl.col("demand") - pl.col("consensus")).alias("d"),
        pl.lit("scenario_demand").alias("cause"), pl.lit(None, dtype=pl.String).alias("driver"),
    )
    supply = (
        pl.concat([short_rows, demand_rows.select(short_rows.columns)], how="vertical")
        .filter(pl.col("d").abs() > EPS)
        .sort("family", "month", "cause", "driver", nulls_last=True)
        .group_by("family", "month", "cause", "driver", maintain_order=True)
        .agg(pl.col("d").sum().alias("volume"), (pl.col("d") * pl.col("price")).sum().alias("revenue"),
             (pl.col("d") * (pl.col("price") - pl.col("cB"))).sum().alias("gross_margin"))
        .unpivot(index=["family", "month", "cause", "driver"], on=list(MEASURES), variable_name="measure", value_name="amount")
        .with_columns(pl.lit("supply").alias("component"))
    )
    supply_gm = supply.filter(pl.col("measure") == "gross_margin").group_by("family", "month", maintain_order=True).agg(pl.col("amount").sum().alias("S_gm"))
    fm = fm.join(supply_gm, on=["family", "month"], how="left").with_columns(pl.col("S_gm").fill_null(0.0))

    # The three views per measure, and the components of the demand-budget side.
    views = pl.concat([
        fm.select("family", "month", "has_budget", pl.lit("volume").alias("measure"), pl.col("U").alias("unconstrained"),
                  pl.col("C").alias("plan"), pl.col("B").alias("budget")),
        fm.select("family", "month", "has_budget", pl.lit("revenue").alias("measure"), pl.col("U_rev").alias("unconstrained"),
                  pl.col("C_rev").alias("plan"), pl.col("B_rev").alias("budget")),
        fm.select("family", "month", "has_budget", pl.lit("gross_margin").alias("measure"), (pl.col("C_gm") - pl.col("S_gm")).alias("unconstrained"),
                  pl.col("C_gm").alias("plan"), pl.col("B_gm").alias("budget")),
    ], how="vertical").with_columns(
        (pl.col("plan") - pl.col("budget")).alias("gap"),
        (pl.col("plan") - pl.col("unconstrained")).alias("supply_gap"),
        (pl.col("unconstrained") - pl.col("budget")).alias("demand_gap"),
    ).with_columns(
        (100 * _safe_div(pl.col("gap"), pl.col("budget").abs())).alias("gap_pct"),
        (_significant(pl.col("gap"), pl.col("budget"), gates)
         | _significant(pl.col("supply_gap"), pl.col("unconstrained"), gates)
         | _significant(pl.col("demand_gap"), pl.col("budget"), gates)).alias("listed"),
    )
    below = pl.when(pl.col("U") < pl.col("B")).then(pl.lit("demand_below_budget")).otherwise(pl.lit("demand_above_budget"))
    budgeted = fm.filter(has_budget)
    price_amount = pl.col("U_rev") - pl.col("U") * pl.col("pB")
    side = pl.concat([
        budgeted.select("family", "month", pl.lit("volume").alias("measure"), pl.lit("demand").alias("component"), below.alias("cause"),
                        (pl.col("U") - pl.col("B")).alias("amount")),
        budgeted.select("family", "month", pl.lit("revenue").alias("measure"), pl.lit("demand").alias("component"), below.alias("cause"),
                        (pl.col("U") * pl.col("pB") - pl.col("B_rev")).alias("amount")),
        budgeted.select("family", "month", pl.lit("revenue").alias("measure"), pl.lit("price").alias("component"), pl.lit("price").alias("cause"),
                        price_amount.alias("amount")),
        budgeted.select("family", "month", pl.lit("gross_margin").alias("measure"), pl.lit("demand").alias("component"), below.alias("cause"),
                        (pl.col("U") * (pl.col("pB") - pl.col("cB")) - (pl.col("B_rev") - pl.col("B_cogs"))).alias("amount")),
        budgeted.select("family", "month", pl.lit("gross_margin").alias("measure"), pl.lit("price").alias("component"), pl.lit("price").alias("cause"),
                        price_amount.alias("amount")),
        budgeted.select("family", "month", pl.lit("gross_margin").alias("measure"), pl.lit("cost").alias("component"), pl.lit("cost").alias("cause"),
                        (-(pl.col("C_cogs") - pl.col("C") * pl.col("cB"))).alias("amount")),
    ], how="vertical").with_columns(pl.lit(None, dtype=pl.String).alias("driver"))
    components = pl.concat([side.select("family", "month", "measure", "component", "cause", "driver", "amount"),
                            supply.select("family", "month", "measure", "component", "cause", "driver", "amount")], how="vertical")

    # Levers: the scenario that adds most to the family-month-measure, and what it costs.
    others = financial_plan.filter(pl.col("scenario") != scenario)
    base_vals = plan.select("family", "month", pl.col("cogs").alias("base_cogs"), *[pl.col(m).alias(f"base_{m}") for m in MEASURES])
    lever = (
        pl.concat([
            others.select("scenario", "family", "month", "cogs", pl.lit(m).alias("measure"), pl.col(m).alias("value"))
            for m in MEASURES
        ], how="vertical")
        .join(base_vals, on=["family", "month"], how="inner")
        .with_columns(
            pl.when(pl.col("measure") == "volume").then(pl.col("value") - pl.col("base_volume"))
            .when(pl.col("measure") == "revenue").then(pl.col("value") - pl.col("base_revenue"))
            .otherwise(pl.col("value") - pl.col("base_gross_margin")).alias("lever_closes"),
            (pl.col("cogs") - pl.col("base_cogs")).alias("lever_extra_cogs"),
        )
        .filter(pl.col("lever_closes") > EPS)
        .sort(["family", "month", "measure", "lever_closes", "scenario"], descending=[False, False, False, True, False])
        .group_by("family", "month", "measure", maintain_order=True)
        .agg(pl.col("scenario").first().alias("lever_scenario"), pl.col("lever_closes").first(), pl.col("lever_extra_cogs").first())
    )
    pulls_down = (pl.col("component") == "supply") & (pl.col("amount") < 0)
    order_measure = {m: i for i, m in enumerate(MEASURES)}
    order_component = {c: i for i, c in enumerate(COMPONENTS)}
    return (
        views.filter(pl.col("listed"))
        .join(components.filter(pl.col("amount").abs() > EPS), on=["family", "month", "measure"], how="inner")
        .join(fm.select("family", "month", "overtime_hours", "overtime_cost"), on=["family", "month"], how="left")
        .join(lever, on=["family", "month", "measure"], how="left")
        .with_columns(
            pl.when(pulls_down).then(pl.col("lever_scenario")).alias("lever_scenario"),
            pl.when(pulls_down).then(pl.col("lever_closes")).alias("lever_closes"),
            pl.when(pulls_down).then(pl.col("lever_extra_cogs")).alias("lever_extra_cogs"),
            pl.lit(label, dtype=pl.String).alias("cycle"), pl.lit(scenario).alias("scenario"),
        )
        .sort("family", "month", pl.col("measure").replace_strict(order_measure, return_dtype=pl.Int32),
              pl.col("component").replace_strict(order_component, return_dtype=pl.Int32), "cause", "driver", nulls_last=True)
        .select(RECONCILIATION_COLUMNS)
    )


# --------------------------------------------------------------------------------------------
# Scenarios side by side
# --------------------------------------------------------------------------------------------


def scenario_comparison(financial_plan: pl.DataFrame) -> pl.DataFrame:
    """Every scenario in money over the whole horizon, side by side with the baseline.

    Per cycle and scenario: volume, revenue, unconstrained_revenue, cogs, overtime_cost,
    gross_margin, gross_margin_pct, inventory_value (end of horizon: the last month's stock)
    and inventory_value_avg (average month-end value), then delta_<x> = scenario - baseline
    for volume, revenue, cogs, gross_margin and inventory_value (null without a baseline).
    """
    last = financial_plan.group_by("cycle", "scenario", maintain_order=True).agg(pl.col("month").max().alias("_last"))
    monthly_inv = financial_plan.group_by("cycle", "scenario", "month", maintain_order=True).agg(pl.col("inventory_value").sum())
    inv = monthly_inv.join(last, on=["cycle", "scenario"]).group_by("cycle", "scenario", maintain_order=True).agg(
        pl.col("inventory_value").filter(pl.col("month") == pl.col("_last")).sum().alias("inventory_value"),
        pl.col("inventory_value").mean().alias("inventory_value_avg"),
    )
    totals = (
        financial_plan.sort("cycle", "scenario", "family", "month")
        .group_by("cycle", "scenario", maintain_order=True)
        .agg(pl.col("volume", "revenue", "unconstrained_revenue", "cogs", "overtime_cost", "gross_margin").sum())
        .join(inv, on=["cycle", "scenario"], how="left")
        .with_columns((100 * _safe_div(pl.col("gross_margin"), pl.col("revenue"))).alias("gross_margin_pct"))
    )
    deltas = ["volume", "revenue", "cogs", "gross_margin", "inventory_value"]
    base = totals.filter(pl.col("scenario") == BASELINE).select("cycle", *[pl.col(c).alias(f"_base_{c}") for c in deltas])
    return (
        totals.join(base, on="cycle", how="left")
        .with_columns([(pl.col(c) - pl.col(f"_base_{c}")).alias(f"delta_{c}") for c in deltas])
        .sort(pl.col("scenario") != BASELINE, "scenario")
        .select("cycle", "scenario", "volume", "revenue", "unconstrained_revenue", "cogs", "overtime_cost", "gross_margin",
                "gross_margin_pct", "inventory_value", "inventory_value_avg", *[f"delta_{c}" for c in deltas])
    )


# --------------------------------------------------------------------------------------------
# Checks: numbers that must tie out (a gap is a finding, never a failure)
# --------------------------------------------------------------------------------------------

PROBLEM_SCHEMA = {"check": pl.String, "level": pl.String, "scenario": pl.String, "family": pl.String, "month": pl.Date,
                  "measure": pl.String, "expected": pl.Float64, "actual": pl.Float64, "difference": pl.Float64}


def _mismatches(frame: pl.DataFrame, check: str, level: str, measure: str, gates: FinancialGates) -> pl.DataFrame:
    """Rows of `frame` (scenario, family, month, expected, actual; either may be null when the
    row is missing on one side) whose values differ beyond the tie-out tolerance."""
    diff = pl.col("actual") - pl.col("expected")
    limit = pl.max_horizontal(pl.lit(gates.tie_out_tolerance), gates.tie_out_tolerance_rel * pl.col("expected").abs().fill_null(0.0))
    bad = pl.col("expected").is_null() | pl.col("actual").is_null() | ~diff.is_finite() | (diff.abs() > limit)
    return frame.filter(bad).select(
        pl.lit(check).alias("check"), pl.lit(level).alias("level"), pl.col("scenario").cast(pl.String),
        pl.col("family").cast(pl.String), pl.col("month").cast(pl.Date), pl.lit(measure).alias("measure"),
        pl.col("expected").cast(pl.Float64), pl.col("actual").cast(pl.Float64), diff.cast(pl.Float64).alias("difference"),
    )


def tie_out_problems(
    financial_plan: pl.DataFrame,
    supply_plan: pl.DataFrame,
    consensus: pl.DataFrame,
    products: pl.DataFrame,
    price_plan: pl.DataFrame | None = None,
    capacity_plan: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
    gates: FinancialGates = FinancialGates(),
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """Numbers that do not tie out; an empty frame means the financial plan adds up.

    Recomputed from the inputs, not from the plan: SKU units x SKU price summed to family
    (volume, revenue, unconstrained_volume, unconstrained_revenue per scenario, family and
    month) and to the scenario total; gross_margin = revenue - cogs and cogs = material +
    conversion + overtime on every row; the allocated overtime cost of each scenario-month
    equals the capacity plan's overtime hours x premium. Columns: check, level, scenario,
    family, month, measure, expected, actual, difference.
    """
    sp = _as_month(supply_plan)
    months = pl.concat([sp.select("month"), _as_month(consensus).select("month")]).unique(maintain_order=True)["month"]
    prices = price_by_sku_month(products, price_plan, months)
    sku = _sku_detail(products, sp, consensus, prices, shortfall_mode).with_columns(
        (pl.col("shipped") * pl.col("price")).alias("revenue"),
        (pl.col("consensus") * pl.col("price")).alias("unconstrained_revenue"),
        pl.col("shipped").alias("volume"), pl.col("consensus").alias("unconstrained_volume"),
    )
    measures = ["volume", "revenue", "unconstrained_volume", "unconstrained_revenue"]
    fp = financial_plan
    out = [pl.DataFrame(schema=PROBLEM_SCHEMA)]
    family = sku.group_by("scenario", "family", "month", maintain_order=True).agg(pl.col(measures).sum())
    total = sku.group_by("scenario", maintain_order=True).agg(pl.col(measures).sum())
    fp_total = fp.group_by("scenario", maintain_order=True).agg(pl.col(measures).sum())
    keys = ["scenario", "family", "month"]
    for m in measures:  # four measures, each checked over whole frames
        joined = family.select(*keys, pl.col(m).alias("expected")).join(fp.select(*keys, pl.col(m).alias("actual")), on=keys, how="full", coalesce=True)
        out.append(_mismatches(joined, "units_x_price", "family", m, gates))
        joined = total.select("scenario", pl.col(m).alias("expected")).join(
            fp_total.select("scenario", pl.col(m).alias("actual")), on="scenario", how="full", coalesce=True
        ).with_columns(pl.lit(ALL).alias("family"), pl.lit(None, dtype=pl.Date).alias("month"))
        out.append(_mismatches(joined, "units_x_price", "total", m, gates))
    out.append(_mismatches(fp.select(*keys, (pl.col("revenue") - pl.col("cogs")).alias("expected"), pl.col("gross_margin").alias("actual")),
                           "margin_identity", "family", "gross_margin", gates))
    out.append(_mismatches(fp.select(*keys, (pl.col("material_cost") + pl.col("conversion_cost") + pl.col("overtime_cost")).alias("expected"),
                                     pl.col("cogs").alias("actual")), "cogs_identity", "family", "cogs", gates))
    if capacity_plan is not None and capacity_plan.height and resources is not None:
        premium = resources.select("resource", (pl.col("overtime_cost_per_hour") - pl.col("cost_per_hour")).clip(lower_bound=0.0).alias("premium"))
        expected = (
            _as_month(capacity_plan).join(premium, on="resource", how="left")
            .group_by("scenario", "month", maintain_order=True).agg((pl.col("overtime_hours") * pl.col("premium").fill_null(0.0)).sum().alias("expected"))
        )
        actual = fp.group_by("scenario", "month", maintain_order=True).agg(pl.col("overtime_cost").sum().alias("actual"))
        joined = expected.join(actual, on=["scenario", "month"], how="full", coalesce=True).with_columns(
            pl.col("expected", "actual").fill_null(0.0), pl.lit(ALL).alias("family")
        )
        out.append(_mismatches(joined, "overtime_allocated", "total", "overtime_cost", gates))
    return pl.concat(out, how="vertical").sort("check", "level", "scenario", "family", "month", nulls_last=True)


def coverage_problems(financial_plan: pl.DataFrame, supply_plan: pl.DataFrame, consensus: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """Holes in the projection: every scenario of the supply plan must have exactly one row for
    every family (of the consensus and of the supply plan's SKUs) in every horizon month, with
    finite numbers. Columns: scenario, family, month, problem."""
    sp = _as_month(supply_plan)
    cons = _as_month(consensus)
    families = pl.concat([
        cons.select("sku").join(products.select("sku", "family"), on="sku", how="left").select("family"),
        sp.select("sku").join(products.select("sku", "family"), on="sku", how="left").select("family"),
    ]).unique(maintain_order=True)
    months = pl.concat([sp.select("month"), cons.select("month")]).unique(maintain_order=True)
    expected = sp.select("scenario").unique(maintain_order=True).join(families, how="cross").join(months, how="cross")
    keys = ["scenario", "family", "month"]
    fp = financial_plan.select(keys).with_columns(pl.col("month").cast(pl.Date))
    missing = expected.join(fp, on=keys, how="anti", nulls_equal=True).with_columns(pl.lit("missing family-month").alias("problem"))
    duplicated = fp.group_by(keys, maintain_order=True).agg(pl.len().alias("n")).filter(pl.col("n") > 1).select(*keys, pl.lit("duplicate rows").alias("problem"))
    no_family = fp.filter(pl.col("family").is_null()).with_columns(pl.lit("family unknown (SKU not in the product master)").alias("problem"))
    numbers = [c for c in FINANCIAL_PLAN_COLUMNS if c in financial_plan.columns and c not in ("cycle", *keys)]
    not_finite = financial_plan.filter(pl.any_horizontal([~pl.col(c).is_finite().fill_null(False) for c in numbers])).select(
        *keys, pl.lit("value missing or not finite").alias("problem")
    )
    return pl.concat([missing.select(*keys, "problem"), duplicated, no_family.select(*keys, "problem"), not_finite], how="vertical").sort(
        keys, nulls_last=True
    )


def reconciliation_problems(
    reconciliation: pl.DataFrame,
    budget_gap: pl.DataFrame,
    financial_plan: pl.DataFrame,
    gates: FinancialGates = FinancialGates(),
    scenario: str = BASELINE,
) -> pl.DataFrame:
    """Gaps above tolerance the reconciliation does not explain.

    Every family-month plan-vs-budget gap of `budget_gap` and every supply gap (plan vs
    unconstrained, volume and revenue, from `financial_plan`) above tolerance, recomputed from
    the values, must have reconciliation rows with a cause; the amounts of each listed
    family-month-measure must add up to its gap (to the supply gap without budget). Columns:
    family, month, measure, problem, gap.
    """
    rec = reconciliation.filter(pl.col("scenario") == scenario)
    keys = ["family", "month", "measure"]
    budget_gaps = budget_gap.filter(
        (pl.col("scenario") == scenario) & (pl.col("period") == "month") & (pl.col("family") != ALL)
        & _significant(pl.col("plan") - pl.col("budget"), pl.col("budget"), gates)
    ).select(*keys, (pl.col("plan") - pl.col("budget")).alias("gap"), pl.lit("budget gap").alias("kind"))
    fp = financial_plan.filter(pl.col("scenario") == scenario)
    supply_gaps = pl.concat([
        fp.select("family", "month", pl.lit(m).alias("measure"), (pl.col(m) - pl.col(f"unconstrained_{m}")).alias("gap"),
                  pl.col(f"unconstrained_{m}").alias("reference"))
        for m in ("volume", "revenue")
    ], how="vertical").filter(_significant(pl.col("gap"), pl.col("reference"), gates)).select(*keys, "gap", pl.lit("supply gap").alias("kind"))
    explained = rec.filter(pl.col("cause").is_not_null()).select(keys).unique(maintain_order=True)
    missing = pl.concat([budget_gaps, supply_gaps], how="vertical").join(explained, on=keys, how="anti").select(
        *keys, pl.format("{} above tolerance has no reconciliation row with a cause", pl.col("kind")).alias("problem"), "gap"
    )
    no_cause = rec.filter(pl.col("cause").is_null()).select(*keys, pl.lit("reconciliation row without a cause").alias("problem"), pl.col("amount").alias("gap"))
    sums = rec.group_by(keys, maintain_order=True).agg(pl.col("amount").sum().alias("total"), pl.coalesce("gap", "supply_gap").first().alias("gap"))
    limit = pl.max_horizontal(pl.lit(gates.tie_out_tolerance), gates.tie_out_tolerance_rel * pl.col("gap").abs())
    not_adding = sums.filter((pl.col("total") - pl.col("gap")).abs() > limit).select(
        *keys, pl.format("components add up to {} instead of the gap", pl.col("total").round(2)).alias("problem"), "gap"
    )
    return pl.concat([missing, no_cause, not_adding], how="vertical").sort(keys)


# --------------------------------------------------------------------------------------------
# The whole review
# --------------------------------------------------------------------------------------------


@dataclass
class FinancialReview:
    """The financial review's tables and the problems its checks found (empty = ties out)."""

    financial_plan: pl.DataFrame
    budget_gap: pl.DataFrame
    plan_bridge: pl.DataFrame
    reconciliation: pl.DataFrame
    scenario_comparison: pl.DataFrame
    tie_out_problems: pl.DataFrame
    coverage_problems: pl.DataFrame
    reconciliation_problems: pl.DataFrame

    @property
    def ties_out(self) -> bool:
        return not (self.tie_out_problems.height or self.coverage_problems.height or self.reconciliation_problems.height)


def consensus_as_supply_plan(consensus: pl.DataFrame, cycle: str) -> pl.DataFrame:
    """A baseline supply plan that ships the whole consensus: what the financial review prices
    when the supply review was skipped (no capacity and no material data). Nothing is short, so
    the plan equals the unconstrained view and inventory is not valued (ending_inventory 0)."""
    return _as_month(consensus).group_by("sku", "month", maintain_order=True).agg(pl.col("quantity").sum().cast(pl.Float64)).select(
        pl.lit(cycle_label(cycle)).alias("cycle"), pl.lit(BASELINE).alias("scenario"), "sku", "month",
        pl.col("quantity").alias("demand"), pl.col("quantity").alias("production"),
        pl.lit(0.0).alias("ending_inventory"), pl.lit(0.0).alias("shortfall"), pl.lit(0.0).alias("safety_stock"),
    ).sort("sku", "month")


def run_financial_review(
    cycle: str,
    products: pl.DataFrame,
    supply_plan: pl.DataFrame | None,
    consensus: pl.DataFrame,
    budget: pl.DataFrame | None = None,
    bom: pl.DataFrame | None = None,
    materials: pl.DataFrame | None = None,
    routings: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
    capacity_plan: pl.DataFrame | None = None,
    supply_exceptions: pl.DataFrame | None = None,
    price_plan: pl.DataFrame | None = None,
    last_plan: pl.DataFrame | None = None,
    gates: FinancialGates = FinancialGates(),
    shortfall_mode: str = "backorder",
) -> FinancialReview:
    """Every table of the financial review and its checks, from the step's inputs. Without a
    supply plan (supply review skipped) the consensus is priced as the baseline plan."""
    if supply_plan is None or supply_plan.height == 0:
        supply_plan = consensus_as_supply_plan(consensus, cycle)
    fp = financial_plan(cycle, products, supply_plan, consensus, bom, materials, routings, resources, capacity_plan, price_plan, shortfall_mode)
    has_budget = budget is not None and budget.height > 0
    empty_budget = pl.DataFrame(schema={"month": pl.Date, "family": pl.String, "volume": pl.Float64, "revenue": pl.Float64,
                                        "gross_margin": pl.Float64, "cogs": pl.Float64})
    gap = budget_gap(fp, budget if has_budget else empty_budget, gates)
    rec = reconciliation(fp, budget, supply_plan, consensus, products, supply_exceptions, price_plan, gates, BASELINE, shortfall_mode)
    return FinancialReview(
        financial_plan=fp,
        budget_gap=gap,
        plan_bridge=plan_bridge(fp, budget, last_plan),
        reconciliation=rec,
        scenario_comparison=scenario_comparison(fp),
        tie_out_problems=tie_out_problems(fp, supply_plan, consensus, products, price_plan, capacity_plan, resources, gates, shortfall_mode),
        coverage_problems=coverage_problems(fp, supply_plan, consensus, products),
        reconciliation_problems=reconciliation_problems(rec, gap, fp, gates, BASELINE),
    )


# --------------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------------


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def revenue_margin_chart(financial_plan: pl.DataFrame, budget: pl.DataFrame | None = None, scenario: str = BASELINE) -> bytes:
    """PNG: revenue and gross margin by month, plan (bars) against budget (line), with the
    unconstrained revenue (dashed) showing what supply leaves on the table."""
    # Figure renders with Agg; no pyplot global state
    from matplotlib.figure import Figure

    plan = financial_plan.filter(pl.col("scenario") == scenario).group_by("month", maintain_order=True).agg(
        pl.col("revenue", "gross_margin", "unconstrained_revenue").sum()
    ).sort("month")
    bud = (
        _budget(budget).group_by("month", maintain_order=True).agg(pl.col("revenue", "gross_margin").sum()).join(plan.select("month"), on="month", how="semi").sort("month")
        if budget is not None and budget.height else None
    )
    fig = Figure(figsize=(10, 6))
    axes = fig.subplots(2, 1, sharex=True)
    position = {m: i for i, m in enumerate(plan["month"].to_list())}  # months as categories: even bars
    x = list(position.values())
    for ax, column, title in ((axes[0], "revenue", "Revenue"), (axes[1], "gross_margin", "Gross margin")):
        ax.bar(x, plan[column].to_list(), width=0.7, color="#4C78A8", label=f"plan ({scenario})")
        if column == "revenue":
            ax.plot(x, plan["unconstrained_revenue"].to_list(), color="#72B7B2", linestyle="--", marker=".", label="unconstrained demand")
        if bud is not None and bud.height:
            ax.plot([position[m] for m in bud["month"].to_list()], bud[column].to_list(), color="#E45756", marker="o", label="budget")
        ax.set_title(f"{title}: plan vs budget", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    axes[1].set_xticks(x, [m.strftime("%Y-%m") for m in position], rotation=90 if len(x) > 12 else 0, fontsize=8)
    fig.tight_layout()
    return _png(fig)


def bridge_chart(plan_bridge: pl.DataFrame, comparison: str = "budget_to_plan", scenario: str = BASELINE) -> bytes:
    """PNG: the revenue bridge as a waterfall, start -> volume -> mix -> price -> end (effects
    summed over families; green raises revenue, red lowers it)."""
    from matplotlib.figure import Figure

    steps = (
        plan_bridge.filter((pl.col("comparison") == comparison) & (pl.col("scenario") == scenario))
        .group_by("step", "step_order", maintain_order=True).agg(pl.col("value").sum()).sort("step_order")
    )
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    names, values = steps["step"].to_list(), steps["value"].to_list()
    running = 0.0
    for i, (name, value) in enumerate(zip(names, values)):
        if name in ("start", "end"):
            ax.bar(i, value, color="#4C78A8")
            running = value
            bottom, height = 0.0, value
        else:
            bottom, height = running, value
            ax.bar(i, value, bottom=running, color="#54A24B" if value >= 0 else "#E45756")
            running += value
        ax.annotate(f"{value:,.0f}", (i, bottom + height), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.margins(y=0.12)
    ax.set_title(f"Revenue bridge: {comparison.replace('_', ' ')} ({scenario})", fontsize=10, loc="left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)
