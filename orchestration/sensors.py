"""Approval and publishing: the approval job a planner launches from the UI, the sensor that
publishes the plan of record once an approval matches the current plan version, and the
sensor that republishes the BI copy after every successful run."""

import json
from pathlib import Path

import dagster as dg
import duckdb
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from pydantic import Field

from orchestration.graph import step_graph
from orchestration.ingestion import file_observations
from orchestration.io import ORIGIN_TAG, run_alive
from orchestration.partitions import check_cycle
from orchestration.resources import DataFolderResource, WarehouseResource
from sop_pipeline import bi, runlock
from sop_pipeline.executive.governance import approval_status, plan_of_record_version, record_decision
from sop_pipeline.periods import cycle_label
from sop_pipeline.warehouse import WarehouseError, query, table_exists


class ApprovalConfig(dg.Config):
    cycle: str = Field(description="The cycle approved, as YYYY-MM (e.g. 2026-11) or as its partition, 2026-11-01.")
    scenario: str = Field(default="baseline", description="The scenario approved: baseline or one of the cycle's risk scenarios.")
    by: str = Field(description="Who approves, as the decision log should name them (e.g. 'Dana Whitfield (CEO)').")
    note: str = Field(default="", description="The meeting's note on the decision.")


@dg.op(description="Record an executive's approval of a cycle's scenario, tied to the current plan version.")
def approve_plan(context: dg.OpExecutionContext, config: ApprovalConfig, warehouse: WarehouseResource) -> None:
    try:
        cycle = check_cycle(config.cycle)
        runlock.claim(warehouse.path, context.run_id, cycle, "dagster", alive=run_alive(context.instance))
    except (ValueError, runlock.WarehouseBusy) as exc:
        raise dg.Failure(description=f"approval refused: {exc}", allow_retries=False) from None
    try:
        if not Path(warehouse.path).exists():
            raise ValueError(f"no warehouse at {warehouse.path}: run the cycle first")
        with warehouse.connect() as con:
            decision = record_decision(con, cycle, config.scenario, config.by, config.note, graph=step_graph())
    except ValueError as exc:
        raise dg.Failure(description=f"approval refused: {exc}", allow_retries=False) from None
    finally:
        runlock.release(warehouse.path, context.run_id)
    context.log.info(f"approved {cycle} / {config.scenario} by {config.by}, plan version {decision['plan_version']}")


@dg.job(description="Approve a cycle's plan from the UI: fill in cycle, scenario, by and note in the run config.")
def approve_plan_job():
    approve_plan()


def pending_publications(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple[str, str]], list[str]]:
    """(cycle, version) pairs whose latest approval matches the current plan but whose plan of
    record is not that version yet, and the reasons the other approved cycles wait."""
    if not table_exists(con, "planning", "decisions"):
        return [], ["no approval recorded yet"]
    ready, waiting = [], []
    for cycle in query(con, "select distinct cycle from planning.decisions order by cycle")["cycle"].to_list():
        status = approval_status(con, cycle, step_graph())
        if not status["matches"]:
            waiting.append(f"{cycle}: {status['reason']}")
        elif plan_of_record_version(con, cycle) != status["current_version"]:
            ready.append((cycle, status["current_version"]))
    return ready, waiting


def approval_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Publishes a cycle's plan of record once an executive's approval matches its current plan version; "
        "says why when an approval is stale.",
    )
    def approval_matches_plan(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        if not Path(warehouse.path).exists():
            return dg.SkipReason("no warehouse yet")
        holder = runlock.current(warehouse.path, alive=run_alive(context.instance))
        if holder is not None:
            return dg.SkipReason(f"waiting: {holder.describe()}")
        try:
            with warehouse.connect(read_only=True, wait_seconds=10) as con:
                ready, waiting = pending_publications(con)
        except (duckdb.IOException, WarehouseError) as exc:
            return dg.SkipReason(f"warehouse busy, will retry: {exc}")
        if not ready:
            return dg.SkipReason("nothing to publish. " + " | ".join(waiting))
        return [dg.RunRequest(run_key=f"{cycle}:{version}", partition_key=f"{cycle_label(cycle)}-01") for cycle, version in ready]

    return approval_matches_plan


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Republishes the BI copy of the warehouse, atomically, after every successful run that changed it: the "
    "monthly cycle, a step rerun from the UI, an approval, a plan of record.",
)
def bi_publish_sensor(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    run = context.dagster_run
    changed = context.instance.get_records_for_run(run_id=run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1).records
    if run.job_name != "approve_plan_job" and not changed:
        return dg.SkipReason(f"run {run.run_id[:8]} ({run.job_name}) materialized nothing")
    if run.tags.get(ORIGIN_TAG) == "sop":
        return dg.SkipReason(f"run {run.run_id[:8]} came from `sop`, which publishes the BI copy itself")
    target = bi.publish_bi_copy(warehouse.path)
    context.log.info(f"BI copy published to {target}")


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the input folder: when a company file changes, records its new content as the file's data "
    "version, so the UI shows the ingestion and every step after it as unsynced until they are rerun.",
)
def company_files_changed(context: dg.SensorEvaluationContext, data_folder: DataFolderResource):
    observations = file_observations(data_folder.path)
    versions = {o.asset_key.to_user_string(): o.tags[DATA_VERSION_TAG] for o in observations}
    seen = json.loads(context.cursor) if context.cursor else {}
    changed = [o for o in observations if seen.get(o.asset_key.to_user_string()) != versions[o.asset_key.to_user_string()]]
    if not changed:
        return dg.SkipReason("no input file changed")
    return dg.SensorResult(asset_events=changed, cursor=json.dumps(versions))
