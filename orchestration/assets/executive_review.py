"""Executive review assets: KPIs and exceptions, the review pack, and the plan of record that
only an approval of the exact current plan version can publish."""

import dagster as dg
import polars as pl

from orchestration.assets.financial_review import KEYS as FINANCE
from orchestration.assets.supply_review import KEYS as SUPPLY
from orchestration.checkpoints import CYCLE_GATES
from orchestration.metadata import chart_dir, md_table
from orchestration.partitions import WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline import executive_review, schemas, supply_review
from sop_pipeline.warehouse import cycle_label, read_table, replace_cycle, require_marts_for

SUMMARY = dg.AssetKey(["planning", "executive_summary"])
EXCEPTIONS = dg.AssetKey(["planning", "executive_exceptions"])
PACK = dg.AssetKey(["reports", "review_pack"])
PLAN_OF_RECORD = dg.AssetKey(["planning", "plan_of_record"])
RECORD_CHECK = "plan_of_record_is_approved"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(SUMMARY, group_name="executive_review", kinds={"python", "duckdb"},
                     deps=[SUPPLY["supply_plan"], SUPPLY["capacity_plan"], FINANCE["financial_plan"], FINANCE["budget_gap"],
                           ["planning", "forecast_accuracy"]],
                     description="Per scenario, the KPIs an executive meeting looks at."),
        dg.AssetSpec(EXCEPTIONS, group_name="executive_review", kinds={"python", "duckdb"}, deps=[SUMMARY],
                     description="Only the exceptions above the materiality thresholds, ranked by money."),
        dg.AssetSpec(PACK, group_name="executive_review", kinds={"pdf"}, deps=[SUMMARY, EXCEPTIONS],
                     description="The review pack: a PDF with one page per review step and the charts as PNG, next to the warehouse."),
    ],
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    can_subset=False,
    name="executive_review",
)
def executive_review_step(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Summarise the cycle for the executive meeting and write its review pack."""
    cycle = cycle_label(context.partition_key)
    gates = executive_review.load_executive_gates(planning_models.file("gates.yaml"))
    settings = supply_review.load_supply_settings(planning_models.file("supply.yaml"))
    with warehouse.connect() as con:
        require_marts_for(con, cycle)
        frames = executive_review.load_cycle_frames(con, cycle)
        summary = executive_review.executive_summary(
            cycle, frames.get("supply_plan"), frames.get("capacity_plan"), frames.get("financial_plan"), frames.get("budget_gap"),
            read_table(con, "planning.forecast_accuracy", "cycle = ?", [cycle]), gates, settings.shortfall_mode,
        )
        exceptions = executive_review.exceptions(
            cycle, frames.get("supply_plan"), frames.get("capacity_plan"), frames.get("financial_plan"), frames.get("budget_gap"),
            gates, read_table(con, "marts.dim_product"), read_table(con, "marts.dim_resource"), settings.shortfall_mode,
        )
        summary = schemas.validate_table("executive_summary", summary)
        exceptions = schemas.validate_table("executive_exceptions", exceptions)
        replace_cycle(con, "planning.executive_summary", summary, cycle)
        replace_cycle(con, "planning.executive_exceptions", exceptions, cycle)
        frames.update(executive_summary=summary, executive_exceptions=exceptions)
        version = executive_review.plan_version(con, cycle)
        approval = executive_review.approval_status(con, cycle)
    folder = chart_dir(warehouse, cycle)
    charts = {p.stem: p.read_bytes() for p in sorted(folder.glob("*.png"))}
    pdf = executive_review.review_pack(folder, cycle, frames, charts, version, approval, gates)
    kpis = summary.filter(pl.col("kpi").is_in(["fill_rate", "revenue", "gross_margin", "inventory_value", "days_of_supply"]))
    yield dg.MaterializeResult(asset_key=SUMMARY, metadata={"rows": summary.height, "plan_version": version, "kpis": md_table(
        kpis.select("scenario", "kpi", "value", "unit"), limit=60)})
    yield dg.MaterializeResult(asset_key=EXCEPTIONS, metadata={"rows": exceptions.height, "top": md_table(exceptions.head(15))})
    yield dg.MaterializeResult(asset_key=PACK, metadata={"path": dg.MetadataValue.path(str(pdf)), "plan_version": version,
                                                         "approval": approval["reason"]})


@dg.asset(
    key=PLAN_OF_RECORD,
    group_name="executive_review",
    partitions_def=cycle_partitions,
    deps=[SUMMARY, PACK],
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    check_specs=[dg.AssetCheckSpec(RECORD_CHECK, asset=PLAN_OF_RECORD, blocking=True,
                                   description="The plan of record matches an executive's approval of this exact plan version, "
                                               "and every checkpoint of the cycle passed.")],
    description="The approved scenario's demand, supply, capacity and financial plan, published once an approval matches the "
                "current plan version (launched by the approval sensor or `sop approve`).",
)
def plan_of_record(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    cycle = cycle_label(context.partition_key)
    with warehouse.connect() as con:
        status = executive_review.approval_status(con, cycle)
        failed = executive_review.failed_gates(con, cycle, CYCLE_GATES)
        if not status["matches"]:
            raise dg.Failure(description=f"no plan of record for {cycle}: {status['reason']}")
        if failed:
            raise dg.Failure(description=f"no plan of record for {cycle}: checkpoints not passed: {', '.join(failed)}")
        scenario = status["latest_approval"]["scenario"]
        written = executive_review.publish_plan_of_record(con, cycle, scenario)
        published = executive_review.plan_of_record_version(con, cycle)
    yield dg.MaterializeResult(metadata={"scenario": scenario, "plan_version": published, "approved_by": status["latest_approval"]["decided_by"],
                                         **{k: v for k, v in written.items()}})
    yield dg.AssetCheckResult(
        check_name=RECORD_CHECK, passed=published == status["current_version"], severity=dg.AssetCheckSeverity.ERROR,
        description=f"published version {published} for approval: {status['reason']}",
    )

