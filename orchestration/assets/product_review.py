"""Product review assets: the portfolio per horizon month and the SKU segmentation."""


import dagster as dg
import polars as pl

from orchestration.checkpoints import record_gate
from orchestration.metadata import md_table
from orchestration.partitions import WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline import product_review, schemas
from sop_pipeline.warehouse import cycle_label, query, read_table, replace_cycle, require_marts_for

PORTFOLIO_CHECK = "portfolio_is_sound"


def _marts(*names: str) -> list[dg.AssetKey]:
    return [dg.AssetKey(["marts", name]) for name in names]


@dg.asset(
    key=["planning", "product_portfolio"],
    group_name="product_review",
    partitions_def=cycle_partitions,
    deps=_marts("dim_product", "fct_sales_monthly"),
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            PORTFOLIO_CHECK,
            asset=["planning", "product_portfolio"],
            blocking=True,
            description="Every SKU with sales is in the product master; every new product has a like_sku "
            "with history or a launch volume; phase-out dates fall after launch dates.",
        )
    ],
)
def product_portfolio(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """One row per SKU and horizon month: lifecycle status, like-item and ramp factor."""
    cycle = cycle_label(context.partition_key)
    settings = product_review.load_product_settings(planning_models.file("product.yaml"))
    with warehouse.connect() as con:
        require_marts_for(con, cycle)
        products = read_table(con, "marts.dim_product")
        sales_skus = query(con, "select distinct sku from staging.stg_sales_history")["sku"]
        portfolio = schemas.validate(product_review.build_product_portfolio(products, cycle, settings), schemas.ProductPortfolio)
        replace_cycle(con, "planning.product_portfolio", portfolio, cycle)
    findings = product_review.portfolio_findings(products, sales_skus, cycle)
    record_gate(warehouse, cycle, PORTFOLIO_CHECK, findings.height == 0, product_review.describe_findings(findings))
    status_counts = portfolio.filter(pl.col("month") == pl.col("month").min()).group_by("lifecycle_status").len()
    yield dg.MaterializeResult(
        metadata={
            "rows": portfolio.height,
            "skus": portfolio["sku"].n_unique(),
            "status_in_cycle_month": md_table(status_counts.sort("lifecycle_status")),
        }
    )
    yield dg.AssetCheckResult(
        check_name=PORTFOLIO_CHECK,
        passed=findings.height == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=product_review.describe_findings(findings),
        metadata={
            "offending_skus": dg.MetadataValue.json(findings["sku"].to_list()),
            "findings": md_table(findings, limit=200),
        },
    )


@dg.asset(
    key=["planning", "product_segmentation"],
    group_name="product_review",
    partitions_def=cycle_partitions,
    deps=_marts("dim_product", "fct_sales_monthly"),
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
)
def product_segmentation(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """ABC / XYZ / intermittency class per SKU: which forecast method and service level fit it."""
    cycle = cycle_label(context.partition_key)
    settings = product_review.load_product_settings(planning_models.file("product.yaml"))
    with warehouse.connect() as con:
        require_marts_for(con, cycle)
        products = read_table(con, "marts.dim_product")
        sales = read_table(con, "marts.fct_sales_monthly")
        segments = schemas.validate(product_review.segment_products(products, sales, cycle, settings), schemas.ProductSegmentation)
        replace_cycle(con, "planning.product_segmentation", segments, cycle)
    matrix = segments.group_by("abc_class", "xyz_class").len().sort("abc_class", "xyz_class")
    return dg.MaterializeResult(
        metadata={
            "skus": segments.height,
            "intermittent_skus": int(segments["intermittent"].sum()),
            "abc_xyz": md_table(matrix),
        }
    )
