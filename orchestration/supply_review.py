"""Supply review: inventory targets, the constrained supply plan per scenario and its
explanations, gated by `supply_plan_is_feasible`, which re-checks the stored tables without
the solver."""

import dagster as dg
import polars as pl

from orchestration.ingestion import mart
from orchestration.io import CycleStep, chart, chart_folder, md_table, planning_key, table_spec
from orchestration.partitions import ONE_CYCLE_PER_RUN, WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline.reporting.charts import capacity_chart, inventory_chart
from sop_pipeline.settings.scenarios import BASELINE
from sop_pipeline.supply.common import SupplyDataMissing
from sop_pipeline.supply.diagnose import bottlenecks, exceptions
from sop_pipeline.supply.feasibility import PlanTables, check_plan_feasibility, stranded_supply, supply_gate_findings
from sop_pipeline.supply.inputs import SupplyInputs
from sop_pipeline.supply.plan import plan_supply, production_plan
from sop_pipeline.supply.review import run_supply_review, scenario_summary
from sop_pipeline.supply.rollup import family_exceptions
from sop_pipeline.supply.scenarios import apply_scenario
from sop_pipeline.supply.targets import compute_inventory_targets
from sop_pipeline.warehouse import read_table

GROUP = "supply_review"
SECTIONS = ("calendar", "supply", "scenarios", "gates")
SUPPLY_CHECK = "supply_plan_is_feasible"
MARTS = {
    "products": "dim_product",
    "resources": "dim_resource",
    "routings": "fct_routing",
    "materials": "dim_material",
    "bom": "fct_bom",
    "inventory": "fct_inventory",
    "open_supply": "fct_open_supply",
}
TABLES = (
    "inventory_targets",
    "supply_plan",
    "capacity_plan",
    "material_plan",
    "production_plan",
    "supply_exception_skus",  # before supply_exceptions, which is summed from it (Dagster yields in order)
    "supply_exceptions",
    "bottlenecks",
    "supply_scenarios",
)
DEMAND = [planning_key("consensus_demand"), planning_key("product_segmentation")]


def _specs() -> list[dg.AssetSpec]:
    key = planning_key
    inputs = [mart(m) for m in MARTS.values()]
    return [
        table_spec("inventory_targets", GROUP, DEMAND, [compute_inventory_targets]),
        table_spec("supply_plan", GROUP, [*DEMAND, *inputs, key("inventory_targets")], [plan_supply], kinds={"python", "highs", "duckdb"}),
        table_spec("capacity_plan", GROUP, [key("supply_plan")], [plan_supply]),
        table_spec("material_plan", GROUP, [key("supply_plan")], [plan_supply]),
        table_spec("production_plan", GROUP, [key("supply_plan")], [production_plan]),
        table_spec("supply_exception_skus", GROUP, [key("supply_plan"), key("capacity_plan"), key("material_plan")], [exceptions]),
        table_spec("supply_exceptions", GROUP, [key("supply_exception_skus")], [family_exceptions]),
        table_spec("bottlenecks", GROUP, [key("capacity_plan"), key("material_plan")], [bottlenecks]),
        table_spec("supply_scenarios", GROUP, [key("supply_plan"), key("bottlenecks")], [scenario_summary]),
    ]


def load_supply_inputs(step: CycleStep, con) -> SupplyInputs:
    frames = {name: read_table(con, f"marts.{table}") for name, table in MARTS.items()}
    return SupplyInputs.from_frames(frames, step.read(con, "consensus_demand"), step.read(con, "product_segmentation"))


@dg.multi_asset(
    name="supply_plan",
    specs=_specs(),
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def supply_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Solve the baseline and every scenario of `models/scenarios.yaml` with HiGHS."""
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        inputs = load_supply_inputs(step, con)
    try:
        review = run_supply_review(inputs, step.settings.supply, step.settings.scenarios.named(), step.cycle)
    except SupplyDataMissing as missing:
        # A company without capacity or material data still gets its demand review; the supply
        # tables stay empty for this cycle and the executive pack says why.
        context.log.warning(f"supply review skipped: {missing}")
        step.write({name: _empty(name) for name in TABLES})
        for name in TABLES:
            yield step.result(name, skipped=str(missing))
        return
    tables = {
        "inventory_targets": review.inventory_targets,
        "supply_scenarios": review.scenario_summary,
        **{name: review.frame(name) for name in TABLES if name not in ("inventory_targets", "supply_scenarios")},
    }
    step.write(tables)
    baseline = review.results[BASELINE]
    charts = chart_folder(warehouse, step.cycle)
    summary = review.scenario_summary.select(
        "scenario", "status", "objective", "fill_rate", "late_units", "overtime_hours", "top_bottleneck", "total_seconds"
    )
    extra = {
        "supply_plan": {
            "scenarios": md_table(summary),
            "lp_size": dg.MetadataValue.json(baseline.lp_size),
            **chart(charts, "inventory_top_families", inventory_chart(baseline.supply_plan)),
        },
        "capacity_plan": chart(charts, "capacity_top_bottlenecks", capacity_chart(baseline.capacity_plan, baseline.bottlenecks)),
        "bottlenecks": {"top": md_table(baseline.bottlenecks.head(10))},
    }
    for name in TABLES:
        yield step.result(name, tables[name], **extra.get(name, {}))


def _empty(name: str) -> pl.DataFrame:
    from sop_pipeline import registry

    return registry.table(name).empty()


@dg.asset_check(
    asset=planning_key("supply_plan"),
    name=SUPPLY_CHECK,
    blocking=True,
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    additional_deps=[
        planning_key(n)
        for n in ("capacity_plan", "material_plan", "production_plan", "supply_exceptions", "supply_exception_skus", "supply_scenarios")
    ],
    description="Every scenario solved to optimality; capacity plus overtime, material availability and inventory balance hold "
    "when re-checked from the stored tables; the baseline's fill rate meets the gate or every miss is explained.",
)
def supply_plan_is_feasible(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource
) -> dg.AssetCheckResult:
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    mode = step.settings.supply.costs.shortfall_mode
    with step.reading() as con:
        inputs = load_supply_inputs(step, con)
        stored = {name: step.read(con, name) for name in TABLES}
    if stored["supply_scenarios"].height == 0:
        return step.checkpoint(SUPPLY_CHECK, True, "skipped: no supply plan this cycle (no capacity or material data)")
    scenarios = step.settings.scenarios.named()
    violations = {}
    for name in stored["supply_scenarios"]["scenario"].to_list():
        only = {k: v.filter(pl.col("scenario") == name) for k, v in stored.items() if "scenario" in v.columns}
        plan = PlanTables(only["supply_plan"], only["capacity_plan"], only["material_plan"], only["production_plan"], mode)
        violations[name] = check_plan_feasibility(plan, apply_scenario(inputs, scenarios[name]) if name in scenarios else inputs)
    baseline = {k: v.filter(pl.col("scenario") == BASELINE) for k, v in stored.items() if "scenario" in v.columns}
    findings = supply_gate_findings(
        stored["supply_scenarios"],
        violations,
        baseline["supply_plan"],
        baseline["supply_exception_skus"],
        step.settings.gates.supply_review,
        mode,
        step.settings.supply.exceptions.min_units,
        stranded_supply(inputs),
    )
    return step.checkpoint(
        SUPPLY_CHECK,
        findings["passed"],
        findings["description"],
        baseline_fill_rate=findings["fill_rate"],
        fill_rate_target=step.settings.gates.supply_review.fill_rate_target,
        unexplained_misses=md_table(findings["unexplained"]),
        violations=dg.MetadataValue.json(findings["violations"][:50]),
    )
