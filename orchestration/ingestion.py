"""Ingestion: validate the input folder, then build staging and marts with dbt.

The validation step owns the dbt sources' asset keys, so the graph reads "input files ->
staging -> marts" and a broken file stops the run before dbt writes anything. dbt builds into
a database of the run's own and the warehouse's marts are replaced only after every dbt test
passed (`publish_marts`): nothing of the warehouse changes until the ingestion has passed. dbt
receives the cycle and the planning calendar (horizon, history window) as vars, so the marts
and the Python steps plan the same months.
"""

import errno
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets, get_asset_key_for_model

from orchestration.dbt_project import dbt_project, ensure_manifest
from orchestration.io import LOCK_WAIT_SECONDS, claim_warehouse, code_references, step_run
from orchestration.partitions import ONE_CYCLE_PER_RUN, WAREHOUSE_POOL, cycle_partitions
from orchestration.resources import DataFolderResource, PlanningModelsResource, WarehouseResource
from sop_pipeline.inputs.contract import INPUT_FILES
from sop_pipeline.inputs.dbt import dbt_source_expressions, explain_dbt_failures
from sop_pipeline.inputs.validate import InputError, InputFolder, validate_inputs, write_typed_inputs
from sop_pipeline.inputs.versions import file_digest, file_versions, record_versions
from sop_pipeline.periods import cycle_label
from sop_pipeline.settings.calendar import CalendarSettings
from sop_pipeline.settings.inputs import InputSettings
from sop_pipeline.warehouse import publish_marts, storage_problem


class SopDbtTranslator(DagsterDbtTranslator):
    """Key dbt models by schema (staging/..., marts/...) and sources under `inputs/`.

    dbt's tests run inside the dbt step and a failed one fails the ingestion with the file,
    column and row it found (`explain_dbt_failures`); they are not Dagster asset checks. They
    restate the validator's rules, and 213 passing checks hid the six checkpoints a planner
    acts on (docs/decisions.md)."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=False, enable_code_references=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["inputs", dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "ingestion"


INPUT_KEYS = {spec.name: dg.AssetKey(["inputs", spec.name]) for spec in INPUT_FILES}
FILE_KEYS = {spec.name: dg.AssetKey(["files", spec.name]) for spec in INPUT_FILES}


def file_observations(data_dir: str) -> list[dg.AssetObservation]:
    """One observation per company file, with its content as the data version."""
    return [
        dg.AssetObservation(
            asset_key=FILE_KEYS[name],
            metadata={"path": dg.MetadataValue.path(str(path)) if path else "(absent)", "bytes": path.stat().st_size if path else 0},
            tags={DATA_VERSION_TAG: version},
        )
        for name, (version, path) in file_versions(data_dir).items()
    ]


@dg.multi_observable_source_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name="ingestion",
            description=f"The company's {spec.name} file (CSV or Parquet) as it is in the input folder; its data version is "
            "the file's content, so a changed file shows everything it feeds as unsynced.",
        )
        for spec, key in zip(INPUT_FILES, FILE_KEYS.values())
    ],
    name="company_files",
    required_resource_keys={"data_folder"},
)
def company_files(context) -> Iterator[dg.ObserveResult]:
    for observation in file_observations(context.resources.data_folder.path):
        yield dg.ObserveResult(
            asset_key=observation.asset_key,
            data_version=dg.DataVersion(observation.tags[DATA_VERSION_TAG]),
            metadata=observation.metadata,
        )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name="ingestion",
            description=spec.description,
            kinds={"csv"},
            deps=[FILE_KEYS[spec.name]],
            metadata=code_references(validate_inputs),
        )
        for spec, key in zip(INPUT_FILES, INPUT_KEYS.values())
    ],
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
    can_subset=False,
    name="input_files",
)
def input_files(
    context: dg.AssetExecutionContext, data_folder: DataFolderResource, planning_models: PlanningModelsResource
) -> Iterator[dg.MaterializeResult]:
    """Check every input file against the contract; nothing is written anywhere.

    A broken file fails the step with the file, column, row and rule, so the run stops before dbt.
    """
    cycle = cycle_label(context.partition_key)
    for observation in file_observations(data_folder.path):
        context.log_event(observation)  # the files as validated now, even when no sensor watched them
    folder = _validated(data_folder.path, cycle, planning_models.load().inputs)
    for name, key in INPUT_KEYS.items():
        path = folder.paths.get(name)
        metadata: dict[str, Any] = {"present": path is not None}
        if path is not None:
            metadata.update(path=dg.MetadataValue.path(str(path)), rows=folder.frames[name].height, sha256=file_digest(path))
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    context.log.info(f"validated {len(folder.paths)} input files in {folder.data_dir}")


def _validated(data_dir: str, cycle: str, settings: InputSettings) -> InputFolder:
    """The validated folder, or a step failure whose message is the validator's one line (the
    UI and `sop run` show it without a stack trace)."""
    try:
        return validate_inputs(data_dir, cycle, settings)
    except InputError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def _workspace(warehouse_path: str, run_id: str) -> Path:
    """A folder of this run's own next to the warehouse for the typed inputs, dbt's build and
    dbt's target folder. Leftovers of interrupted runs are removed: the run that owns the
    warehouse (`runlock`) is the only one ingesting, so every other folder is stale."""
    root = Path(warehouse_path).resolve().parent / ".ingest"
    if root.is_dir():
        for leftover in root.iterdir():
            if leftover.name != run_id:
                shutil.rmtree(leftover, ignore_errors=True)
    folder = root / run_id
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def dbt_vars(cycle: str, build: Path, typed: dict[str, Path], calendar: CalendarSettings) -> dict[str, Any]:
    """The vars one cycle's dbt build needs: the cycle, the calendar, the database to build
    into and each source's typed file."""
    return {
        "cycle": cycle_label(cycle),
        "horizon_months": calendar.horizon_months,
        "history_months": calendar.history_months,
        "warehouse": str(build),
        "inputs": dbt_source_expressions(typed),
    }


@dbt_assets(
    manifest=ensure_manifest(),
    project=dbt_project,
    dagster_dbt_translator=SopDbtTranslator(),
    partitions_def=cycle_partitions,
    backfill_policy=ONE_CYCLE_PER_RUN,
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
    """Build staging and marts for the partition's cycle into a database of the run's own, and
    swap them into the warehouse only when every dbt test passed.

    The files are validated again here, on purpose: a planner can rerun this step alone from the
    UI, and the files may have changed since `input_files` checked them. dbt reads the typed
    Parquet files the validator wrote, never the company's files. A failed build or test fails
    the step with one line per broken rule (file, column, row) and leaves the warehouse as it
    was; dbt's full output stays in the run's log.
    """
    cycle = cycle_label(context.partition_key)
    settings = planning_models.load()
    claim_warehouse(context, warehouse, cycle)
    folder = _validated(data_folder.path, cycle, settings.inputs)
    try:
        workspace = _workspace(warehouse.path, context.run.run_id)
        build = workspace / "build.duckdb"
        typed = write_typed_inputs(folder, workspace / "inputs")
    except OSError as exc:
        raise _storage_failure(warehouse.path, exc) from None
    try:
        variables = dbt_vars(cycle, build, typed, settings.calendar)
        invocation = dbt.cli(
            ["build", "--vars", json.dumps(variables)], context=context, target_path=workspace / "target", raise_on_error=False
        )
        events = list(invocation.stream())
        if not invocation.is_successful():
            if "no space left" in _dbt_messages(invocation).lower() or _out_of_space(workspace):
                raise _storage_failure(warehouse.path, OSError(errno.ENOSPC, "No space left on device"))
            # Nothing is reported for the unpublished build: the failure says which rows broke which test.
            raise dg.Failure(description=_explain(invocation, build, folder), allow_retries=False)
        with duckdb.connect(str(build)) as con:
            record_versions(con, data_folder.path)
        ran = step_run(cycle, context.op_def.name, context.run.run_id)
        published = publish_marts(build, warehouse.path, wait_seconds=LOCK_WAIT_SECONDS, keyed={"step_runs": ran})
        tests = [r for r in invocation.get_artifact("run_results.json")["results"] if r["unique_id"].startswith("test.")]
        context.log.info(f"{len(tests)} dbt tests passed; published {len(published)} staging and mart tables into {warehouse.path}")
        # The tests' results arrive as one observation each: summarised above instead.
        yield from (event for event in events if not isinstance(event, dg.AssetObservation))
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _out_of_space(folder: Path) -> bool:
    """dbt dies without writing its results when the disk fills up under it: whether a
    megabyte still fits where it was building tells that apart from a broken model."""
    probe = folder / ".space_probe"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * 2**20)
            f.flush()
            os.fsync(f.fileno())
        return False
    except OSError as exc:
        return storage_problem(exc) == "the disk is full"
    finally:
        probe.unlink(missing_ok=True)


def _storage_failure(warehouse_path: str, exc: OSError) -> dg.Failure:
    where = Path(warehouse_path).resolve().parent
    return dg.Failure(description=f"cannot build the marts in {where}: {storage_problem(exc) or exc}", allow_retries=False)


def _dbt_messages(invocation) -> str:
    try:
        return " ".join(r.get("message") or "" for r in invocation.get_artifact("run_results.json").get("results", []))
    except Exception:  # noqa: BLE001 - no results: nothing to read
        return ""


def _explain(invocation, build: Path, folder: InputFolder) -> str:
    """What broke, in the validator's form, from dbt's run results and the database it built."""
    try:
        run_results = invocation.get_artifact("run_results.json")
    except Exception:  # noqa: BLE001 - dbt died before writing results: its log says why
        return "dbt could not build the marts (no run results were written); the run's log has dbt's output"
    labels = {name: path.name for name, path in folder.paths.items()}
    with duckdb.connect(str(build), read_only=True) as con:
        lines = explain_dbt_failures(run_results, invocation.manifest, con, labels)
    return "\n".join(lines) or "dbt reported a failure without a failed node; the run's log has dbt's output"


def mart(name: str) -> dg.AssetKey:
    """The asset key of a dbt model, as the Python steps depend on it."""
    return get_asset_key_for_model([dbt_models], name)
