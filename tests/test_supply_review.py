"""Supply review rules, each on a small generated company (about 200 SKUs).

The consensus demand here is the benchmark's proxy (a seasonal average of history with p10/p90
at -/+25%), so that the supply review is tested on its own, without the forecasting step.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sop_pipeline.demo import generate_demo_company
from sop_pipeline.reporting.charts import capacity_chart, inventory_chart
from sop_pipeline.settings import load_settings
from sop_pipeline.settings.scenarios import BASELINE, CapacityChange, LeadTimeChange, Scenario
from sop_pipeline.settings.supply import ServiceLevels
from sop_pipeline.supply.common import SupplyDataMissing
from sop_pipeline.supply.feasibility import check_plan_feasibility
from sop_pipeline.supply.inputs import SupplyInputs
from sop_pipeline.supply.plan import evaluate_on_sku_detail, plan_supply
from sop_pipeline.supply.review import run_supply_review
from sop_pipeline.supply.scenarios import apply_scenario
from sop_pipeline.supply.targets import compute_inventory_targets

ROOT = Path(__file__).resolve().parents[1]
CYCLE = "2026-11"


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("supply_benchmark", ROOT / "benchmarks" / "supply_plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return generate_demo_company(skus=200, seed=7, cycle=CYCLE)


@pytest.fixture(scope="module")
def inputs(frames) -> SupplyInputs:
    bench = _benchmark_module()
    demand = bench.demand_proxy(frames, CYCLE)
    return SupplyInputs.from_frames(frames, demand, bench.segmentation_proxy(frames, demand))


@pytest.fixture(scope="module")
def settings():
    return load_settings(ROOT / "models").supply


@pytest.fixture(scope="module")
def targets(inputs, settings) -> pl.DataFrame:
    return compute_inventory_targets(inputs.demand, inputs.segmentation, settings.inventory_targets, CYCLE)


@pytest.fixture(scope="module")
def baseline(inputs, settings, targets):
    return plan_supply(inputs, settings, BASELINE, CYCLE, targets)


def test_baseline_lp_is_solved_to_optimality(baseline):
    assert baseline.status == "Optimal" and baseline.optimal
    assert baseline.lp_size["cols"] > 0 and baseline.lp_size["nonzeros"] > 0
    assert baseline.supply_plan.height == baseline.supply_plan.select("sku", "month").unique().height


def test_plan_passes_the_independent_feasibility_check(baseline, inputs):
    assert check_plan_feasibility(baseline.tables(), inputs) == []


def test_feasibility_check_catches_tampered_rows(baseline, inputs):
    first = pl.col("month") == pl.col("month").min()
    sku = baseline.supply_plan["sku"][0]
    more_made = baseline.supply_plan.with_columns(
        pl.when((pl.col("sku") == sku) & first).then(pl.col("production") + 100).otherwise(pl.col("production")).alias("production")
    )
    assert any(v.startswith(f"inventory: {sku}") for v in check_plan_feasibility(replace(baseline.tables(), supply_plan=more_made), inputs))

    resource = baseline.capacity_plan["resource"][0]
    overloaded = baseline.capacity_plan.with_columns(
        pl.when((pl.col("resource") == resource) & first)
        .then(pl.col("capacity_hours") + pl.col("overtime_available") + 50)
        .otherwise(pl.col("load_hours"))
        .alias("load_hours")
    )
    assert any(
        v.startswith(f"capacity: {resource}") and "exceeds" in v
        for v in check_plan_feasibility(replace(baseline.tables(), capacity_plan=overloaded), inputs)
    )

    slow = inputs.materials.filter(pl.col("lead_time_months") >= 1)["material"][0]
    early = baseline.material_plan.with_columns(
        pl.when((pl.col("material") == slow) & first)
        .then(pl.col("purchase_receipts") + 10)
        .otherwise(pl.col("purchase_receipts"))
        .alias("purchase_receipts")
    )
    assert any(
        "had to be ordered before the cycle" in v for v in check_plan_feasibility(replace(baseline.tables(), material_plan=early), inputs)
    )


def test_capacity_outage_creates_shortfall_explained_by_that_resource(inputs, settings, targets, baseline):
    busiest = (
        baseline.capacity_plan.group_by("resource")
        .agg((pl.col("load_hours").sum() / pl.col("capacity_hours").sum()).alias("u"))
        .sort("u", descending=True)["resource"][0]
    )
    outage = Scenario(
        name="outage", overlays=(CapacityChange(kind="capacity_change", resource=busiest, factor=0.0, months={"from": 0, "to": 3}),)
    )
    scenario_inputs = apply_scenario(inputs, outage)
    result = plan_supply(scenario_inputs, settings, "outage", CYCLE, targets)
    assert result.optimal
    assert check_plan_feasibility(result.tables(), scenario_inputs) == []
    assert result.supply_plan["shortfall"].sum() > baseline.supply_plan["shortfall"].sum() + 1

    short = result.supply_exception_skus.filter(pl.col("exception") == "shortfall")
    explained = short.filter((pl.col("constraint_kind") == "capacity") & (pl.col("constraint") == busiest))
    assert explained.height > 0
    assert explained["shortfall"].sum() >= 0.5 * short["shortfall"].sum()
    assert (explained["shadow_price"] > 0).all() and (explained["value_per_unit"] > 0).all()
    assert result.bottlenecks.filter(pl.col("constraint") == busiest).height == 1


def test_inventory_targets_grow_with_service_level_and_uncertainty(inputs, settings):
    low = settings.inventory_targets.model_copy(update={"service_level": ServiceLevels(default=0.90, abc={}, segment={})})
    high = low.model_copy(update={"service_level": ServiceLevels(default=0.99, abc={}, segment={})})
    base = compute_inventory_targets(inputs.demand, None, low, CYCLE)
    safer = compute_inventory_targets(inputs.demand, None, high, CYCLE)
    wider = compute_inventory_targets(
        inputs.demand.with_columns((pl.col("p10") * 0.5).alias("p10"), (pl.col("p90") * 1.5).alias("p90")), None, low, CYCLE
    )
    keys = ["sku", "month"]
    for other in (safer, wider):
        both = base.join(other, on=keys, suffix="_other").filter(pl.col("safety_stock") > 0)
        assert both.height > 0
        assert (both["safety_stock_other"] > both["safety_stock"]).all()
        assert (both["target_inventory_other"] > both["target_inventory"]).all()
    assert {"cycle", "sku", "month", "safety_stock", "target_inventory"} <= set(base.columns)


def test_material_receipts_respect_lead_time_except_open_supply(inputs, settings, targets, baseline):
    def receipts_before_lead(result, materials):
        return (
            result.material_plan.join(materials.select("material", "lead_time_months"), on="material")
            .with_columns(pl.int_range(pl.len()).over("material", order_by="month").alias("t"))
            .filter(pl.col("t") < pl.col("lead_time_months"))
        )

    early = receipts_before_lead(baseline, inputs.materials)
    assert early.height > 0 and early["purchase_receipts"].abs().max() < 1e-6
    # Open orders do arrive inside the lead time and are used there.
    assert early["open_supply"].sum() > 0

    slower = Scenario(name="slow", overlays=(LeadTimeChange(kind="lead_time_change", supplier=inputs.materials["supplier"][0], factor=3),))
    slow_inputs = apply_scenario(inputs, slower)
    result = plan_supply(slow_inputs, settings, "slow", CYCLE, targets)
    early = receipts_before_lead(result, slow_inputs.materials)
    assert early["purchase_receipts"].abs().max() < 1e-6
    assert check_plan_feasibility(result.tables(), slow_inputs) == []


def test_disaggregation_sums_back_to_family_production(baseline):
    by_family = ["family", "month"]
    sku_total = baseline.supply_plan.group_by(by_family).agg(pl.col("production").sum().alias("sku"))
    family = baseline.production_plan.group_by(by_family).agg(pl.col("production").sum(), pl.col("planned_production").sum())
    both = sku_total.join(family, on=by_family)
    assert both.height == sku_total.height
    assert ((both["sku"] - both["production"]).abs() <= 1e-6 * (1 + both["production"])).all()
    # What the SKU plan makes is what the family LP planned, give or take a month's catch-up.
    assert abs(both["sku"].sum() / both["planned_production"].sum() - 1) < 0.01


def test_sku_level_plan_costs_what_its_lp_objective_says(inputs, settings, targets):
    # Every material in the LP (none treated as ample), so the LP prices every purchase.
    sku_settings = settings.model_copy(
        update={"planning": settings.planning.model_copy(update={"level": "sku", "ample_material_margin": 0.0})}
    )
    result = plan_supply(inputs, sku_settings, BASELINE, CYCLE, targets)
    assert result.optimal
    assert check_plan_feasibility(result.tables(), inputs) == []
    assert evaluate_on_sku_detail(result, sku_settings)["total"] == pytest.approx(result.objective, rel=1e-6)


def test_lost_sales_plan_balances_and_never_loses_more_than_demand(inputs, settings, targets):
    lost = settings.model_copy(update={"costs": settings.costs.model_copy(update={"shortfall_mode": "lost_sales"})})
    result = plan_supply(inputs, lost, BASELINE, CYCLE, targets)
    assert result.optimal
    assert check_plan_feasibility(result.tables(), inputs) == []


def test_company_without_supply_data_is_skipped_with_a_clear_message(frames, inputs, settings):
    bare = replace(inputs, resources=None, routings=None, materials=None, bom=None, inventory=None, open_supply=None)
    with pytest.raises(SupplyDataMissing, match="skipped"):
        plan_supply(bare, settings, BASELINE, CYCLE)


def test_company_with_capacity_but_no_materials_plans_without_material_limits(inputs, settings, targets):
    no_materials = replace(inputs, materials=None, bom=None)
    result = plan_supply(no_materials, settings, BASELINE, CYCLE, targets)
    assert result.optimal
    assert any("without material limits" in note for note in result.notes)
    assert result.material_plan.height == 0
    assert check_plan_feasibility(result.tables(), no_materials) == []


def test_shipped_scenarios_apply_to_the_demo_company_and_are_solved_next_to_baseline(inputs, settings):
    scenarios = load_settings(ROOT / "models").scenarios.named()
    assert len(scenarios) >= 4 and next(iter(scenarios)) == BASELINE
    review = run_supply_review(inputs, settings, scenarios, CYCLE, workers=2)
    summary = review.scenario_summary
    assert summary["scenario"].to_list() == list(scenarios)
    assert summary["optimal"].all() and (summary["feasibility_violations"] == 0).all()
    stacked = review.frame("capacity_plan")
    assert set(stacked["scenario"].unique()) == set(scenarios)
    # Solved two at a time in worker processes or one after another here: the same review.
    alone = run_supply_review(inputs, settings, scenarios, CYCLE, workers=1)
    for name in ("supply_plan", "capacity_plan", "material_plan", "production_plan", "supply_exceptions", "bottlenecks"):
        assert_frame_equal(review.frame(name), alone.frame(name))
    timings = [c for c in summary.columns if c.endswith("_seconds")]
    assert_frame_equal(summary.drop(timings), alone.scenario_summary.drop(timings))


def _on_time_by_fifo(plan: pl.DataFrame) -> tuple[float, float]:
    """(on-time units, demand) from a backorder plan, by shipping the oldest open orders first:
    what each month ships is demand + last backlog - this backlog; a month's own orders count
    as on time for the part shipped in that month."""
    on_time = demand = 0.0
    for rows in plan.sort("sku", "month").partition_by("sku"):
        queue: list[list[float]] = []  # [order month index, units open]
        backlog = 0.0
        for t, (d, short) in enumerate(zip(rows["demand"].to_list(), rows["shortfall"].to_list())):
            shipped = d + backlog - short
            queue.append([t, d])
            while shipped > 1e-9 and queue:
                take = min(shipped, queue[0][1])
                if queue[0][0] == t:
                    on_time += take
                queue[0][1] -= take
                shipped -= take
                if queue[0][1] <= 1e-9:
                    queue.pop(0)
            backlog, demand = short, demand + d
    return on_time, demand


def test_scenario_fill_rate_is_the_share_of_demand_shipped_in_its_own_month(inputs, settings, targets, baseline):
    busiest = (
        baseline.bottlenecks.filter(pl.col("kind") == "capacity")["constraint"].to_list() or baseline.capacity_plan["resource"].to_list()
    )
    outage = Scenario(
        name="outage", overlays=(CapacityChange(kind="capacity_change", resource=busiest[0], factor=0.0, months={"from": 0, "to": 3}),)
    )
    review = run_supply_review(inputs, settings, {BASELINE: Scenario(name=BASELINE), "outage": outage}, CYCLE)
    row = review.scenario_summary.filter(pl.col("scenario") == "outage").row(0, named=True)
    on_time, demand = _on_time_by_fifo(review.results["outage"].supply_plan)
    assert row["fill_rate"] < 1.0
    assert row["fill_rate"] == pytest.approx(on_time / demand, rel=1e-9)
    assert row["late_units"] == pytest.approx(demand - on_time, rel=1e-6)


def test_unknown_names_in_a_scenario_are_errors_not_silent_baselines(inputs):
    typo = Scenario(name="typo", overlays=(CapacityChange(kind="capacity_change", resource="NO-SUCH-LINE", factor=0.5),))
    with pytest.raises(ValueError, match="unknown resource"):
        apply_scenario(inputs, typo)


def test_capacity_chart_plots_each_top_bottlenecks_load_against_its_capacity(baseline):
    figure = capacity_chart(baseline.capacity_plan, baseline.bottlenecks)
    ranked = baseline.bottlenecks.filter(pl.col("kind") == "capacity")["constraint"].to_list()
    assert 1 <= len(figure.axes) <= 4
    for ax in figure.axes:
        resource = ax.get_title().split(":")[0]
        rows = baseline.capacity_plan.filter(pl.col("resource") == resource).sort("month")
        bars = [p.get_height() for p in ax.patches]
        assert bars == pytest.approx(rows["load_hours"].to_list())
        lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
        assert lines["capacity"] == pytest.approx(rows["capacity_hours"].to_list())
        assert lines["capacity + overtime"] == pytest.approx((rows["capacity_hours"] + rows["overtime_available"]).to_list())
        assert ax.get_ylabel() == "hours" and "hours" in ax.get_title()
    titles = [ax.get_title().split(":")[0] for ax in figure.axes]
    assert titles[: len(ranked[:4])] == ranked[:4]


def test_inventory_chart_plots_family_stock_target_and_shortfall(baseline):
    figure = inventory_chart(baseline.supply_plan)
    for ax in figure.axes:
        family = ax.get_title().split(":")[0]
        rows = (
            baseline.supply_plan.filter(pl.col("family") == family)
            .group_by("month")
            .agg(pl.col("ending_inventory", "target_inventory", "shortfall").sum())
            .sort("month")
        )
        lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
        assert lines["projected inventory"] == pytest.approx(rows["ending_inventory"].to_list())
        assert lines["target"] == pytest.approx(rows["target_inventory"].to_list())
        assert [p.get_height() for p in ax.patches] == pytest.approx(rows["shortfall"].to_list())
