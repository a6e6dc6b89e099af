"""Demand review: the statistical forecast, the consensus layers, accuracy and value added,
gated by `consensus_demand_is_sound` (and the warning `overrides_have_reasons`)."""

import dagster as dg
import polars as pl

from orchestration.ingestion import mart
from orchestration.io import CycleStep, chart, chart_folder, md_table, planning_key, table_spec
from orchestration.partitions import EARLIER_CYCLES, ONE_CYCLE_PER_RUN, WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline import registry
from sop_pipeline.demand.accuracy import accuracy_summary, score_accuracy
from sop_pipeline.demand.backtest import backtest_table, backtest_versus_naive
from sop_pipeline.demand.consensus import build_consensus, consensus_problems, fallback_note, unexplained_overrides
from sop_pipeline.demand.lifecycle import apply_lifecycle, supersession_pairs
from sop_pipeline.finance.prices import price_by_sku_month
from sop_pipeline.forecast import forecast_demand
from sop_pipeline.forecast.hierarchy import family_forecast
from sop_pipeline.forecast.selection import PUBLISHED
from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.reporting.charts import demand_chart, top_families
from sop_pipeline.warehouse import query, read_table, table_exists

GROUP = "demand_review"
SECTIONS = ("calendar", "product", "demand", "forecast", "gates")
CONSENSUS_CHECK = "consensus_demand_is_sound"
OVERRIDE_CHECK = "overrides_have_reasons"
PORTFOLIO = planning_key("product_portfolio")
SEGMENTATION = planning_key("product_segmentation")


@dg.multi_asset(
    name="statistical_forecast",
    specs=[
        table_spec("forecast_backtest", GROUP, [mart("fct_sales_monthly"), SEGMENTATION], [forecast_demand, backtest_table]),
        table_spec(
            "statistical_forecast",
            GROUP,
            [mart("fct_sales_monthly"), mart("fct_indicators"), mart("fct_price_plan"), PORTFOLIO, planning_key("forecast_backtest")],
            [forecast_demand, apply_lifecycle],
        ),
        table_spec("supersession", GROUP, [mart("fct_sales_monthly"), PORTFOLIO], [apply_lifecycle, supersession_pairs]),
        table_spec("family_forecast", GROUP, [planning_key("statistical_forecast")], [family_forecast]),
        table_spec("family_forecast_backtest", GROUP, [planning_key("statistical_forecast")], [family_forecast]),
    ],
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def statistical_forecast(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Fit the candidates, weight them per SKU by backtest, calibrate p10/p90, apply the
    lifecycle (phase-outs' cut moved to their successors); then the family and total forecast
    with their own bands."""
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        portfolio = step.read(con, "product_portfolio")
        segmentation = step.read(con, "product_segmentation")
        history = query(con, "select sku, month, quantity, net_price, promotion from marts.fct_sales_monthly order by sku, month")
        indicators = read_table(con, "marts.fct_indicators")
        price_plan = read_table(con, "marts.fct_price_plan")
        products = read_table(con, "marts.dim_product")
    # Planned price changes reach the forecast as its future price covariate.
    future_prices = None
    if price_plan.height:
        future_prices = price_by_sku_month(products, price_plan, portfolio["month"].unique().sort()).rename({"price": "net_price"})
    needed = pl.concat([portfolio["sku"], portfolio["like_sku"].drop_nulls()]).unique()
    result = forecast_demand(
        history.filter(pl.col("sku").is_in(needed.implode())),
        cycle_month(step.cycle),
        step.settings.forecast,
        horizon=step.settings.calendar.horizon_months,
        future_prices=future_prices,
        indicators=indicators if indicators.height else None,
        intermittent=segmentation.select("sku", "intermittent"),
    )
    forecast, moves = apply_lifecycle(result.forecast, portfolio, step.settings.product.lifecycle)
    backtest = backtest_table(result, step.cycle)
    families = family_forecast(
        forecast,
        result.backtest.filter(pl.col("model") == PUBLISHED),
        history,
        portfolio.select("sku", "family").unique("sku"),
        step.settings.forecast,
    )
    cycle = pl.lit(step.cycle).alias("cycle")
    step.write(
        {
            "statistical_forecast": forecast,
            "supersession": moves,
            "forecast_backtest": backtest,
            "family_forecast": families.forecast.with_columns(cycle),
            "family_forecast_backtest": families.backtest.with_columns(cycle),
        }
    )
    models = forecast.group_by("model").agg(pl.col("sku").n_unique().alias("skus")).sort("skus", descending=True)
    yield step.result("forecast_backtest", backtest, candidates=backtest["model"].n_unique())
    yield step.result(
        "statistical_forecast",
        forecast,
        skus=forecast["sku"].n_unique(),
        models_published=md_table(models),
        p10_p90_coverage_backtest=float(result.coverage),
        **{f"backtest_{k}": float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))},
    )
    yield step.result("supersession", moves, moved_units=float(moves["moved_units"].sum()), pairs=md_table(supersession_pairs(moves)))
    yield step.result("family_forecast", families.forecast, family_p10_p90_coverage_backtest=families.coverage)
    yield step.result("family_forecast_backtest", families.backtest, points=families.backtest.height)


@dg.multi_asset(
    name="consensus_demand",
    specs=[
        table_spec("demand_plan_layers", GROUP, [planning_key("statistical_forecast"), mart("fct_demand_inputs")], [build_consensus]),
        table_spec("consensus_demand", GROUP, [planning_key("demand_plan_layers")], [build_consensus]),
    ],
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def consensus_demand(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Layer sales and marketing inputs on the statistical forecast."""
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        statistical = step.read(con, "statistical_forecast")
        inputs = read_table(con, "marts.fct_demand_inputs")
        history = read_table(con, "marts.fct_sales_monthly")
        products = read_table(con, "marts.dim_product")
    layers, consensus = build_consensus(statistical, inputs, step.cycle, step.settings.demand.consensus)
    step.write({"demand_plan_layers": layers, "consensus_demand": consensus})
    families = top_families(consensus, products)
    picture = chart(chart_folder(warehouse, step.cycle), "demand_top_families", demand_chart(history, statistical, consensus, families))
    by_layer = layers.group_by("layer", "layer_rank").agg(pl.len().alias("sku_months"), pl.col("adjustment").sum()).sort("layer_rank")
    yield step.result("demand_plan_layers", layers, layers=md_table(by_layer))
    yield step.result(
        "consensus_demand", consensus, total_units=float(consensus["quantity"].sum()), top_families=", ".join(families), **picture
    )


@dg.multi_asset(
    name="forecast_accuracy",
    # After the checkpoint (consensus_demand) in the graph, though it scores earlier cycles: the
    # demand review is complete only when its plan is sound.
    specs=[
        table_spec(
            "forecast_accuracy",
            GROUP,
            [
                dg.AssetDep(planning_key("demand_plan_layers"), partition_mapping=EARLIER_CYCLES),
                mart("fct_sales_monthly"),
                planning_key("consensus_demand"),
            ],
            [score_accuracy],
        )
    ],
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    pool=WAREHOUSE_POOL,
)
def forecast_accuracy(context: dg.AssetExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource):
    """Score the last twelve cycles' layers against the actuals this cycle knows: WAPE, bias,
    MASE against seasonal naive, and each layer's forecast value added, by lag and family."""
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    with step.reading() as con:
        layers = _earlier_layers(con, step.cycle)
        actuals = read_table(con, "marts.fct_sales_monthly")
        products = read_table(con, "marts.dim_product")
    accuracy = score_accuracy(layers, actuals, products, step.cycle)
    step.write({"forecast_accuracy": accuracy})
    summary = accuracy_summary(accuracy).filter(pl.col("lag") <= 3)
    return step.result(
        "forecast_accuracy", accuracy, forecast_cycles_scored=accuracy["forecast_cycle"].n_unique(), by_layer_and_lag=md_table(summary)
    )


def _earlier_layers(con, cycle: str) -> pl.DataFrame:
    """The layers of the twelve cycles before this one (the partitions `EARLIER_CYCLES` maps)."""
    if not table_exists(con, "planning", "demand_plan_layers"):
        return registry.table("demand_plan_layers").empty()
    first = cycle_label(add_months(cycle_month(cycle), -12))
    return read_table(con, "planning.demand_plan_layers", "cycle < ? and cycle >= ?", [cycle, first])


@dg.asset_check(
    asset=planning_key("consensus_demand"),
    name=CONSENSUS_CHECK,
    blocking=True,
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    additional_deps=[PORTFOLIO, planning_key("forecast_backtest"), planning_key("statistical_forecast")],
    description="Complete for every portfolio SKU and month, finite and non-negative; the published models' backtest error "
    "no worse than seasonal naive's beyond the gate.",
)
def consensus_demand_is_sound(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource
) -> dg.AssetCheckResult:
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    gates = step.settings.gates.demand_review
    with step.reading() as con:
        consensus = step.read(con, "consensus_demand")
        portfolio = step.read(con, "product_portfolio")
        backtest = step.read(con, "forecast_backtest")
        statistical = step.read(con, "statistical_forecast")
        sold = query(con, "select distinct sku from marts.fct_sales_monthly where quantity > 0 order by sku")["sku"]
    problems = consensus_problems(consensus, portfolio, statistical, sold)
    versus_naive = backtest_versus_naive(backtest)
    ratio = versus_naive["ratio"]
    reasons = []
    if problems.height:
        reasons.append(f"{problems.height} consensus rows are missing or invalid (first: {problems.row(0, named=True)})")
    if ratio is not None and ratio > gates.max_backtest_ratio_to_naive:
        reasons.append(
            f"published models' backtest WAPE {versus_naive['published_wape']:.3f} is worse than seasonal naive's "
            f"{versus_naive['naive_wape']:.3f} (ratio {ratio:.3f} > {gates.max_backtest_ratio_to_naive})"
        )
    description = "; ".join(reasons) or "complete, finite, non-negative; published models beat seasonal naive in backtest"
    note = fallback_note(statistical)
    if note:
        description += f"; {note}"
    return step.checkpoint(
        CONSENSUS_CHECK,
        not reasons,
        description,
        problems=md_table(problems),
        published_backtest_wape=versus_naive["published_wape"],
        seasonal_naive_backtest_wape=versus_naive["naive_wape"],
    )


@dg.asset_check(
    asset=planning_key("consensus_demand"),
    name=OVERRIDE_CHECK,
    blocking=False,
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    additional_deps=[planning_key("demand_plan_layers")],
    description="Inputs that move the statistical forecast by more than the gate's threshold carry a reason (a warning: the "
    "executive meeting decides).",
)
def overrides_have_reasons(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, planning_models: PlanningModelsResource
) -> dg.AssetCheckResult:
    step = CycleStep.start(context, warehouse, planning_models, GROUP, SECTIONS)
    threshold = step.settings.gates.demand_review.override_threshold_pct
    with step.reading() as con:
        overrides = unexplained_overrides(step.read(con, "demand_plan_layers"), step.read(con, "statistical_forecast"), threshold)
    listed = ", ".join(
        f"{r['sku']} {r['month']:%Y-%m} ({r['layer']}, {r['owner']}, {r['change_pct']:.0f}%)"
        for r in overrides.head(10).iter_rows(named=True)
    )
    description = (
        f"{overrides.height} SKU-months moved by more than {threshold:.0f}% without a reason: {listed}"
        if overrides.height
        else "every large input has a reason"
    )
    return step.checkpoint(
        OVERRIDE_CHECK,
        overrides.height == 0,
        description,
        blocking=False,
        unexplained_overrides=md_table(overrides),
        skus=dg.MetadataValue.json(overrides["sku"].unique().sort().to_list()),
    )
