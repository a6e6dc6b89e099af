"""The DuckDB plan warehouse: opening it safely and replacing one cycle's rows.

DuckDB lets one process write a file at a time. Dagster's default executor runs each step in
its own process, so two steps may try to open the warehouse together; the loser of that race
waits and retries instead of failing the run. Every planning table is keyed by `cycle`, and a
write replaces exactly that cycle's rows inside one transaction: a rerun never duplicates rows
and never touches another cycle.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from sop_pipeline import registry
from sop_pipeline.periods import cycle_label

T = TypeVar("T")

# How long a connection waits for DuckDB's file lock (another step of the same run finishing its
# write); SOP_LOCK_WAIT_SECONDS overrides it, as it does the wait for another run.
LOCK_WAIT_SECONDS = float(os.environ.get("SOP_LOCK_WAIT_SECONDS", "300"))


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


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened or written: the message names the file and the cause."""


def storage_problem(exc: BaseException) -> str | None:
    """The cause a person can act on, when an error is the file system's (full, read-only, no
    permission), else None."""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code == errno.ENOSPC or "no space left" in text or "disk full" in text:
        return "the disk is full"
    if code == errno.EROFS or "read-only file system" in text:
        return "the file system is read-only"
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in text:
        return "permission denied"
    return None


@contextlib.contextmanager
def connect(path: str | Path, read_only: bool = False, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, waiting while another process holds DuckDB's file lock.

    A lock held past `wait_seconds` and a full or read-only disk end in one `WarehouseError`
    naming the file and the cause, not DuckDB's message (or the failed rollback after it)."""
    path = Path(path)
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = retry_while_locked(lambda: duckdb.connect(str(path), read_only=read_only), wait_seconds)
    except (duckdb.Error, OSError) as exc:
        explained = _warehouse_error(path, exc, "open")
        if explained is None:
            raise
        raise explained from exc
    try:
        yield con
    except (duckdb.Error, OSError) as exc:
        problem = storage_problem(exc)
        if problem is None:
            raise
        raise WarehouseError(f"cannot write the warehouse {path.resolve()}: {problem} ({exc})") from exc
    finally:
        with contextlib.suppress(duckdb.Error, OSError):
            con.close()


def _warehouse_error(path: Path, exc: BaseException, action: str) -> WarehouseError | None:
    if isinstance(exc, duckdb.Error) and is_lock_conflict(exc):
        holder = re.search(r"PID (\d+)", str(exc))
        return WarehouseError(
            f"cannot {action} the warehouse {path.resolve()}: another process"
            + (f" ({holder.group(1)})" if holder else "")
            + " keeps it open. Connections to the working warehouse while a cycle runs are not supported: BI tools and "
            "SQL clients read the published copy (sop_bi.duckdb); close the connection and run again"
        )
    problem = storage_problem(exc)
    if problem is not None:
        return WarehouseError(f"cannot {action} the warehouse {path.resolve()}: {problem}")
    return None


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
    keyed: dict[str, pl.DataFrame] | None = None,
) -> dict[str, int]:
    """`write_cycle` for several tables in one transaction: readers see all of them replaced or
    none (a review step's tables, the plan of record's four tables). Everything is validated
    before anything is written. `keyed` frames replace only the rows with their grain's keys
    (the settings a step used, the step's own run record), not the whole cycle."""
    label = cycle_label(cycle)
    checked, rows = {}, {}
    for name, frame in frames.items():
        frame = registry.validate(name, frame)
        if frame.height and frame["cycle"].unique().to_list() != [label]:
            raise ValueError(f"planning.{name}: frame holds rows of cycles {frame['cycle'].unique().to_list()}, expected only {label}")
        checked[name] = frame
    for name, frame in (keyed or {}).items():
        rows[name] = registry.validate(name, frame)
    targets = {name: ensure_table(con, name) for name in [*checked, *rows]}
    con.execute("begin transaction")
    try:
        _replace_keyed(con, rows, targets)
        for name, frame in checked.items():
            _insert(con, frame, f"delete from {targets[name]} where cycle = '{label}'", targets[name])
        con.execute("commit")
    except Exception:
        _rollback(con)
        raise
    return {name: frame.height for name, frame in checked.items()}


def _replace_keyed(con: duckdb.DuckDBPyConnection, rows: dict[str, pl.DataFrame], targets: dict[str, str]) -> None:
    """Replace the rows with these frames' grain keys (inside the caller's transaction)."""
    for name, frame in rows.items():
        on = " and ".join(f'{targets[name]}."{k}" = incoming_frame."{k}"' for k in registry.table(name).grain)
        _insert(con, frame, f"delete from {targets[name]} using incoming_frame where {on}", targets[name])


def _insert(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, delete: str, target: str) -> None:
    con.register("incoming_frame", frame.to_arrow())
    try:
        con.execute(delete)
        con.execute(f"insert into {target} by name select * from incoming_frame")
    finally:
        con.unregister("incoming_frame")


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


def publish_marts(
    built: str | Path, warehouse_path: str | Path, wait_seconds: float = LOCK_WAIT_SECONDS, keyed: dict[str, pl.DataFrame] | None = None
) -> list[str]:
    """Replace the warehouse's `staging` and `marts` with those dbt built in the file `built`,
    in one transaction: readers see the old marts or the new ones, never a mix, and a build that
    failed (never published) leaves the marts exactly as they were. `keyed` rows (the step's
    run record) are written in the same transaction, so the marts and the record that they
    changed can never disagree. Returns the tables copied."""
    built = Path(built)
    with connect(warehouse_path, wait_seconds=wait_seconds) as con:
        rows = {name: registry.validate(name, frame) for name, frame in (keyed or {}).items()}
        targets = {name: ensure_table(con, name) for name in rows}
        con.execute(f"attach '{str(built).replace(chr(39), chr(39) * 2)}' as dbt_build (read_only)")
        try:
            new = con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'dbt_build' "
                "and schema_name in ('staging', 'marts') order by 1, 2"
            ).fetchall()
            old = con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
                "and schema_name in ('staging', 'marts')"
            ).fetchall()
            con.execute("begin transaction")
            try:
                for schema in ("staging", "marts"):
                    con.execute(f"create schema if not exists {schema}")
                for schema, table in set(old) - set(new):
                    con.execute(f'drop table {schema}."{table}"')
                for schema, table in new:
                    con.execute(f'create or replace table {schema}."{table}" as select * from dbt_build.{schema}."{table}"')
                _replace_keyed(con, rows, targets)
                con.execute("commit")
            except Exception:
                _rollback(con)
                raise
        finally:
            con.execute("detach dbt_build")
    return [f"{s}.{t}" for s, t in new]


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, without letting a failed rollback (the transaction already gone, a full disk)
    hide the error that caused it."""
    try:
        con.execute("rollback")
    except duckdb.Error:
        pass
