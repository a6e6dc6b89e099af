"""The Dagster code location: it loads, validates, shows the graph it is meant to, and runs a
partition the way the UI does."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
from conftest import CYCLE, assert_same_tables, warehouse_tables

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "definitions.txt"


def graph_snapshot(defs: dg.Definitions) -> str:
    """The asset graph as text: every Python asset (key, group, op, deps) and every checkpoint
    (asset, blocking). dbt's own models and tests are left out: they follow the dbt project."""
    graph = defs.resolve_asset_graph()
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if key.path[0] in ("staging", "marts"):
            continue
        deps = ", ".join(sorted(d.to_user_string() for d in node.parent_keys if d.path[0] not in ("staging",)))
        op = node.assets_def.node_def.name if node.is_materializable else "-"
        lines.append(f"asset {key.to_user_string()} group={node.group_name} op={op} deps=[{deps}]")
    for check in sorted(graph.asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name)):
        if check.asset_key.path[0] in ("staging", "marts"):
            continue
        spec = graph.get_check_spec(check)
        lines.append(f"check {check.asset_key.to_user_string()}:{check.name} blocking={spec.blocking}")
    return "\n".join(lines) + "\n"


def test_the_graph_is_the_reviewed_snapshot():
    """A refactor shows its effect on the graph here: regenerate the snapshot deliberately
    (`SOP_UPDATE_SNAPSHOT=1 pytest tests/test_definitions.py`) and review the diff."""
    from orchestration.definitions import defs

    current = graph_snapshot(defs)
    if os.environ.get("SOP_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text()


def test_definitions_show_review_groups_monthly_partitions_schedule_and_checks():
    from orchestration.definitions import REVIEW_STEPS, defs

    graph = defs.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {name for name, _, _ in REVIEW_STEPS}
    job = defs.resolve_job_def("monthly_cycle")
    assert isinstance(job.partitions_def, dg.MonthlyPartitionsDefinition)
    assert "2026-11-01" in job.partitions_def.get_partition_keys()
    assert [s.name for s in defs.schedules] == ["monthly_cycle_schedule"]
    checks = graph.asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey(["planning", "product_portfolio"]), "portfolio_is_sound") in checks
    # dbt's tests run inside the ingestion step (and stop it); the checks a planner sees in the
    # UI are the review steps' checkpoints, each described and evaluated per cycle
    assert [c for c in checks if c.asset_key.path[0] in ("staging", "marts")] == []
    for check in checks:
        spec = graph.get_check_spec(check)
        assert spec.description and spec.partitions_def == job.partitions_def, check


def test_every_planning_asset_links_to_the_code_that_computes_it():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        if key.path[0] not in ("planning", "reports"):
            continue
        refs = graph.get(key).metadata["dagster/code_references"].code_references
        assert refs and all(Path(r.file_path).exists() for r in refs), key
        assert any("/sop_pipeline/" in r.file_path for r in refs), key


def test_dagster_definitions_validate_passes_through_the_workspace():
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sop_pipeline" in done.stdout + done.stderr  # the code location is named as pyproject.toml says


def test_multiprocess_executor_gives_the_in_process_result(warehouse_copy, cycle_warehouse, demo_dir, monkeypatch):
    """The UI's run path, the default multiprocess executor with every step in its own process
    (two at a time), reruns cycle 2026-11 without lock errors and leaves every table as the
    in-process run left it, plan version included."""
    from sop_pipeline.executive import governance

    def version(path):
        con = duckdb.connect(str(path), read_only=True)
        try:
            return governance.plan_version(con, CYCLE)
        finally:
            con.close()

    monkeypatch.setenv("SOP_DATA_DIR", str(demo_dir))
    monkeypatch.setenv("SOP_WAREHOUSE", str(warehouse_copy))
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.build_reconstructable_job("orchestration.definitions", "load_monthly_cycle_job"),
            instance=instance,
            tags={"dagster/partition": "2026-11-01"},
            run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}},
        )
        assert result.success
        steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert {"input_files", "dbt_models", "product_portfolio", "product_segmentation", "supply_plan", "review_pack"} <= steps
    assert_same_tables(warehouse_tables(warehouse_copy), warehouse_tables(cycle_warehouse))
    assert version(warehouse_copy) == version(cycle_warehouse)


def test_a_planner_can_rerun_one_step_of_a_cycle(warehouse_copy, demo_dir):
    from orchestration.product_review import product_segmentation
    from orchestration.resources import PlanningModelsResource, WarehouseResource

    con = duckdb.connect(str(warehouse_copy))
    before = con.execute("select count(*), sum(revenue_12m) from planning.product_segmentation where cycle = ?", [CYCLE]).fetchall()
    con.execute("delete from planning.product_segmentation where cycle = ?", [CYCLE])
    con.close()
    result = dg.materialize(
        [product_segmentation],
        partition_key=f"{CYCLE}-01",
        resources={
            "warehouse": WarehouseResource(path=str(warehouse_copy)),
            "planning_models": PlanningModelsResource(path=str(REPO / "models")),
        },
    )
    assert result.success
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    after = con.execute("select count(*), sum(revenue_12m) from planning.product_segmentation where cycle = ?", [CYCLE]).fetchall()
    con.close()
    assert after == before and after[0][0] > 0  # the same rows come back
