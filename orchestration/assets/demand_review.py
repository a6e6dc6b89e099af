"""Demand review assets: statistical forecast, consensus layers, accuracy and value added."""

import dagster as dg
import polars as pl

from orchestration.checkpoints import record_gate
from orchestration.metadata import chart_dir, md_table, png_metadata
from orchestration.partitions import WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline import demand_review, financial_review, forecasting, schemas
from sop_pipeline.warehouse import cycle_label, cycle_month, query, read_table, replace_cycle, require_marts_for

FORECAST = dg.AssetKey(["planning", "statistical_forecast"])
BACKTEST = dg.AssetKey(["planning", "forecast_backtest"])
LAYERS = dg.AssetKey(["planning", "demand_plan_layers"])
CONSENSUS = dg.AssetKey(["planning", "consensus_demand"])
PORTFOLIO = dg.AssetKey(["planning", "product_portfolio"])
SEGMENTATION = dg.AssetKey(["planning", "product_segmentation"])
CONSENSUS_CHECK = "consensus_demand_is_sound"
OVERRIDE_CHECK = "overrides_have_reasons"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(FORECAST, group_name="demand_review", deps=[["marts", "fct_sales_monthly"], ["marts", "fct_indicators"], ["marts", "fct_price_plan"], PORTFOLIO],
                     kinds={"python", "duckdb"}, description="Statistical forecast per SKU and horizon month with p10/p50/p90, lifecycle applied."),
        dg.AssetSpec(BACKTEST, group_name="demand_review", deps=[["marts", "fct_sales_monthly"]], kinds={"python", "duckdb"},
                     description="Every candidate model's rolling-origin backtest error per SKU."),
    ],
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    can_subset=False,
    name="statistical_forecast",
)
def statistical_forecast(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Fit the candidates, pick per SKU by backtest, calibrate p10/p90, apply the lifecycle."""
    cycle = cycle_label(context.partition_key)
    settings = forecasting.load_forecast_settings(planning_models.file("forecast.yaml"))
    with warehouse.connect(read_only=True) as con:
        require_marts_for(con, cycle)
        portfolio = read_table(con, "planning.product_portfolio", "cycle = ?", [cycle])
        history = query(con, "select sku, month, quantity, net_price, promotion from marts.fct_sales_monthly order by sku, month")
        indicators = read_table(con, "marts.fct_indicators")
        price_plan = read_table(con, "marts.fct_price_plan")
        products = read_table(con, "marts.dim_product")
    # Planned price changes reach the forecast as its future price covariate.
    future_prices = None
    if price_plan.height:
        months = portfolio["month"].unique().sort()
        future_prices = financial_review.price_by_sku_month(products, price_plan, months).rename({"price": "net_price"})
    needed = pl.concat([portfolio["sku"], portfolio["like_sku"].drop_nulls()]).unique()
    history = history.filter(pl.col("sku").is_in(needed.implode()))
    result = forecasting.forecast_demand(
        history, cycle_month(cycle), settings, future_prices=future_prices, indicators=indicators if indicators.height else None
    )
    forecast = demand_review.apply_lifecycle(result.forecast, portfolio)
    forecast = schemas.validate(forecast, schemas.StatisticalForecast)
    backtest = demand_review.backtest_table(result, cycle)
    backtest = schemas.validate(backtest, schemas.ForecastBacktest)
    with warehouse.connect() as con:
        replace_cycle(con, "planning.statistical_forecast", forecast, cycle)
        replace_cycle(con, "planning.forecast_backtest", backtest, cycle)
    models = forecast.group_by("model").agg(pl.col("sku").n_unique().alias("skus")).sort("skus", descending=True)
    yield dg.MaterializeResult(
        asset_key=FORECAST,
        metadata={
            "rows": forecast.height,
            "skus": forecast["sku"].n_unique(),
            "p10_p90_coverage_backtest": float(result.coverage),
            "models_published": md_table(models),
            **{f"backtest_{k}": float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))},
        },
    )
    yield dg.MaterializeResult(asset_key=BACKTEST, metadata={"rows": backtest.height, "candidates": backtest["model"].n_unique()})


@dg.multi_asset(
    specs=[
        dg.AssetSpec(LAYERS, group_name="demand_review", deps=[FORECAST, ["marts", "fct_demand_inputs"]], kinds={"python", "duckdb"},
                     description="The statistical forecast and each sales/marketing layer on top of it, with owner and reason."),
        dg.AssetSpec(CONSENSUS, group_name="demand_review", deps=[FORECAST, BACKTEST, ["marts", "fct_demand_inputs"]], kinds={"python", "duckdb"},
                     description="The consensus demand plan per SKU and month with its p10/p90 band."),
    ],
    check_specs=[
        dg.AssetCheckSpec(CONSENSUS_CHECK, asset=CONSENSUS, blocking=True,
                          description="Complete for every portfolio SKU and month, finite and non-negative; the published models' "
                                      "backtest error no worse than seasonal naive."),
        dg.AssetCheckSpec(OVERRIDE_CHECK, asset=CONSENSUS, blocking=False,
                          description="Inputs that move the statistical forecast by more than the gate's threshold carry a reason."),
    ],
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    can_subset=False,
    name="consensus_demand",
)
def consensus_demand(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Layer sales and marketing inputs on the statistical forecast; gate the result."""
    cycle = cycle_label(context.partition_key)
    gates = demand_review.load_demand_gates(planning_models.file("gates.yaml"))
    with warehouse.connect() as con:
        require_marts_for(con, cycle)
        statistical = read_table(con, "planning.statistical_forecast", "cycle = ?", [cycle])
        portfolio = read_table(con, "planning.product_portfolio", "cycle = ?", [cycle])
        backtest = read_table(con, "planning.forecast_backtest", "cycle = ?", [cycle])
        inputs = read_table(con, "marts.fct_demand_inputs")
        history = read_table(con, "marts.fct_sales_monthly")
        products = read_table(con, "marts.dim_product")
        layers, consensus = demand_review.build_consensus(statistical, inputs, cycle, gates)
        layers = schemas.validate(layers, schemas.DemandPlanLayers)
        consensus = schemas.validate(consensus, schemas.ConsensusDemand)
        replace_cycle(con, "planning.demand_plan_layers", layers, cycle)
        replace_cycle(con, "planning.consensus_demand", consensus, cycle)
    problems = demand_review.consensus_problems(consensus, portfolio)
    versus_naive = demand_review.backtest_versus_naive(backtest)
    overrides = demand_review.unexplained_overrides(layers, statistical, gates.override_threshold_pct)
    families = demand_review.top_families(consensus, products)
    chart = png_metadata(
        demand_review.family_chart(history, statistical, consensus, families), chart_dir(warehouse, cycle) / "demand_top_families.png"
    )
    by_layer = layers.group_by("layer", "layer_rank").agg(pl.len().alias("sku_months"), pl.col("adjustment").sum()).sort("layer_rank")
    yield dg.MaterializeResult(asset_key=LAYERS, metadata={"rows": layers.height, "layers": md_table(by_layer)})
    yield dg.MaterializeResult(
        asset_key=CONSENSUS,
        metadata={"rows": consensus.height, "total_units": float(consensus["quantity"].sum()), "top_families": ", ".join(families), **chart},
    )
    ratio = versus_naive["ratio"]
    worse_than_naive = ratio is not None and ratio > gates.max_backtest_ratio_to_naive
    reasons = []
    if problems.height:
        reasons.append(f"{problems.height} consensus rows are missing or invalid (first: {problems.row(0, named=True)})")
    if worse_than_naive:
        reasons.append(
            f"published models' backtest WAPE {versus_naive['published_wape']:.3f} is worse than seasonal naive's "
            f"{versus_naive['naive_wape']:.3f} (ratio {ratio:.3f} > {gates.max_backtest_ratio_to_naive})"
        )
    consensus_description = "; ".join(reasons) or "complete, finite, non-negative; published models beat seasonal naive in backtest"
    record_gate(warehouse, cycle, CONSENSUS_CHECK, not reasons, consensus_description)
    record_gate(warehouse, cycle, OVERRIDE_CHECK, overrides.height == 0, f"{overrides.height} large inputs without a reason", blocking=False)
    yield dg.AssetCheckResult(
        check_name=CONSENSUS_CHECK,
        asset_key=CONSENSUS,
        passed=not reasons,
        severity=dg.AssetCheckSeverity.ERROR,
        description=consensus_description,
        metadata={
            "problems": md_table(problems),
            "published_backtest_wape": versus_naive["published_wape"],
            "seasonal_naive_backtest_wape": versus_naive["naive_wape"],
        },
    )
    yield dg.AssetCheckResult(
        check_name=OVERRIDE_CHECK,
        asset_key=CONSENSUS,
        passed=overrides.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{overrides.height} SKU-months moved by more than {gates.override_threshold_pct:.0f}% without a reason: "
            + ", ".join(f"{r['sku']} {r['month']:%Y-%m} ({r['layer']}, {r['owner']}, {r['change_pct']:.0f}%)" for r in overrides.head(10).iter_rows(named=True))
        ) if overrides.height else "every large input has a reason",
        metadata={"unexplained_overrides": md_table(overrides), "skus": dg.MetadataValue.json(overrides["sku"].unique().sort().to_list())},
    )


@dg.asset(
    key=["planning", "forecast_accuracy"],
    group_name="demand_review",
    partitions_def=cycle_partitions,
    deps=[LAYERS, ["marts", "fct_sales_monthly"]],
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
)
def forecast_accuracy(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Score every earlier cycle's layers against the actuals this cycle knows: WAPE, bias,
    MASE against seasonal naive, and each layer's forecast value added, by lag and family."""
    cycle = cycle_label(context.partition_key)
    with warehouse.connect() as con:
        require_marts_for(con, cycle)
        layers = read_table(con, "planning.demand_plan_layers", "cycle < ?", [cycle])
        actuals = read_table(con, "marts.fct_sales_monthly")
        products = read_table(con, "marts.dim_product")
        accuracy = demand_review.score_accuracy(layers, actuals, products, cycle)
        accuracy = schemas.validate(accuracy, schemas.ForecastAccuracy)
        replace_cycle(con, "planning.forecast_accuracy", accuracy, cycle)
    summary = demand_review.accuracy_summary(accuracy).filter(pl.col("lag") <= 3)
    return dg.MaterializeResult(
        metadata={
            "rows": accuracy.height,
            "forecast_cycles_scored": accuracy["forecast_cycle"].n_unique(),
            "by_layer_and_lag": md_table(summary),
        }
    )
