"""The Dagster code location: it loads, validates, and runs a partition the way the UI does."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from conftest import CYCLE

REPO = Path(__file__).resolve().parent.parent


def test_definitions_show_review_groups_monthly_partitions_schedule_and_checks():
    from orchestration.definitions import REVIEW_STEPS, defs

    graph = defs.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == set(REVIEW_STEPS)
    job = defs.resolve_job_def("monthly_cycle")
    assert isinstance(job.partitions_def, dg.MonthlyPartitionsDefinition)
    assert "2026-11-01" in job.partitions_def.get_partition_keys()
    assert [s.name for s in defs.schedules] == ["monthly_cycle_schedule"]
    checks = graph.asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey(["planning", "product_portfolio"]), "portfolio_is_sound") in checks
    dbt_checks = [c for c in checks if c.asset_key.path[0] in ("staging", "marts")]
    assert len(dbt_checks) > 50  # dbt tests surface as asset checks on the right models
    assert any(c.asset_key == dg.AssetKey(["marts", "fct_sales_monthly"]) for c in dbt_checks)


def test_dagster_definitions_validate_passes_through_the_workspace():
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_multiprocess_executor_runs_a_whole_partition_without_lock_errors(tmp_path, demo_dir, monkeypatch):
    """The UI's run path: the default multiprocess executor, every step in its own process."""

    warehouse = tmp_path / "mp" / "sop.duckdb"
    monkeypatch.setenv("SOP_DATA_DIR", str(demo_dir))
    monkeypatch.setenv("SOP_WAREHOUSE", str(warehouse))
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.build_reconstructable_job("orchestration.definitions", "load_monthly_cycle_job"), instance=instance, tags={"dagster/partition": "2026-11-01"})
        assert result.success
        steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert {"input_files", "sop_dbt_models", "planning__product_portfolio", "planning__product_segmentation"} <= steps
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select count(distinct sku) from planning.product_portfolio where cycle = '2026-11'").fetchall()[0][0] > 0
    con.close()


def test_a_planner_can_rerun_one_step_of_a_cycle(warehouse_copy, demo_dir):
    from orchestration.assets.product_review import product_segmentation
    from orchestration.resources import PlanningModelsResource, WarehouseResource

    con = duckdb.connect(str(warehouse_copy))
    con.execute("delete from planning.product_segmentation where cycle = ?", [CYCLE])
    con.close()
    result = dg.materialize(
        [product_segmentation],
        partition_key=f"{CYCLE}-01",
        resources={"warehouse": WarehouseResource(path=str(warehouse_copy)), "planning_models": PlanningModelsResource()},
    )
    assert result.success
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    assert con.execute("select count(*) from planning.product_segmentation where cycle = ?", [CYCLE]).fetchall()[0][0] > 0
    con.close()
    assert os.path.exists(warehouse_copy)
