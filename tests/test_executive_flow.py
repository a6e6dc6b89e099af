"""Approval, plan of record, status, review pack and the BI copy, on real pipeline runs."""

import multiprocessing as mp
import re
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from conftest import CYCLE, q, run_ok

from orchestration.cli import main as sop
from sop_pipeline.bi import default_bi_path, publish_bi_copy
from sop_pipeline.executive import governance
from sop_pipeline.executive.status import status_report


def _paths(data: Path, warehouse: Path) -> list[str]:
    return ["--data", str(data), "--warehouse", str(warehouse)]


def test_approval_publishes_the_plan_of_record_into_the_bi_copy(warehouse_copy, demo_dir):
    assert (
        sop(
            ["approve", "--cycle", CYCLE, "--scenario", "baseline", "--by", "Dana (CEO)", "--note", "ok"] + _paths(demo_dir, warehouse_copy)
        )
        == 0
    )
    record = q(warehouse_copy, f"select * from planning.plan_of_record_supply where cycle = '{CYCLE}'")
    assert record.height > 0 and set(record["scenario"]) == {"baseline"} and set(record["approved_by"]) == {"Dana (CEO)"}
    bi = q(default_bi_path(warehouse_copy), f"select count(*) as n from bi.plan_of_record where cycle = '{CYCLE}'")
    assert bi["n"][0] > 0
    decisions = q(warehouse_copy, "select * from planning.decisions")
    assert decisions.height == 1 and decisions["plan_version"][0] == record["plan_version"][0]


def test_a_changed_plan_makes_the_approval_stale_and_nothing_is_published(warehouse_copy, data_copy, capsys):
    from orchestration.runner import run_cycle

    assert sop(["approve", "--cycle", CYCLE, "--by", "Dana (CEO)"] + _paths(data_copy, warehouse_copy)) == 0
    published = q(warehouse_copy, f"select distinct plan_version from planning.plan_of_record_supply where cycle = '{CYCLE}'")[
        "plan_version"
    ][0]
    # New inputs: sales raises a big SKU's demand; the rerun changes the plan.
    inputs = pl.read_csv(data_copy / "demand_inputs.csv", infer_schema=False)
    sku = q(warehouse_copy, f"select sku from planning.consensus_demand where cycle = '{CYCLE}' order by quantity desc limit 1")["sku"][0]
    extra = inputs.head(1).with_columns(
        pl.lit("sku").alias("level"),
        pl.lit(sku).alias("key"),
        pl.lit("2027-03").alias("month"),
        pl.lit("add").alias("adjustment_type"),
        pl.lit("500").alias("value"),
        pl.lit("sales").alias("layer"),
    )
    pl.concat([inputs, extra]).unique(subset=["layer", "level", "key", "month"], keep="last").write_csv(data_copy / "demand_inputs.csv")
    run_ok(CYCLE, data_copy, warehouse_copy)
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    status = governance.approval_status(con, CYCLE)
    con.close()
    assert not status["matches"] and "changed after approval" in status["reason"]
    lines: list[str] = []
    outcome = run_cycle(CYCLE, str(data_copy), str(warehouse_copy), job_name="publish_plan_of_record", printer=lines.append)
    # Nothing to publish is not a failure (a "materialize all" before the meeting is green), but nothing is published.
    assert outcome.success and "planning/plan_of_record" not in outcome.materialized
    assert any("skip checkpoint plan_of_record_is_approved (nothing was published to check)" in line for line in lines), lines
    still = q(warehouse_copy, f"select distinct plan_version from planning.plan_of_record_supply where cycle = '{CYCLE}'")["plan_version"]
    assert still.to_list() == [published]  # the earlier plan of record stays exactly as it was
    assert sop(["status", "--cycle", CYCLE] + _paths(data_copy, warehouse_copy)) == 0
    assert "approve" in capsys.readouterr().out.lower()


def test_approval_sensor_requests_a_run_only_for_a_matching_approval(warehouse_copy):
    from orchestration.definitions import defs
    from orchestration.resources import WarehouseResource

    sensor = defs.resolve_sensor_def("approval_matches_plan")
    resources = {"warehouse": WarehouseResource(path=str(warehouse_copy))}
    with dg.instance_for_test() as instance:
        first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs))
        assert not first.run_requests and "no approval" in (first.skip_message or "")
        con = duckdb.connect(str(warehouse_copy))
        governance.record_decision(con, CYCLE, "baseline", "Dana (CEO)", "")
        con.close()
        second = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs))
        assert [r.partition_key for r in second.run_requests] == [f"{CYCLE}-01"]
        con = duckdb.connect(str(warehouse_copy))
        con.execute(
            (
                "update planning.supply_plan set production = production + 1 where cycle = "
                "? and sku = (select min(sku) from planning.supply_plan)"
            ),
            [CYCLE],
        )
        con.close()
        third = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs))
        assert not third.run_requests and "changed after approval" in third.skip_message


def test_approval_from_the_ui_is_a_job_with_run_config(warehouse_copy):
    from orchestration.definitions import defs
    from orchestration.resources import WarehouseResource

    job = defs.resolve_job_def("approve_plan_job")
    result = job.execute_in_process(
        run_config={"ops": {"approve_plan": {"config": {"cycle": CYCLE, "scenario": "baseline", "by": "Dana (CEO)", "note": "UI"}}}},
        resources={"warehouse": WarehouseResource(path=str(warehouse_copy))},
    )
    assert result.success
    assert q(warehouse_copy, "select decided_by, note from planning.decisions").rows() == [("Dana (CEO)", "UI")]


def test_status_lists_every_checkpoint_and_what_the_cycle_waits_for(warehouse_copy):
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    lines = "\n".join(status_report(con, CYCLE))
    con.close()
    for gate in ("portfolio_is_sound", "consensus_demand_is_sound", "supply_plan_is_feasible", "financial_plan_ties_out"):
        assert gate in lines
    assert "approve" in lines.lower()


def test_review_pack_has_a_page_per_review_step_and_the_charts(cycle_warehouse):
    folder = cycle_warehouse.parent / "charts" / CYCLE
    pdf = folder / f"review_pack_{CYCLE}.pdf"
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert pages >= 6  # title, product, demand, supply, financial, executive
    for chart in (
        "demand_top_families",
        "capacity_top_bottlenecks",
        "inventory_top_families",
        "financial_revenue_margin",
        "financial_bridge",
    ):
        assert (folder / f"{chart}.png").stat().st_size > 5_000, chart
    summary = q(cycle_warehouse, f"select * from planning.executive_summary where cycle = '{CYCLE}'")
    assert {"fill_rate", "revenue", "gross_margin", "inventory_value", "days_of_supply"} <= set(summary["kpi"])


def _reader(path: str, seconds: float, results) -> None:
    failures, reads, deadline = 0, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            con = duckdb.connect(path, read_only=True)
            con.execute("select count(*), sum(demand_units) from bi.demand_plan").fetchall()
            con.close()
            reads += 1
        except Exception:  # any failed query counts
            failures += 1
        time.sleep(0.01)
    results.put((reads, failures))


def test_bi_readers_never_fail_while_a_cycle_runs_and_republishes(warehouse_copy, demo_dir):
    target = publish_bi_copy(warehouse_copy)
    results = mp.get_context("spawn").Queue()
    readers = [mp.get_context("spawn").Process(target=_reader, args=(str(target), 40.0, results)) for _ in range(2)]
    for r in readers:
        r.start()
    try:
        run_ok(CYCLE, demo_dir, warehouse_copy)
        publish_bi_copy(warehouse_copy)
    finally:
        for r in readers:
            r.join(timeout=120)
    outcomes = [results.get(timeout=10) for _ in readers]
    assert all(reads > 10 for reads, _ in outcomes), outcomes
    assert sum(failures for _, failures in outcomes) == 0, outcomes


@pytest.mark.parametrize("view", ["demand_plan", "supply_plan", "capacity_plan", "financial_plan", "forecast_accuracy", "plan_of_record"])
def test_bi_views_exist_in_the_published_copy(cycle_warehouse, tmp_path, view):
    target = publish_bi_copy(cycle_warehouse, tmp_path / "sop_bi.duckdb")
    columns = q(target, f"select * from bi.{view} limit 0").columns
    assert "cycle" in columns and "is_current_cycle" in columns
