"""The DuckDB plan warehouse: opening it safely and replacing one cycle's rows.

DuckDB lets one process write a file at a time. Dagster's default executor runs each step in
its own process, so two steps may try to open the warehouse together; the loser of that race
waits and retries instead of failing the run. Every planning table is keyed by `cycle`, and a
write replaces exactly that cycle's rows inside one transaction: a rerun never duplicates rows
and never touches another cycle.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from sop_pipeline import registry
from sop_pipeline.periods import cycle_label

T = TypeVar("T")

LOCK_WAIT_SECONDS = 300.0


def is_lock_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def retry_while_locked(action: Callable[[], T], wait_seconds: float = LOCK_WAIT_SECONDS) -> T:
    """Run `action` (an open or an ATTACH), retrying with backoff while another process holds
    DuckDB's file lock, for at most `wait_seconds`; any other error is raised at once."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            return action()
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay + random.random() * delay)
            delay = min(delay * 2, 2.0)


@contextlib.contextmanager
def connect(path: str | Path, read_only: bool = False, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, waiting while another process holds DuckDB's file lock."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = retry_while_locked(lambda: duckdb.connect(str(path), read_only=read_only), wait_seconds)
    try:
        yield con
    finally:
        con.close()


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run a query and return a polars frame (through Arrow, without a copy where possible)."""
    result = pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())
    assert isinstance(result, pl.DataFrame)
    return result


def read_table(con: duckdb.DuckDBPyConnection, table: str, where: str = "", params: list | None = None) -> pl.DataFrame:
    """A whole table (or its rows matching `where`) in a fixed row order.

    DuckDB scans in parallel, so without an order the rows come back in a different order each
    time; float sums downstream would then differ in their last bits, and an unchanged rerun
    would look like a new plan version to the approval step.
    """
    return query(con, f"select * from {table}" + (f" where {where}" if where else "") + " order by all", params)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchall()[0]
    return bool(row and row[0])


def ensure_table(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """Create the registered planning table if it does not exist, add any column the registry
    has gained since (an upgrade never needs a manual migration), and (re)write its comments.
    Returns the qualified name."""
    spec = registry.table(name)
    con.execute(f"create schema if not exists {spec.schema}")
    con.execute(spec.ddl())
    present = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?", [spec.schema, spec.name]
        ).fetchall()
    }
    for column in spec.columns:
        if column.name not in present:
            con.execute(f'alter table {spec.qualified} add column "{column.name}" {column.duckdb_type}')
    for statement in spec.comments():
        con.execute(statement)
    return spec.qualified


def write_cycle(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame, cycle: str) -> int:
    """Validate `frame` against the registry and replace `cycle`'s rows of the planning table
    `name` with it, in one transaction. Returns the rows written.

    Every planning table is written through here (or `write_cycles`), so none escapes
    validation and a rerun never duplicates rows nor touches another cycle.
    """
    return write_cycles(con, {name: frame}, cycle)[name]


def write_cycles(
    con: duckdb.DuckDBPyConnection,
    frames: dict[str, pl.DataFrame],
    cycle: str,
    settings_used: tuple[str, pl.DataFrame] | None = None,
) -> dict[str, int]:
    """`write_cycle` for several tables in one transaction: readers see all of them replaced or
    none (a review step's tables, the plan of record's four tables). Everything is validated
    before anything is written. `settings_used` is (step, row): the settings that step used,
    replacing only that step's row of the cycle in planning.settings_used."""
    label = cycle_label(cycle)
    checked = {}
    for name, frame in frames.items():
        frame = registry.validate(name, frame)
        if frame.height and frame["cycle"].unique().to_list() != [label]:
            raise ValueError(f"planning.{name}: frame holds rows of cycles {frame['cycle'].unique().to_list()}, expected only {label}")
        checked[name] = frame
    targets = {name: ensure_table(con, name) for name in checked}
    if settings_used is not None:
        step, used = settings_used[0], registry.validate("settings_used", settings_used[1])
        used_table = ensure_table(con, "settings_used")
    con.execute("begin transaction")
    try:
        if settings_used is not None:
            con.register("incoming_frame", used.to_arrow())
            try:
                con.execute(f"delete from {used_table} where cycle = ? and step = ?", [label, step])
                con.execute(f"insert into {used_table} by name select * from incoming_frame")
            finally:
                con.unregister("incoming_frame")
        for name, frame in checked.items():
            con.register("incoming_frame", frame.to_arrow())
            try:
                con.execute(f"delete from {targets[name]} where cycle = ?", [label])
                con.execute(f"insert into {targets[name]} by name select * from incoming_frame")
            finally:
                con.unregister("incoming_frame")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return {name: frame.height for name, frame in checked.items()}


def read_cycle(con: duckdb.DuckDBPyConnection, name: str, cycle: str) -> pl.DataFrame:
    """The cycle's rows of a registered planning table, typed as registered; an empty frame with
    the registered columns when the table does not exist yet (a step that has never run)."""
    spec = registry.table(name)
    if not table_exists(con, spec.schema, spec.name):
        return spec.empty()
    frame = read_table(con, spec.qualified, "cycle = ?", [cycle_label(cycle)])
    return frame.select([pl.col(c.name).cast(c.polars_type) for c in spec.columns if c.name in frame.columns])


def marts_cycle(con: duckdb.DuckDBPyConnection) -> str | None:
    """The cycle the marts were last built for, or None before the first ingestion."""
    if not table_exists(con, "marts", "dim_month"):
        return None
    row = con.execute("select min(cycle) from marts.dim_month").fetchall()[0]
    return row[0] if row else None


class StaleMartsError(RuntimeError):
    """The marts hold another cycle's data: the step must not plan from them."""


def require_marts_for(con: duckdb.DuckDBPyConnection, cycle: str) -> None:
    built = marts_cycle(con)
    if built != cycle_label(cycle):
        raise StaleMartsError(
            f"the marts were built for cycle {built or '(none)'}, not {cycle_label(cycle)}: "
            f"materialize the ingestion step for cycle {cycle_label(cycle)} first"
        )
