"""Finance rules of issue 9 on a real pipeline run (validation, dbt, Dagster, DuckDB, the LP) of
a two-SKU company whose every unit cost and price is worked out by hand below.

The company: SKU A (family Heat, price 100, standard cost 60) and SKU B (family Cool, price 50,
standard cost 28), both made on line R1 (100 hours a month, cost 40 an hour, no overtime).
Rolled-up cost: A = 2 x material MA (20) + 0.5 h x 40 = 60, the standard; B = 1 x MB (10) +
0.5 h x 40 = 30, two above its standard of 28 (B's material got dearer: a material variance of
+2 per B shipped). The consensus is set by sales overrides: A 140 in November (more than the
line can make beside B and the 20 of each in stock), 80 a month after; B 100 a month. Each month in backlog costs
0.5 x max(price, cost): 50 per A, 25 per B (models/supply.yaml defaults).

History: 36 months to October 2026, A sold at a net price of 95 (the history has it), B at list
price (none given). Budget: every month of 2026 and 2027, Heat 100 units / 10,000 revenue /
4,000 margin, Cool 100 / 5,000 / 2,400. The fiscal year is the calendar year.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import q, run_ok

CYCLE = "2026-11"
EARLIER = "2026-10"
NOV, DEC = dt.date(2026, 11, 1), dt.date(2026, 12, 1)
PRICE = {"A": 100.0, "B": 50.0}
STANDARD = {"A": 60.0, "B": 28.0}
ROLLED = {"A": 2 * 20.0 + 0.5 * 40.0, "B": 1 * 10.0 + 0.5 * 40.0}
LATE = {"A": 0.5 * 100.0, "B": 0.5 * 50.0}  # per unit and month in backlog
FAMILY = {"A": "Heat", "B": "Cool"}
SKU = {v: k for k, v in FAMILY.items()}
HISTORY_A = [100, 92, 108, 97, 103, 110, 95, 100, 105, 90, 101, 99]
HISTORY_B = [95, 104, 98, 106, 92, 101, 99, 97, 103, 96, 100, 102]
MATERIAL_GATES = 150.0  # the test's gap_min_amount (the company is small)


def approx(expected, **kwargs):
    """LP solutions carry solver noise of ~1e-10 units: money within a millionth ties out."""
    return pytest.approx(expected, **{"rel": 1e-9, "abs": 1e-6, **kwargs})


def _months(first: str, count: int) -> list[str]:
    y, m = map(int, first.split("-"))
    return [f"{(y * 12 + m - 1 + i) // 12:04d}-{(y * 12 + m - 1 + i) % 12 + 1:02d}" for i in range(count)]


def _history() -> pl.DataFrame:
    months = _months("2023-11", 36)
    rows = []
    for i, month in enumerate(months):
        growth = 1 + 0.04 * (i // 12)
        rows.append((month, "A", round(HISTORY_A[i % 12] * growth), 95.0))
        rows.append((month, "B", round(HISTORY_B[i % 12] * growth), None))
    return pl.DataFrame(rows, schema={"month": pl.String, "sku": pl.String, "quantity": pl.Int64, "net_price": pl.Float64}, orient="row")


def _company(folder: Path, cycle: str = CYCLE, b_demand: float = 100.0) -> None:
    """The company's files as they stand at `cycle`; sales B plans `b_demand` a month."""
    folder.mkdir(parents=True, exist_ok=True)
    horizon = _months(cycle, 24)
    frames = {
        "products": pl.DataFrame(
            {
                "sku": ["A", "B"],
                "family": ["Heat", "Cool"],
                "unit_price": [100.0, 50.0],
                "unit_cost": [60.0, 28.0],
                "status": ["active", "active"],
            }
        ),
        "sales_history": _history(),
        "resources": pl.DataFrame(
            {
                "resource": ["R1"],
                "plant": ["P1"],
                "capacity_hours": [100.0],
                "overtime_hours": [0.0],
                "cost_per_hour": [40.0],
                "overtime_cost_per_hour": [60.0],
            }
        ),
        "routings": pl.DataFrame({"sku": ["A", "B"], "resource": ["R1", "R1"], "hours_per_unit": [0.5, 0.5], "priority": [1, 1]}),
        "materials": pl.DataFrame(
            {
                "material": ["MA", "MB"],
                "supplier": ["S1", "S1"],
                "unit_cost": [20.0, 10.0],
                "lead_time_months": [0, 0],
                "supplier_capacity": [100000, 100000],
                "on_hand": [100000, 100000],
            }
        ),
        "bom": pl.DataFrame({"sku": ["A", "B"], "material": ["MA", "MB"], "qty_per": [2.0, 1.0]}),
        "inventory": pl.DataFrame({"sku": ["A", "B"], "on_hand": [20.0, 20.0]}),
        "budget": pl.DataFrame(
            [(m, f, 100, r, g) for m in _months("2026-01", 24) for f, r, g in (("Heat", 10000.0, 4000.0), ("Cool", 5000.0, 2400.0))],
            schema={"month": pl.String, "family": pl.String, "volume": pl.Int64, "revenue": pl.Float64, "gross_margin": pl.Float64},
            orient="row",
        ),
        "demand_inputs": pl.DataFrame(
            [
                ("sales", "sku", sku, m, "override", value, "Kim Sales", "customer orders")
                for i, m in enumerate(horizon)
                for sku, value in (("A", 180.0 if m == "2026-11" else 80.0), ("B", b_demand))
            ],
            schema={
                "layer": pl.String,
                "level": pl.String,
                "key": pl.String,
                "month": pl.String,
                "adjustment_type": pl.String,
                "value": pl.Float64,
                "owner": pl.String,
                "reason": pl.String,
            },
            orient="row",
        ),
    }
    for name, frame in frames.items():
        frame.write_csv(folder / f"{name}.csv")


def _models(folder: Path) -> Path:
    from orchestration.paths import default_models_dir

    shutil.copytree(default_models_dir(), folder)
    scenarios = {
        "scenarios": {
            "line_outage": {
                "kind": "risk",
                "description": "R1 at half its hours in December.",
                "overlays": [{"kind": "capacity_change", "resource": "R1", "factor": 0.5, "months": {"from": 1, "to": 1}}],
            },
            "cool_upside": {
                "kind": "opportunity",
                "description": "Cool sells 10% above the consensus.",
                "overlays": [{"kind": "demand_change", "family": "Cool", "pct": 10}],
            },
            "extra_shift": {
                "kind": "lever",
                "description": "R1 works 30% more hours in November and December.",
                "overlays": [{"kind": "capacity_change", "resource": "R1", "factor": 1.3, "months": {"from": 0, "to": 1}}],
            },
        }
    }
    (folder / "scenarios.yaml").write_text(yaml.safe_dump(scenarios))
    gates = yaml.safe_load((folder / "gates.yaml").read_text())
    gates["financial_review"]["gap_tolerance_pct"] = 5
    gates["financial_review"]["gap_min_amount"] = MATERIAL_GATES
    gates["financial_review"]["gap_min_units"] = 10
    gates["demand_review"]["max_backtest_ratio_to_naive"] = 100.0  # the test is about money, not the forecast
    gates["supply_review"]["fill_rate_target"] = 0.0
    (folder / "gates.yaml").write_text(yaml.safe_dump(gates))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Cycle 2026-10, when sales planned 90 B a month, then 2026-11 with 100."""
    root = tmp_path_factory.mktemp("two_sku")
    models = _models(root / "models")
    warehouse = root / "sop.duckdb"
    _company(root / "data", EARLIER, b_demand=90.0)
    run_ok(EARLIER, root / "data", warehouse, models_dir=str(models))
    _company(root / "data")
    run_ok(CYCLE, root / "data", warehouse, models_dir=str(models))
    return warehouse


def _table(warehouse: Path, name: str, where: str = "") -> pl.DataFrame:
    return q(warehouse, f"select * from planning.{name} where cycle = '{CYCLE}'" + (f" and {where}" if where else "") + " order by all")


def _supply(warehouse: Path, scenario: str = "baseline") -> pl.DataFrame:
    """The supply plan with shipped units: demand + last month's backlog - this month's."""
    return (
        _table(warehouse, "supply_plan", f"scenario = '{scenario}'")
        .sort("sku", "month")
        .with_columns(
            (pl.col("demand") + pl.col("shortfall").shift(1, fill_value=0.0).over("sku") - pl.col("shortfall")).alias("shipped"),
            pl.col("sku").replace_strict(FAMILY).alias("family"),
        )
    )


def test_cogs_and_stock_are_at_standard_cost_and_the_rolled_up_difference_is_the_material_variance(tiny):
    plan = _table(tiny, "financial_plan", "scenario = 'baseline'")
    sp = _supply(tiny)
    for sku in ("A", "B"):
        mine = sp.filter(pl.col("sku") == sku).sort("month")
        fam = plan.filter(pl.col("family") == FAMILY[sku]).sort("month")
        assert fam["cogs"].to_list() == approx((mine["shipped"] * STANDARD[sku]).to_list())
        assert fam["inventory_value"].to_list() == approx((mine["ending_inventory"] * STANDARD[sku]).to_list())
        # A's rolled-up cost is its standard; each B shipped costs 30 against a standard of 28
        variance = 0.0 if sku == "A" else 2.0
        assert fam["material_variance"].to_list() == approx((mine["shipped"] * variance).to_list())
        assert fam["cost_variance"].to_list() == approx((mine["shipped"] * variance).to_list())
        assert (fam["cogs"] + fam["cost_variance"]).to_list() == approx((mine["shipped"] * ROLLED[sku]).to_list())
        # opening stock at the same basis: 20 units on hand
        assert fam["opening_inventory_value"][0] == approx(20 * STANDARD[sku])
    # the reconciliation books the variance as its own line with its driver
    rec = _table(tiny, "reconciliation", "component = 'cost_variance' and family = 'Cool'")
    material = rec.filter(pl.col("cause") == "material_price")
    assert material.height > 0
    joined = material.join(sp.filter(pl.col("sku") == "B").select("month", "shipped"), on="month")
    assert joined["amount"].to_list() == approx((-2.0 * joined["shipped"]).to_list())
    assert material["driver"].str.contains("material").all()


def test_a_late_unit_costs_the_same_money_in_the_lp_and_in_the_financial_plan(tiny):
    plan = _table(tiny, "financial_plan", "scenario = 'baseline'")
    sp = _supply(tiny)
    # November asks 180 A + 100 B; 20 of each are in stock and the line makes 100 h / 0.5 h = 200:
    # 40 units go late
    assert sp.filter(pl.col("month") == NOV)["shortfall"].sum() == approx(40.0, abs=1e-3)
    expected = sp.with_columns((pl.col("shortfall") * pl.col("sku").replace_strict(LATE)).alias("late_cost"))
    by_family = expected.group_by("family", "month").agg(pl.col("late_cost").sum(), pl.col("shortfall").sum())
    joined = plan.join(by_family, on=["family", "month"])
    assert joined["lateness_cost"].to_list() == approx(joined["late_cost"].to_list())
    assert joined["late_units"].to_list() == approx(joined["shortfall"].to_list())
    assert plan["lateness_cost"].sum() > 0
    # the margin carries it
    assert (plan["gross_margin"]).to_list() == approx(
        (plan["revenue"] - plan["cogs"] - plan["cost_variance"] - plan["lateness_cost"]).to_list()
    )
    # the LP minimised the same money: per backlog unit-month the late cost, plus the price of
    # a unit still in backlog in the horizon's last month (its revenue is lost to the plan)
    last = sp["month"].max()
    lost = sp.filter(pl.col("month") == last).select((pl.col("shortfall") * pl.col("sku").replace_strict(PRICE)).sum()).item()
    lp = _table(tiny, "supply_scenarios", "scenario = 'baseline'")["cost_shortfall_penalty"][0]
    assert lp == pytest.approx(plan["lateness_cost"].sum() + lost, rel=1e-6, abs=1e-3)


def test_a_risk_that_ships_late_earns_less_than_the_baseline_and_demand_scenarios_keep_their_own_demand(tiny):
    comp = _table(tiny, "scenario_financials")
    base = comp.filter(pl.col("scenario") == "baseline").row(0, named=True)
    risk = comp.filter(pl.col("scenario") == "line_outage").row(0, named=True)
    assert risk["kind"] == "risk" and risk["late_units"] > base["late_units"]
    assert risk["gross_margin"] < base["gross_margin"]
    assert risk["exposure"] == approx(risk["gross_margin"] - base["gross_margin"])
    upside = _table(tiny, "financial_plan", "scenario = 'cool_upside' and family = 'Cool'")
    baseline = _table(tiny, "financial_plan", "scenario = 'baseline' and family = 'Cool'")
    # unconstrained is the scenario's own demand: 10% above the consensus of 100 a month
    assert upside["unconstrained_volume"].to_list() == approx([110.0] * upside.height)
    assert baseline["unconstrained_volume"].to_list() == approx([100.0] * baseline.height)
    assert upside["volume"].sum() <= upside["unconstrained_volume"].sum() + 1e-6
    assert comp.filter(pl.col("scenario") == "cool_upside")["kind"][0] == "opportunity"
    lever = comp.filter(pl.col("scenario") == "extra_shift").row(0, named=True)
    assert lever["kind"] == "lever" and lever["exposure"] is None and lever["lever_cost"] is not None


def test_levers_come_only_from_lever_scenarios(tiny):
    rec = _table(tiny, "reconciliation")
    offered = set(rec["lever_scenario"].drop_nulls().to_list())
    assert offered == {"extra_shift"}  # the outage and the upside are never levers
    row = rec.filter(pl.col("lever_scenario") == "extra_shift").row(0, named=True)
    assert row["component"] == "supply" and row["amount"] < 0 and row["lever_closes"] > 0


def test_latest_estimate_is_actuals_to_date_at_net_price_plus_plan_against_the_annual_budget(tiny):
    le = _table(tiny, "latest_estimate", "scenario = 'baseline'")
    plan = _table(tiny, "financial_plan", "scenario = 'baseline'").filter(pl.col("month") <= DEC)
    history = _history().filter(pl.col("month").is_between(pl.lit("2026-01"), pl.lit("2026-10")))
    for family, sku in SKU.items():
        units = float(history.filter(pl.col("sku") == sku)["quantity"].sum())
        price = 95.0 if sku == "A" else PRICE[sku]  # A's history has a net price, B's does not
        fam_plan = plan.filter(pl.col("family") == family)
        revenue = _row(le, family=family, measure="revenue")
        assert revenue["fiscal_year"] == "FY2026" and (revenue["actual_months"], revenue["plan_months"]) == (10, 2)
        assert revenue["actual"] == approx(units * price)
        assert revenue["plan"] == approx(fam_plan["revenue"].sum())
        assert revenue["latest_estimate"] == approx(units * price + fam_plan["revenue"].sum())
        assert revenue["budget"] == approx(12 * (10000.0 if family == "Heat" else 5000.0))
        assert revenue["gap"] == approx(revenue["latest_estimate"] - revenue["budget"])
        margin = _row(le, family=family, measure="gross_margin")
        assert margin["actual"] == approx(units * (price - STANDARD[sku]))
        assert margin["latest_estimate"] == approx(units * (price - STANDARD[sku]) + fam_plan["gross_margin"].sum())
    total = _row(le, family="ALL", measure="revenue")
    assert total["latest_estimate"] == approx(
        le.filter((pl.col("family") != "ALL") & (pl.col("measure") == "revenue"))["latest_estimate"].sum()
    )
    # the fiscal quarter Oct-Dec is whole: October's actuals with November and December's plan
    q4 = _row(
        _table(tiny, "budget_gap", "scenario = 'baseline'"), family="Heat", period="quarter", period_label="FY2026-Q4", measure="volume"
    )
    october = float(history.filter((pl.col("sku") == "A") & (pl.col("month") == "2026-10"))["quantity"].sum())
    assert q4["actual_months"] == 1 and q4["plan"] == approx(october + plan.filter(pl.col("family") == "Heat")["volume"].sum())


def test_a_gap_is_material_in_money_and_in_percent(tiny):
    gap = _table(tiny, "budget_gap", "scenario = 'baseline' and period = 'month'")
    money = gap.filter(pl.col("measure") != "volume")
    expected = (money["gap"].abs() >= MATERIAL_GATES) & (money["gap"].abs() >= 0.05 * money["budget"].abs())
    assert money["above_tolerance"].to_list() == expected.to_list()
    assert 0 < expected.sum() < money.height  # some gaps are material, some are not


def test_the_inventory_rolls_forward_in_units_and_money_and_the_checkpoint_ties_out(tiny):
    plan = _table(tiny, "financial_plan", "scenario = 'baseline'").sort("family", "month")
    assert (plan["opening_inventory_value"] + plan["receipts_value"] - plan["cogs"]).to_list() == approx(plan["inventory_value"].to_list())
    opening_next = plan.with_columns(pl.col("inventory_value").shift(1).over("family").alias("prev")).drop_nulls("prev")
    assert opening_next["opening_inventory_value"].to_list() == approx(opening_next["prev"].to_list())
    # the checkpoint re-checked the roll-forward (units and money) and COGS + variance = rolled-up
    check = _table(tiny, "checkpoints", "checkpoint = 'financial_plan_ties_out'")
    assert check.height == 1 and check["passed"][0], check["description"][0]


def test_price_volume_mix_per_family_and_for_the_company_add_up_on_the_budget_bridge(tiny):
    bridge = _table(tiny, "plan_bridge", "scenario = 'baseline' and comparison = 'budget_to_plan'")
    step = {(r["family"], r["step"]): r["value"] for r in bridge.iter_rows(named=True)}
    # Months both cover: Nov 2026 - Dec 2027, 14. Budget 100 units a month per family, Heat
    # at 100, Cool at 50. Plan: Heat ships 180 + 13 x 80 = 1,220 at 100 (the November backlog
    # ships inside the window), Cool 14 x 100 at 50.
    assert set(bridge["months_covered"].to_list()) == {14}
    assert step[("Heat", "volume")] == approx((1220 - 1400) * 100.0)
    assert step[("Heat", "price")] == approx(0.0) and step[("Heat", "mix")] == approx(0.0)
    assert step[("Cool", "volume")] == approx(0.0) and step[("Cool", "price")] == approx(0.0)
    # company: 2,800 budget units at 75 on average, 2,620 planned, fewer of them the dearer Heat
    assert step[("ALL", "volume")] == approx((2620 - 2800) * 75.0)
    assert step[("ALL", "mix")] == approx(1220 * 100 + 1400 * 50 - 210000 + 13500)
    for family in ("Heat", "Cool", "ALL"):
        effects = sum(step[(family, s)] for s in ("volume", "mix", "price"))
        assert effects == approx(step[(family, "end")] - step[(family, "start")])


def test_the_bridge_from_last_cycle_splits_the_plan_change_by_driver_and_states_its_months(tiny):
    bridge = _table(tiny, "plan_bridge", "scenario = 'baseline' and comparison = 'last_cycle_to_plan'")
    step = {(r["family"], r["step"]): r["value"] for r in bridge.iter_rows(named=True)}
    # Last cycle's horizon ran to 2028-09: both plans cover Nov 2026 - Sep 2028, 23 months.
    covered = bridge.select("months_from", "months_to", "months_covered").unique().row(0)
    assert covered == (NOV, dt.date(2028, 9, 1), 23)
    # Sales now plans 100 B a month instead of 90: statistical forecast and consensus inputs
    # together move Cool by 10 x 50 a month, however the forecast itself moved; A's plan did
    # not change (its overrides are the same), so its forecast change is undone by its inputs.
    demand = ("statistical_forecast", "consensus_inputs")
    assert sum(step[("Cool", s)] for s in demand) == approx(23 * 10 * 50.0)
    assert sum(step[("Heat", s)] for s in demand) == approx(0.0)
    # same prices and portfolio in both cycles
    for family in ("Heat", "Cool", "ALL"):
        assert step[(family, "price")] == approx(0.0) and step[(family, "portfolio")] == approx(0.0)
        drivers = sum(step[(family, s)] for s in (*demand, "portfolio", "price", "supply"))
        assert drivers == approx(step[(family, "end")] - step[(family, "start")])
    last = q(
        tiny,
        f"select sum(revenue) as r from planning.financial_plan where cycle = '{EARLIER}' and scenario = 'baseline' and month >= '{NOV}'",
    )
    assert step[("ALL", "start")] == approx(last["r"][0])


def _row(frame: pl.DataFrame, **keys) -> dict:
    rows = frame.filter(pl.all_horizontal([pl.col(k) == v for k, v in keys.items()]))
    assert rows.height == 1, f"{keys}: {rows.height} rows"
    return rows.row(0, named=True)
