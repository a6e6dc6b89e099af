"""Resources: the warehouse file, the input folder and the planner-edited settings folder.

They are ConfigurableResources rather than globals so that tests, `sop run` and a deployment
each point the same assets at their own files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg
import duckdb

from orchestration.paths import default_data_dir, default_models_dir, default_warehouse
from sop_pipeline import warehouse
from sop_pipeline.settings import Settings, load_settings


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB plan warehouse. Connections wait for DuckDB's single-writer lock."""

    path: str

    @contextlib.contextmanager
    def connect(self, read_only: bool = False, wait_seconds: float = warehouse.LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.path, read_only=read_only, wait_seconds=wait_seconds) as con:
            yield con


class DataFolderResource(dg.ConfigurableResource):
    """The company's input files (CSV or Parquet), one per entity of the input contract."""

    path: str


class PlanningModelsResource(dg.ConfigurableResource):
    """The folder of YAML settings planners edit (`models/`): loaded, typed and checked at each
    step, so an edited setting is picked up by the next run and a typo fails it at once."""

    path: str

    def load(self) -> Settings:
        return load_settings(self.path)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(path=default_warehouse()),
        "data_folder": DataFolderResource(path=default_data_dir()),
        "planning_models": PlanningModelsResource(path=default_models_dir()),
    }
