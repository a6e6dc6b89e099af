"""Product review: the portfolio per horizon month and the SKU segmentation, gated by
`portfolio_is_sound`."""

import dagster as dg
import polars as pl

from orchestration.ingestion import mart
from orchestration.io import CycleStep, md_table, planning_key, table_spec
from orchestration.partitions import ONE_CYCLE_PER_RUN, WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline.product.findings import describe_findings, portfolio_findings
from sop_pipeline.product.portfolio import build_product_portfolio
from sop_pipeline.product.segmentation import segment_products
from sop_pipeline.warehouse import query, read_table

GROUP = "product_review"
SECTIONS = ("calendar", "product")
PORTFOLIO_CHECK = "portfolio_is_sound"


@dg.multi_asset(
    name="product_portfolio",
    specs=[table_spec("product_portfolio", GROUP, [mart("dim_product")], [build_product_portfolio])],
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
)
def product_portfolio(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        products = read_table(con, "marts.dim_product")
    portfolio = build_product_portfolio(products, step.cycle, step.settings.product.lifecycle, step.settings.calendar.horizon_months)
    step.write({"product_portfolio": portfolio})
    first_month = portfolio.filter(pl.col("month") == pl.col("month").min())
    return step.result(
        "product_portfolio",
        portfolio,
        skus=portfolio["sku"].n_unique(),
        status_in_cycle_month=md_table(first_month.group_by("lifecycle_status").len().sort("lifecycle_status")),
    )


@dg.multi_asset(
    name="product_segmentation",
    specs=[table_spec("product_segmentation", GROUP, [mart("dim_product"), mart("fct_sales_monthly")], [segment_products])],
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
)
def product_segmentation(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        products = read_table(con, "marts.dim_product")
        sales = read_table(con, "marts.fct_sales_monthly")
    segments = segment_products(products, sales, step.cycle, step.settings.product.segmentation)
    step.write({"product_segmentation": segments})
    matrix = segments.group_by("abc_class", "xyz_class").len().sort("abc_class", "xyz_class")
    return step.result("product_segmentation", segments, intermittent_skus=int(segments["intermittent"].sum()), abc_xyz=md_table(matrix))


@dg.asset_check(
    asset=planning_key("product_portfolio"),
    name=PORTFOLIO_CHECK,
    blocking=True,
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    additional_deps=[mart("dim_product")],
    description="Every SKU with sales is in the product master; every new product has a like_sku with history, a launch "
    "volume or a predecessor naming it as successor_sku; phase-out dates fall after launch dates.",
)
def portfolio_is_sound(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource
) -> dg.AssetCheckResult:
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        products = read_table(con, "marts.dim_product")
        sales_skus = query(con, "select distinct sku from staging.stg_sales_history order by sku")["sku"]
        source_rows = query(
            con,
            "select 'products.csv' as file, sku, min(_source_row) as row from staging.stg_products group by all "
            "union all select 'sales_history.csv', sku, min(_source_row) from staging.stg_sales_history group by all",
        )
    findings = portfolio_findings(products, sales_skus, step.cycle)
    return step.checkpoint(
        PORTFOLIO_CHECK,
        findings.height == 0,
        describe_findings(findings, source_rows),
        offending_skus=dg.MetadataValue.json(findings["sku"].to_list()),
        findings=md_table(findings, limit=200),
    )
