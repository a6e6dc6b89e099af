"""The reconciliation of demand, supply and budget: every gap above tolerance, split by cause,
with the levers that could close it."""

from __future__ import annotations

import polars as pl

from sop_pipeline import registry
from sop_pipeline.finance.budget import budget_by_family_month
from sop_pipeline.finance.common import COMPONENTS, EPS, MEASURES, as_month, safe_div, significant
from sop_pipeline.finance.plan import sku_detail
from sop_pipeline.finance.prices import price_by_sku_month
from sop_pipeline.settings.gates import FinancialGates
from sop_pipeline.settings.scenarios import BASELINE, Scenario

SUPPLY_CAUSES = {
    "capacity": "capacity",
    "resource": "capacity",
    "material": "material",
    "supplier": "material",
    "cost": "supply_cost_tradeoff",
    "mix": "supply_mix",
}


def _exception_causes(supply_exception_skus: pl.DataFrame | None) -> pl.DataFrame:
    """Per scenario, SKU and month: the cause ('capacity', 'material', ...) and the driver
    (the constraint, with its month when known) of a shortfall, read from the supply review's
    exceptions: `constraint_kind` + `constraint`, or a `binding_constraint` text such as
    'resource:R01' / 'material:M07'. Without either column the cause stays unknown."""
    schema = {"scenario": pl.String, "sku": pl.String, "month": pl.Date, "ex_cause": pl.String, "ex_driver": pl.String}
    if supply_exception_skus is None or supply_exception_skus.height == 0:
        return pl.DataFrame(schema=schema)
    ex = as_month(supply_exception_skus)
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
        when = as_month(ex, "constraint_month")["constraint_month"].dt.strftime("%Y-%m")
        ex = ex.with_columns(when.alias("_cmonth"))
        driver = (
            pl.when(pl.col("_cmonth").is_not_null() & name.is_not_null())
            .then(pl.format("{} ({})", name, pl.col("_cmonth")))
            .otherwise(name)
        )
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
    supply_exception_skus: pl.DataFrame | None = None,
    price_plan: pl.DataFrame | None = None,
    gates: FinancialGates = FinancialGates(),
    scenario: str = BASELINE,
    shortfall_mode: str = "backorder",
    scenarios: dict[str, Scenario] | None = None,
) -> pl.DataFrame:
    """planning.reconciliation: every gap between demand, supply and budget, split by cause.

    Per family, month and measure (volume in units, revenue and gross_margin in money) of
    `scenario`: unconstrained (consensus), plan (constrained), budget; gap = plan - budget,
    supply_gap = plan - unconstrained, demand_gap = unconstrained - budget. A family-month-
    measure is listed when any of the three gaps passes the tolerance (`significant`), and then
    with all its non-zero components, one row each, whose amounts add up to the gap exactly
    (to supply_gap in months without budget). With pB, cB the budget's price and unit cost
    (the plan's where the budget has no units), U, C, B units and U$, C$, B$ revenue:

    * demand: U x pB - B$ for revenue, U - B for volume, U x (pB - cB) - budget margin for
      margin; cause 'demand_below_budget' or 'demand_above_budget' (by U vs B).
    * price: U$ - U x pB (revenue and margin): prices (and SKU mix) differ from the budget's.
    * cost: -(C cogs - C x cB) (margin only): cogs at the cost basis against the budget's
      unit cost; with both at standard cost only the SKU mix inside the family is left.
    * cost_variance: -(the plan's cost variance) (margin only), one row per driver:
      'material_price' (BOM at today's material prices vs the standard), 'conversion'
      (alternate routings' extra hours), 'overtime' (the premium); the rolled-up cost is the
      basis plus these.
    * service: -(lateness_cost) (margin only): 'late_delivery' (backorders) or 'lost_sales'.
    * supply: plan - unconstrained, SKU by SKU (units x price; margin at price - cB), split by
      the supply exception of the SKU-month: 'capacity' or 'material' with the binding
      constraint as driver, 'supply_cost_tradeoff' or 'supply_mix' when nothing binds,
      'supply_shortfall' when no exception says why, 'backlog_recovery' for backlog shipped
      late.

    Levers, on every row: overtime_hours and overtime_cost already in the family-month's plan
    (and the conversion variance of alternate routings in the cost_variance rows). On supply
    rows that pull the plan down (amount < 0): the lever scenario (kind 'lever' in
    `models/scenarios.yaml`; risks and opportunities are exposure, never levers) whose plan of
    the family-month-measure is highest above this one's (lever_closes, in the measure's
    unit; it may exceed the row's amount) and its extra COGS and cost variance for the
    family-month (lever_extra_cogs); null when no lever does better. A demand gap's levers
    are commercial, for the meeting to name.
    """
    plan = financial_plan.filter(pl.col("scenario") == scenario)
    label = plan["cycle"][0] if plan.height else None
    fm = _family_views(plan, budget)
    supply = _supply_components(fm, products, supply_plan, consensus, supply_exception_skus, price_plan, scenario, shortfall_mode)
    supply_gm = (
        supply.filter(pl.col("measure") == "gross_margin")
        .group_by("family", "month", maintain_order=True)
        .agg(pl.col("amount").sum().alias("S_gm"))
    )
    fm = fm.join(supply_gm, on=["family", "month"], how="left").with_columns(pl.col("S_gm").fill_null(0.0))

    views = _views(fm, gates)
    side = _budget_components(fm)
    components = pl.concat(
        [
            side.select("family", "month", "measure", "component", "cause", "driver", "amount"),
            _cost_components(fm, shortfall_mode).select("family", "month", "measure", "component", "cause", "driver", "amount"),
            supply.select("family", "month", "measure", "component", "cause", "driver", "amount"),
        ],
        how="vertical",
    )
    levers = [name for name, sc in (scenarios or {}).items() if sc.kind == "lever" and name != scenario]
    lever = _levers(financial_plan.filter(pl.col("scenario").is_in(levers) | (pl.col("scenario") == scenario)), plan, scenario)
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
            pl.lit(label, dtype=pl.String).alias("cycle"),
            pl.lit(scenario).alias("scenario"),
        )
        .sort(
            "family",
            "month",
            pl.col("measure").replace_strict(order_measure, return_dtype=pl.Int32),
            pl.col("component").replace_strict(order_component, return_dtype=pl.Int32),
            "cause",
            "driver",
            nulls_last=True,
        )
        .select(registry.table("reconciliation").column_names)
    )


def _family_views(plan: pl.DataFrame, budget: pl.DataFrame | None) -> pl.DataFrame:
    """Per family-month: constrained (C), unconstrained (U) and budget (B) volume and money, and
    the budget's unit price and cost (pB, cB) the components are valued at."""
    fm = plan.select(
        "family",
        "month",
        pl.col("volume").alias("C"),
        pl.col("revenue").alias("C_rev"),
        pl.col("cogs").alias("C_cogs"),
        pl.col("gross_margin").alias("C_gm"),
        pl.col("unconstrained_volume").alias("U"),
        pl.col("unconstrained_revenue").alias("U_rev"),
        "overtime_hours",
        "overtime_cost",
        "material_variance",
        "conversion_variance",
        "lateness_cost",
    )
    if budget is not None and budget.height:
        bud = budget_by_family_month(budget)
        covered = (
            fm.select("month")
            .unique(maintain_order=True)
            .join(bud.select("month").unique(maintain_order=True), on="month", how="inner")
            .with_columns(pl.lit(True).alias("has_budget"))
        )
        bud = bud.join(covered, on="month", how="semi").select(
            "family",
            "month",
            pl.col("volume").alias("B"),
            pl.col("revenue").alias("B_rev"),
            pl.col("cogs").alias("B_cogs"),
            pl.col("gross_margin").alias("B_gm"),
        )
        fm = fm.join(bud, on=["family", "month"], how="full", coalesce=True).join(covered, on="month", how="left")
    else:
        fm = fm.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in ("B", "B_rev", "B_cogs", "B_gm")).with_columns(
            pl.lit(None, dtype=pl.Boolean).alias("has_budget")
        )
    has_budget = pl.col("has_budget").fill_null(False)
    fm = fm.with_columns(
        pl.col(
            "C",
            "C_rev",
            "C_cogs",
            "C_gm",
            "U",
            "U_rev",
            "overtime_hours",
            "overtime_cost",
            "material_variance",
            "conversion_variance",
            "lateness_cost",
        ).fill_null(0.0),
        *[pl.when(has_budget).then(pl.col(c).fill_null(0.0)).alias(c) for c in ("B", "B_rev", "B_cogs", "B_gm")],
    ).with_columns(
        pl.when(pl.col("B") > 0)
        .then(pl.col("B_rev") / pl.col("B"))
        .when(pl.col("U") > 0)
        .then(pl.col("U_rev") / pl.col("U"))
        .otherwise(0.0)
        .alias("pB"),
        pl.when(pl.col("B") > 0)
        .then(pl.col("B_cogs") / pl.col("B"))
        .when(pl.col("C") > 0)
        .then(pl.col("C_cogs") / pl.col("C"))
        .otherwise(0.0)
        .alias("cB"),
    )

    return fm


def _supply_components(fm, products, supply_plan, consensus, supply_exception_skus, price_plan, scenario, shortfall_mode) -> pl.DataFrame:
    """plan - unconstrained, SKU by SKU, split by the supply exception that explains it."""
    months = fm["month"].unique(maintain_order=True)
    prices = price_by_sku_month(products, price_plan, months)
    detail = sku_detail(products, supply_plan.filter(pl.col("scenario") == scenario), consensus, prices, shortfall_mode)
    causes = _exception_causes(supply_exception_skus)
    detail = detail.join(causes, on=["scenario", "sku", "month"], how="left").join(
        fm.select("family", "month", "cB"), on=["family", "month"], how="left"
    )
    late = pl.col("shipped") - pl.col("demand")
    short_rows = detail.select(
        "family",
        "month",
        "price",
        "cB",
        late.alias("d"),
        pl.when(late < 0).then(pl.col("ex_cause").fill_null("supply_shortfall")).otherwise(pl.lit("backlog_recovery")).alias("cause"),
        pl.when(late < 0).then(pl.col("ex_driver")).otherwise(None).alias("driver"),
    )
    supply = (
        short_rows.filter(pl.col("d").abs() > EPS)
        .sort("family", "month", "cause", "driver", nulls_last=True)
        .group_by("family", "month", "cause", "driver", maintain_order=True)
        .agg(
            pl.col("d").sum().alias("volume"),
            (pl.col("d") * pl.col("price")).sum().alias("revenue"),
            (pl.col("d") * (pl.col("price") - pl.col("cB"))).sum().alias("gross_margin"),
        )
        .unpivot(index=["family", "month", "cause", "driver"], on=list(MEASURES), variable_name="measure", value_name="amount")
        .with_columns(pl.lit("supply").alias("component"))
    )
    return supply


def _views(fm: pl.DataFrame, gates: FinancialGates) -> pl.DataFrame:
    """The three views per family, month and measure, their gaps, and which are listed."""
    return (
        pl.concat(
            [
                fm.select(
                    "family",
                    "month",
                    "has_budget",
                    pl.lit("volume").alias("measure"),
                    pl.col("U").alias("unconstrained"),
                    pl.col("C").alias("plan"),
                    pl.col("B").alias("budget"),
                    pl.lit(0.0).alias("variance"),
                ),
                fm.select(
                    "family",
                    "month",
                    "has_budget",
                    pl.lit("revenue").alias("measure"),
                    pl.col("U_rev").alias("unconstrained"),
                    pl.col("C_rev").alias("plan"),
                    pl.col("B_rev").alias("budget"),
                    pl.lit(0.0).alias("variance"),
                ),
                fm.select(
                    "family",
                    "month",
                    "has_budget",
                    pl.lit("gross_margin").alias("measure"),
                    (pl.col("C_gm") - pl.col("S_gm")).alias("unconstrained"),
                    pl.col("C_gm").alias("plan"),
                    pl.col("B_gm").alias("budget"),
                    (pl.col("material_variance") + pl.col("conversion_variance") + pl.col("overtime_cost")).alias("variance"),
                ),
            ],
            how="vertical",
        )
        .with_columns(
            (pl.col("plan") - pl.col("budget")).alias("gap"),
            (pl.col("plan") - pl.col("unconstrained")).alias("supply_gap"),
            (pl.col("unconstrained") - pl.col("budget")).alias("demand_gap"),
        )
        .with_columns(
            (100 * safe_div(pl.col("gap"), pl.col("budget").abs())).alias("gap_pct"),
            (
                significant(pl.col("gap"), pl.col("budget"), gates)
                | significant(pl.col("supply_gap"), pl.col("unconstrained"), gates)
                | significant(pl.col("demand_gap"), pl.col("budget"), gates)
                # a cost variance that moves the budgeted margin by the tolerance is a finding
                # in itself, even where the month's gap stays below the money floor
                | (
                    pl.col("has_budget").fill_null(False)
                    & significant(
                        pl.col("variance"), pl.col("budget"), gates.model_copy(update={"gap_min_amount": gates.variance_min_amount})
                    )
                )
            ).alias("listed"),
        )
    )


def _cost_components(fm: pl.DataFrame, shortfall_mode: str) -> pl.DataFrame:
    """The cost variance by driver and the cost of late units: margin the plan loses to costs
    above the cost basis and to service, in the months the budget covers (they are parts of
    plan - budget; without a budget the listed gap is plan - unconstrained, which they are not)."""
    late = "lost_sales" if shortfall_mode == "lost_sales" else "late_delivery"
    parts = [
        ("cost_variance", "material_price", "BOM at material master prices vs the cost basis", "material_variance"),
        ("cost_variance", "conversion", "alternate routings: load hours x rate vs the preferred routing", "conversion_variance"),
        ("cost_variance", "overtime", "overtime premium over the regular rate", "overtime_cost"),
        ("service", late, "late units x the late cost of models/supply.yaml", "lateness_cost"),
    ]
    budgeted = fm.filter(pl.col("has_budget").fill_null(False))
    return pl.concat(
        [
            budgeted.select(
                "family",
                "month",
                pl.lit("gross_margin").alias("measure"),
                pl.lit(component).alias("component"),
                pl.lit(cause).alias("cause"),
                pl.lit(driver).alias("driver"),
                (-pl.col(column)).alias("amount"),
            )
            for component, cause, driver, column in parts
        ],
        how="vertical",
    )


def _budget_components(fm: pl.DataFrame) -> pl.DataFrame:
    """The demand, price and cost parts of unconstrained - budget, where the budget covers the month."""
    below = pl.when(pl.col("U") < pl.col("B")).then(pl.lit("demand_below_budget")).otherwise(pl.lit("demand_above_budget"))
    budgeted = fm.filter(pl.col("has_budget").fill_null(False))
    price_amount = pl.col("U_rev") - pl.col("U") * pl.col("pB")
    return pl.concat(
        [
            budgeted.select(
                "family",
                "month",
                pl.lit("volume").alias("measure"),
                pl.lit("demand").alias("component"),
                below.alias("cause"),
                (pl.col("U") - pl.col("B")).alias("amount"),
            ),
            budgeted.select(
                "family",
                "month",
                pl.lit("revenue").alias("measure"),
                pl.lit("demand").alias("component"),
                below.alias("cause"),
                (pl.col("U") * pl.col("pB") - pl.col("B_rev")).alias("amount"),
            ),
            budgeted.select(
                "family",
                "month",
                pl.lit("revenue").alias("measure"),
                pl.lit("price").alias("component"),
                pl.lit("price").alias("cause"),
                price_amount.alias("amount"),
            ),
            budgeted.select(
                "family",
                "month",
                pl.lit("gross_margin").alias("measure"),
                pl.lit("demand").alias("component"),
                below.alias("cause"),
                (pl.col("U") * (pl.col("pB") - pl.col("cB")) - (pl.col("B_rev") - pl.col("B_cogs"))).alias("amount"),
            ),
            budgeted.select(
                "family",
                "month",
                pl.lit("gross_margin").alias("measure"),
                pl.lit("price").alias("component"),
                pl.lit("price").alias("cause"),
                price_amount.alias("amount"),
            ),
            budgeted.select(
                "family",
                "month",
                pl.lit("gross_margin").alias("measure"),
                pl.lit("cost").alias("component"),
                pl.lit("cost").alias("cause"),
                (-(pl.col("C_cogs") - pl.col("C") * pl.col("cB"))).alias("amount"),
            ),
        ],
        how="vertical",
    ).with_columns(pl.lit(None, dtype=pl.String).alias("driver"))


def _levers(financial_plan: pl.DataFrame, plan: pl.DataFrame, scenario: str) -> pl.DataFrame:
    """Per family, month and measure: the scenario that adds most to this one, and what it costs."""
    others = financial_plan.filter(pl.col("scenario") != scenario)
    base_vals = plan.select(
        "family", "month", (pl.col("cogs") + pl.col("cost_variance")).alias("base_cogs"), *[pl.col(m).alias(f"base_{m}") for m in MEASURES]
    )
    others = others.with_columns((pl.col("cogs") + pl.col("cost_variance")).alias("cogs"))
    return (
        pl.concat(
            [others.select("scenario", "family", "month", "cogs", pl.lit(m).alias("measure"), pl.col(m).alias("value")) for m in MEASURES],
            how="vertical",
        )
        .join(base_vals, on=["family", "month"], how="inner")
        .with_columns(
            pl.when(pl.col("measure") == "volume")
            .then(pl.col("value") - pl.col("base_volume"))
            .when(pl.col("measure") == "revenue")
            .then(pl.col("value") - pl.col("base_revenue"))
            .otherwise(pl.col("value") - pl.col("base_gross_margin"))
            .alias("lever_closes"),
            (pl.col("cogs") - pl.col("base_cogs")).alias("lever_extra_cogs"),
        )
        .filter(pl.col("lever_closes") > EPS)
        .sort(["family", "month", "measure", "lever_closes", "scenario"], descending=[False, False, False, True, False])
        .group_by("family", "month", "measure", maintain_order=True)
        .agg(pl.col("scenario").first().alias("lever_scenario"), pl.col("lever_closes").first(), pl.col("lever_extra_cogs").first())
    )
