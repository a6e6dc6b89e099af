"""Approval and publishing: the approval job a planner launches from the UI, the sensor that
publishes the plan of record once an approval matches the current plan version, and the
sensor that republishes the BI copy after every successful run."""

import json
from contextlib import contextmanager
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
from sop_pipeline.executive.decisions import close_decision, record_action
from sop_pipeline.executive.governance import approval_status, plan_of_record_version, record_decision
from sop_pipeline.periods import cycle_label
from sop_pipeline.warehouse import WarehouseError, query, table_exists


class ApprovalConfig(dg.Config):
    cycle: str = Field(description="The cycle approved, as YYYY-MM (e.g. 2026-11) or as its partition, 2026-11-01.")
    scenario: str = Field(default="baseline", description="The scenario approved: baseline or one of the cycle's risk scenarios.")
    by: str = Field(description="Who approves, as the decision log should name them (e.g. 'Dana Whitfield (CEO)').")
    note: str = Field(default="", description="The meeting's note on the decision.")


@contextmanager
def _meeting_record(context: dg.OpExecutionContext, warehouse: WarehouseResource, cycle: str, what: str):
    """Own the warehouse while a meeting's record is written (a run in progress would make an
    approval cover a plan that is neither the old nor the new one); a refusal fails the run
    with its reason, not a stack trace. Yields the checked cycle and a connection."""
    try:
        cycle = check_cycle(cycle)
        runlock.claim(warehouse.path, context.run_id, cycle, "dagster", alive=run_alive(context.instance))
    except (ValueError, runlock.WarehouseBusy) as exc:
        raise dg.Failure(description=f"{what} refused: {exc}", allow_retries=False) from None
    try:
        if not Path(warehouse.path).exists():
            raise ValueError(f"no warehouse at {warehouse.path}: run the cycle first")
        with warehouse.connect() as con:
            yield cycle, con
    except ValueError as exc:
        raise dg.Failure(description=f"{what} refused: {exc}", allow_retries=False) from None
    finally:
        runlock.release(warehouse.path, context.run_id)


@dg.op(description="Record an executive's approval of a cycle's scenario, tied to the current plan version.")
def approve_plan(context: dg.OpExecutionContext, config: ApprovalConfig, warehouse: WarehouseResource) -> None:
    with _meeting_record(context, warehouse, config.cycle, "approval") as (cycle, con):
        decision = record_decision(con, cycle, config.scenario, config.by, config.note, graph=step_graph())
    context.log.info(f"approved {cycle} / {config.scenario} by {config.by}, plan version {decision['plan_version']}")


@dg.job(description="Approve a cycle's plan from the UI: fill in cycle, scenario, by and note in the run config.")
def approve_plan_job():
    approve_plan()


class DecisionConfig(dg.Config):
    cycle: str = Field(description="The cycle whose meeting decides, as YYYY-MM (e.g. 2026-11).")
    by: str = Field(description="Who decides (e.g. 'Dana Whitfield (CEO)').")
    action: str = Field(default="", description="What will be done, or the risk accepted (empty when closing).")
    owner: str = Field(default="", description="Who carries it out.")
    due: str = Field(default="", description="The cycle by which it is done, YYYY-MM.")
    kind: str = Field(default="action", description="action or accepted_risk.")
    exception: str = Field(default="", description="The exception it answers (exception_id in planning.exceptions), if any.")
    close: str = Field(default="", description="Instead of a new decision: the decision_id to close (e.g. D2026-10-01).")
    note: str = Field(default="", description="The meeting's note.")


@dg.op(description="Record an action or accepted risk (with owner and due cycle), or close an earlier decision.")
def record_meeting_decision(context: dg.OpExecutionContext, config: DecisionConfig, warehouse: WarehouseResource) -> None:
    with _meeting_record(context, warehouse, config.cycle, "decision") as (cycle, con):
        if config.close:
            close_decision(con, cycle, config.close, config.by, config.note)
            said = f"closed {config.close} in {cycle}"
        else:
            row = record_action(
                con,
                cycle,
                config.action,
                config.owner,
                config.due,
                config.by,
                kind=config.kind,
                exception_id=config.exception or None,
                note=config.note,
            )
            said = f"recorded {row['decision_id']} ({row['decision']}): {row['action']}, owner {row['owner']}, due {row['due_cycle']}"
    context.log.info(said)


@dg.job(description="Record a meeting's decision from the UI: an action or accepted risk with owner and due cycle, or close one.")
def decide_job():
    record_meeting_decision()


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
    if run.job_name not in ("approve_plan_job", "decide_job") and not changed:
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
