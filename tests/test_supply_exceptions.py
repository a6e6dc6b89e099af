"""Supply exceptions: per family x constraint x month where a decision is taken, with the SKU
detail beneath; no sub-unit noise, every value per unit bounded by the price, every row explained.

A two-SKU company works the numbers out by hand; the 60-SKU warehouse of `conftest` checks the
stored tables against the supply plan with SQL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from sop_pipeline.settings import load_settings
from sop_pipeline.supply.inputs import SupplyInputs
from sop_pipeline.supply.plan import plan_supply
from tests.conftest import q

ROOT = Path(__file__).resolve().parents[1]
CYCLES = ("2026-10", "2026-11")
MONTHS = [dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1)]


@pytest.fixture(scope="module")
def settings():
    return load_settings(ROOT / "models").supply


@pytest.fixture(scope="module")
def two_skus(settings):
    """F makes A (1 h, price 20) and B (4 h, price 12) on R1, 20 hours a month, free hours,
    no overtime, no stock, no targets, demand 10 A and 5 B every month (backorders).

    By hand: A's late unit costs 0.5 x 20 = 10 a month for 1 hour, B's 0.5 x 12 = 6 for 4
    hours, so A is made first (10 h) and B gets the other 10 h: 2.5 units a month. B's backlog
    is 2.5, 5, 7.5; late units of each month's demand min(5, backlog) = 2.5, 5, 5. One more
    hour in month 1 makes 0.25 B more and cuts the backlog of all three months: 0.25 x (6 + 6
    + 6 + 12, the last month also loses the price) = 7.5 per hour, 30 per B unit; in month 2
    0.25 x (6 + 18) = 6 (24 per unit), in month 3 0.25 x 18 = 4.5 (18 per unit). The best
    within the lookback is month 1's 30 for every month; capped at B's price, 12.
    """
    frames = {
        "products": pl.DataFrame({"sku": ["A", "B"], "family": ["F", "F"], "unit_price": [20.0, 12.0], "unit_cost": [8.0, 5.0]}),
        "demand": pl.DataFrame(
            {
                "sku": ["A"] * 3 + ["B"] * 3,
                "month": MONTHS * 2,
                "quantity": [10.0] * 3 + [5.0] * 3,
                "p10": [10.0] * 3 + [5.0] * 3,
                "p90": [10.0] * 3 + [5.0] * 3,
            }
        ),
        "resources": pl.DataFrame(
            {
                "resource": ["R1"],
                "plant": ["P1"],
                "capacity_hours": [20.0],
                "overtime_hours": [0.0],
                "cost_per_hour": [0.0],
                "overtime_cost_per_hour": [0.0],
            }
        ),
        "routings": pl.DataFrame({"sku": ["A", "B"], "resource": ["R1", "R1"], "hours_per_unit": [1.0, 4.0], "priority": [1, 1]}),
    }
    inputs = SupplyInputs(**frames)
    exact = settings.model_copy(
        update={
            "planning": settings.planning.model_copy(update={"level": "sku"}),
            "inventory_targets": settings.inventory_targets.model_copy(update={"cycle_stock_months": 0.0}),
            "solver": settings.solver.model_copy(update={"method": "simplex"}),
        }
    )
    return plan_supply(inputs, exact, "baseline", "2026-11")


def test_two_skus_value_per_unit_is_capped_at_the_price_and_the_dual_kept(two_skus):
    sku = two_skus.supply_exception_skus.sort("month")
    assert sku["sku"].to_list() == ["B"] * 3
    assert sku["late_units"].to_list() == pytest.approx([2.5, 5.0, 5.0], abs=1e-6)
    assert sku["shortfall"].to_list() == pytest.approx([2.5, 5.0, 7.5], abs=1e-6)
    assert sku["dual_value_per_unit"].to_list() == pytest.approx([30.0, 30.0, 30.0], rel=1e-6)
    # The month the constraint binds is month 1 for all three, also three months on.
    assert sku["constraint_month"].to_list() == [MONTHS[0]] * 3
    assert sku["value_per_unit"].to_list() == pytest.approx([12.0] * 3)
    assert sku["value_lost"].to_list() == pytest.approx([30.0, 60.0, 60.0], abs=1e-6)
    assert sku["explanation"].str.contains("R1 capacity is full in 2026-11").all()
    assert sku["explanation"].str.contains("valued at its price 12.0").all()


def test_two_skus_family_rows_add_the_sku_detail_up(two_skus):
    fam = two_skus.supply_exceptions.sort("month")
    assert fam.select("family", "constraint_kind", "constraint").unique().rows() == [("F", "capacity", "R1")]
    assert fam["month"].to_list() == MONTHS
    assert fam["skus"].to_list() == [1, 1, 1]
    assert fam["late_units"].to_list() == pytest.approx([2.5, 5.0, 5.0], abs=1e-6)
    assert fam["value_lost"].to_list() == pytest.approx([30.0, 60.0, 60.0], abs=1e-6)
    assert fam["value_per_unit"].to_list() == pytest.approx([12.0] * 3)
    assert fam["top_skus"].to_list() == ["B (2.5 late)", "B (5.0 late)", "B (5.0 late)"]
    assert two_skus.exceptions_left_out == {"late_units": 0.0, "below_target": 0.0, "value_lost": 0.0}


def _rows(path, table: str):
    return q(path, f"select e.*, p.unit_price from planning.{table} e join marts.dim_product p using (sku)")


def test_every_row_is_explained_above_the_threshold_and_bounded_by_the_price(cycle_warehouse, settings):
    min_units = settings.exceptions.min_units
    skus = _rows(cycle_warehouse, "supply_exception_skus")
    fam = q(
        cycle_warehouse,
        """select e.*, m.max_price from planning.supply_exceptions e
           join (select family, max(unit_price) as max_price from marts.dim_product group by family) m using (family)""",
    )
    assert skus.height and fam.height
    assert skus.filter(pl.col("late_units") > 0).height, "the fixture has no late demand to test against"
    for frame, price in ((skus, "unit_price"), (fam, "max_price")):
        assert (frame["value_per_unit"] <= frame[price] + 1e-9).all()
        assert frame["explanation"].is_not_null().all() and (frame["explanation"].str.len_chars() > 20).all()
        assert frame.select((pl.max_horizontal("late_units", "shortfall", "below_target") >= min_units).all()).item()
        assert (frame["value_lost"] <= frame["late_units"] * frame[price] + 1e-6).all()
    # A dual comes from the month itself or the lookback months before it, never later.
    dual = skus.filter(pl.col("evidence") == "dual")
    assert dual["constraint_month"].is_not_null().all()
    lag = (dual["month"].dt.year() * 12 + dual["month"].dt.month()) - (
        dual["constraint_month"].dt.year() * 12 + dual["constraint_month"].dt.month()
    )
    assert lag.min() >= 0 and lag.max() <= 3
    # Where the dual is worth more than the price it is capped: the old table stored it as is.
    dear = skus.filter(pl.col("dual_value_per_unit") > pl.col("unit_price"))
    assert dear.height and (dear["value_per_unit"] == dear["unit_price"]).all()


def test_family_units_add_up_to_the_plans_late_units(cycle_warehouse):
    plan = q(
        cycle_warehouse,
        """select cycle, scenario, family, month, sum(least(demand, shortfall)) as late
           from planning.supply_plan group by all""",
    )
    fam = q(
        cycle_warehouse, "select cycle, scenario, family, month, sum(late_units) as listed from planning.supply_exceptions group by all"
    )
    left = q(cycle_warehouse, "select cycle, scenario, exception_late_units_below_threshold as left_out from planning.supply_scenarios")
    per_month = plan.join(fam, on=["cycle", "scenario", "family", "month"], how="left").with_columns(pl.col("listed").fill_null(0.0))
    # Listed never exceeds the plan; what is missing is only rows under the threshold.
    assert (per_month["listed"] <= per_month["late"] + 1e-6).all()
    total = per_month.group_by("cycle", "scenario").agg(pl.col("late", "listed").sum()).join(left, on=["cycle", "scenario"])
    assert total.height == q(cycle_warehouse, "select count(*) as n from planning.supply_scenarios")["n"][0]
    # Solver noise (under 1e-3 a SKU-month) is all that may differ.
    sku_months = q(cycle_warehouse, "select count(*) as n from planning.supply_plan")["n"][0]
    for row in total.iter_rows(named=True):
        assert row["listed"] + row["left_out"] == pytest.approx(row["late"], abs=1e-3 * sku_months / total.height)
    assert total["late"].sum() > 1, "the fixture has no late demand to test against"


def test_family_rows_are_at_most_family_x_resource_x_month(cycle_warehouse):
    bound = q(
        cycle_warehouse,
        """select s.cycle, (select count(distinct family) from marts.dim_product)
                  * (select count(*) from marts.dim_resource) * count(distinct s.month) as bound
           from planning.supply_plan s group by s.cycle""",
    )
    rows = q(cycle_warehouse, "select cycle, scenario, count(*) as n from planning.supply_exceptions group by all").join(bound, on="cycle")
    assert rows.height and (rows["n"] <= rows["bound"]).all()
    keys = ["cycle", "scenario", "family", "constraint_kind", "constraint", "month"]
    fam = q(cycle_warehouse, "select * from planning.supply_exceptions")
    assert fam.select(keys).unique().height == fam.height
    # The SKU detail behind each family row: its SKUs with at least the threshold are listed.
    skus = q(
        cycle_warehouse,
        """select cycle, scenario, family, month, coalesce("constraint", case constraint_kind when 'mix' then 'SKU mix'
                  else 'cost trade-off' end) as "constraint", count(*) as listed
           from planning.supply_exception_skus group by all""",
    )
    joined = skus.join(fam, on=["cycle", "scenario", "family", "month", "constraint"], how="left")
    assert joined["skus"].is_not_null().all() and (joined["listed"] <= joined["skus"]).all()
