"""Supply and financial review on real pipeline runs: feasibility re-checked from the output
tables, an outage explained by its resource, money that ties out, a bridge that adds up."""

import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import CYCLE, EARLIER_CYCLE, q, run_ok

TOL = 1e-3


def test_every_scenario_solved_and_the_baseline_respects_capacity_plus_overtime(cycle_warehouse):
    scenarios = q(cycle_warehouse, f"select * from planning.supply_scenarios where cycle = '{CYCLE}'")
    assert scenarios.height >= 4 and scenarios["optimal"].all()  # baseline and at least three scenarios
    cap = q(
        cycle_warehouse,
        f"""
        select c.*, r.overtime_hours as available_overtime from planning.capacity_plan c
        join marts.dim_resource r using (resource) where c.cycle = '{CYCLE}' and c.scenario = 'baseline'""",
    )
    assert (cap["load_hours"] <= cap["capacity_hours"] + cap["overtime_hours"] + TOL).all()
    assert (cap["overtime_hours"] <= cap["available_overtime"] + TOL).all()
    assert (cap["overtime_hours"] >= -TOL).all()


def test_baseline_inventory_balances_month_by_month_from_opening_stock(cycle_warehouse):
    plan = q(
        cycle_warehouse,
        f"""
        select p.sku, p.month, p.demand, p.production, p.ending_inventory, p.shortfall,
               coalesce(i.on_hand, 0) as opening, coalesce(o.quantity, 0) as receipts
        from planning.supply_plan p
        left join marts.fct_inventory i using (sku)
        left join marts.fct_open_supply o on o.item_type = 'product' and o.item = p.sku and o.month = p.month
        where p.cycle = '{CYCLE}' and p.scenario = 'baseline' order by p.sku, p.month""",
    )
    plan = plan.with_columns(
        pl.col("ending_inventory").shift(1).over("sku").fill_null(pl.col("opening")).alias("start"),
        pl.col("shortfall").shift(1).over("sku").fill_null(0.0).alias("backlog_before"),
    ).with_columns((pl.col("demand") + pl.col("backlog_before") - pl.col("shortfall")).alias("delivered"))
    balance = plan["start"] + plan["receipts"] + plan["production"] - plan["delivered"] - plan["ending_inventory"]
    assert balance.abs().max() < 1e-2
    assert (plan["ending_inventory"] >= -TOL).all() and (plan["delivered"] >= -TOL).all()


def test_materials_are_never_used_beyond_what_is_available(cycle_warehouse):
    mat = q(
        cycle_warehouse,
        f"""
        select m.*, d.supplier_capacity from planning.material_plan m join marts.dim_material d using (material)
        where m.cycle = '{CYCLE}' and m.scenario = 'baseline'""",
    )
    assert (mat["ending_inventory"] >= -TOL).all()
    assert (mat["purchase"] <= mat["supplier_capacity"] + TOL).all()


def test_a_resource_outage_creates_shortfall_explained_by_that_resource(tmp_path, demo_dir, warehouse_copy):
    from orchestration.paths import default_models_dir

    # The demo company's bottleneck line (sop_pipeline/demo/lines.py): an outage of another line
    # moves that line's alternates onto it, so it binds what any outage adds.
    bottleneck = "VLC-L01"
    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models)
    (models / "scenarios.yaml").write_text(
        yaml.safe_dump(
            {
                "scenarios": {
                    "outage": {
                        "kind": "risk",
                        "description": f"{bottleneck} down to 10% for three months",
                        "overlays": [
                            {
                                "kind": "capacity_change",
                                "resource": bottleneck,
                                "factor": 0.1,
                                "overtime": 0.0,
                                "months": {"from": 1, "to": 3},
                            }
                        ],
                    }
                }
            }
        )
    )
    run_ok(CYCLE, demo_dir, warehouse_copy, models_dir=str(models))
    every = q(
        warehouse_copy,
        f"select * from planning.supply_exception_skus where cycle = '{CYCLE}' and exception = 'shortfall'",
    )
    short = every.filter(pl.col("scenario") == "outage")
    assert short.height > 0
    # The demo company's baseline has shortfalls of its own (its bottleneck line): what the
    # outage adds over the baseline is bound by the resource that went down.
    by_constraint = (
        every.group_by("constraint")
        .agg((pl.col("shortfall") * pl.when(pl.col("scenario") == "outage").then(1).otherwise(-1)).sum().alias("added"))
        .sort("added", descending=True)
    )
    assert by_constraint["constraint"][0] == bottleneck and by_constraint["added"][0] > 0
    explained = short.filter(pl.col("constraint") == bottleneck)
    assert (explained["shadow_price"] > 0).all() and explained["explanation"].str.contains(bottleneck).all()


def test_revenue_ties_out_to_shipped_units_times_price_per_family(cycle_warehouse):
    fin = q(cycle_warehouse, f"select * from planning.financial_plan where cycle = '{CYCLE}' and scenario = 'baseline'")
    # Prices recomputed here from the product master and the price plan (the demo has family
    # level changes that compound from their month on), independently of the pipeline's code.
    unconstrained = q(
        cycle_warehouse,
        f"""
        with factor as (
            select c.sku, c.month, coalesce(exp(sum(ln(1 + pp.price_change_pct / 100))), 1) as factor
            from planning.consensus_demand c
            join marts.dim_product p using (sku)
            left join marts.fct_price_plan pp on pp.level = 'family' and pp.key = p.family and pp.month <= c.month
            where c.cycle = '{CYCLE}' group by all
        )
        select c.family, c.month, sum(c.quantity * p.unit_price * f.factor) as revenue from planning.consensus_demand c
        join marts.dim_product p using (sku) join factor f using (sku, month) where c.cycle = '{CYCLE}' group by all""",
    )
    joined = fin.join(unconstrained, on=["family", "month"])
    assert joined.height == fin.height
    assert (joined["unconstrained_revenue"] - joined["revenue_right"]).abs().max() < 0.01
    margin = fin["revenue"] - fin["cogs"] - fin["cost_variance"] - fin["lateness_cost"]
    assert (fin["gross_margin"] - margin).abs().max() < 0.01
    families = q(cycle_warehouse, "select count(distinct family) as n from marts.dim_product")["n"][0]
    assert fin.height == families * 24


def test_bridge_steps_add_up_to_the_total_change(cycle_warehouse):
    bridge = q(cycle_warehouse, f"select * from planning.plan_bridge where cycle = '{CYCLE}'")
    assert {"budget_to_plan", "last_cycle_to_plan"} <= set(bridge["comparison"])
    # every family and the company (ALL) add up on their own, in both comparisons
    for (comparison, scenario, family), rows in bridge.group_by("comparison", "scenario", "family"):
        start = rows.filter(pl.col("step") == "start")["value"].sum()
        end = rows.filter(pl.col("step") == "end")["value"].sum()
        steps = rows.filter(~pl.col("step").is_in(["start", "end"]))["value"].sum()
        assert start + steps == pytest.approx(end, rel=1e-9, abs=0.01), (comparison, scenario, family)
    drivers = bridge.filter(pl.col("comparison") == "last_cycle_to_plan")["step"].unique().to_list()
    assert set(drivers) == {"start", "statistical_forecast", "consensus_inputs", "portfolio", "price", "supply", "end"}
    assert (bridge["months_covered"] > 0).all()


def _price_steps(warehouse) -> dict[str, float]:
    bridge = q(
        warehouse,
        f"""select family, value from planning.plan_bridge where cycle = '{CYCLE}'
        and comparison = 'last_cycle_to_plan' and scenario = 'baseline' and step = 'price' and family <> 'ALL'""",
    )
    return dict(bridge.iter_rows())


def test_a_price_increase_appears_in_the_bridge_as_price(data_copy, warehouse_copy):
    before = _price_steps(warehouse_copy)
    family = q(warehouse_copy, "select family from marts.dim_product group by family order by sum(unit_price) desc limit 1")["family"][0]
    plan = pl.read_csv(data_copy / "price_plan.csv", infer_schema=False)
    extra = pl.DataFrame({"level": ["family"], "key": [family], "month": [CYCLE], "price_change_pct": ["5.0"]})
    pl.concat([plan, extra]).write_csv(data_copy / "price_plan.csv")
    run_ok(CYCLE, data_copy, warehouse_copy)
    after = _price_steps(warehouse_copy)
    fin = q(
        warehouse_copy,
        f"""select family, sum(revenue) as revenue from planning.financial_plan
        where cycle = '{CYCLE}' and scenario = 'baseline'
          and month <= (select max(month) from planning.financial_plan where cycle = '{EARLIER_CYCLE}')
        group by family""",
    )
    revenue = dict(fin.iter_rows())
    # +5% on every unit of the family: the price step grows by 5/105 of its revenue at the new
    # prices (within a few percent: the forecast's price covariate shifts the SKU mix a little,
    # and mix inside a family is part of the price step)
    assert after[family] - before[family] == pytest.approx(revenue[family] * 0.05 / 1.05, rel=0.05)
    for other in set(after) - {family}:
        assert abs(after[other] - before[other]) < 0.01 * revenue[other], other


def test_reconciliation_gives_every_gap_a_cause(cycle_warehouse):
    rec = q(cycle_warehouse, f"select * from planning.reconciliation where cycle = '{CYCLE}'")
    assert rec["cause"].null_count() == 0
    material = q(
        cycle_warehouse,
        f"""select family, month, measure from planning.budget_gap
        where cycle = '{CYCLE}' and scenario = 'baseline' and period = 'month' and family <> 'ALL' and above_tolerance""",
    )
    assert material.join(rec.select("family", "month", "measure").unique(), on=["family", "month", "measure"], how="anti").height == 0
    # the small company's family-months are below the default money floor: what is listed is
    # what the gates make material, every listed row with a cause


def test_a_price_increase_scenario_shows_as_price_in_the_bridge_and_in_money(cycle_warehouse):
    from orchestration.paths import default_models_dir

    scenario = yaml.safe_load((Path(default_models_dir()) / "scenarios.yaml").read_text())["scenarios"]["cooling_price_increase"]
    family = scenario["overlays"][0]["family"]
    bridge = q(
        cycle_warehouse,
        f"""select scenario, family, step, value from planning.plan_bridge
        where cycle = '{CYCLE}' and comparison = 'budget_to_plan' and scenario in ('baseline', 'cooling_price_increase')""",
    )
    step = {(r["scenario"], r["family"], r["step"]): r["value"] for r in bridge.iter_rows(named=True)}
    money = q(
        cycle_warehouse,
        f"""select scenario, revenue, volume from planning.scenario_financials
        where cycle = '{CYCLE}' and scenario in ('baseline', 'cooling_price_increase')""",
    )
    revenue = dict(zip(money["scenario"], money["revenue"]))
    volume = dict(zip(money["scenario"], money["volume"]))
    assert volume["cooling_price_increase"] == pytest.approx(volume["baseline"])  # supply unchanged
    extra_revenue = revenue["cooling_price_increase"] - revenue["baseline"]
    assert extra_revenue > 0
    # the whole revenue effect is price, on that family, and the volume step did not move
    extra_price = step[("cooling_price_increase", family, "price")] - step[("baseline", family, "price")]
    assert extra_price == pytest.approx(extra_revenue, rel=1e-6)
    assert step[("cooling_price_increase", family, "volume")] == pytest.approx(step[("baseline", family, "volume")])
    fin = q(
        cycle_warehouse,
        f"""select sum(revenue) as r from planning.financial_plan
        where cycle = '{CYCLE}' and scenario = 'cooling_price_increase' and family = '{family}'""",
    )["r"][0]
    assert extra_revenue == pytest.approx(fin * 0.05 / 1.05, rel=1e-6)
