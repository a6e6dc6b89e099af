"""The one exception list (`planning.exceptions`) on a real cycle: each finding once with its
scenarios and money, ranked by money, demand findings on the executive's list, amounts worked
out again from the planning tables in SQL."""

import datetime as dt

import duckdb
import polars as pl
import pytest
from conftest import CYCLE, q

from sop_pipeline.settings.gates import Gates


@pytest.fixture(scope="module")
def listed(cycle_warehouse):
    return q(cycle_warehouse, f"select * from planning.exceptions where cycle = '{CYCLE}' order by rank")


def test_each_exception_once_ranked_by_money_with_the_top_n_flagged(listed):
    assert listed.height > 0
    assert listed["exception_id"].n_unique() == listed.height
    assert listed["rank"].to_list() == list(range(1, listed.height + 1))
    money = listed["money"].to_list()
    assert money == sorted(money, reverse=True)
    top = Gates().executive_review.max_exceptions_in_pack
    assert listed["in_executive_list"].to_list() == [r <= top for r in listed["rank"]]
    # a scenario is named once per exception, the baseline first when it has it
    for names, in_baseline in listed.select("scenarios", "in_baseline").iter_rows():
        parts = names.split(", ")
        assert len(parts) == len(set(parts))
        assert (parts[0] == "baseline") == in_baseline


def test_every_review_step_reaches_the_list_and_demand_findings_reach_the_executive(listed):
    assert set(listed["step"]) == {"demand_review", "supply_review", "financial_review"}
    executive = listed.filter(listed["in_executive_list"])
    assert "demand_review" in set(executive["step"])


def test_an_override_without_reason_is_worth_the_revenue_it_moved(cycle_warehouse, listed):
    rows = listed.filter(listed["kind"] == "override_without_reason")
    assert rows.height
    row = rows.row(0, named=True)
    # Worked out again: every SKU-month the layer moved by more than the gate's threshold with no
    # reason, |plan after the layer - plan before it| x the product master's price.
    threshold = Gates().demand_review.override_threshold_pct
    con = duckdb.connect(str(cycle_warehouse), read_only=True)
    try:
        expected = con.execute(
            """
            with l as (
                select sku, month, layer, layer_rank, quantity, reason,
                       lag(quantity) over (partition by sku, month order by layer_rank) as before
                from planning.demand_plan_layers where cycle = ?
            ), s as (select sku, month, p50 from planning.statistical_forecast where cycle = ?)
            select sum(abs(l.quantity - l.before) * p.unit_price)
            from l join s using (sku, month) join marts.dim_product p using (sku)
            where l.sku = ? and l.layer = ? and coalesce(trim(l.reason), '') = ''
              and 100 * abs(l.quantity - s.p50) / greatest(s.p50, 1) > ?
            """,
            [CYCLE, CYCLE, row["sku"], row["exception_id"].split(":")[2], threshold],
        ).fetchone()[0]
    finally:
        con.close()
    assert row["money"] == pytest.approx(expected, rel=1e-9)
    assert row["owner"] != "Demand planning"  # the input's own owner answers for it


def test_a_shortfall_is_its_late_units_at_the_product_price(cycle_warehouse):
    # The cycle's real tables through the list with no money threshold, so every late family
    # and constraint is listed; each row's money worked out again in SQL.
    from sop_pipeline.executive.exceptions import exception_list
    from sop_pipeline.executive.status import load_cycle_frames
    from sop_pipeline.settings.gates import ExecutiveGates, Materiality
    from sop_pipeline.warehouse import read_table

    con = duckdb.connect(str(cycle_warehouse), read_only=True)
    try:
        frames = load_cycle_frames(con, CYCLE)
        products = read_table(con, "marts.dim_product")
    finally:
        con.close()
    gates = Gates(executive_review=ExecutiveGates(materiality=Materiality(shortfall_revenue=0)))
    rows = exception_list(CYCLE, frames, gates, products).filter(pl.col("kind") == "shortfall")
    assert rows.height
    for row in rows.iter_rows(named=True):
        scenario = row["scenarios"].split(", ")[0]
        constraint = row["exception_id"].split(":", 2)[2]
        late = q(
            cycle_warehouse,
            f"""
            select sum(least(sp.demand, sp.shortfall) * p.unit_price) as money, sum(least(sp.demand, sp.shortfall)) as late
            from planning.supply_plan sp join marts.dim_product p using (sku)
            left join planning.supply_exception_skus e
              on e.cycle = sp.cycle and e.scenario = sp.scenario and e.sku = sp.sku and e.month = sp.month
             and e.exception = 'shortfall'
            where sp.cycle = '{CYCLE}' and sp.scenario = '{scenario}' and p.family = '{row["family"]}'
              and least(sp.demand, sp.shortfall) >= 0.5
              and coalesce(e."constraint", e.constraint_kind, 'unexplained') = '{constraint}'
            """,
        )
        assert row["money"] == pytest.approx(late["money"][0], rel=1e-9)
        assert f"{round(late['late'][0])} units late" in row["description"]


def test_layer_points_are_the_changes_inputs_made_in_earlier_cycles_against_actuals(cycle_warehouse):
    from sop_pipeline.executive.exceptions import layer_points

    con = duckdb.connect(str(cycle_warehouse), read_only=True)
    try:
        points = layer_points(con, CYCLE)
        layers = q(cycle_warehouse, "select * from planning.demand_plan_layers where cycle = '2026-10'")
        sales = q(cycle_warehouse, "select sku, month, quantity from marts.fct_sales_monthly")
    finally:
        con.close()
    assert points.height and set(points["forecast_cycle"]) == {"2026-10"}
    assert points["month"].max() < dt.date(2026, 11, 1)
    # every point looked up again: the layer's plan, the layer below it on that SKU-month, the sales
    for row in points.head(20).iter_rows(named=True):
        same = layers.filter((pl.col("sku") == row["sku"]) & (pl.col("month") == row["month"])).sort("layer_rank")
        ranks = same["layer"].to_list()
        k = ranks.index(row["layer"])
        assert row["after"] == same["quantity"][k] and row["before"] == same["quantity"][k - 1]
        sold = sales.filter((pl.col("sku") == row["sku"]) & (pl.col("month") == row["month"]))["quantity"]
        assert row["actual"] == (sold[0] if sold.len() else 0.0)
