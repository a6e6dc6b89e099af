"""Financial review: the plan in money against the budget and last cycle's plan of record,
gated by `financial_plan_ties_out`, re-checked from the stored tables."""

import dagster as dg
import polars as pl

from orchestration.ingestion import mart
from orchestration.io import CycleStep, chart, chart_folder, md_table, planning_key, table_spec
from orchestration.partitions import EARLIER_CYCLES, ONE_CYCLE_PER_RUN, WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline.executive.governance import last_plan_of_record
from sop_pipeline.finance.bridge import CycleDetail
from sop_pipeline.finance.bridge import plan_bridge as bridge_of
from sop_pipeline.finance.budget import budget_gap, latest_estimate
from sop_pipeline.finance.plan import financial_plan as plan_in_money
from sop_pipeline.finance.reconciliation import reconciliation
from sop_pipeline.finance.review import FinanceInputs, checkpoint_problems, review_every_scenario, scenario_prices
from sop_pipeline.finance.scenarios import scenario_comparison
from sop_pipeline.reporting.charts import bridge_chart, revenue_margin_chart
from sop_pipeline.settings.scenarios import BASELINE
from sop_pipeline.warehouse import read_cycle, read_table

GROUP = "financial_review"
SECTIONS = ("calendar", "supply", "scenarios", "gates")
FINANCE_CHECK = "financial_plan_ties_out"
TABLES = ("financial_plan", "budget_gap", "latest_estimate", "reconciliation", "scenario_financials")
SUPPLY = [planning_key(n) for n in ("supply_plan", "capacity_plan", "supply_exception_skus", "production_plan")]


def _specs() -> list[dg.AssetSpec]:
    key = planning_key
    sources = [
        planning_key("consensus_demand"),
        *SUPPLY,
        mart("fct_budget"),
        mart("fct_price_plan"),
        mart("dim_product"),
        mart("fct_inventory"),
        mart("fct_sales_monthly"),
    ]
    return [
        table_spec("financial_plan", GROUP, sources, [plan_in_money]),
        table_spec("budget_gap", GROUP, [key("financial_plan"), mart("fct_budget"), mart("fct_sales_monthly")], [budget_gap]),
        table_spec("latest_estimate", GROUP, [key("budget_gap")], [latest_estimate]),
        table_spec("reconciliation", GROUP, [key("financial_plan"), key("budget_gap")], [reconciliation]),
        table_spec("scenario_financials", GROUP, [key("financial_plan")], [scenario_comparison]),
    ]


def load_finance_inputs(step: CycleStep, con) -> FinanceInputs:
    price_plan = read_table(con, "marts.fct_price_plan")
    supply_plan = step.read(con, "supply_plan")
    return FinanceInputs(
        products=read_table(con, "marts.dim_product"),
        consensus=step.read(con, "consensus_demand"),
        supply_plan=supply_plan if supply_plan.height else None,
        budget=read_table(con, "marts.fct_budget"),
        bom=read_table(con, "marts.fct_bom"),
        materials=read_table(con, "marts.dim_material"),
        routings=read_table(con, "marts.fct_routing"),
        resources=read_table(con, "marts.dim_resource"),
        capacity_plan=step.read(con, "capacity_plan"),
        supply_exception_skus=step.read(con, "supply_exception_skus"),
        price_plan=price_plan if price_plan.height else None,
        production_plan=step.read(con, "production_plan"),
        inventory=read_table(con, "marts.fct_inventory"),
        sales=read_table(con, "marts.fct_sales_monthly"),
    )


@dg.multi_asset(
    name="financial_plan",
    specs=_specs(),
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def financial_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Price the constrained and unconstrained plans of every scenario; compare with the budget."""
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        inputs = load_finance_inputs(step, con)
    costs = step.settings.supply.costs
    review = review_every_scenario(
        step.cycle,
        inputs,
        step.settings.scenarios.named(),
        step.settings.gates.financial_review,
        costs.shortfall_mode,
        costs,
        step.settings.calendar.fiscal_year_start_month,
    )
    tables = {
        "financial_plan": review.financial_plan,
        "budget_gap": review.budget_gap,
        "latest_estimate": review.latest_estimate,
        "reconciliation": review.reconciliation,
        "scenario_financials": review.scenario_comparison,
    }
    step.write({name: frame.with_columns(pl.lit(step.cycle).alias("cycle")) for name, frame in tables.items()})
    picture = chart(
        chart_folder(warehouse, step.cycle), "financial_revenue_margin", revenue_margin_chart(review.financial_plan, inputs.budget)
    )
    causes = review.reconciliation.group_by("cause").agg(pl.len().alias("rows"), pl.col("amount").sum()).sort("rows", descending=True)
    side_by_side = review.scenario_comparison.select(
        "scenario", "revenue", "gross_margin", "gross_margin_pct", "inventory_value_avg", "delta_revenue", "delta_gross_margin"
    )
    extra = {
        "financial_plan": picture,
        "reconciliation": {"causes": md_table(causes)},
        "scenario_financials": {"scenarios": md_table(side_by_side)},
    }
    for name in TABLES:
        yield step.result(name, tables[name], **extra.get(name, {}))


@dg.multi_asset(
    name="plan_bridge",
    specs=[
        table_spec(
            "plan_bridge",
            GROUP,
            [
                planning_key("financial_plan"),
                planning_key("statistical_forecast"),
                planning_key("consensus_demand"),
                planning_key("supply_plan"),
                mart("fct_budget"),
                mart("fct_price_plan"),
                mart("dim_product"),
                dg.AssetDep(planning_key("plan_of_record"), partition_mapping=EARLIER_CYCLES),
            ],
            [bridge_of],
        )
    ],
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
)
def plan_bridge(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Revenue from the budget (price, volume, mix), and from last cycle's plan of record (by
    driver), to this plan."""
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        plan = step.read(con, "financial_plan")
        budget = read_table(con, "marts.fct_budget")
        last = last_plan_of_record(con, step.cycle)
        inputs = load_finance_inputs(step, con)
        this = CycleDetail(step.read(con, "statistical_forecast"), inputs.consensus, inputs.supply_plan)
        before = _last_detail(con, last["cycle"][0]) if last is not None and last.height else CycleDetail()
    scenarios = step.settings.scenarios.named()
    prices = {name: scenario_prices(inputs, scenarios, name) for name in plan["scenario"].unique().to_list()}
    bridge = bridge_of(plan, budget, last, this, before, inputs.products, prices, step.settings.supply.costs.shortfall_mode)
    step.write({"plan_bridge": bridge})
    return step.result("plan_bridge", bridge, **chart(chart_folder(warehouse, step.cycle), "financial_bridge", bridge_chart(bridge)))


def _last_detail(con, cycle: str) -> CycleDetail:
    """Last cycle's plan at SKU level: its statistical forecast, and the approved scenario's
    consensus and supply plan (its baseline where nothing was approved)."""

    demand, supply = read_cycle(con, "plan_of_record_demand", cycle), read_cycle(con, "plan_of_record_supply", cycle)
    if supply.height == 0:
        demand, supply = read_cycle(con, "consensus_demand", cycle), read_cycle(con, "supply_plan", cycle)
        supply = supply.filter(pl.col("scenario") == BASELINE)
    return CycleDetail(read_cycle(con, "statistical_forecast", cycle), demand, supply)


@dg.asset_check(
    asset=planning_key("financial_plan"),
    name=FINANCE_CHECK,
    blocking=True,
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    additional_deps=[planning_key("budget_gap"), planning_key("reconciliation")],
    description="Units x price ties out to revenue at every level; every family and month of every scenario is projected; "
    "every gap above tolerance is in the reconciliation with a cause.",
)
def financial_plan_ties_out(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource
) -> dg.AssetCheckResult:
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        inputs = load_finance_inputs(step, con)
        stored = {name: step.read(con, name) for name in ("financial_plan", "budget_gap", "reconciliation")}
    problems = checkpoint_problems(
        step.cycle,
        inputs,
        stored["financial_plan"],
        stored["budget_gap"],
        stored["reconciliation"],
        step.settings.scenarios.named(),
        step.settings.gates.financial_review,
        step.settings.supply.costs.shortfall_mode,
        step.settings.supply.costs,
    )
    failing = {k: v for k, v in problems.items() if v.height}
    description = (
        "ties out: revenue = units x price at every level, every family-month projected, every gap reconciled"
        if not failing
        else "; ".join(f"{k}: {v.height} problem rows (first: {v.row(0, named=True)})" for k, v in failing.items())
    )
    return step.checkpoint(FINANCE_CHECK, not failing, description, **{k: md_table(v) for k, v in problems.items()})
