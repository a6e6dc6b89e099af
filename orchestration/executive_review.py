"""Executive review: KPIs, exceptions and the review pack; and the plan of record, which only an
approval of the exact current plan version can publish (`plan_of_record_is_approved`)."""

import dagster as dg
import polars as pl

from orchestration.graph import step_graph
from orchestration.ingestion import mart
from orchestration.io import CycleStep, chart_folder, code_references, md_image, md_table, planning_key, table_spec
from orchestration.partitions import EARLIER_CYCLES, ONE_CYCLE_PER_RUN, WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline.executive.decisions import decision_followup, followup_inputs
from sop_pipeline.executive.exceptions import exception_list, layer_points
from sop_pipeline.executive.governance import (
    approval_status,
    plan_of_record_version,
    plan_version,
    publish_plan_of_record,
    short_version,
)
from sop_pipeline.executive.kpis import executive_summary as summarise
from sop_pipeline.executive.status import load_cycle_frames
from sop_pipeline.periods import add_months, cycle_month
from sop_pipeline.reporting.pack import pack_pages
from sop_pipeline.reporting.pack import review_pack as write_pack
from sop_pipeline.reporting.pack_inputs import pack_inputs
from sop_pipeline.warehouse import read_table

GROUP = "executive_review"
SECTIONS = ("calendar", "supply", "gates")
PACK = dg.AssetKey(["reports", "review_pack"])
PLAN_OF_RECORD = planning_key("plan_of_record")
RECORD_CHECK = "plan_of_record_is_approved"
PLAN = [planning_key(n) for n in ("supply_plan", "capacity_plan", "financial_plan", "budget_gap", "forecast_accuracy")]
# What the exception list reads besides the plan: the demand layers and the supply diagnosis.
FINDINGS = [
    planning_key(n)
    for n in (
        "demand_plan_layers",
        "statistical_forecast",
        "supersession",
        "consensus_demand",
        "product_portfolio",
        "supply_exception_skus",
    )
]


@dg.multi_asset(
    name="executive_summary",
    specs=[
        table_spec("executive_summary", GROUP, PLAN, [summarise]),
        table_spec("exceptions", GROUP, [*PLAN, *FINDINGS, planning_key("executive_summary")], [exception_list]),
        # Earlier cycles' decisions and exceptions are read from the warehouse: decisions are
        # recorded by `sop decide` between runs, not by an asset.
        table_spec("decision_followup", GROUP, [planning_key("exceptions")], [decision_followup]),
    ],
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def executive_summary(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Per scenario, the KPIs an executive meeting looks at; the one exception list, across
    the review steps, ranked by money; and how the earlier cycles' decisions stand against it."""
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    gates, mode = step.settings.gates.executive_review, step.settings.supply.costs.shortfall_mode
    with step.reading() as con:
        frames = load_cycle_frames(con, step.cycle)
        products, resources = read_table(con, "marts.dim_product"), read_table(con, "marts.dim_resource")
        # the run-rate of phasing-out SKUs: the 12 closed months before the cycle
        first = cycle_month(step.cycle)
        sales = read_table(con, "marts.fct_sales_monthly", "month >= ? and month < ?", [add_months(first, -12), first])
        frames["layer_points"] = layer_points(con, step.cycle)
        decisions, exceptions_then = followup_inputs(con, step.cycle)
    get = frames.get
    summary = summarise(
        step.cycle,
        get("supply_plan"),
        get("capacity_plan"),
        get("financial_plan"),
        get("budget_gap"),
        get("forecast_accuracy"),
        gates,
        mode,
    )
    listed = exception_list(step.cycle, frames, step.settings.gates, products, resources, sales, mode)
    followup = decision_followup(step.cycle, decisions, exceptions_then, listed)
    step.write({"executive_summary": summary, "exceptions": listed, "decision_followup": followup})
    kpis = summary.filter(pl.col("kpi").is_in(["fill_rate", "revenue", "gross_margin", "inventory_value", "days_of_supply"]))
    yield step.result("executive_summary", summary, kpis=md_table(kpis.select("scenario", "kpi", "value", "unit"), limit=60))
    top = listed.filter(pl.col("in_executive_list")).select("rank", "kind", "period_label", "money", "scenarios", "owner", "description")
    yield step.result("exceptions", listed, executive_list=md_table(top))
    shown = followup.select("decision_id", "status", "action", "owner", "due_cycle", "outcome")
    yield step.result("decision_followup", followup, followup=md_table(shown))


def _pack_frames(con, step: CycleStep) -> dict[str, pl.DataFrame]:
    """The cycle's planning tables and what the pack compares them with (an earlier plan of
    record, last month's actual sales, the price plan, the scenarios as configured): both
    assets that write the pack read them here, so a pack rewritten at publication shows what
    the meeting saw."""
    return {**load_cycle_frames(con, step.cycle), **pack_inputs(con, step.cycle, step.settings.scenarios.named())}


@dg.multi_asset(
    name="review_pack",
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
    specs=[
        dg.AssetSpec(
            PACK,
            group_name=GROUP,
            kinds={"pdf"},
            metadata=code_references(write_pack),
            deps=[
                planning_key("executive_summary"),
                planning_key("exceptions"),
                planning_key("plan_bridge"),
                planning_key("consensus_demand"),
                planning_key("product_segmentation"),
                planning_key("decision_followup"),
                # last month against an earlier plan of record, the price plan on the assumptions page
                dg.AssetDep(PLAN_OF_RECORD, partition_mapping=EARLIER_CYCLES),
                mart("fct_sales_monthly"),
                mart("fct_price_plan"),
            ],
            description="The review pack: a PDF with one page per review step and the charts as PNG, next to the warehouse.",
        )
    ],
)
def review_pack(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        frames = _pack_frames(con, step)
        version = plan_version(con, step.cycle)
        approval = approval_status(con, step.cycle)
    folder = chart_folder(warehouse, step.cycle)
    charts = {p.stem: p.read_bytes() for p in sorted(folder.glob("*.png"))}
    pdf = write_pack(folder, step.cycle, frames, charts, version, approval, step.settings.gates.executive_review)
    step.write({})  # the pack is part of the cycle: an approval needs it rendered from the current tables
    pages = {f"page_{n}": md_image(f"page {n}", png.read_bytes()) for n, png in enumerate(pack_pages(folder, step.cycle), start=1)}
    return dg.MaterializeResult(
        asset_key=PACK,
        metadata={
            **pages,
            "path": dg.MetadataValue.path(str(pdf)),
            "plan_version": version,
            "approval": approval["reason"],
            "settings_hash": step.settings_hash,
        },
    )


@dg.multi_asset(
    name="plan_of_record",
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
    specs=[
        dg.AssetSpec(
            PLAN_OF_RECORD,
            group_name=GROUP,
            kinds={"python", "duckdb"},
            metadata=code_references(publish_plan_of_record),
            deps=[
                planning_key("executive_summary"),
                planning_key("consensus_demand"),
                planning_key("supply_plan"),
                planning_key("capacity_plan"),
                planning_key("financial_plan"),
            ],
            skippable=True,
            description="The approved scenario's demand, supply, capacity and financial plan (planning.plan_of_record_*), "
            "published once an approval matches the current plan version (launched by the approval sensor or "
            "`sop approve`).",
        )
    ],
)
def plan_of_record(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Publish the approved scenario; without an approval of this exact, complete cycle, end
    without publishing (and without failing the run: "materialize all" before the meeting is
    the normal case) and say what it waits for."""
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with warehouse.connect() as con:
        status = approval_status(con, step.cycle, step_graph())
        if not status["matches"]:
            context.log.warning(
                f"plan of record for {step.cycle} not published: {status['reason']}. It is published once an "
                "executive approves the current plan (sop approve, or the approve_plan_job in the UI)."
            )
            return
        scenario = status["latest_approval"]["scenario"]
        written = publish_plan_of_record(con, step.cycle, scenario)
        # The pack's first page says who approved and that the plan of record is published; the
        # pack is not in the plan version, so rewriting it leaves the approval matching.
        frames = _pack_frames(con, step)
        approval = approval_status(con, step.cycle, step_graph())
    folder = chart_folder(warehouse, step.cycle)
    charts = {p.stem: p.read_bytes() for p in sorted(folder.glob("*.png"))}
    pdf = write_pack(folder, step.cycle, frames, charts, approval["current_version"], approval, step.settings.gates.executive_review)
    yield dg.MaterializeResult(
        asset_key=PLAN_OF_RECORD,
        metadata={
            "scenario": scenario,
            "plan_version": status["current_version"],
            "approved_by": status["latest_approval"]["decided_by"],
            "review_pack": dg.MetadataValue.path(str(pdf)),
            **written,
        },
    )


@dg.asset_check(
    asset=PLAN_OF_RECORD,
    name=RECORD_CHECK,
    blocking=True,
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    description="The plan of record matches an executive's approval of this exact plan version, and every checkpoint of the cycle passed.",
)
def plan_of_record_is_approved(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource
) -> dg.AssetCheckResult:
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with warehouse.connect(read_only=True) as con:
        status = approval_status(con, step.cycle, step_graph())
        published = plan_of_record_version(con, step.cycle)
    passed = published is not None and published == status["current_version"] and status["matches"]
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"published version {short_version(published) if published else 'none'} for approval: {status['reason']}",
    )
