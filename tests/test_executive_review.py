"""Executive review: plan version, approval, plan of record, KPIs, exceptions, the review pack
and the status report, on a small hand-made warehouse."""

import datetime as dt
import io
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import write

from sop_pipeline import bi, registry
from sop_pipeline.executive import exceptions as exc
from sop_pipeline.executive import governance as gov
from sop_pipeline.executive import kpis
from sop_pipeline.executive import status as cycle_status
from sop_pipeline.reporting import pack as review
from sop_pipeline.settings.gates import ExecutiveGates, Gates, Materiality
from sop_pipeline.warehouse import query

CYCLE = "2026-11"
NOV, DEC = dt.date(2026, 11, 1), dt.date(2026, 12, 1)


def _supply(shortfall_dec: float = 20.0) -> pl.DataFrame:
    rows = []
    for scenario, extra in (("baseline", 0.0), ("overtime", -10.0)):
        rows += [
            (CYCLE, scenario, "A", "F1", NOV, 100.0, 100.0, 50.0, 0.0, 10.0, 40.0),
            (CYCLE, scenario, "A", "F1", DEC, 100.0, 60.0, 30.0, shortfall_dec + extra, 10.0, 40.0),
        ]
    return pl.DataFrame(
        rows,
        orient="row",
        schema={
            "cycle": pl.Utf8,
            "scenario": pl.Utf8,
            "sku": pl.Utf8,
            "family": pl.Utf8,
            "month": pl.Date,
            "demand": pl.Float64,
            "production": pl.Float64,
            "ending_inventory": pl.Float64,
            "shortfall": pl.Float64,
            "safety_stock": pl.Float64,
            "target_inventory": pl.Float64,
        },
    )


def _capacity() -> pl.DataFrame:
    rows = [
        (CYCLE, "baseline", "R1", "P1", NOV, 100.0, 80.0, 0.0, 0.8, 0.0),
        (CYCLE, "baseline", "R1", "P1", DEC, 100.0, 110.0, 10.0, 1.1, 50.0),
        (CYCLE, "baseline", "R2", "P1", NOV, 100.0, 97.0, 0.0, 0.97, 0.0),
        (CYCLE, "baseline", "R2", "P1", DEC, 100.0, 50.0, 0.0, 0.5, 0.0),
    ]
    return pl.DataFrame(
        rows,
        orient="row",
        schema={
            "cycle": pl.Utf8,
            "scenario": pl.Utf8,
            "resource": pl.Utf8,
            "plant": pl.Utf8,
            "month": pl.Date,
            "capacity_hours": pl.Float64,
            "load_hours": pl.Float64,
            "overtime_hours": pl.Float64,
            "utilization": pl.Float64,
            "shadow_price": pl.Float64,
        },
    )


def _financial() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "cycle": [CYCLE] * 2,
            "scenario": ["baseline"] * 2,
            "family": ["F1"] * 2,
            "month": [NOV, DEC],
            "volume": [100.0, 80.0],
            "revenue": [1000.0, 800.0],
            "cogs": [600.0, 480.0],
            "gross_margin": [400.0, 320.0],
            "inventory_value": [300.0, 180.0],
            "unconstrained_revenue": [1000.0, 1000.0],
        }
    )


def _budget_gap() -> pl.DataFrame:
    # As the financial review writes it: months and quarters, each family and ALL.
    rows = [
        ("month", "2026-11", NOV, "F1", 1000.0, 1000.0),
        ("month", "2026-12", DEC, "F1", 800.0, 1000.0),
        ("quarter", "2026-Q4", None, "F1", 1800.0, 2000.0),
        ("month", "2026-11", NOV, "ALL", 1000.0, 1000.0),
        ("month", "2026-12", DEC, "ALL", 800.0, 1000.0),
    ]
    return pl.DataFrame(
        rows,
        orient="row",
        schema={
            "period": pl.Utf8,
            "period_label": pl.Utf8,
            "month": pl.Date,
            "family": pl.Utf8,
            "plan": pl.Float64,
            "budget": pl.Float64,
        },
    ).with_columns(
        pl.lit(CYCLE).alias("cycle"),
        pl.lit("baseline").alias("scenario"),
        pl.lit("revenue").alias("measure"),
        (pl.col("plan") - pl.col("budget")).alias("gap"),
        (100 * (pl.col("plan") / pl.col("budget") - 1)).alias("gap_pct"),
    )


def _accuracy() -> pl.DataFrame:
    # Lag-1 consensus over three forecast cycles: biases +10%, +5%, 0%; WAPE pooled = 35 / 400.
    return pl.DataFrame(
        {
            "cycle": [CYCLE] * 4,
            "forecast_cycle": ["2026-08", "2026-09", "2026-10", "2026-10"],
            "layer": ["consensus", "consensus", "consensus", "statistical"],
            "family": ["ALL"] * 4,
            "lag": [1] * 4,
            "points": [10] * 4,
            "actual": [100.0, 100.0, 200.0, 200.0],
            "forecast": [110.0, 105.0, 200.0, 260.0],
            "abs_error": [10.0, 5.0, 20.0, 60.0],
            "wape": [0.1, 0.05, 0.1, 0.3],
            "bias": [0.1, 0.05, 0.0, 0.3],
        }
    )


def _consensus() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "cycle": [CYCLE] * 2,
            "sku": ["A"] * 2,
            "family": ["F1"] * 2,
            "month": [NOV, DEC],
            "quantity": [100.0, 100.0],
            "p10": [80.0, 80.0],
            "p90": [120.0, 120.0],
        }
    )


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "sop.duckdb"))
    write(connection, "consensus_demand", _consensus(), CYCLE)
    write(connection, "supply_plan", _supply(), CYCLE)
    write(connection, "capacity_plan", _capacity(), CYCLE)
    write(connection, "financial_plan", _financial(), CYCLE)
    yield connection
    connection.close()


# -- plan version -------------------------------------------------------------------------------


def test_plan_version_is_stable_for_the_same_content_whatever_the_row_order(con):
    first = gov.plan_version(con, CYCLE)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert gov.plan_version(con, CYCLE) == first
    write(con, "supply_plan", _supply().reverse(), CYCLE)
    assert gov.plan_version(con, CYCLE) == first


def test_plan_version_changes_when_one_number_changes(con):
    before = gov.plan_version(con, CYCLE)
    write(con, "supply_plan", _supply(shortfall_dec=20.001), CYCLE)
    assert gov.plan_version(con, CYCLE) != before


def test_plan_version_survives_summation_order_noise_but_not_a_change_of_a_millionth(con):
    """Two parallel runs add the same numbers in another order: 0.1 + 0.2 + 0.3 is not
    0.3 + 0.2 + 0.1 in binary floating point (they differ in the last bit). That must not
    invalidate an approval; a shortfall of 20.0001 instead of 20 (five parts in a million)
    must, and so must a value appearing where there was an exact zero by a thousandth."""
    assert 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1
    write(con, "supply_plan", _supply(shortfall_dec=(0.1 + 0.2 + 0.3) * 100 / 3 * 0.5 * 2 * 0.6), CYCLE)
    noisy = 0.3 + 0.2 + 0.1
    before = gov.plan_version(con, CYCLE)
    write(con, "supply_plan", _supply(shortfall_dec=noisy * 100 / 3 * 0.5 * 2 * 0.6), CYCLE)
    assert gov.plan_version(con, CYCLE) == before
    write(con, "supply_plan", _supply(shortfall_dec=20.0001), CYCLE)
    moved = gov.plan_version(con, CYCLE)
    assert moved != before
    frame = _supply().with_columns(pl.col("ending_inventory") + 1e-12)
    write(con, "supply_plan", _supply(), CYCLE)
    exact = gov.plan_version(con, CYCLE)
    write(con, "supply_plan", frame, CYCLE)
    assert gov.plan_version(con, CYCLE) == exact
    write(con, "supply_plan", _supply().with_columns(pl.col("shortfall") + 0.001), CYCLE)
    assert gov.plan_version(con, CYCLE) != exact


def test_plan_version_ignores_decisions_checkpoints_and_other_cycles(con):
    before = gov.plan_version(con, CYCLE)
    gov.record_checkpoint(con, CYCLE, "consensus_demand_is_sound", True, "ok")
    gov.record_decision(con, CYCLE, "baseline", "Ana CEO", "go")
    write(con, "supply_plan", _supply().with_columns(pl.lit("2026-10").alias("cycle")), "2026-10")
    assert gov.plan_version(con, CYCLE) == before


# -- approval and plan of record ------------------------------------------------------------------


def test_approval_matches_then_goes_stale_when_a_plan_table_changes(con):
    assert gov.approval_status(con, CYCLE)["reason"] == "no approval yet"
    version = gov.plan_version(con, CYCLE)
    gov.record_decision(con, CYCLE, "overtime", "Ana CEO", "buy the overtime", version, dt.datetime(2026, 11, 20, 9, 30))
    status = gov.approval_status(con, CYCLE)
    assert status["matches"] and status["latest_approval"]["scenario"] == "overtime"
    assert status["reason"].startswith("scenario overtime approved by Ana CEO at 2026-11-20 09:30 UTC for version " + version[:12])

    write(con, "capacity_plan", _capacity().with_columns(pl.col("load_hours") + 1), CYCLE)
    stale = gov.approval_status(con, CYCLE)
    assert not stale["matches"]
    assert stale["reason"].startswith(
        f"plan changed after approval: approved version {version[:12]}... != current {stale['current_version'][:12]}"
    )


def test_approval_of_an_unknown_scenario_is_refused(con):
    with pytest.raises(ValueError, match="scenario 'nope' is not in cycle 2026-11"):
        gov.record_decision(con, CYCLE, "nope", "Ana CEO", "")


def test_plan_of_record_refuses_without_a_matching_approval(con):
    with pytest.raises(gov.PlanNotApprovedError, match="no approval yet"):
        gov.build_plan_of_record(con, CYCLE, "baseline")
    gov.record_decision(con, CYCLE, "baseline", "Ana CEO", "")
    with pytest.raises(gov.PlanNotApprovedError, match="not the approved one"):
        gov.build_plan_of_record(con, CYCLE, "overtime")
    write(con, "financial_plan", _financial().with_columns(pl.col("revenue") * 1.01), CYCLE)
    with pytest.raises(gov.PlanNotApprovedError, match="plan changed after approval"):
        gov.publish_plan_of_record(con, CYCLE, "baseline")
    assert not query(con, "select * from information_schema.tables where table_name like 'plan_of_record%'").height


def test_plan_of_record_builds_the_approved_scenario_with_a_matching_approval(con):
    version = gov.plan_version(con, CYCLE)
    gov.record_decision(con, CYCLE, "overtime", "Ana CEO", "")
    frames = gov.build_plan_of_record(con, CYCLE, "overtime")
    assert set(frames) == set(registry.PLAN_OF_RECORD_SOURCES)
    supply = frames["plan_of_record_supply"]
    assert supply.columns[:5] == ["cycle", "scenario", "plan_version", "approved_by", "approved_at"]
    assert supply["scenario"].unique().to_list() == ["overtime"] and supply.height == 2
    assert supply["plan_version"].unique().to_list() == [version]
    assert frames["plan_of_record_capacity"].height == 0  # no overtime rows in the capacity plan
    assert frames["plan_of_record_demand"].height == 2  # demand is the same for every scenario

    written = gov.publish_plan_of_record(con, CYCLE, "overtime")
    assert written["planning.plan_of_record_supply"] == 2
    assert gov.approval_status(con, CYCLE)["matches"], "publishing must not change the plan version"
    assert gov.plan_of_record_version(con, CYCLE) == version
    bi.create_bi_views(con)
    por = query(con, "select * from bi.plan_of_record order by month")
    assert por["demand_units"].to_list() == [100.0, 100.0]
    assert por["shortfall_units"].to_list() == [0.0, 10.0]
    assert por["is_current_cycle"].all() and por["approved_by"].unique().to_list() == ["Ana CEO"]
    assert any(line.startswith("plan of record published (scenario overtime") for line in cycle_status.status_report(con, CYCLE))


# -- KPIs and exceptions -------------------------------------------------------------------------


def _kpis(summary: pl.DataFrame, scenario: str = "baseline") -> dict[str, float | None]:
    return dict(summary.filter(pl.col("scenario") == scenario).select("kpi", "value").iter_rows())


def test_executive_summary_kpis_on_a_hand_made_plan():
    summary = kpis.executive_summary(CYCLE, _supply(), _capacity(), _financial(), _budget_gap(), _accuracy())
    k = _kpis(summary)
    assert k["fill_rate"] == pytest.approx(1 - 20 / 200)
    assert k["late_units"] == pytest.approx(20)
    assert k["revenue"] == pytest.approx(1800)
    assert k["gross_margin"] == pytest.approx(720) and k["gross_margin_pct"] == pytest.approx(0.4)
    assert k["inventory_value"] == pytest.approx(240)  # average month-end value
    assert k["days_of_supply"] == pytest.approx(240 / (1080 / (2 * 365.25 / 12)))
    # R1 binds (shadow value 50 x 110 h) and ranks first although R2 is not far below in utilisation.
    bottlenecks = summary.filter((pl.col("scenario") == "baseline") & pl.col("kpi").str.starts_with("bottleneck_"))
    assert bottlenecks.select("subject", "value").rows() == [("R1", 1.1), ("R2", 0.97)]
    assert k["budget_gap_revenue"] == pytest.approx(-200)  # months of each family: neither quarters nor ALL count twice
    assert k["budget_gap_revenue_pct"] == pytest.approx(-0.1)
    assert k["forecast_wape_lag1"] == pytest.approx(35 / 400)
    assert k["forecast_bias_lag1"] == pytest.approx(0.0)
    assert k["forecast_bias_trend"] == pytest.approx(-0.05)
    assert _kpis(summary, "overtime")["fill_rate"] == pytest.approx(1 - 10 / 200)
    assert summary.group_by("kpi").agg(pl.col("kpi_order").n_unique())["kpi_order"].max() == 1


def test_executive_summary_notes_absent_inputs_instead_of_failing():
    summary = kpis.executive_summary(CYCLE)
    assert summary["scenario"].unique().to_list() == ["baseline"]
    assert summary["value"].is_null().all()
    details = " | ".join(summary["detail"])
    assert "no supply plan this cycle" in details and "no capacity plan this cycle" in details
    assert "no earlier cycle scored yet" in details
    assert exc.exception_list(CYCLE, {}).height == 0
    assert len(exc.review_notes({})) == 5


def test_one_exception_list_across_steps_each_once_with_its_scenarios_ranked_by_money():
    gates = Gates(
        executive_review=ExecutiveGates(
            max_exceptions_in_pack=3,
            materiality=Materiality(
                shortfall_revenue=1000, budget_gap_amount=50_000, budget_gap_pct=5, utilization=0.95, capacity_money=100, demand_money=1000
            ),
        )
    )
    rows = []
    # A (F1) is 200 late in December in both scenarios, 300 + 100 in the outage; B (F2) 50 late.
    for scenario, late_dec, late_jan in (("baseline", 200.0, 0.0), ("outage", 300.0, 100.0)):
        rows += [
            (scenario, "A", "F1", DEC, 1000.0, late_dec),
            (scenario, "A", "F1", dt.date(2027, 1, 1), 1000.0, late_jan),
            (scenario, "B", "F2", NOV, 500.0, 50.0),
        ]
    supply = pl.DataFrame(
        rows,
        orient="row",
        schema={"scenario": pl.Utf8, "sku": pl.Utf8, "family": pl.Utf8, "month": pl.Date, "demand": pl.Float64, "shortfall": pl.Float64},
    ).with_columns(pl.lit(CYCLE).alias("cycle"))
    diagnosis = supply.filter(pl.col("sku") == "A").select(
        "scenario",
        "sku",
        "month",
        pl.lit("shortfall").alias("exception"),
        pl.lit("capacity").alias("constraint_kind"),
        pl.lit("R1").alias("constraint"),
    )
    products = pl.DataFrame({"sku": ["A", "B"], "family": ["F1", "F2"], "unit_price": [10.0, 10.0], "unit_cost": [6.0, 6.0]})
    budget = pl.DataFrame(
        {
            "scenario": "baseline",
            "period": "fiscal_year",
            "period_label": "FY2027",
            "family": ["F1", "F2", "F3", "ALL"],
            "measure": "revenue",
            "plan": [440_000.0, 9_940_000.0, 1_000.0, 10_381_000.0],
            "budget": [500_000.0, 10_000_000.0, 100_000.0, 10_600_000.0],
        }
    )
    resources = pl.DataFrame({"resource": ["R1", "R2"], "cost_per_hour": [30.0, 30.0], "overtime_cost_per_hour": [40.0, 40.0]})
    # The sales input takes A's November from 100 to 330 (+230 %) without a reason, inside the
    # one-month frozen window; its December +10 % has a reason and is outside it.
    # B's marketing input adds 15 % to its frozen November with a reason: listed for the frozen window.
    statistical = pl.DataFrame(
        {"sku": ["A", "A", "B"], "family": ["F1", "F1", "F2"], "month": [NOV, DEC, NOV], "p50": [100.0, 100.0, 1000.0]}
    )
    layers = pl.DataFrame(
        {
            "sku": ["A", "A", "A", "A", "B", "B"],
            "month": [NOV, NOV, DEC, DEC, NOV, NOV],
            "layer": ["statistical", "sales", "statistical", "sales", "statistical", "marketing"],
            "layer_rank": [0, 1, 0, 1, 0, 2],
            "quantity": [100.0, 330.0, 100.0, 110.0, 1000.0, 1150.0],
            "owner": ["statistical model", "K. Sales", "statistical model", "K. Sales", "statistical model", "M. Brand"],
            "reason": [None, None, None, "trade fair", None, "promotion"],
        }
    )
    frames = {
        "supply_plan": supply,
        "supply_exception_skus": diagnosis,
        "capacity_plan": _capacity(),
        "budget_gap": budget,
        "demand_plan_layers": layers,
        "statistical_forecast": statistical,
    }
    found = exc.exception_list(CYCLE, frames, gates, products, resources)
    # F2's shortfall (500), F2's gap (0.6 % of budget), the company total and R2 (no money at
    # stake) stay out; A's shortfall is one row for both scenarios, at the baseline's money.
    assert found.select("rank", "kind", "money", "scenarios", "in_executive_list").rows() == [
        (1, "budget_gap", 99_000.0, "baseline", True),
        (2, "budget_gap", 60_000.0, "baseline", True),
        (3, "override_without_reason", 2_300.0, "baseline, outage", True),  # one finding, frozen window too
        # R1: its overtime premium (10 h x (40 - 30)) and the 200 late units of A it binds at price 10;
        # its shadow price (50 an hour) is no money lost.
        (4, "capacity", 10 * (40 - 30.0) + 200 * 10.0, "baseline", False),
        (5, "shortfall", 2_000.0, "baseline, outage", False),
        (6, "frozen_window_override", 150 * 10.0, "baseline, outage", False),
    ]
    shortfall = found.row(4, named=True)
    assert (shortfall["family"], shortfall["resource"], shortfall["exception_id"]) == ("F1", "R1", "shortfall:F1:R1")
    assert shortfall["period_label"] == "2026-12" and "200 units late of 1000" in shortfall["description"]
    assert found["owner"][2] == "K. Sales" and "230%" in found["description"][2]
    assert "inside the 1-month frozen window" in found["description"][2]
    assert found["owner"][5] == "M. Brand" and "150 units inside the 1-month frozen window" in found["description"][5]
    assert found["owner"][0] == "Finance" and "below budget by 12.0%" in found["description"][1]
    assert "R1 (P1)" in found["description"][3] and "late units it binds worth 2000" in found["description"][3]
    # under lost sales a late unit loses its margin (price - standard cost), not its price
    # (the baseline's 200 x 4 stays below 1,000; the outage's 400 late units are listed as its own)
    lost = exc.exception_list(CYCLE, frames, gates, products, resources, shortfall_mode="lost_sales")
    assert lost.filter(pl.col("kind") == "shortfall").select("money", "scenarios", "in_baseline").rows() == [
        (400 * (10.0 - 6.0), "outage", False)
    ]


# -- review pack and status ---------------------------------------------------------------------


def _png(title: str) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 2))
    ax = fig.add_subplot()
    ax.plot([1, 2, 3], [2, 1, 3])
    ax.set_title(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    return buffer.getvalue()


def _pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


def test_review_pack_has_page_one_the_summary_pages_and_one_page_per_review_step(con, tmp_path):
    frames = cycle_status.load_cycle_frames(con, CYCLE)
    frames["forecast_accuracy"] = _accuracy()
    frames["budget_gap"] = _budget_gap()
    frames["executive_summary"] = kpis.executive_summary(
        CYCLE, frames["supply_plan"], frames["capacity_plan"], frames["financial_plan"], frames["budget_gap"], frames["forecast_accuracy"]
    )
    gates = Gates(executive_review=ExecutiveGates(materiality=Materiality(shortfall_revenue=1, capacity_money=1)))
    frames["exceptions"] = exc.exception_list(CYCLE, frames, gates)
    charts = {"demand_top_families": _png("demand"), "capacity_load": _png("capacity")}
    status = gov.approval_status(con, CYCLE)
    pack = review.review_pack(tmp_path / "pack", CYCLE, frames, charts, status["current_version"], status)
    assert pack == tmp_path / "pack" / "review_pack_2026-11.pdf"
    assert _pdf_pages(pack) == 1 + len(review.SUMMARY_PAGES) + len(review.PACK_STEPS)
    assert (tmp_path / "pack" / "demand_top_families.png").read_bytes() == charts["demand_top_families"]
    assert (tmp_path / "pack" / "capacity_load.png").exists()
    assert not [p for p in (tmp_path / "pack").iterdir() if p.name.endswith(".tmp")]


def test_review_pack_without_any_data_still_has_every_page(tmp_path):
    pack = review.review_pack(tmp_path, CYCLE, {}, {}, None, None)
    assert _pdf_pages(pack) == 1 + len(review.SUMMARY_PAGES) + len(review.PACK_STEPS)


def test_status_report_says_which_checkpoints_passed_and_who_the_cycle_waits_for(con):
    gov.record_checkpoint(con, CYCLE, "portfolio_is_sound", True, "all SKUs known")
    gov.record_checkpoint(con, CYCLE, "consensus_demand_is_sound", False, "SKU A 2026-12 missing")
    gov.record_checkpoint(con, CYCLE, "consensus_demand_is_sound", True, "complete")  # a rerun replaces the row
    gov.record_checkpoint(con, CYCLE, "overrides_have_reasons", False, "1 override without a reason", blocking=False)
    summary = kpis.executive_summary(CYCLE, _supply(), _capacity(), _financial())
    write(con, "executive_summary", summary, CYCLE)
    lines = cycle_status.status_report(con, CYCLE)
    text = "\n".join(lines)
    assert "portfolio_is_sound: passed" in text and "consensus_demand_is_sound: passed" in text and "FAILED" not in text
    assert "overrides_have_reasons: WARNING" in text  # shown, but the cycle does not wait for it
    assert "supply review: supply_plan 4, capacity_plan 4" in text
    assert "financial review: financial_plan 2" in text
    assert "approval: no approval yet" in text
    assert lines[-1] == "waiting for an executive to approve scenario one of baseline, overtime (sop approve)"
    gov.record_decision(con, CYCLE, "baseline", "Ana CEO", "")
    assert cycle_status.status_report(con, CYCLE)[-1].startswith("approved; waiting for the plan of record to be published")
    gov.record_checkpoint(con, CYCLE, "portfolio_is_sound", False, "SKU Z not in the product master")
    assert cycle_status.status_report(con, CYCLE)[-1].startswith("waiting for planners: checkpoint(s) portfolio_is_sound failed")


def test_review_pack_lists_an_exception_shared_by_every_scenario_once():
    import datetime as dt

    import polars as pl

    from sop_pipeline.reporting.pack import _distinct_exceptions

    row = {"kind": "budget_gap", "subject": "Garden", "month": dt.date(2027, 5, 1), "period_label": "2027-05", "money": 9.0e4}
    excs = pl.DataFrame(
        [
            {"scenario": "upside", **row},
            {"scenario": "baseline", **row},
            {"scenario": "outage", **row, "kind": "shortfall", "subject": "VLC-L01", "money": 5.0e4},
        ]
    )
    distinct = _distinct_exceptions(excs)
    assert distinct.select("scenario", "kind").rows() == [("baseline", "budget_gap"), ("outage", "shortfall")]


def test_a_layer_that_worsened_the_items_it_touched_is_listed_with_the_revenue_of_its_extra_error():
    from sop_pipeline.demand.exceptions import layer_fva_exceptions

    # A: the input took a right forecast (100) to 150; B: it took 80 to the actual 100. On what it
    # touched: WAPE 10 % before (20 / 200), 25 % after (50 / 200): -15 points; extra error
    # 50 - 20 = 30 units x price 10 = 300. The other owner's layer improved its item.
    points = pl.DataFrame(
        {
            "forecast_cycle": "2026-09",
            "sku": ["A", "B", "A"],
            "month": [dt.date(2026, 10, 1)] * 3,
            "layer": ["marketing", "marketing", "sales"],
            "owner": ["S. Brand", "S. Brand", "K. Sales"],
            "before": [100.0, 80.0, 60.0],
            "after": [150.0, 100.0, 90.0],
            "actual": [100.0, 100.0, 100.0],
        }
    )
    products = pl.DataFrame({"sku": ["A", "B"], "unit_price": [10.0, 10.0]})
    found = layer_fva_exceptions(points, products, max_loss_pts=2, min_money=100)
    assert found.select("exception_id", "owner", "money").rows() == [("layer_fva:marketing:S. Brand", "S. Brand", 300.0)]
    assert "WAPE 25.0% after it vs 10.0% before on 2 SKU-months" in found["description"][0]
    assert layer_fva_exceptions(points, products, max_loss_pts=16, min_money=100) is None
