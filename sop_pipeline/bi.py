"""The `bi` schema and the published BI copy of the warehouse.

BI tools should not have to know which review step wrote which planning table, nor break when
a step adds a column. The `bi` views are the stable contract: fixed names, fixed columns with
fixed types, documented in `sop_pipeline.registry.bi` (rendered into the README and
into DuckDB column comments), every cycle kept with an
`is_current_cycle` flag for the latest one. A view whose planning table does not exist yet (a
company without capacity data never gets a supply plan) is created as an empty view with the
same typed columns, and a column a planning table lacks is NULL: dashboards keep working and
show nothing rather than failing. Views are recreated on every publish, so they pick up a
planning table as soon as a step first writes it.

DuckDB allows one writing process per file and a reader blocks writers, so BI tools must not
open the working warehouse while a cycle runs. They read a published copy instead:
`publish_bi_copy` copies the warehouse into a new file next to the target while holding a
read-only attachment of the source (the file lock keeps every writer out, so the copy is one
consistent state), creates the views in the copy and renames it over the target. The rename is
atomic: a reader opens either the old copy or the new one, never a half-written file, and since
nobody ever writes the target, readers never meet a lock.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from sop_pipeline import registry
from sop_pipeline.registry.base import Col, describe, sql_string
from sop_pipeline.registry.bi import CURRENT, Field, View, bi_views
from sop_pipeline.tempfiles import remove_leftovers, temp_path
from sop_pipeline.warehouse import LOCK_WAIT_SECONDS, retry_while_locked

BI_FILE_NAME = "sop_bi.duckdb"
# The oldest DuckDB release that can read the BI copy (see `publish_bi_copy`).
BI_STORAGE_VERSION = "v1.4.0"


def _columns_of(con: duckdb.DuckDBPyConnection, table: str) -> set[str] | None:
    schema, name = table.split(".")
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?", [schema, name]
    ).fetchall()
    return {r[0] for r in rows} or None


def _typed_select(con: duckdb.DuckDBPyConnection, table: str, columns: list[Col]) -> str:
    """`select` of the columns with their registered types from `table`; NULL for a column the
    table lacks (a warehouse written before the column existed), and no rows (but the same
    columns) when the table does not exist."""
    return _projection(con, View("", "", (), tuple(Field(c, f'"{c.name}"', (c.name,)) for c in columns), source=table))


def _projection(con: duckdb.DuckDBPyConnection, view: View) -> str:
    """The view's fields, typed, from its source; NULL for a field whose source column is
    missing, and no rows when the source relation does not exist yet."""
    present = _columns_of(con, view.source)

    def field_sql(f: Field) -> str:
        available = present is not None and all(r in present for r in f.reads)
        return f'cast({f.sql if available else "null"} as {f.col.duckdb_type}) as "{f.col.name}"'

    columns = ", ".join(field_sql(f) for f in view.fields)
    if present is None:
        return f"select {columns} where false"
    where = f" where {view.where}" if view.where else ""
    grouped = " group by all" if view.aggregated else ""
    return f"select {columns} from {view.source}{where}{grouped}"


def _view_sql(con: duckdb.DuckDBPyConnection, view: View) -> str:
    if view.custom == "plan_of_record":
        return _plan_of_record_sql(con)
    body = _projection(con, view)
    if not view.per_cycle:
        return body
    return f"select *, cycle = max(cycle) over () as {CURRENT.name} from ({body})"


def _plan_of_record_sql(con: duckdb.DuckDBPyConnection) -> str:
    demand_spec = registry.table("plan_of_record_demand")
    meta_cols = list(demand_spec.columns[:5])
    meta = [c.name for c in meta_cols]
    keys = ", ".join(meta + ["family", "month"])
    family, month = demand_spec.column("family"), demand_spec.column("month")

    def part(table: str, measures: dict[str, str]) -> str:
        # measures: output column -> source column
        spec = registry.table(table)
        source_cols = [*meta_cols, family, month] + [spec.column(src) for src in measures.values()]
        sums = ", ".join(f"sum({src}) as {out}" for out, src in measures.items())
        return f"select {keys}, {sums} from ({_typed_select(con, spec.qualified, source_cols)}) group by all"

    demand = part("plan_of_record_demand", {"demand_units": "quantity"})
    supply = part(
        "plan_of_record_supply",
        {"production_units": "production", "ending_inventory_units": "ending_inventory", "shortfall_units": "shortfall"},
    )
    money = part(
        "plan_of_record_financial",
        {"shipped_units": "volume", **{c: c for c in ("revenue", "cogs", "gross_margin", "inventory_value")}},
    )

    def on(a: str) -> str:
        return f"k.cycle = {a}.cycle and k.family is not distinct from {a}.family and k.month = {a}.month"

    return f"""
        with demand as ({demand}), supply as ({supply}), money as ({money}),
        k as (select {keys} from demand union select {keys} from supply union select {keys} from money)
        select {", ".join("k." + c for c in meta)}, k.family, k.month,
               d.demand_units, s.production_units, s.ending_inventory_units, s.shortfall_units, m.shipped_units,
               m.revenue, m.cogs, m.gross_margin, m.inventory_value,
               k.cycle = max(k.cycle) over () as is_current_cycle
        from k
        left join demand d on {on("d")}
        left join supply s on {on("s")}
        left join money m on {on("m")}
    """


def create_bi_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create every `bi` view on this connection's database, with the registry's
    descriptions as view and column comments; returns the view names.

    Idempotent. Views over planning tables that do not exist yet are empty, typed stand-ins
    (see the module docstring); rerun after a step first creates its table (publishing the BI
    copy always does).
    """
    con.execute("create schema if not exists bi")
    views = bi_views()
    for view in views:
        con.execute(f"create or replace view bi.{view.name} as {_view_sql(con, view)}")
        con.execute(f"comment on view bi.{view.name} is {sql_string(view.description)}")
        for column in view.columns:
            con.execute(f'comment on column bi.{view.name}."{column.name}" is {sql_string(describe(column))}')
    return [v.name for v in views]


def default_bi_path(warehouse_path: str | Path) -> Path:
    """Where the BI copy goes: `SOP_BI_WAREHOUSE`, else `sop_bi.duckdb` next to the warehouse."""
    env = os.environ.get("SOP_BI_WAREHOUSE")
    return Path(env) if env else Path(warehouse_path).parent / BI_FILE_NAME


def _attach_read_only(con: duckdb.DuckDBPyConnection, path: Path, alias: str, wait_seconds: float) -> None:
    """ATTACH the source read-only, waiting (like `warehouse.connect`) while a writer holds it."""
    try:
        retry_while_locked(lambda: con.execute(f"attach {sql_string(str(path))} as {alias} (read_only)"), wait_seconds)
    except duckdb.ResourceInUseException as exc:
        raise RuntimeError(f"{path} is open in this process: close the warehouse connection before publishing the BI copy") from exc


def publish_bi_copy(source_path: str | Path, target_path: str | Path | None = None, wait_seconds: float = LOCK_WAIT_SECONDS) -> Path:
    """Publish a consistent copy of the warehouse, with the `bi` views, at `target_path`.

    The copy is built in a temporary file in the target's directory (same file system, so the
    final rename is atomic) while the source is attached read-only: DuckDB's file lock keeps
    every writer out during the copy, so the copy is one committed state. Waits while a writer
    holds the source (up to `wait_seconds`). The calling process must not have the source open
    itself. Returns the target path.
    """
    source = Path(source_path).resolve()
    target = Path(target_path).resolve() if target_path else default_bi_path(source).resolve()
    if target == source:
        raise ValueError("the BI copy must be a different file from the working warehouse")
    if not source.exists():
        raise FileNotFoundError(f"no warehouse at {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    tmp = temp_path(target)
    try:
        con = duckdb.connect()
        try:
            # An older storage format than this DuckDB writes by default, so BI clients that
            # bundle an older DuckDB (the duckdb CLI on PyPI, ODBC/JDBC drivers) can open it.
            con.execute(f"attach {sql_string(str(tmp))} as bi_copy (storage_version {sql_string(BI_STORAGE_VERSION)})")
            con.execute("use bi_copy")
            _attach_read_only(con, source, "sop_source", wait_seconds)
            try:
                schemas = {
                    r[0] for r in con.execute("select schema_name from duckdb_schemas() where database_name = 'sop_source'").fetchall()
                } | {"bi"}
                reader_catalog = target.name.split(".")[0]  # DuckDB names a file's catalog after its name
                if reader_catalog in schemas:
                    # `bi.x` would be ambiguous to readers
                    clash = f"the BI copy's file name {target.name!r} clashes with the schema {reader_catalog!r}"
                    raise ValueError(f"{clash}: choose another name")
                con.execute("copy from database sop_source to bi_copy")
            finally:
                con.execute("detach sop_source")
            con.execute("drop schema if exists bi cascade")  # the source's views, if any: rebuilt below
            create_bi_views(con)
            con.execute("checkpoint")
        finally:
            con.close()
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            if leftover.exists():
                leftover.unlink()
    return target
