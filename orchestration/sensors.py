"""Approval and publishing: the approval job a planner launches from the UI, the sensor that
publishes the plan of record once an approval matches the current plan version, and the
sensor that republishes the BI copy after every successful run."""

from pathlib import Path

import dagster as dg
import duckdb

from orchestration.resources import WarehouseResource
from sop_pipeline import bi
from sop_pipeline.executive.governance import approval_status, plan_of_record_version, record_decision
from sop_pipeline.periods import cycle_label
from sop_pipeline.warehouse import query, table_exists


class ApprovalConfig(dg.Config):
    cycle: str
    scenario: str = "baseline"
    by: str
    note: str = ""


@dg.op(description="Record an executive's approval of a cycle's scenario, tied to the current plan version.")
def approve_plan(context: dg.OpExecutionContext, config: ApprovalConfig, warehouse: WarehouseResource) -> None:
    with warehouse.connect() as con:
        decision = record_decision(con, config.cycle, config.scenario, config.by, config.note)
    context.log.info(f"approved {config.cycle} / {config.scenario} by {config.by}, plan version {decision['plan_version']}")


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
        status = approval_status(con, cycle)
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
        try:
            with warehouse.connect(read_only=True, wait_seconds=10) as con:
                ready, waiting = pending_publications(con)
        except duckdb.IOException as exc:
            return dg.SkipReason(f"warehouse busy, will retry: {exc}")
        if not ready:
            return dg.SkipReason("nothing to publish. " + " | ".join(waiting))
        return [dg.RunRequest(run_key=f"{cycle}:{version}", partition_key=f"{cycle_label(cycle)}-01") for cycle, version in ready]

    return approval_matches_plan


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Republishes the BI copy of the warehouse after every successful run, atomically.",
)
def bi_publish_sensor(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    if context.dagster_run.job_name not in ("monthly_cycle", "publish_plan_of_record", "approve_plan_job"):
        return dg.SkipReason(f"{context.dagster_run.job_name} does not change the plan")
    target = bi.publish_bi_copy(warehouse.path)
    context.log.info(f"BI copy published to {target}")
