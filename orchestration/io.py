"""What every planning asset does around its domain function, written once.

A planning step reads its inputs from the warehouse, checks that the marts are this cycle's,
validates what it computed against the registry, replaces the cycle's rows (together with the
settings it used, so they enter the plan version), and reports rows, settings hash, code
location and column schema to the UI. `CycleStep` does that sequence; `table_spec` declares a
planning table's asset from its registration, so the UI shows the registry's description,
columns and the function that computes it.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline import registry, runlock
from sop_pipeline.executive.governance import record_checkpoint, utc_naive
from sop_pipeline.inputs.versions import changed_since_ingestion
from sop_pipeline.periods import cycle_label
from sop_pipeline.reporting.style import to_png
from sop_pipeline.settings import Settings
from sop_pipeline.warehouse import StaleMartsError, read_cycle, require_marts_for, storage_problem, write_cycles

# Tags a `sop` run carries, so that its steps know they belong to a command-line run.
ORIGIN_TAG, PID_TAG = "sop/origin", "sop/pid"
# How long a step waits for another run to finish with the warehouse before it gives up.
LOCK_WAIT_SECONDS = float(os.environ.get("SOP_LOCK_WAIT_SECONDS", "600"))


def planning_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["planning", name])


def marts(*names: str) -> list[dg.AssetKey]:
    return [dg.AssetKey(["marts", name]) for name in names]


def code_references(*functions: Callable) -> dict[str, dg.CodeReferencesMetadataValue]:
    """Links from the asset in the UI to the domain functions that compute it."""
    refs = []
    for function in functions:
        source = inspect.getsourcefile(function)
        line = inspect.getsourcelines(function)[1]
        refs.append(
            dg.LocalFileCodeReference(
                file_path=str(Path(source).resolve()), line_number=line, label=f"{function.__module__}.{function.__qualname__}"
            )
        )
    return {"dagster/code_references": dg.CodeReferencesMetadataValue(code_references=refs)}


def column_schema(name: str) -> dg.TableSchema:
    spec = registry.table(name)
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.duckdb_type, registry.describe(c)) for c in spec.columns])


def table_spec(
    name: str,
    group: str,
    deps: Sequence[Any] = (),
    computed_by: Sequence[Callable] = (),
    kinds: set[str] | None = None,
    description: str | None = None,
) -> dg.AssetSpec:
    """A planning table's asset: key `planning/<name>`, the registry's description and columns,
    and code references to the functions that compute it."""
    spec = registry.table(name)
    return dg.AssetSpec(
        planning_key(name),
        group_name=group,
        deps=list(deps),
        kinds=kinds or {"python", "duckdb"},
        description=(description or spec.description) + (f"\n\nComputed by `{spec.computed_by}`." if spec.computed_by else ""),
        metadata={"dagster/column_schema": column_schema(name), **code_references(*computed_by)},
    )


def md_table(frame: pl.DataFrame, limit: int = 25) -> dg.MetadataValue:
    """The first `limit` rows as a markdown table ("none" when empty)."""
    if frame.height == 0:
        return dg.MetadataValue.md("none")
    # Plan months are first-of-month dates: a planner reads `2027-03`, not `2027-03-01 00:00:00`
    # (what pandas makes of a date).
    shown = frame.head(limit)
    dates = [c for c, t in shown.schema.items() if t == pl.Date]
    months = [c for c in dates if (shown[c].dt.day().drop_nulls() == 1).all()]
    shown = shown.with_columns(
        [pl.col(c).dt.strftime("%Y-%m" if c in months else "%Y-%m-%d") for c in dates]
        + [pl.col(c).dt.strftime("%Y-%m-%d %H:%M") for c, t in shown.schema.items() if isinstance(t, pl.Datetime)]
    )
    return dg.MetadataValue.md(shown.to_pandas().to_markdown(index=False, floatfmt=",.3f"))


def run_origin(context) -> str:
    return context.run.tags.get(ORIGIN_TAG, "dagster")


def run_alive(instance: dg.DagsterInstance) -> Callable[[runlock.Holder], bool]:
    """Whether a warehouse's owner still runs: a Dagster run while its instance says it is not
    finished (its steps may each run in a process of their own), a `sop` run while its process
    lives."""

    def alive(holder: runlock.Holder) -> bool:
        if holder.origin == "dagster":
            run = instance.get_run_by_id(holder.run_id)
            if run is not None:
                return not run.is_finished
        return runlock.process_alive(holder)

    return alive


def claim_warehouse(context, warehouse: WarehouseResource, cycle: str) -> None:
    """Own the warehouse for this run before writing (`sop_pipeline.runlock`): wait while
    another live run owns it, then fail the step with who holds it."""
    pid = int(context.run.tags.get(PID_TAG, os.getpid()))
    try:
        runlock.claim(
            warehouse.path,
            context.run.run_id,
            cycle,
            run_origin(context),
            wait_seconds=LOCK_WAIT_SECONDS,
            alive=run_alive(context.instance),
            say=context.log.warning,
            pid=pid,
        )
    except runlock.WarehouseBusy as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except OSError as exc:
        where = Path(warehouse.path).resolve()
        raise dg.Failure(description=f"cannot write next to the warehouse {where}: {storage_problem(exc) or exc}") from None


def step_run(cycle: str, step: str, run_id: str | None) -> pl.DataFrame:
    """The row of planning.step_runs saying `step` of `run_id` finished writing the cycle now:
    written in the same transaction as the step's tables, so the record never disagrees with
    them (`governance.cycle_state` reads it)."""
    return pl.DataFrame({"cycle": [cycle_label(cycle)], "step": [step], "run_id": [run_id], "finished_at": [utc_naive(None)]})


@dataclass
class CycleStep:
    """One review step of one cycle: its settings, its reads and its validated writes.

    `group` is the review step (the settings it records are the group's), `op` the Dagster
    step that writes (recorded in planning.step_runs with the run)."""

    cycle: str
    step: str
    sections: tuple[str, ...]
    settings: Settings
    warehouse: WarehouseResource
    op: str = ""
    run_id: str | None = None

    @classmethod
    def start(
        cls, context, warehouse: WarehouseResource, planning_models: PlanningModelsResource, step: str, sections: Sequence[str]
    ) -> CycleStep:
        cycle = cycle_label(context.partition_key)
        claim_warehouse(context, warehouse, cycle)
        return cls(cycle, step, tuple(sections), planning_models.load(), warehouse, context.op_def.name, context.run.run_id)

    @property
    def settings_hash(self) -> str:
        return self.settings.digest(*self.sections)

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection, after checking the marts were built for this cycle from the
        input files as they are now."""
        with self.warehouse.connect(read_only=True) as con:
            require_marts_for(con, self.cycle)
            changed = changed_since_ingestion(con)
            if changed:
                raise StaleMartsError(
                    f"{', '.join(changed)} changed since cycle {self.cycle} was ingested: this step would plan from the old "
                    f"file. Rerun the cycle from the ingestion: `sop run --cycle {self.cycle}`, or in the UI re-execute all "
                    f"steps (not from failure), or materialize partition {self.cycle}-01 from input_files on."
                )
            yield con

    def read(self, con: duckdb.DuckDBPyConnection, name: str) -> pl.DataFrame:
        return read_cycle(con, name, self.cycle)

    def write(self, tables: dict[str, pl.DataFrame]) -> dict[str, int]:
        """Validate and replace the cycle's rows of every table, and record the settings used,
        in one transaction."""
        used = pl.DataFrame(
            {
                "cycle": [self.cycle],
                "step": [self.step],
                "settings_hash": [self.settings_hash],
                "settings": [self.settings.as_json(*self.sections)],
            }
        )
        with self.warehouse.connect() as con:
            return write_cycles(
                con, tables, self.cycle, keyed={"settings_used": used, "step_runs": step_run(self.cycle, self.op, self.run_id)}
            )

    def result(self, name: str, frame: pl.DataFrame | None = None, **metadata: Any) -> dg.MaterializeResult:
        rows = {"rows": frame.height} if frame is not None else {}
        return dg.MaterializeResult(asset_key=planning_key(name), metadata={**rows, "settings_hash": self.settings_hash, **metadata})

    def checkpoint(
        self, name: str, passed: bool, description: str, blocking: bool = True, asset: str | None = None, **metadata: Any
    ) -> dg.AssetCheckResult:
        """Record the checkpoint's outcome in planning.checkpoints and report it to Dagster; a
        failed blocking checkpoint says in the UI where to rerun from (rerunning the check
        alone would read the same tables again)."""
        with self.warehouse.connect() as con:
            record_checkpoint(con, self.cycle, name, passed, description, blocking, self.run_id)
        shown = description
        if blocking and not passed:
            shown += (
                f"\n\nTo rerun: fix the input file (or setting), then run the cycle again from the ingestion, so the "
                f"file is read again: `sop run --cycle {self.cycle}`, or in the UI materialize partition "
                f"{self.cycle}-01 from the ingestion group on (the changed file shows its steps as unsynced)."
            )
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
            description=shown,
            metadata=metadata,
            check_name=name,
            asset_key=planning_key(asset) if asset else None,
        )


def chart(png_folder: Path, name: str, figure) -> dict[str, dg.MetadataValue]:
    """Write the chart next to the warehouse and show it inline in the asset's metadata."""
    png = to_png(figure)
    path = png_folder / f"{name}.png"
    path.write_bytes(png)
    return {name: md_image(name, png), f"{name}_path": dg.MetadataValue.path(str(path))}


def md_image(name: str, png: bytes) -> dg.MetadataValue:
    """A PNG the UI shows inline (base64 markdown): a planner cannot open a server's file path."""
    return dg.MetadataValue.md(f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})")


def chart_folder(warehouse: WarehouseResource, cycle: str) -> Path:
    """Charts live next to the warehouse, one folder per cycle, readable without the UI."""
    folder = Path(warehouse.path).parent / "charts" / cycle_label(cycle)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
