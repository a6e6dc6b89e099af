"""Financial review assets: the plan in money for every scenario, against budget and last
month's approved plan, with the gaps between demand, supply and finance explained."""

import dagster as dg
import polars as pl

from orchestration.assets.demand_review import CONSENSUS
from orchestration.assets.supply_review import KEYS as SUPPLY
from orchestration.checkpoints import record_gate
from orchestration.metadata import chart_dir, md_table, png_metadata
from orchestration.partitions import WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline import financial_review, schemas, supply_review
from sop_pipeline.warehouse import cycle_label, read_table, replace_cycle, require_marts_for, table_exists

TABLES = ["financial_plan", "budget_gap", "plan_bridge", "reconciliation", "scenario_financials"]
KEYS = {name: dg.AssetKey(["planning", name]) for name in TABLES}
FINANCE_CHECK = "financial_plan_ties_out"
DESCRIPTIONS = {
    "financial_plan": "Volume, revenue, COGS, margin and inventory value per scenario, family and month; unconstrained revenue beside it.",
    "budget_gap": "Plan against budget by family, month and quarter: volume, revenue, margin, absolute and %.",
    "plan_bridge": "Price / volume / mix bridge from budget to plan and from last cycle's approved plan to this one.",
    "reconciliation": "Every gap between unconstrained demand, constrained supply and budget, with its cause and levers.",
    "scenario_financials": "Every scenario in money, side by side with baseline.",
}


def _optional(con, table: str, where: str = "", params: list | None = None) -> pl.DataFrame | None:
    schema, name = table.split(".")
    return read_table(con, table, where, params) if table_exists(con, schema, name) else None


def last_approved_plan(con, cycle: str) -> pl.DataFrame | None:
    """Last cycle's plan of record in money; without one, last cycle's baseline plan."""
    for table in ("planning.plan_of_record_financial", "planning.financial_plan"):
        frame = _optional(con, table, "cycle < ?", [cycle])
        if frame is not None and frame.height:
            latest = frame["cycle"].max()
            frame = frame.filter(pl.col("cycle") == latest)
            if "scenario" in frame.columns and table.endswith("financial_plan"):
                frame = frame.filter(pl.col("scenario") == supply_review.BASELINE)
            return frame.select([c for c in frame.columns if c not in ("plan_version", "approved_by", "approved_at")])
    return None


def review_every_scenario(cycle, inputs, price_plan, scenarios, gates, shortfall_mode) -> financial_review.FinancialReview:
    """Price each scenario with its own price plan (the company's plus the scenario's
    `price_change` overlays), then compare all scenarios side by side.

    Budget gap, bridge, tie-out and coverage are per scenario and simply stack; the
    reconciliation is the baseline's; the side-by-side comparison is computed over all of them.
    """
    supply = inputs["supply_plan"]
    if supply is None or supply.height == 0:
        return financial_review.run_financial_review(cycle, price_plan=price_plan, gates=gates, shortfall_mode=shortfall_mode, **inputs)
    months = inputs["consensus"]["month"].unique().sort().to_list()
    reviews = {}
    for name in supply["scenario"].unique(maintain_order=True).to_list():
        scenario = scenarios.get(name, supply_review.Scenario(name))
        only = {k: (v.filter(pl.col("scenario") == name) if k in ("supply_plan", "capacity_plan", "supply_exceptions") and v is not None else v)
                for k, v in inputs.items()}
        reviews[name] = financial_review.run_financial_review(
            cycle, price_plan=supply_review.scenario_price_plan(price_plan, scenario, months), gates=gates,
            shortfall_mode=shortfall_mode, **only,
        )
    stack = lambda attr: pl.concat([getattr(r, attr) for r in reviews.values()], how="vertical_relaxed")  # noqa: E731
    plan, gap = stack("financial_plan"), stack("budget_gap")
    # The reconciliation explains the baseline's gaps and prices every scenario as a lever.
    baseline_prices = supply_review.scenario_price_plan(price_plan, scenarios.get(supply_review.BASELINE, supply_review.Scenario("baseline")), months)
    reconciliation = financial_review.reconciliation(
        plan, inputs["budget"], supply, inputs["consensus"], inputs["products"], inputs["supply_exceptions"], baseline_prices,
        gates, supply_review.BASELINE, shortfall_mode,
    )
    return financial_review.FinancialReview(
        financial_plan=plan,
        budget_gap=gap,
        plan_bridge=stack("plan_bridge"),
        reconciliation=reconciliation,
        scenario_comparison=financial_review.scenario_comparison(plan),
        tie_out_problems=stack("tie_out_problems"),
        coverage_problems=stack("coverage_problems"),
        reconciliation_problems=financial_review.reconciliation_problems(reconciliation, gap, plan, gates, supply_review.BASELINE),
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, group_name="financial_review", kinds={"python", "duckdb"}, description=DESCRIPTIONS[name],
                     deps=[CONSENSUS, SUPPLY["supply_plan"], SUPPLY["capacity_plan"], SUPPLY["supply_exceptions"],
                           ["marts", "fct_budget"], ["marts", "fct_price_plan"], ["marts", "dim_product"]])
        for name, key in KEYS.items()
    ],
    check_specs=[
        dg.AssetCheckSpec(FINANCE_CHECK, asset=KEYS["financial_plan"], blocking=True,
                          description="Units x price ties out to revenue at every level; every family and month of every "
                                      "scenario is projected; every gap above tolerance is in the reconciliation with a cause."),
    ],
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    can_subset=False,
    name="financial_plan",
)
def financial_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Price the constrained and unconstrained plans; compare with budget and last cycle."""
    cycle = cycle_label(context.partition_key)
    gates = financial_review.load_financial_gates(planning_models.file("gates.yaml"))
    settings = supply_review.load_supply_settings(planning_models.file("supply.yaml"))
    scenarios = supply_review.load_scenarios(planning_models.file("scenarios.yaml"))
    with warehouse.connect(read_only=True) as con:
        require_marts_for(con, cycle)
        price_plan = read_table(con, "marts.fct_price_plan")
        inputs = dict(
            products=read_table(con, "marts.dim_product"),
            supply_plan=_optional(con, "planning.supply_plan", "cycle = ?", [cycle]),
            consensus=read_table(con, "planning.consensus_demand", "cycle = ?", [cycle]),
            budget=read_table(con, "marts.fct_budget"),
            bom=read_table(con, "marts.fct_bom"),
            materials=read_table(con, "marts.dim_material"),
            routings=read_table(con, "marts.fct_routing"),
            resources=read_table(con, "marts.dim_resource"),
            capacity_plan=_optional(con, "planning.capacity_plan", "cycle = ?", [cycle]),
            supply_exceptions=_optional(con, "planning.supply_exceptions", "cycle = ?", [cycle]),
            last_plan=last_approved_plan(con, cycle),
        )
    review = review_every_scenario(cycle, inputs, price_plan if price_plan.height else None, scenarios, gates, settings.shortfall_mode)
    budget = inputs["budget"]
    tables = {
        "financial_plan": review.financial_plan, "budget_gap": review.budget_gap, "plan_bridge": review.plan_bridge,
        "reconciliation": review.reconciliation, "scenario_financials": review.scenario_comparison,
    }
    with warehouse.connect() as con:
        for name, frame in tables.items():
            replace_cycle(con, f"planning.{name}", schemas.validate_table(name, frame.with_columns(pl.lit(cycle).alias("cycle"))), cycle)
    charts = chart_dir(warehouse, cycle)
    revenue_png = png_metadata(financial_review.revenue_margin_chart(review.financial_plan, budget), charts / "financial_revenue_margin.png")
    bridge_png = png_metadata(financial_review.bridge_chart(review.plan_bridge), charts / "financial_bridge.png")
    for name, key in KEYS.items():
        metadata: dict = {"rows": tables[name].height}
        if name == "financial_plan":
            metadata.update(**revenue_png)
        if name == "plan_bridge":
            metadata.update(**bridge_png)
        if name == "scenario_financials":
            metadata.update(scenarios=md_table(review.scenario_comparison.select(
                "scenario", "revenue", "gross_margin", "gross_margin_pct", "inventory_value_avg", "delta_revenue", "delta_gross_margin")))
        if name == "reconciliation":
            metadata.update(causes=md_table(review.reconciliation.group_by("cause").agg(pl.len().alias("rows"), pl.col("amount").sum()).sort("rows", descending=True)))
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    problems = {"tie_out": review.tie_out_problems, "coverage": review.coverage_problems, "reconciliation": review.reconciliation_problems}
    failing = {k: v for k, v in problems.items() if v.height}
    finance_description = (
        "ties out: revenue = units x price at every level, every family-month projected, every gap reconciled"
        if review.ties_out else "; ".join(f"{k}: {v.height} problem rows (first: {v.row(0, named=True)})" for k, v in failing.items())
    )
    record_gate(warehouse, cycle, FINANCE_CHECK, review.ties_out, finance_description)
    yield dg.AssetCheckResult(
        check_name=FINANCE_CHECK,
        asset_key=KEYS["financial_plan"],
        passed=review.ties_out,
        severity=dg.AssetCheckSeverity.ERROR,
        description=finance_description,
        metadata={k: md_table(v) for k, v in problems.items()},
    )
