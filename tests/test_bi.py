"""The bi views and the published BI copy: stable documented columns, and readers that never
see a half-written copy or a lock while the copy is republished."""

import datetime as dt
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import q, write

from sop_pipeline import bi
from sop_pipeline.registry.bi import bi_views
from sop_pipeline.warehouse import query

CYCLE = "2026-11"
PUBLISHES = 20
READERS = 2
READ_SECONDS = 15.0


def _supply(version: int) -> pl.DataFrame:
    """A supply plan whose size and numbers change with every version."""
    n = 40 + 7 * version
    return pl.DataFrame(
        {
            "cycle": CYCLE,
            "scenario": "baseline",
            "sku": [f"S{i:03d}" for i in range(n)],
            "family": "F1",
            "month": dt.date(2026, 11, 1),
            "demand": 10.0,
            "production": [float(version * 1000 + i) for i in range(n)],
            "ending_inventory": 1.0,
            "shortfall": 0.0,
            "safety_stock": 1.0,
        }
    )


def _write_version(path: Path, version: int) -> None:
    """Replace the cycle's supply plan and, in the same file, a marker that states its row count
    and production total: a consistent snapshot always has both agree."""
    supply = _supply(version)
    marker = pl.DataFrame(
        {"cycle": [CYCLE], "version": [version], "rows": [supply.height], "production_sum": [float(supply["production"].sum())]}
    )
    con = duckdb.connect(str(path))
    try:
        con.execute("begin transaction")
        con.execute("create schema if not exists planning")
        for table, frame in (("supply_plan", supply), ("publish_marker", marker)):
            con.register("incoming", frame.to_arrow())
            con.execute(f"create table if not exists planning.{table} as select * from incoming limit 0")
            con.execute(f"delete from planning.{table} where cycle = ?", [CYCLE])
            con.execute(f"insert into planning.{table} by name select * from incoming")
            con.unregister("incoming")
        con.execute("commit")
    finally:
        con.close()


def _reader(path: str, stop, queue) -> None:
    """Open the BI copy read-only in a loop, one snapshot per connection, and count failures
    and snapshots where the supply plan disagrees with its marker."""
    ok = failed = inconsistent = 0
    versions: set[int] = set()
    errors: list[str] = []
    deadline = time.monotonic() + READ_SECONDS
    announced = False
    while time.monotonic() < deadline and not stop.is_set():
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                row = con.execute(
                    "select (select count(*) from bi.supply_plan where cycle = m.cycle), "
                    "(select sum(production_units) from bi.supply_plan where cycle = m.cycle), m.rows, m.production_sum, m.version "
                    "from planning.publish_marker m where m.cycle = ?",
                    [CYCLE],
                ).fetchall()[0]
            finally:
                con.close()
            ok += 1
            versions.add(row[4])
            if (row[0], row[1]) != (row[2], row[3]):
                inconsistent += 1
                errors.append(f"inconsistent snapshot {row}")
        except Exception as exc:  # noqa: BLE001 - every failure counts: a lock error or a half-written file alike
            failed += 1
            errors.append(repr(exc))
        if not announced:
            queue.put("ready")
            announced = True
        time.sleep(0.03)  # two cores: leave the publisher some CPU
    queue.put({"ok": ok, "failed": failed, "inconsistent": inconsistent, "versions": sorted(versions), "errors": errors[:5]})


def test_readers_never_fail_and_always_see_a_consistent_copy_while_it_is_republished(tmp_path):
    source, target = tmp_path / "sop.duckdb", tmp_path / "bi" / "sop_bi.duckdb"
    _write_version(source, 0)
    bi.publish_bi_copy(source, target)
    ctx = mp.get_context("spawn")  # no fork of a process that has DuckDB threads
    stop, queue = ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(str(target), stop, queue)) for _ in range(READERS)]
    for process in readers:
        process.start()
    try:
        for _ in readers:
            assert queue.get(timeout=60) == "ready"
        for version in range(1, PUBLISHES + 1):
            _write_version(source, version)
            assert bi.publish_bi_copy(source, target) == target
        time.sleep(0.3)  # let readers meet the last copy too
    finally:
        stop.set()
        results = [queue.get(timeout=60) for _ in readers]
        for process in readers:
            process.join(timeout=30)
    assert all(r["failed"] == 0 for r in results), [r["errors"] for r in results]
    assert all(r["inconsistent"] == 0 for r in results), [r["errors"] for r in results]
    assert all(r["ok"] > 0 for r in results)
    seen = set().union(*(r["versions"] for r in results))
    assert len(seen) >= 2, f"readers should have met several published versions, saw {seen}"
    assert sorted(p.name for p in target.parent.iterdir()) == ["sop_bi.duckdb"], "no temporary file may be left behind"
    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("select version from planning.publish_marker").fetchall() == [(PUBLISHES,)]
    finally:
        con.close()


def test_publish_waits_for_a_writer_to_release_the_warehouse(tmp_path):
    source, target = tmp_path / "sop.duckdb", tmp_path / "sop_bi.duckdb"
    _write_version(source, 1)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(source)!r}); print('held', flush=True); time.sleep(1.0)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        bi.publish_bi_copy(source, target, wait_seconds=30)
        assert time.monotonic() - started > 0.3
    finally:
        holder.wait(timeout=30)
    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("select count(*) from bi.supply_plan").fetchall() == [(47,)]
    finally:
        con.close()


def test_every_bi_view_exists_with_the_documented_columns_even_without_its_planning_table(tmp_path):
    source = tmp_path / "sop.duckdb"
    con = duckdb.connect(str(source))
    consensus = pl.DataFrame(
        {
            "cycle": ["2026-10", "2026-11"],
            "sku": "A",
            "family": "F1",
            "month": [dt.date(2026, 10, 1), dt.date(2026, 11, 1)],
            "quantity": 5.0,
            "p10": 4.0,
            "p90": 6.0,
        }
    )
    for cycle in ("2026-10", "2026-11"):
        write(con, "consensus_demand", consensus.filter(pl.col("cycle") == cycle), cycle)
    # A capacity plan an older version wrote, without the shadow_price column: the view still
    # has it, as NULL.
    con.execute("create table planning.capacity_plan (cycle varchar, scenario varchar, resource varchar, month date, utilization double)")
    con.execute("insert into planning.capacity_plan values ('2026-11', 'baseline', 'R1', date '2026-11-01', 0.9)")
    con.close()
    target = bi.publish_bi_copy(source, tmp_path / "sop_bi.duckdb")
    con = duckdb.connect(str(target), read_only=True)
    try:
        views = {r[0] for r in con.execute("select view_name from duckdb_views() where schema_name = 'bi'").fetchall()}
        assert views == {v.name for v in bi_views()}
        for view in bi_views():
            assert query(con, f"select * from bi.{view.name} limit 0").columns == [c.name for c in view.columns], view.name
        comments = query(con, "select table_name, column_name, comment from duckdb_columns() where schema_name = 'bi'")
        assert comments.height > 0 and comments["comment"].null_count() == 0
        demand = query(con, "select cycle, is_current_cycle from bi.demand_plan order by cycle")
        assert demand.rows() == [("2026-10", False), ("2026-11", True)]
        capacity = query(con, "select * from bi.capacity_plan")
        assert capacity["shadow_price"].dtype == pl.Float64 and capacity["shadow_price"].is_null().all()
        assert capacity["utilization"].to_list() == [0.9]
        empty = query(con, "select * from bi.financial_plan")
        assert empty.height == 0 and empty.schema["month"] == pl.Date and empty.schema["revenue"] == pl.Float64
    finally:
        con.close()


def test_the_bi_copy_is_never_the_working_warehouse_and_defaults_next_to_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SOP_BI_WAREHOUSE", raising=False)
    assert bi.default_bi_path(tmp_path / "wh" / "sop.duckdb") == tmp_path / "wh" / "sop_bi.duckdb"
    monkeypatch.setenv("SOP_BI_WAREHOUSE", str(tmp_path / "elsewhere.duckdb"))
    assert bi.default_bi_path(tmp_path / "wh" / "sop.duckdb") == tmp_path / "elsewhere.duckdb"
    _write_version(tmp_path / "sop.duckdb", 1)
    with pytest.raises(ValueError, match="different file"):
        bi.publish_bi_copy(tmp_path / "sop.duckdb", tmp_path / "sop.duckdb")


# --- the BI contract on a real cycle, read as an analyst reads it ------------------------------


@pytest.fixture(scope="module")
def approved_bi(tmp_path_factory, cycle_warehouse, demo_dir):
    """The BI copy after cycle 2026-11 was run and its baseline approved (the plan of record)."""
    import shutil

    from orchestration.cli import main as sop

    warehouse = tmp_path_factory.mktemp("approved") / "sop.duckdb"
    shutil.copy(cycle_warehouse, warehouse)
    paths = ["--data", str(demo_dir), "--warehouse", str(warehouse)]
    assert sop(["approve", "--cycle", CYCLE, "--scenario", "baseline", "--by", "Dana (CEO)"] + paths) == 0
    return warehouse, bi.default_bi_path(warehouse)


def test_every_view_has_one_grain_and_every_column_a_comment(approved_bi):
    _, copy = approved_bi
    con = duckdb.connect(str(copy), read_only=True)
    try:
        for view in bi_views():
            rows, keys = con.execute(f"select count(*), count(distinct ({', '.join(view.grain)})) from bi.{view.name}").fetchall()[0]
            assert rows == keys, f"bi.{view.name} is not unique on {view.grain}"
            # what only earlier cycles, earlier decisions (test_decisions.py reads bi.decision_followup)
            # or material gaps fill may be empty on one small cycle
            assert rows > 0 or view.name in (
                "decision_followup",
                "forecast_accuracy",
                "forecast_accuracy_company",
                "bridge",
                "bridge_company",
                "reconciliation",
            ), view.name
        uncommented = query(
            con, "select table_name, column_name from duckdb_columns() where schema_name = 'bi' and (comment is null or comment = '')"
        )
        assert uncommented.height == 0, uncommented
        # no company-total or quarter rows beside family-month rows: a naive sum is the total
        gap = query(con, "select * from bi.budget_gap where is_current_cycle")
        assert "ALL" not in gap["family"].to_list() and gap["month"].null_count() == 0
        money = query(
            con, "select sum(plan) as plan from bi.budget_gap where is_current_cycle and scenario = 'baseline' and measure = 'revenue'"
        )
        planned = query(con, "select sum(revenue) as revenue from bi.financial_plan where is_current_cycle and scenario = 'baseline'")
        budgeted_months = query(con, "select count(distinct month) as n from bi.budget_gap where is_current_cycle")["n"][0]
        assert budgeted_months > 0 and money["plan"][0] <= planned["revenue"][0] + 1e-6
        # every share is a ratio: no percent column survives in the contract
        percent = [(v.name, c.name) for v in bi_views() for c in v.columns if c.unit == "percent" or c.name.endswith("_pct")]
        assert percent == []
    finally:
        con.close()


def test_shipped_units_are_what_the_plan_delivers(approved_bi):
    """Under backorders a month ships its demand plus last month's backlog minus this month's:
    the plan of record's shipped units, worked out from the SKU supply plan by hand."""
    warehouse, copy = approved_bi
    supply = q(
        warehouse,
        f"select family, sku, month, demand, shortfall from planning.plan_of_record_supply where cycle = '{CYCLE}' order by sku, month",
    )
    shipped: dict[tuple, float] = {}
    backlog: dict[str, float] = {}
    for row in supply.iter_rows(named=True):
        before = backlog.get(row["sku"], 0.0)
        key = (row["family"], row["month"])
        shipped[key] = shipped.get(key, 0.0) + row["demand"] + before - row["shortfall"]
        backlog[row["sku"]] = row["shortfall"]
    view = q(copy, f"select family, month, shipped_units from bi.plan_of_record where cycle = '{CYCLE}'")
    assert view.height == len(shipped)
    for row in view.iter_rows(named=True):
        assert row["shipped_units"] == pytest.approx(shipped[(row["family"], row["month"])], abs=1e-3)


def _readme_queries() -> list[str]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Connecting a BI client") :]
    blocks = section.split("```sql\n")[1:]
    return [b.split("```")[0].strip() for b in blocks][:3]


def _duckdb_cli(copy: Path, sql: str) -> pl.DataFrame:
    """Run `sql` with the DuckDB command line, as the README tells an analyst to."""
    import io

    cli = Path(sys.executable).parent / "duckdb"
    out = subprocess.run([str(cli), "-readonly", "-csv", str(copy), "-c", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Error" not in out.stderr, out.stderr
    return pl.read_csv(io.StringIO(out.stdout))


def test_the_documented_queries_return_the_plan_of_record_figures(approved_bi):
    warehouse, copy = approved_bi
    revenue_by_family, quarters, capacity = _readme_queries()
    record = q(warehouse, f"select * from planning.plan_of_record_financial where cycle = '{CYCLE}'")
    first = record["month"].min()
    horizon = record.filter(pl.col("month") < pl.lit(first).dt.offset_by("12mo"))

    families = _duckdb_cli(copy, revenue_by_family)
    expected = horizon.group_by("family").agg(pl.col("revenue").sum(), pl.col("gross_margin").sum())
    assert sorted(families["family"]) == sorted(expected["family"])
    for row in expected.iter_rows(named=True):
        got = families.filter(pl.col("family") == row["family"])
        assert got["revenue"][0] == pytest.approx(row["revenue"], abs=1)
        assert got["gross_margin"][0] == pytest.approx(row["gross_margin"], abs=1)
        assert got["gross_margin_ratio"][0] == pytest.approx(row["gross_margin"] / row["revenue"], abs=1e-3)

    # fiscal years start in January (models/calendar.yaml) and are named by the year they end in
    by_quarter = _duckdb_cli(copy, quarters)
    record_quarters = record.with_columns(
        quarter="FY" + pl.col("month").dt.year().cast(pl.String) + "-Q" + pl.col("month").dt.quarter().cast(pl.String)
    )
    planned_only = by_quarter.filter(pl.col("actual_months") == 0)
    assert planned_only.height > 0
    for row in planned_only.iter_rows(named=True):
        months = record_quarters.filter((pl.col("family") == row["family"]) & (pl.col("quarter") == row["quarter"]))
        assert months.height > 0
        assert row["plan_revenue"] == pytest.approx(months["revenue"].sum(), abs=1)

    loaded = _duckdb_cli(copy, capacity)
    plan = q(warehouse, f"select resource, month, load_hours, capacity_hours from planning.plan_of_record_capacity where cycle = '{CYCLE}'")
    busy = plan.filter(pl.col("load_hours") > 0.9 * pl.col("capacity_hours")).sort("load_hours", descending=True)
    assert loaded.height == min(10, busy.height)
    assert set(loaded["resource"]) <= set(busy["resource"])
