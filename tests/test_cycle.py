"""The real monthly cycle on a small demo company: marts, product review, reruns, checkpoint."""

import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import CYCLE, EARLIER_CYCLE, SMALL_SKUS, assert_same_tables, q, warehouse_tables


def test_sales_mart_has_one_zero_filled_row_per_sku_month_until_the_month_before_the_cycle(cycle_warehouse, demo_dir):
    sales = q(cycle_warehouse, "select * from marts.fct_sales_monthly")
    assert sales.select(pl.struct("sku", "month").is_unique().all()).item()
    assert str(sales["month"].max()) == "2026-10-01"
    raw = pl.read_csv(demo_dir / "sales_history.csv", infer_schema=False).with_columns(pl.col("quantity").cast(pl.Float64))
    # every SKU runs without gaps from its first sale to 2026-10, months without a sales row are zeros
    spans = sales.group_by("sku").agg(pl.col("month").min().alias("first"), pl.len().alias("n"))
    expected_len = spans.with_columns(((2026 * 12 + 10) - (pl.col("first").dt.year() * 12 + pl.col("first").dt.month()) + 1).alias("e"))
    assert (expected_len["n"] == expected_len["e"]).all()
    sold = raw.filter(pl.col("month") < "2026-11")["quantity"].sum()
    assert sales["quantity"].sum() == pytest.approx(sold)
    assert (sales["quantity"] == 0).sum() > 0


def test_marts_hold_every_entity_of_the_input_contract(cycle_warehouse):
    counts = {
        table: q(cycle_warehouse, f"select count(*) as n from marts.{table}")["n"][0]
        for table in [
            "dim_product",
            "dim_month",
            "dim_resource",
            "fct_routing",
            "dim_material",
            "fct_bom",
            "fct_inventory",
            "fct_open_supply",
            "fct_budget",
            "fct_demand_inputs",
            "fct_indicators",
        ]
    }
    assert all(n > 0 for n in counts.values()), counts
    assert counts["dim_product"] == SMALL_SKUS
    months = q(cycle_warehouse, "select cycle, period, count(*) as n from marts.dim_month group by all")
    assert set(months["cycle"]) == {CYCLE}
    assert months.filter(pl.col("period") == "horizon")["n"][0] == 24


def test_product_portfolio_covers_every_sku_in_scope_for_every_horizon_month_of_both_cycles(cycle_warehouse):
    portfolio = q(cycle_warehouse, "select * from planning.product_portfolio")
    per_cycle = portfolio.group_by("cycle").agg(pl.col("sku").n_unique().alias("skus"), pl.len().alias("rows"))
    assert set(per_cycle["cycle"]) == {EARLIER_CYCLE, CYCLE}
    assert (per_cycle["rows"] == per_cycle["skus"] * 24).all()
    now = portfolio.filter(pl.col("cycle") == CYCLE)
    assert str(now["month"].min()) == "2026-11-01" and str(now["month"].max()) == "2028-10-01"
    statuses = set(now["lifecycle_status"])
    assert {"active", "pre_launch"} <= statuses and ("phase_out" in statuses or "discontinued" in statuses)
    launches = now.filter(pl.col("lifecycle_status") == "pre_launch")
    assert (launches["ramp_factor"] == 0).all()


def test_segmentation_classes_every_sku_and_flags_slow_movers(cycle_warehouse):
    seg = q(cycle_warehouse, f"select * from planning.product_segmentation where cycle = '{CYCLE}'")
    assert seg.height == SMALL_SKUS
    assert set(seg["abc_class"]) == {"A", "B", "C"}
    assert seg["intermittent"].sum() >= 1


def test_rerunning_a_cycle_replaces_its_rows_and_leaves_other_cycles_untouched(warehouse_copy, demo_dir):
    from conftest import run_ok

    def planning_rows(cycle):
        return {
            t: q(warehouse_copy, f"select * from planning.{t} where cycle = '{cycle}' order by all")
            for t in ("product_portfolio", "product_segmentation")
        }

    earlier, current = planning_rows(EARLIER_CYCLE), planning_rows(CYCLE)
    run_ok(CYCLE, demo_dir, warehouse_copy)
    for table, frame in planning_rows(CYCLE).items():
        assert frame.equals(current[table]), table
    for table, frame in planning_rows(EARLIER_CYCLE).items():
        assert frame.equals(earlier[table]), table


def test_new_product_without_basis_is_refused_naming_the_file_row_and_sku(data_copy, warehouse_copy):
    from orchestration.runner import run_cycle

    products = pl.read_csv(data_copy / "products.csv", infer_schema=False)
    # a successor's basis is its predecessor's demand: take a new product no phase-out names
    successors = products["successor_sku"].drop_nulls().implode()
    npi = products.filter((pl.col("status") == "npi") & ~pl.col("sku").is_in(successors))["sku"][0]
    products = products.with_columns(
        pl.when(pl.col("sku") == npi).then(pl.lit(npi)).otherwise(pl.col("like_sku")).alias("like_sku"),
        pl.when(pl.col("sku") == npi).then(pl.lit(None)).otherwise(pl.col("launch_volume")).alias("launch_volume"),
    )
    products.write_csv(data_copy / "products.csv")
    outcome = run_cycle(CYCLE, str(data_copy), str(warehouse_copy), printer=lambda _: None)
    assert not outcome.success and outcome.stopped_at == ["input_files"]
    row = products["sku"].to_list().index(npi) + 1
    explanation = outcome.explanation()
    assert f"products.csv, column 'like_sku', row {row}" in explanation and npi in explanation, explanation


def test_sop_run_exits_non_zero_with_the_reason_on_bad_input(tmp_path, data_copy):
    (data_copy / "sales_history.csv").write_bytes(b"month,sku,quantity\n2026-01,X,1\n")
    warehouse = tmp_path / "w" / "sop.duckdb"
    sop = Path(sys.executable).parent / "sop"
    done = subprocess.run(
        [str(sop), "run", "--cycle", CYCLE, "--data", str(data_copy), "--warehouse", str(warehouse)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "sales_history.csv" in done.stderr and "unknown sku" in done.stderr and "row 1" in done.stderr
    assert not warehouse.exists()


def test_rerunning_a_cycle_gives_the_same_content_everywhere(warehouse_copy, demo_dir):
    """Same inputs, same warehouse: same rows in every table, numbers equal up to float
    summation order (parallel aggregation may add in another order: 1e-9 relative)."""
    from conftest import run_ok

    from sop_pipeline.executive import governance

    def version():
        con = duckdb.connect(str(warehouse_copy), read_only=True)
        try:
            return governance.plan_version(con, CYCLE)
        finally:
            con.close()

    before, version_before = warehouse_tables(warehouse_copy), version()
    run_ok(CYCLE, demo_dir, warehouse_copy)
    assert_same_tables(warehouse_tables(warehouse_copy), before)
    # An unchanged rerun keeps the plan version, so an approval stays valid.
    assert version() == version_before
