"""Ingestion: validate the input folder, then build staging and marts with dbt.

The validation step owns the dbt sources' asset keys, so the graph reads "input files ->
staging -> marts" and a broken file stops the run before dbt writes anything. dbt receives the
cycle and the planning calendar (horizon, history window) as vars, so the marts and the
Python steps plan the same months.
"""

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets, get_asset_key_for_model

from orchestration.dbt_project import dbt_project, ensure_manifest
from orchestration.io import code_references
from orchestration.partitions import WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import DataFolderResource, PlanningModelsResource, WarehouseResource
from sop_pipeline.inputs.contract import INPUT_FILES
from sop_pipeline.inputs.dbt import dbt_source_expressions
from sop_pipeline.inputs.validate import validate_inputs
from sop_pipeline.periods import cycle_label
from sop_pipeline.settings.calendar import CalendarSettings


class SopDbtTranslator(DagsterDbtTranslator):
    """Key dbt models by schema (staging/..., marts/...) and sources under `inputs/`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["inputs", dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "ingestion"


INPUT_KEYS = {spec.name: dg.AssetKey(["inputs", spec.name]) for spec in INPUT_FILES}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, group_name="ingestion", description=spec.description, kinds={"csv"}, metadata=code_references(validate_inputs))
        for spec, key in zip(INPUT_FILES, INPUT_KEYS.values())
    ],
    partitions_def=cycle_partitions,
    can_subset=False,
    name="input_files",
)
def input_files(context: dg.AssetExecutionContext, data_folder: DataFolderResource) -> Iterator[dg.MaterializeResult]:
    """Check every input file against the contract; nothing is written anywhere.

    A broken file raises with the file, column, row and rule, so the run stops before dbt.
    """
    folder = validate_inputs(data_folder.path)
    for name, key in INPUT_KEYS.items():
        path = folder.paths.get(name)
        metadata: dict[str, Any] = {"present": path is not None}
        if path is not None:
            metadata.update(
                path=dg.MetadataValue.path(str(path)), rows=folder.frames[name].height, sha256=hashlib.sha256(path.read_bytes()).hexdigest()
            )
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    context.log.info(f"validated {len(folder.paths)} input files in {folder.data_dir}")


def dbt_vars(cycle: str, data_dir: str, warehouse_path: str, calendar: CalendarSettings) -> dict[str, Any]:
    """The vars one cycle's dbt build needs: the cycle, the calendar, the warehouse and each
    source's reader.

    The files are validated again here, on purpose: a planner can rerun the dbt step alone from
    the UI, and the files may have changed since `input_files` last checked them.
    """
    return {
        "cycle": cycle_label(cycle),
        "horizon_months": calendar.horizon_months,
        "history_months": calendar.history_months,
        "warehouse": warehouse_path,
        "inputs": dbt_source_expressions(validate_inputs(data_dir)),
    }


@dbt_assets(
    manifest=ensure_manifest(),
    project=dbt_project,
    dagster_dbt_translator=SopDbtTranslator(),
    partitions_def=cycle_partitions,
    pool=WAREHOUSE_POOL,
    name="dbt_models",
)
def dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    data_folder: DataFolderResource,
    warehouse: WarehouseResource,
    planning_models: PlanningModelsResource,
):
    """Build staging and marts for the partition's cycle; dbt tests become asset checks."""
    variables = dbt_vars(context.partition_key, data_folder.path, warehouse.path, planning_models.load().calendar)
    Path(warehouse.path).parent.mkdir(parents=True, exist_ok=True)
    yield from dbt.cli(["build", "--vars", json.dumps(variables)], context=context).stream()


def mart(name: str) -> dg.AssetKey:
    """The asset key of a dbt model, as the Python steps depend on it."""
    return get_asset_key_for_model([dbt_models], name)
