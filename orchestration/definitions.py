"""The S&OP cycle at a glance: review steps in order, each with its assets and its checkpoint,
the monthly schedule, the approval and BI sensors, the resources.

Each review step is an asset group whose checkpoint is a blocking asset check: a failed
checkpoint stops everything downstream of it in that run. The plan of record is not part of
the monthly run: only an executive's approval of the exact plan version publishes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration import demand_review, executive_review, financial_review, ingestion, product_review, sensors, supply_review
from orchestration.dbt_project import dbt_executable, dbt_project
from orchestration.resources import default_resources

# (group, assets, checkpoints) in review order.
REVIEW_STEPS = [
    ("ingestion", [ingestion.company_files, ingestion.input_files, ingestion.dbt_models], []),
    ("product_review", [product_review.product_portfolio, product_review.product_segmentation], [product_review.portfolio_is_sound]),
    (
        "demand_review",
        [demand_review.statistical_forecast, demand_review.consensus_demand, demand_review.forecast_accuracy],
        [demand_review.consensus_demand_is_sound, demand_review.overrides_have_reasons],
    ),
    ("supply_review", [supply_review.supply_plan], [supply_review.supply_plan_is_feasible]),
    ("financial_review", [financial_review.financial_plan, financial_review.plan_bridge], [financial_review.financial_plan_ties_out]),
    (
        "executive_review",
        [executive_review.executive_summary, executive_review.review_pack, executive_review.plan_of_record],
        [executive_review.plan_of_record_is_approved],
    ),
]
ASSETS = [asset for _, assets, _ in REVIEW_STEPS for asset in assets]
CHECKS = [check for _, _, checks in REVIEW_STEPS for check in checks]

monthly_cycle_job = dg.define_asset_job(
    "monthly_cycle",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(executive_review.PLAN_OF_RECORD),
    description="The whole monthly S&OP cycle for one partition (cycle month), up to the review pack.",
)

publish_plan_of_record_job = dg.define_asset_job(
    "publish_plan_of_record",
    selection=dg.AssetSelection.assets(executive_review.PLAN_OF_RECORD),
    description="Publish the approved plan as the plan of record (launched by the approval sensor).",
)

monthly_cycle_schedule = dg.build_schedule_from_partitioned_job(
    monthly_cycle_job,
    hour_of_day=6,
    day_of_month=2,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Plans the new cycle on the 2nd of each month, once last month's actuals are in.",
)


def build_definitions(
    resources: Mapping[str, Any] | None = None, loggers: Mapping[str, dg.LoggerDefinition] | None = None
) -> dg.Definitions:
    """The code location; `sop run` and tests pass their own resources (paths) and loggers."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[monthly_cycle_job, publish_plan_of_record_job, sensors.approve_plan_job, sensors.decide_job],
        schedules=[monthly_cycle_schedule],
        sensors=[sensors.approval_sensor(publish_plan_of_record_job), sensors.bi_publish_sensor, sensors.company_files_changed],
        resources={
            **default_resources(),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
            **(resources or {}),
        },
        loggers=loggers,
    )


defs = build_definitions()


def load_monthly_cycle_job() -> dg.JobDefinition:
    """The cycle job, importable by name so that `dagster.reconstructable` can rebuild it in the
    multiprocess executor's child processes (paths then come from SOP_DATA_DIR / SOP_WAREHOUSE)."""
    return build_definitions().resolve_job_def("monthly_cycle")
