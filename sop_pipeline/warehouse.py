"""The DuckDB plan warehouse: opening it safely and replacing one cycle's rows.

DuckDB lets one process write a file at a time. Dagster's default executor runs each step in
its own process, so two steps may try to open the warehouse together; the loser of that race
waits and retries instead of failing the run. Every planning table is keyed by `cycle`, and a
write replaces exactly that cycle's rows inside one transaction: a rerun never duplicates rows
and never touches another cycle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

T = TypeVar("T")

LOCK_WAIT_SECONDS = 300.0


def cycle_label(cycle: str | dt.date) -> str:
    """'2026-11' for a cycle given as '2026-11', '2026-11-01' or a date."""
    if isinstance(cycle, dt.date):
        return cycle.strftime("%Y-%m")
    text = str(cycle).strip()
    try:
        return dt.datetime.strptime(text[:7], "%Y-%m").strftime("%Y-%m")
    except ValueError as exc:
        raise ValueError(f"cycle {cycle!r} is not a month in YYYY-MM form") from exc


def cycle_month(cycle: str | dt.date) -> dt.date:
    """The cycle's first plan month as a date (first day of the month)."""
    return dt.datetime.strptime(cycle_label(cycle), "%Y-%m").date()


def add_months(month: dt.date, months: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


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


def replace_cycle(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, cycle: str) -> int:
    """Replace `cycle`'s rows of `schema.table` with `frame`, in one transaction.

    The table is created from the frame's schema on first write. Columns are matched by name,
    so adding a column to a planning table later only needs a migration, not a rewrite.
    """
    schema, name = table.split(".")
    label = cycle_label(cycle)
    if frame.height and frame["cycle"].unique().to_list() != [label]:
        raise ValueError(f"{table}: frame holds rows of cycles {frame['cycle'].unique().to_list()}, expected only {label}")
    con.execute(f"create schema if not exists {schema}")
    arrow = frame.to_arrow()
    con.register("incoming_frame", arrow)
    try:
        con.execute("begin transaction")
        if not table_exists(con, schema, name):
            con.execute(f"create table {table} as select * from incoming_frame limit 0")
        con.execute(f"delete from {table} where cycle = ?", [label])
        con.execute(f"insert into {table} by name select * from incoming_frame")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("incoming_frame")
    return frame.height


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
