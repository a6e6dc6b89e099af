"""Supply review assets: inventory targets, the constrained supply plan per scenario, and its
explanations, gated by a feasibility check that does not trust the solver."""

import dagster as dg
import polars as pl

from orchestration.assets.demand_review import CONSENSUS, SEGMENTATION
from orchestration.checkpoints import record_gate
from orchestration.metadata import chart_dir, md_table, png_metadata
from orchestration.partitions import WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline import schemas, supply_review
from sop_pipeline.warehouse import cycle_label, read_table, replace_cycle, require_marts_for, table_exists

TABLES = ["inventory_targets", "supply_plan", "capacity_plan", "material_plan", "supply_exceptions", "bottlenecks", "supply_scenarios"]
KEYS = {name: dg.AssetKey(["planning", name]) for name in TABLES}
SUPPLY_CHECK = "supply_plan_is_feasible"
MARTS = ["dim_product", "dim_resource", "fct_routing", "dim_material", "fct_bom", "fct_inventory", "fct_open_supply"]

DESCRIPTIONS = {
    "inventory_targets": "Safety stock and target inventory per SKU and month, from the forecast's p10-p90 and the segment's service level.",
    "supply_plan": "Production, ending inventory and shortfall per scenario, SKU and month.",
    "capacity_plan": "Load, capacity, overtime, utilisation and shadow price per scenario, resource and month.",
    "material_plan": "Requirement, purchases and ending stock per scenario, material and month.",
    "supply_exceptions": "Each SKU-month short of demand or below target, with the binding constraint behind it and its value.",
    "bottlenecks": "Resources and materials ranked by shadow price x load.",
    "supply_scenarios": "One row per scenario: solver status, cost, fill rate, overtime, top bottleneck.",
}


def load_supply_inputs(con, cycle: str) -> supply_review.SupplyInputs:
    names = {"products": "dim_product", "resources": "dim_resource", "routings": "fct_routing", "materials": "dim_material",
             "bom": "fct_bom", "inventory": "fct_inventory", "open_supply": "fct_open_supply"}
    frames = {name: read_table(con, f"marts.{table}") for name, table in names.items()}
    demand = read_table(con, "planning.consensus_demand", "cycle = ?", [cycle])
    segmentation = read_table(con, "planning.product_segmentation", "cycle = ?", [cycle])
    return supply_review.SupplyInputs.from_frames(frames, demand, segmentation)


def _with_cycle(frame: pl.DataFrame, cycle: str) -> pl.DataFrame:
    return frame.with_columns(pl.lit(cycle).alias("cycle")) if "cycle" not in frame.columns else frame


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, group_name="supply_review", kinds={"python", "highs", "duckdb"}, description=DESCRIPTIONS[name],
                     deps=[CONSENSUS, SEGMENTATION] + [["marts", m] for m in MARTS])
        for name, key in KEYS.items()
    ],
    check_specs=[
        dg.AssetCheckSpec(SUPPLY_CHECK, asset=KEYS["supply_plan"], blocking=True,
                          description="Every scenario solved to optimality; capacity plus overtime, material availability and "
                                      "inventory balance hold when re-checked from the output tables; the baseline's fill rate "
                                      "meets the gate or every miss is explained."),
    ],
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    can_subset=False,
    name="supply_plan",
)
def supply_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Solve the baseline and every scenario of `models/scenarios.yaml` with HiGHS."""
    cycle = cycle_label(context.partition_key)
    settings = supply_review.load_supply_settings(planning_models.file("supply.yaml"))
    scenarios = supply_review.load_scenarios(planning_models.file("scenarios.yaml"))
    gates = supply_review.load_supply_gates(planning_models.file("gates.yaml"))
    with warehouse.connect(read_only=True) as con:
        require_marts_for(con, cycle)
        inputs = load_supply_inputs(con, cycle)
    try:
        review = supply_review.run_supply_review(inputs, settings, scenarios, cycle)
    except supply_review.SupplyDataMissing as missing:
        # A company without capacity or material data still gets its demand review; the supply
        # tables stay empty for this cycle and the executive pack says why.
        context.log.warning(f"supply review skipped: {missing}")
        with warehouse.connect() as con:
            for name in TABLES:
                if table_exists(con, "planning", name):
                    con.execute(f"delete from planning.{name} where cycle = ?", [cycle])
        for key in KEYS.values():
            yield dg.MaterializeResult(asset_key=key, metadata={"skipped": str(missing)})
        record_gate(warehouse, cycle, SUPPLY_CHECK, True, f"skipped: {missing}")
        yield dg.AssetCheckResult(check_name=SUPPLY_CHECK, asset_key=KEYS["supply_plan"], passed=True,
                                  description=f"skipped: {missing}")
        return
    tables = {"inventory_targets": review.inventory_targets, "supply_scenarios": review.scenario_summary}
    tables.update({name: review.frame(name) for name in ("supply_plan", "capacity_plan", "material_plan", "supply_exceptions", "bottlenecks")})
    with warehouse.connect() as con:
        for name, frame in tables.items():
            replace_cycle(con, f"planning.{name}", schemas.validate_table(name, _with_cycle(frame, cycle)), cycle)
    findings = supply_review.supply_gate_findings(review, gates)
    record_gate(warehouse, cycle, SUPPLY_CHECK, findings["passed"], findings["description"])
    baseline = review.results[supply_review.BASELINE]
    charts = chart_dir(warehouse, cycle)
    capacity_png = png_metadata(supply_review.capacity_chart(baseline.capacity_plan, baseline.bottlenecks), charts / "capacity_top_bottlenecks.png")
    inventory_png = png_metadata(supply_review.inventory_chart(baseline.supply_plan), charts / "inventory_top_families.png")
    summary = review.scenario_summary.select("scenario", "status", "objective", "fill_rate", "late_units", "overtime_hours", "top_bottleneck", "total_seconds")
    for name, key in KEYS.items():
        metadata: dict = {"rows": tables[name].height}
        if name == "supply_plan":
            metadata.update(scenarios=md_table(summary), lp_size=dg.MetadataValue.json(baseline.lp_size), **inventory_png)
        if name == "capacity_plan":
            metadata.update(**capacity_png)
        if name == "bottlenecks":
            metadata.update(top=md_table(baseline.bottlenecks.head(10)))
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    yield dg.AssetCheckResult(
        check_name=SUPPLY_CHECK,
        asset_key=KEYS["supply_plan"],
        passed=findings["passed"],
        severity=dg.AssetCheckSeverity.ERROR,
        description=findings["description"],
        metadata={"baseline_fill_rate": findings["fill_rate"], "fill_rate_target": gates.fill_rate_target,
                  "unexplained_misses": md_table(findings["unexplained"]), "violations": dg.MetadataValue.json(findings["violations"][:50])},
    )
