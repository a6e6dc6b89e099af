"""The financial checkpoint's rules: units x price ties out, every family-month is projected, every
gap is reconciled."""

from __future__ import annotations

import polars as pl

from sop_pipeline import registry
from sop_pipeline.finance.common import ALL, as_month, significant
from sop_pipeline.finance.costs import rolled_up_costs
from sop_pipeline.finance.plan import sku_detail
from sop_pipeline.finance.prices import price_by_sku_month
from sop_pipeline.settings.gates import FinancialGates
from sop_pipeline.settings.scenarios import BASELINE
from sop_pipeline.settings.supply import CostSettings

PROBLEM_SCHEMA = {
    "check": pl.String,
    "level": pl.String,
    "scenario": pl.String,
    "family": pl.String,
    "month": pl.Date,
    "measure": pl.String,
    "expected": pl.Float64,
    "actual": pl.Float64,
    "difference": pl.Float64,
}


def mismatches(frame: pl.DataFrame, check: str, level: str, measure: str, gates: FinancialGates) -> pl.DataFrame:
    """Rows of `frame` (scenario, family, month, expected, actual; either may be null when the
    row is missing on one side) whose values differ beyond the tie-out tolerance."""
    diff = pl.col("actual") - pl.col("expected")
    limit = pl.max_horizontal(pl.lit(gates.tie_out_tolerance), gates.tie_out_tolerance_rel * pl.col("expected").abs().fill_null(0.0))
    bad = pl.col("expected").is_null() | pl.col("actual").is_null() | ~diff.is_finite() | (diff.abs() > limit)
    return frame.filter(bad).select(
        pl.lit(check).alias("check"),
        pl.lit(level).alias("level"),
        pl.col("scenario").cast(pl.String),
        pl.col("family").cast(pl.String),
        pl.col("month").cast(pl.Date),
        pl.lit(measure).alias("measure"),
        pl.col("expected").cast(pl.Float64),
        pl.col("actual").cast(pl.Float64),
        diff.cast(pl.Float64).alias("difference"),
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
    costs: CostSettings | None = None,
    cost_inputs: dict[str, pl.DataFrame | None] | None = None,
) -> pl.DataFrame:
    """Numbers that do not tie out; an empty frame means the financial plan adds up.

    Recomputed from the inputs, not from the plan: SKU units x SKU price summed to family
    (volume, revenue, unconstrained_volume, unconstrained_revenue per scenario, family and
    month) and to the scenario total; gross_margin = revenue - cogs - cost_variance -
    lateness_cost and cost_variance = material + conversion variance + overtime on every row;
    the allocated overtime cost of each scenario-month equals the capacity plan's overtime
    hours x premium; cogs + cost_variance = the rolled-up cost (shipped x BOM and preferred
    routing cost + the month's conversion and overtime variances); the inventory rolls
    forward, opening + production + open supply - shipments = closing, in units (from the
    supply plan and the opening stock) and in money (the plan's values, the first month's
    opening recomputed from the stock on hand) per family and month. Columns: check, level,
    scenario, family, month, measure, expected, actual, difference.
    """
    costs = (costs or CostSettings()).model_copy(update={"shortfall_mode": shortfall_mode})
    cost_inputs = cost_inputs or {}
    sp = as_month(supply_plan)
    months = pl.concat([sp.select("month"), as_month(consensus).select("month")]).unique(maintain_order=True)["month"]
    prices = price_by_sku_month(products, price_plan, months)
    sku = sku_detail(products, sp, consensus, prices, shortfall_mode).with_columns(
        (pl.col("shipped") * pl.col("price")).alias("revenue"),
        (pl.col("demand") * pl.col("price")).alias("unconstrained_revenue"),
        pl.col("shipped").alias("volume"),
        pl.col("demand").alias("unconstrained_volume"),
    )
    measures = ["volume", "revenue", "unconstrained_volume", "unconstrained_revenue"]
    fp = financial_plan
    out = [pl.DataFrame(schema=PROBLEM_SCHEMA)]
    family = sku.group_by("scenario", "family", "month", maintain_order=True).agg(pl.col(measures).sum())
    total = sku.group_by("scenario", maintain_order=True).agg(pl.col(measures).sum())
    fp_total = fp.group_by("scenario", maintain_order=True).agg(pl.col(measures).sum())
    keys = ["scenario", "family", "month"]
    for m in measures:  # four measures, each checked over whole frames
        joined = family.select(*keys, pl.col(m).alias("expected")).join(
            fp.select(*keys, pl.col(m).alias("actual")), on=keys, how="full", coalesce=True
        )
        out.append(mismatches(joined, "units_x_price", "family", m, gates))
        joined = (
            total.select("scenario", pl.col(m).alias("expected"))
            .join(fp_total.select("scenario", pl.col(m).alias("actual")), on="scenario", how="full", coalesce=True)
            .with_columns(pl.lit(ALL).alias("family"), pl.lit(None, dtype=pl.Date).alias("month"))
        )
        out.append(mismatches(joined, "units_x_price", "total", m, gates))
    out.append(
        mismatches(
            fp.select(
                *keys,
                (pl.col("revenue") - pl.col("cogs") - pl.col("cost_variance") - pl.col("lateness_cost")).alias("expected"),
                pl.col("gross_margin").alias("actual"),
            ),
            "margin_identity",
            "family",
            "gross_margin",
            gates,
        )
    )
    out.append(
        mismatches(
            fp.select(
                *keys,
                (pl.col("material_variance") + pl.col("conversion_variance") + pl.col("overtime_cost")).alias("expected"),
                pl.col("cost_variance").alias("actual"),
            ),
            "variance_identity",
            "family",
            "cost_variance",
            gates,
        )
    )
    rolled = rolled_up_costs(products, cost_inputs.get("bom"), cost_inputs.get("materials"), cost_inputs.get("routings"), resources)
    shipped = sku.join(rolled.select("sku", "rolled_up_cost"), on="sku", how="left")
    expected_rolled = shipped.group_by(*keys, maintain_order=True).agg(
        (pl.col("shipped") * pl.col("rolled_up_cost")).sum().alias("at_rolled_up")
    )
    out.append(
        mismatches(
            expected_rolled.join(fp, on=keys, how="full", coalesce=True).select(
                *keys,
                (pl.col("at_rolled_up") + pl.col("conversion_variance") + pl.col("overtime_cost")).alias("expected"),
                (pl.col("cogs") + pl.col("cost_variance")).alias("actual"),
            ),
            "cogs_plus_variance_is_rolled_up",
            "family",
            "cogs",
            gates,
        )
    )
    out.extend(_roll_forward(sku, fp, products, cost_inputs.get("inventory"), costs, rolled, gates))
    if capacity_plan is not None and capacity_plan.height and resources is not None:
        premium = resources.select(
            "resource", (pl.col("overtime_cost_per_hour") - pl.col("cost_per_hour")).clip(lower_bound=0.0).alias("premium")
        )
        expected = (
            as_month(capacity_plan)
            .join(premium, on="resource", how="left")
            .group_by("scenario", "month", maintain_order=True)
            .agg((pl.col("overtime_hours") * pl.col("premium").fill_null(0.0)).sum().alias("expected"))
        )
        actual = fp.group_by("scenario", "month", maintain_order=True).agg(pl.col("overtime_cost").sum().alias("actual"))
        joined = expected.join(actual, on=["scenario", "month"], how="full", coalesce=True).with_columns(
            pl.col("expected", "actual").fill_null(0.0), pl.lit(ALL).alias("family")
        )
        out.append(mismatches(joined, "overtime_allocated", "total", "overtime_cost", gates))
    return pl.concat(out, how="vertical").sort("check", "level", "scenario", "family", "month", nulls_last=True)


def _roll_forward(sku, fp, products, inventory, costs, rolled, gates) -> list[pl.DataFrame]:
    """Opening + production + open supply - shipments = closing, per family-month: in units from
    the supply plan and the stock on hand, in money from the plan's values (each month's
    opening is the previous month's closing, the first one the stock on hand at the basis)."""
    keys = ["scenario", "family", "month"]
    on_hand = (
        inventory.group_by("sku").agg(pl.col("on_hand").cast(pl.Float64).sum())
        if inventory is not None and inventory.height
        else pl.DataFrame(schema={"sku": pl.String, "on_hand": pl.Float64})
    )
    basis = pl.col("unit_cost") if costs.cost_basis == "standard" else pl.col("rolled_up_cost")
    unit = products.select("sku", pl.col("unit_cost").cast(pl.Float64)).join(rolled.select("sku", "rolled_up_cost"), on="sku", how="left")
    unit = unit.select("sku", pl.coalesce(basis, "rolled_up_cost").alias("basis_cost"))
    first = sku.select(pl.col("month").min()).item()
    units = (
        sku.join(on_hand, on="sku", how="left")
        .with_columns(
            pl.col("ending_inventory").shift(1).over("scenario", "sku").fill_null(pl.col("on_hand").fill_null(0.0)).alias("opening")
        )
        .group_by(*keys, maintain_order=True)
        .agg(
            (pl.col("opening") + pl.col("production") + pl.col("open_supply") - pl.col("shipped")).sum().alias("expected"),
            pl.col("ending_inventory").sum().alias("actual"),
        )
    )
    opening_value = (
        sku.filter(pl.col("month") == first)
        .join(on_hand, on="sku", how="left")
        .join(unit, on="sku", how="left")
        .group_by(*keys, maintain_order=True)
        .agg((pl.col("on_hand").fill_null(0.0) * pl.col("basis_cost").fill_null(0.0)).sum().alias("expected"))
    )
    ordered = fp.sort("scenario", "family", "month")
    money_rows = ordered.select(
        *keys,
        (pl.col("opening_inventory_value") + pl.col("receipts_value") - pl.col("cogs")).alias("expected"),
        pl.col("inventory_value").alias("actual"),
    )
    chained = ordered.select(
        *keys,
        pl.col("inventory_value").shift(1).over("scenario", "family").alias("expected"),
        pl.col("opening_inventory_value").alias("actual"),
    ).filter(pl.col("month") != first)
    first_open = opening_value.join(
        ordered.filter(pl.col("month") == first).select(*keys, pl.col("opening_inventory_value").alias("actual")),
        on=keys,
        how="full",
        coalesce=True,
    )
    return [
        mismatches(units, "inventory_roll_forward", "family", "units", gates),
        mismatches(money_rows, "inventory_roll_forward", "family", "inventory_value", gates),
        mismatches(chained, "inventory_roll_forward", "family", "opening_inventory_value", gates),
        mismatches(first_open, "opening_stock_at_cost_basis", "family", "opening_inventory_value", gates),
    ]


def coverage_problems(
    financial_plan: pl.DataFrame, supply_plan: pl.DataFrame, consensus: pl.DataFrame, products: pl.DataFrame
) -> pl.DataFrame:
    """Holes in the projection: every scenario of the supply plan must have exactly one row for
    every family (of the consensus and of the supply plan's SKUs) in every horizon month, with
    finite numbers. Columns: scenario, family, month, problem."""
    sp = as_month(supply_plan)
    cons = as_month(consensus)
    families = pl.concat(
        [
            cons.select("sku").join(products.select("sku", "family"), on="sku", how="left").select("family"),
            sp.select("sku").join(products.select("sku", "family"), on="sku", how="left").select("family"),
        ]
    ).unique(maintain_order=True)
    months = pl.concat([sp.select("month"), cons.select("month")]).unique(maintain_order=True)
    expected = sp.select("scenario").unique(maintain_order=True).join(families, how="cross").join(months, how="cross")
    keys = ["scenario", "family", "month"]
    fp = financial_plan.select(keys).with_columns(pl.col("month").cast(pl.Date))
    missing = expected.join(fp, on=keys, how="anti", nulls_equal=True).with_columns(pl.lit("missing family-month").alias("problem"))
    duplicated = (
        fp.group_by(keys, maintain_order=True)
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") > 1)
        .select(*keys, pl.lit("duplicate rows").alias("problem"))
    )
    no_family = fp.filter(pl.col("family").is_null()).with_columns(
        pl.lit("family unknown (SKU not in the product master)").alias("problem")
    )
    numbers = [c for c in registry.table("financial_plan").column_names if c in financial_plan.columns and c not in ("cycle", *keys)]
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
        (pl.col("scenario") == scenario)
        & (pl.col("period") == "month")
        & (pl.col("family") != ALL)
        & significant(pl.col("plan") - pl.col("budget"), pl.col("budget"), gates)
    ).select(*keys, (pl.col("plan") - pl.col("budget")).alias("gap"), pl.lit("budget gap").alias("kind"))
    fp = financial_plan.filter(pl.col("scenario") == scenario)
    supply_gaps = (
        pl.concat(
            [
                fp.select(
                    "family",
                    "month",
                    pl.lit(m).alias("measure"),
                    (pl.col(m) - pl.col(f"unconstrained_{m}")).alias("gap"),
                    pl.col(f"unconstrained_{m}").alias("reference"),
                )
                for m in ("volume", "revenue")
            ],
            how="vertical",
        )
        .filter(significant(pl.col("gap"), pl.col("reference"), gates))
        .select(*keys, "gap", pl.lit("supply gap").alias("kind"))
    )
    explained = rec.filter(pl.col("cause").is_not_null()).select(keys).unique(maintain_order=True)
    missing = (
        pl.concat([budget_gaps, supply_gaps], how="vertical")
        .join(explained, on=keys, how="anti")
        .select(*keys, pl.format("{} above tolerance has no reconciliation row with a cause", pl.col("kind")).alias("problem"), "gap")
    )
    no_cause = rec.filter(pl.col("cause").is_null()).select(
        *keys, pl.lit("reconciliation row without a cause").alias("problem"), pl.col("amount").alias("gap")
    )
    sums = rec.group_by(keys, maintain_order=True).agg(
        pl.col("amount").sum().alias("total"), pl.coalesce("gap", "supply_gap").first().alias("gap")
    )
    limit = pl.max_horizontal(pl.lit(gates.tie_out_tolerance), gates.tie_out_tolerance_rel * pl.col("gap").abs())
    not_adding = sums.filter((pl.col("total") - pl.col("gap")).abs() > limit).select(
        *keys, pl.format("components add up to {} instead of the gap", pl.col("total").round(2)).alias("problem"), "gap"
    )
    return pl.concat([missing, no_cause, not_adding], how="vertical").sort(keys)
