"""What the meeting must look at: one list of exceptions across the review steps, each once, ranked by money."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from sop_pipeline.demand import STATISTICAL
from sop_pipeline.demand.exceptions import bias_exceptions, layer_fva_exceptions, override_exceptions, phase_out_exceptions
from sop_pipeline.executive.governance import scenario_order
from sop_pipeline.executive.kpis import budget_rows, present
from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.rules import late_units
from sop_pipeline.settings.gates import DEFAULT_OWNERS, ExecutiveGates, Gates
from sop_pipeline.settings.scenarios import BASELINE
from sop_pipeline.warehouse import query

EXCEPTIONS_SCHEMA = {
    "cycle": pl.Utf8,
    "exception_id": pl.Utf8,
    "rank": pl.Int32,
    "step": pl.Utf8,
    "kind": pl.Utf8,
    "family": pl.Utf8,
    "sku": pl.Utf8,
    "resource": pl.Utf8,
    "material": pl.Utf8,
    "first_month": pl.Date,
    "last_month": pl.Date,
    "period_label": pl.Utf8,
    "money": pl.Float64,
    "money_basis": pl.Utf8,
    "scenarios": pl.Utf8,
    "in_baseline": pl.Boolean,
    "owner": pl.Utf8,
    "description": pl.Utf8,
    "recommendation": pl.Utf8,
    "in_executive_list": pl.Boolean,
}
_PER_SCENARIO = [c for c in EXCEPTIONS_SCHEMA if c not in ("cycle", "rank", "scenarios", "in_baseline", "in_executive_list")]


def exception_list(
    cycle: str,
    frames: Mapping[str, pl.DataFrame | None],
    gates: Gates | None = None,
    products: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
    sales: pl.DataFrame | None = None,
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """`planning.exceptions`: one list across the demand, supply and financial reviews, each
    exception once, ranked by the money at stake, the top `max_exceptions_in_pack` flagged for
    the executive (`in_executive_list`).

    An exception found in several scenarios is one row: `scenarios` lists them (baseline first)
    and its money is the baseline's when the baseline has it, else the largest of the
    scenarios', so a risk that only a what-if shows still ranks by what it would cost. Demand is
    the same in every scenario, so demand findings are in all of them. `frames` are the cycle's
    planning tables by name (absent ones leave their kinds out, `review_notes` says so), plus
    `layer_points` (`layer_points()`: earlier cycles' inputs against actuals);
    `products` (sku, family, unit_price, unit_cost), `resources` (resource, cost_per_hour,
    overtime_cost_per_hour) and `sales` (sku, month, quantity: the marts' monthly sales) give
    prices, overtime premiums and run-rates. Materiality thresholds in money are in gates.yaml.
    """
    gates = gates or Gates()
    executive, demand = gates.executive_review, gates.demand_review
    owners = {**DEFAULT_OWNERS, **executive.owners}
    label = cycle_label(cycle)
    get = frames.get
    scenarios = scenario_order(
        set().union(*(set(f["scenario"].unique()) for f in (get("supply_plan"), get("financial_plan")) if present(f, "scenario")))
        or {BASELINE}
    )
    shortfalls = _shortfall_exceptions(get("supply_plan"), get("supply_exception_skus"), products, executive, shortfall_mode, owners)
    per_scenario = [
        shortfalls,
        _capacity_exceptions(get("capacity_plan"), resources, executive, owners, shortfalls),
        _budget_exceptions(get("budget_gap"), executive, owners),
    ]
    money = executive.materiality.demand_money
    shared = [
        override_exceptions(
            get("demand_plan_layers"),
            get("statistical_forecast"),
            products,
            label,
            demand.override_threshold_pct,
            demand.frozen_months,
            money,
        ),
        bias_exceptions(
            get("forecast_accuracy"),
            get("consensus_demand"),
            products,
            label,
            demand.tracking_signal_limit,
            demand.bias_pct,
            money,
            owners["demand_review"],
        ),
        phase_out_exceptions(
            get("product_portfolio"),
            get("consensus_demand"),
            sales,
            products,
            label,
            money,
            owners["product_review"],
            get("supersession"),
        ),
        layer_fva_exceptions(get("layer_points"), products, demand.fva_loss_pts, money),
    ]
    rows = [_conform(f) for f in per_scenario if f is not None and f.height]
    merged = _merge_scenarios(pl.concat(rows, how="vertical")) if rows else None
    everyone = ", ".join(scenarios)
    found = [merged] if merged is not None else []
    found += [
        _conform(f.with_columns(pl.lit(BASELINE).alias("scenario")))
        .drop("scenario")
        .with_columns(pl.lit(everyone).alias("scenarios"), pl.lit(True).alias("in_baseline"))
        for f in shared
        if f is not None and f.height
    ]
    if not found:
        return pl.DataFrame(schema=EXCEPTIONS_SCHEMA)
    out = pl.concat(found, how="diagonal_relaxed").sort(["money", "exception_id"], descending=[True, False])
    return out.with_columns(
        pl.lit(label).alias("cycle"),
        pl.int_range(1, pl.len() + 1).cast(pl.Int32).alias("rank"),
        (pl.int_range(1, pl.len() + 1) <= executive.max_exceptions_in_pack).alias("in_executive_list"),
    ).select([pl.col(c).cast(t) for c, t in EXCEPTIONS_SCHEMA.items()])


def layer_points(con, cycle: str, lookback: int = 12) -> pl.DataFrame:
    """Every SKU-month an input layer changed in the `lookback` cycles before `cycle`, with the
    plan before and after it and the actual units (closed months only, 0 when nothing sold):
    what `layer_fva_exceptions` scores."""
    first = cycle_month(cycle)
    return query(
        con,
        """
        with layers as (
            select cycle as forecast_cycle, sku, month, layer, owner, quantity as after,
                   lag(quantity) over (partition by cycle, sku, month order by layer_rank) as before
            from planning.demand_plan_layers where cycle < ? and cycle >= ?
        )
        select l.forecast_cycle, l.sku, l.month, l.layer, l.owner, l.before, l.after, coalesce(s.quantity, 0.0) as actual
        from layers l left join marts.fct_sales_monthly s on s.sku = l.sku and s.month = l.month
        where l.layer <> ? and l.before is not null and l.month < ? and abs(l.after - l.before) >= 0.5
        order by all
        """,
        [cycle_label(first), cycle_label(add_months(first, -lookback)), STATISTICAL, first],
    )


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    """A builder's rows with every per-scenario column (absent ones null) and a period label."""
    missing = [pl.lit(None, EXCEPTIONS_SCHEMA[c]).alias(c) for c in _PER_SCENARIO if c not in frame.columns]
    frame = frame.with_columns(missing) if missing else frame
    span = pl.when(pl.col("first_month") == pl.col("last_month")).then(pl.col("first_month").dt.strftime("%Y-%m"))
    span = span.otherwise(pl.format("{} to {}", pl.col("first_month").dt.strftime("%Y-%m"), pl.col("last_month").dt.strftime("%Y-%m")))
    frame = frame.with_columns(pl.coalesce(pl.col("period_label"), span).alias("period_label"))
    return frame.select("scenario", *[pl.col(c).cast(EXCEPTIONS_SCHEMA[c]) for c in _PER_SCENARIO])


def _merge_scenarios(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per exception_id: the baseline's row when the baseline has it, else the
    scenario's with the most money; `scenarios` every scenario it appears in."""
    order = {name: k for k, name in enumerate(scenario_order(rows["scenario"].unique()))}
    ranked = rows.with_columns(
        pl.col("scenario").replace_strict(order, return_dtype=pl.Int32).alias("_order"),
        (pl.col("scenario") == BASELINE).alias("_baseline"),
    )
    names = (
        ranked.sort("_order")
        .group_by("exception_id", maintain_order=True)
        .agg(pl.col("scenario").str.join(", ").alias("scenarios"), pl.col("_baseline").any().alias("in_baseline"))
    )
    chosen = ranked.sort(["exception_id", "_baseline", "money"], descending=[False, True, True]).unique("exception_id", keep="first")
    return chosen.join(names, on="exception_id").drop("scenario", "_order", "_baseline")


def with_scenario(frame: pl.DataFrame) -> pl.DataFrame:
    return frame if "scenario" in frame.columns else frame.with_columns(pl.lit(BASELINE).alias("scenario"))


def _shortfall_exceptions(supply, diagnosis, products, gates: ExecutiveGates, shortfall_mode, owners) -> pl.DataFrame | None:
    """Late demand per family and the constraint that binds, over the months it is late: where
    a decision is taken (more capacity on a resource, another source for a material). Money:
    under backorders the revenue delivered late (at risk if customers do not wait); under lost
    sales the margin lost (price - standard cost). Unit price and cost are the product
    master's, so a unit's value is bounded by its price."""
    if not present(supply, "sku", "month", "demand", "shortfall") or products is None or "unit_price" not in products.columns:
        return None
    plan = with_scenario(supply)
    keep = ["sku", "unit_price"] + [c for c in ("family", "unit_cost") if c in products.columns and c not in plan.columns]
    plan = plan.join(products.select(keep), on="sku", how="left")
    if "family" not in plan.columns:
        return None
    lost_sales = shortfall_mode == "lost_sales"
    cost = pl.col("unit_cost").fill_null(0.0) if lost_sales and "unit_cost" in plan.columns else pl.lit(0.0)
    unit_value = pl.col("unit_price").fill_null(0.0) - cost
    late = plan.with_columns(late_units(shortfall_mode).alias("late")).filter(pl.col("late") >= 0.5)
    if not late.height:
        return None
    if present(diagnosis, "sku", "month", "exception", "constraint"):
        why = with_scenario(diagnosis).filter(pl.col("exception") == "shortfall")
        why = why.select("scenario", "sku", "month", "constraint_kind", "constraint")
        late = late.join(why, on=["scenario", "sku", "month"], how="left")
    else:
        late = late.with_columns(pl.lit(None, pl.Utf8).alias("constraint_kind"), pl.lit(None, pl.Utf8).alias("constraint"))
    late = late.with_columns(
        pl.col("constraint_kind").fill_null("unexplained"),
        pl.col("constraint").fill_null(pl.col("constraint_kind").fill_null("unexplained")),
        (pl.col("late") * unit_value).alias("money"),
    )
    fam = late.group_by("scenario", "family", "constraint_kind", "constraint").agg(
        pl.col("late").sum(),
        pl.col("demand").sum(),
        pl.col("money").sum(),
        pl.col("month").min().alias("first_month"),
        pl.col("month").max().alias("last_month"),
        pl.col("month").n_unique().alias("months"),
        pl.col("sku").n_unique().alias("skus"),
    )
    kind, what = pl.col("constraint_kind"), pl.col("constraint")
    action = (
        pl.when(kind == "capacity")
        .then(pl.format("Add capacity on {} (overtime, another routing or a shift), or accept the late {} units", what, "family"))
        .when(kind == "material")
        .then(pl.format("Expedite or second-source {}, or accept the late {} units", what, "family"))
        .when(kind == "cost")
        .then(pl.format("Decide whether serving {} is worth its cost (the plan finds it cheaper not to make it)", "family"))
        .otherwise(pl.format("Supply planning to explain the late {} units before the plan is approved", "family"))
    )
    return fam.filter((pl.col("money") >= gates.materiality.shortfall_revenue) & (pl.col("money") > 0)).select(
        "scenario",
        pl.format("shortfall:{}:{}", "family", what).alias("exception_id"),
        pl.lit("supply_review").alias("step"),
        pl.lit("shortfall").alias("kind"),
        "family",
        pl.when(kind == "capacity").then(what).alias("resource"),
        pl.when(kind == "material").then(what).alias("material"),
        "first_month",
        "last_month",
        "money",
        pl.lit("margin lost (lost sales)" if lost_sales else "revenue delivered late").alias("money_basis"),
        pl.lit(owners["supply_review"]).alias("owner"),
        pl.format(
            "{}: {} units late of {} demanded ({} SKUs, {} month(s), {} to {}); {}",
            "family",
            pl.col("late").round(0).cast(pl.Int64),
            pl.col("demand").round(0).cast(pl.Int64),
            "skus",
            "months",
            pl.col("first_month").dt.strftime("%Y-%m"),
            pl.col("last_month").dt.strftime("%Y-%m"),
            pl.when(kind == "unexplained").then(pl.lit("no binding constraint found")).otherwise(pl.format("bound by {} {}", kind, what)),
        ).alias("description"),
        action.alias("recommendation"),
    )


def _budget_exceptions(budget_gap, gates: ExecutiveGates, owners) -> pl.DataFrame | None:
    """Families whose fiscal year (actuals to date + plan) misses or beats the budget, in
    revenue or gross margin, by `budget_gap_amount` and `budget_gap_pct`: the year is what a
    finance lead commits to, so a month-by-month gap is detail for the financial review."""
    if not present(budget_gap, "measure", "plan", "budget"):
        return None
    rows = with_scenario(budget_gap)
    if "period" in rows.columns and rows.filter(pl.col("period") == "fiscal_year").height:
        rows = rows.filter(pl.col("period") == "fiscal_year")  # budget_rows keeps the one grain left
    rows = budget_rows(rows, gates)
    rows = rows.filter(
        pl.col("measure").is_in(["revenue", "gross_margin"])
        & (pl.col("gap").abs() >= gates.materiality.budget_gap_amount)
        & (pl.col("gap_pct").abs() >= gates.materiality.budget_gap_pct)
    )
    if not rows.height:
        return None
    if "family" not in rows.columns:
        rows = rows.with_columns(pl.lit("ALL").alias("family"))
    month = pl.col("month").cast(pl.Date) if "month" in rows.columns else pl.lit(None, pl.Date)
    part = pl.format(
        "{} plan {} vs budget {} ({} {}%)",
        pl.col("measure").str.replace("_", " "),
        pl.col("plan").round(0).cast(pl.Int64),
        pl.col("budget").round(0).cast(pl.Int64),
        pl.when(pl.col("gap") < 0).then(pl.lit("below budget by")).otherwise(pl.lit("above budget by")),
        pl.col("gap_pct").abs().round(1),
    )
    # Revenue and margin of one family and period are one finding: its money is the larger gap.
    per = (
        rows.with_columns(part.alias("part"), month.alias("first_month"), pl.col("gap").abs().alias("money"))
        .sort("measure", descending=True)  # revenue before gross_margin
        .group_by("scenario", "family", "period_label", "first_month", maintain_order=True)
        .agg(pl.col("part").str.join("; "), pl.col("money").max(), pl.col("gap").sort_by(pl.col("gap").abs()).last().alias("gap"))
    )
    below = pl.col("gap") < 0
    return per.select(
        "scenario",
        pl.format("budget_gap:{}:{}", "family", "period_label").alias("exception_id"),
        pl.lit("financial_review").alias("step"),
        pl.lit("budget_gap").alias("kind"),
        "family",
        "first_month",
        pl.col("first_month").alias("last_month"),
        "period_label",
        "money",
        pl.when(below).then(pl.lit("gap to budget (below)")).otherwise(pl.lit("gap to budget (above)")).alias("money_basis"),
        pl.lit(owners["financial_review"]).alias("owner"),
        pl.format("{} {}: {}", "family", "period_label", "part").alias("description"),
        pl.when(below)
        .then(pl.format("Close the {} {} gap with demand actions, or restate the latest estimate", "family", "period_label"))
        .otherwise(pl.format("Confirm the {} upside and raise the {} estimate", "family", "period_label"))
        .alias("recommendation"),
    )


def _capacity_exceptions(capacity, resources, gates: ExecutiveGates, owners, shortfalls=None) -> pl.DataFrame | None:
    """Resources above `utilization` in some month whose cost to the plan reaches
    `capacity_money`: the overtime premium paid on them plus the money of the late units they
    bind (the shortfall exceptions bound by the resource, valued at the product master's
    price). The LP's shadow price says what one more hour would be worth and is shown, but
    shadow price x load hours is a rent on every hour, not money the company loses, and at a
    bottleneck it exceeds the whole company's margin."""
    if not present(capacity, "resource", "month", "utilization"):
        return None
    if shortfalls is not None and shortfalls.height:
        bound = (
            shortfalls.filter(pl.col("resource").is_not_null())
            .group_by("scenario", "resource")
            .agg(pl.col("money").sum().alias("late_money"))
        )
    else:
        bound = pl.DataFrame(schema={"scenario": pl.Utf8, "resource": pl.Utf8, "late_money": pl.Float64})
    cap = with_scenario(capacity)
    for column in ("load_hours", "overtime_hours", "shadow_price"):
        if column not in cap.columns:
            cap = cap.with_columns(pl.lit(0.0).alias(column))
    if "plant" not in cap.columns:
        cap = cap.with_columns(pl.lit(None, pl.Utf8).alias("plant"))
    if resources is not None and {"resource", "overtime_cost_per_hour"} <= set(resources.columns):
        # Regular conversion cost already pays every hour, so an overtime hour costs its premium
        # (as in the supply LP and the financial review); the full rate when cost_per_hour is unknown.
        regular = pl.col("cost_per_hour") if "cost_per_hour" in resources.columns else pl.lit(0.0)
        premium = (pl.col("overtime_cost_per_hour") - regular).clip(lower_bound=0.0).alias("overtime_premium")
        cap = cap.join(resources.select("resource", premium), on="resource", how="left")
    else:
        cap = cap.with_columns(pl.lit(None, pl.Float64).alias("overtime_premium"))
    hot = cap.filter(pl.col("utilization") > gates.materiality.utilization)
    per = (
        hot.sort("utilization", descending=True)
        .group_by("scenario", "resource")
        .agg(
            pl.col("plant").first(),
            pl.len().alias("months"),
            pl.col("utilization").max().alias("peak"),
            pl.col("month").first().alias("peak_month"),
            pl.col("month").min().alias("first_month"),
            pl.col("month").max().alias("last_month"),
            pl.col("overtime_hours").fill_null(0).sum().alias("overtime_hours"),
            (pl.col("overtime_hours").fill_null(0) * pl.col("overtime_premium").fill_null(0)).sum().alias("overtime_cost"),
            pl.col("shadow_price").fill_null(0).max().alias("max_shadow_price"),
        )
        .join(bound, on=["scenario", "resource"], how="left")
        .with_columns(pl.col("late_money").fill_null(0.0))
        .with_columns((pl.col("overtime_cost") + pl.col("late_money")).alias("money"))
    )
    return per.filter((pl.col("money") >= gates.materiality.capacity_money) & (pl.col("money") > 0)).select(
        "scenario",
        pl.format("capacity:{}", "resource").alias("exception_id"),
        pl.lit("supply_review").alias("step"),
        pl.lit("capacity").alias("kind"),
        "resource",
        "first_month",
        "last_month",
        "money",
        pl.lit("overtime premium + late units it binds").alias("money_basis"),
        pl.lit(owners["supply_review"]).alias("owner"),
        pl.format(
            "{} ({}): above {}% utilisation in {} month(s), peak {}% in {}; {} overtime hours costing {}; "
            "late units it binds worth {} (its shortfall exceptions); one more hour worth up to {}",
            "resource",
            pl.col("plant").fill_null("no plant"),
            pl.lit(round(100 * gates.materiality.utilization)),
            "months",
            (100 * pl.col("peak")).round(0).cast(pl.Int64),
            pl.col("peak_month").dt.strftime("%Y-%m"),
            pl.col("overtime_hours").round(0).cast(pl.Int64),
            pl.col("overtime_cost").round(0).cast(pl.Int64),
            pl.col("late_money").round(0).cast(pl.Int64),
            pl.col("max_shadow_price").round(2),
        ).alias("description"),
        pl.format(
            "Approve overtime or qualify an alternate routing for {} before {}", "resource", pl.col("first_month").dt.strftime("%Y-%m")
        ).alias("recommendation"),
    )


def review_notes(frames: Mapping[str, pl.DataFrame | None]) -> list[str]:
    """Which parts of the executive review were skipped this cycle and why (for asset
    metadata, the CLI and the review pack): absent steps are a note, never a failure."""
    notes = []
    checks = [
        ("supply_plan", "no supply plan this cycle: fill rate, late units and shortfall exceptions skipped"),
        ("capacity_plan", "no capacity plan this cycle: bottleneck utilisation and capacity exceptions skipped"),
        ("financial_plan", "no financial plan this cycle: revenue, margin and inventory value skipped"),
        ("budget_gap", "no budget gap this cycle (no budget or no financial plan): budget KPIs and exceptions skipped"),
        ("forecast_accuracy", "no forecast accuracy yet (no earlier cycle scored): WAPE and bias skipped"),
    ]
    for name, note in checks:
        frame = frames.get(name)
        if frame is None or frame.height == 0:
            notes.append(note)
    return notes
