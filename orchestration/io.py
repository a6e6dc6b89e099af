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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from orchestration.resources import PlanningModelsResource, WarehouseResource
from sop_pipeline import registry
from sop_pipeline.executive.governance import record_checkpoint
from sop_pipeline.periods import cycle_label
from sop_pipeline.reporting.style import to_png
from sop_pipeline.settings import Settings
from sop_pipeline.warehouse import read_cycle, require_marts_for, write_cycles


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
    return dg.MetadataValue.md(frame.head(limit).to_pandas().to_markdown(index=False, floatfmt=".3f"))


@dataclass
class CycleStep:
    """One review step of one cycle: its settings, its reads and its validated writes."""

    cycle: str
    step: str
    sections: tuple[str, ...]
    settings: Settings
    warehouse: WarehouseResource

    @classmethod
    def start(
        cls, context, warehouse: WarehouseResource, planning_models: PlanningModelsResource, step: str, sections: Sequence[str]
    ) -> CycleStep:
        return cls(cycle_label(context.partition_key), step, tuple(sections), planning_models.load(), warehouse)

    @property
    def settings_hash(self) -> str:
        return self.settings.digest(*self.sections)

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection, after checking the marts were built for this cycle."""
        with self.warehouse.connect(read_only=True) as con:
            require_marts_for(con, self.cycle)
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
            return write_cycles(con, tables, self.cycle, settings_used=(self.step, used))

    def result(self, name: str, frame: pl.DataFrame | None = None, **metadata: Any) -> dg.MaterializeResult:
        rows = {"rows": frame.height} if frame is not None else {}
        return dg.MaterializeResult(asset_key=planning_key(name), metadata={**rows, "settings_hash": self.settings_hash, **metadata})

    def checkpoint(
        self, name: str, passed: bool, description: str, blocking: bool = True, asset: str | None = None, **metadata: Any
    ) -> dg.AssetCheckResult:
        """Record the checkpoint's outcome in planning.checkpoints and report it to Dagster."""
        with self.warehouse.connect() as con:
            record_checkpoint(con, self.cycle, name, passed, description, blocking)
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
            description=description,
            metadata=metadata,
            check_name=name,
            asset_key=planning_key(asset) if asset else None,
        )


def chart(png_folder: Path, name: str, figure) -> dict[str, dg.MetadataValue]:
    """Write the chart next to the warehouse and show it inline in the asset's metadata."""
    png = to_png(figure)
    path = png_folder / f"{name}.png"
    path.write_bytes(png)
    return {
        name: dg.MetadataValue.md(f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"),
        f"{name}_path": dg.MetadataValue.path(str(path)),
    }


def chart_folder(warehouse: WarehouseResource, cycle: str) -> Path:
    """Charts live next to the warehouse, one folder per cycle, readable without the UI."""
    folder = Path(warehouse.path).parent / "charts" / cycle_label(cycle)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
