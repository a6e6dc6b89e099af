"""The `bi` schema and the published BI copy of the warehouse.

BI tools should not have to know which review step wrote which planning table, nor break when
a step adds a column. The `bi` views are the stable contract: fixed names, fixed columns with
fixed types, documented in `BI_DICTIONARY` (rendered into the README), every cycle kept with an
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
import uuid
from pathlib import Path

import duckdb

from sop_pipeline.warehouse import LOCK_WAIT_SECONDS, retry_while_locked

BI_FILE_NAME = "sop_bi.duckdb"

_CURRENT = ("is_current_cycle", "BOOLEAN", "True for the latest cycle in this view (the one BI dashboards usually show).")
_CYCLE = ("cycle", "VARCHAR", "Planning cycle, YYYY-MM: the month the plan was made in (its first plan month).")
_SCENARIO = ("scenario", "VARCHAR", "Supply scenario: `baseline` or a what-if from models/; the plan of record holds the approved one.")
_MONTH = ("month", "DATE", "Plan month (first day of the month).")
_FAMILY = ("family", "VARCHAR", "Product family.")

# view -> (source table, description, [(column, type, description)]); is_current_cycle is added.
_SIMPLE_VIEWS: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "demand_plan": (
        "planning.consensus_demand",
        "Consensus demand per cycle, SKU and month: the statistical forecast with sales and marketing inputs layered on, with an 80% band.",
        [_CYCLE, ("sku", "VARCHAR", "Stock-keeping unit."), _FAMILY, _MONTH,
         ("quantity", "DOUBLE", "Consensus demand in units."),
         ("p10", "DOUBLE", "10th percentile of demand (units): 1 month in 10 should sell less."),
         ("p90", "DOUBLE", "90th percentile of demand (units): 1 month in 10 should sell more.")],
    ),
    "supply_plan": (
        "planning.supply_plan",
        "Constrained supply plan per cycle, scenario, SKU and month: what is made, what is in stock, what cannot be delivered.",
        [_CYCLE, _SCENARIO, ("sku", "VARCHAR", "Stock-keeping unit."), _FAMILY, _MONTH,
         ("demand", "DOUBLE", "Demand the plan serves (units; the consensus, changed by the scenario's overlays)."),
         ("open_supply", "DOUBLE", "Production orders already scheduled to arrive (units)."),
         ("production", "DOUBLE", "Planned production (units)."),
         ("ending_inventory", "DOUBLE", "Projected stock at month end (units)."),
         ("shortfall", "DOUBLE", "Demand not delivered: month-end backlog (backorder mode) or lost sales (units)."),
         ("safety_stock", "DOUBLE", "Safety stock for the SKU's service level (units)."),
         ("target_inventory", "DOUBLE", "Month-end stock target: safety stock plus cycle stock (units).")],
    ),
    "capacity_plan": (
        "planning.capacity_plan",
        "Load against capacity per cycle, scenario, resource and month, with the value of one more hour.",
        [_CYCLE, _SCENARIO, ("resource", "VARCHAR", "Production resource (line, work centre)."),
         ("plant", "VARCHAR", "Plant of the resource."), _MONTH,
         ("capacity_hours", "DOUBLE", "Regular hours available."),
         ("overtime_available", "DOUBLE", "Overtime hours available on top."),
         ("load_hours", "DOUBLE", "Hours the plan uses (regular and overtime)."),
         ("overtime_hours", "DOUBLE", "Overtime hours the plan uses."),
         ("utilization", "DOUBLE", "load_hours / capacity_hours (above 1 means overtime)."),
         ("shadow_price", "DOUBLE", "What one more hour in this month would save the plan (LP dual, currency per hour); 0 when not binding.")],
    ),
    "financial_plan": (
        "planning.financial_plan",
        "The supply plan in money per cycle, scenario, family and month.",
        [_CYCLE, _SCENARIO, _FAMILY, _MONTH,
         ("volume", "DOUBLE", "Units delivered in the month."),
         ("revenue", "DOUBLE", "Revenue of the delivered units."),
         ("cogs", "DOUBLE", "Cost of goods sold."),
         ("gross_margin", "DOUBLE", "revenue - cogs."),
         ("inventory_value", "DOUBLE", "Month-end inventory at standard cost."),
         ("unconstrained_volume", "DOUBLE", "Units if all consensus demand were delivered."),
         ("unconstrained_revenue", "DOUBLE", "Revenue if all consensus demand were delivered, at the same prices."),
         ("material_cost", "DOUBLE", "Material part of cogs (shipped units x BOM cost)."),
         ("conversion_cost", "DOUBLE", "Conversion part of cogs at regular rates (shipped units x routing hours x cost per hour)."),
         ("overtime_cost", "DOUBLE", "Overtime premium of the month allocated to the family (part of cogs)."),
         ("overtime_hours", "DOUBLE", "Overtime hours allocated to the family.")],
    ),
    "budget_gap": (
        "planning.budget_gap",
        "Plan against the budget (annual operating plan) per cycle, scenario, period, family and measure.",
        [_CYCLE, _SCENARIO, ("family", "VARCHAR", "Product family, or ALL for the company total."),
         ("period", "VARCHAR", "Period grain: month or quarter."),
         ("period_label", "VARCHAR", "The period: 2026-11 for a month, 2026-Q4 for a quarter."),
         ("month", "DATE", "First day of the month; NULL for a quarter."),
         ("measure", "VARCHAR", "volume (units), revenue or gross_margin (money)."),
         ("plan", "DOUBLE", "The plan's value."), ("budget", "DOUBLE", "The budget's value."),
         ("gap", "DOUBLE", "plan - budget."), ("gap_pct", "DOUBLE", "gap / |budget| x 100; NULL when the budget is zero."),
         ("above_tolerance", "BOOLEAN", "The gap exceeds the financial review's tolerance (models/gates.yaml).")],
    ),
    "forecast_accuracy": (
        "planning.forecast_accuracy",
        "How earlier cycles' forecasts did against actuals, per scoring cycle, forecast cycle, layer, family (ALL = total) and lag.",
        [("cycle", "VARCHAR", "Cycle that did the scoring (actuals known up to the month before it)."),
         ("forecast_cycle", "VARCHAR", "Cycle that made the forecast."),
         ("layer", "VARCHAR", "statistical, an input layer (cumulative plan after it, e.g. sales), or consensus."),
         _FAMILY, ("lag", "INTEGER", "Months ahead: 1 = the forecast cycle's own first month."),
         ("points", "BIGINT", "SKU-months scored."), ("actual", "DOUBLE", "Actual units."),
         ("forecast", "DOUBLE", "Forecast units."), ("abs_error", "DOUBLE", "Sum of absolute errors."),
         ("wape", "DOUBLE", "abs_error / actual."), ("bias", "DOUBLE", "(forecast - actual) / actual."),
         ("mase", "DOUBLE", "Absolute errors over those of the seasonal naive forecast."),
         ("naive_wape", "DOUBLE", "WAPE of the seasonal naive forecast on the same points."),
         ("fva_vs_naive", "DOUBLE", "WAPE points gained over seasonal naive (positive = value added)."),
         ("fva_vs_statistical", "DOUBLE", "WAPE points gained over the statistical layer (positive = value added).")],
    ),
    "executive_summary": (
        "planning.executive_summary",
        "Executive KPIs per cycle and scenario, one row per KPI (long format: pivot on scenario to compare).",
        [_CYCLE, _SCENARIO, ("kpi_order", "INTEGER", "Display order."), ("kpi", "VARCHAR", "KPI name, e.g. fill_rate, revenue."),
         ("subject", "VARCHAR", "What the KPI is about when not the company (a bottleneck resource)."),
         ("value", "DOUBLE", "KPI value; NULL when its input was not available this cycle."),
         ("unit", "VARCHAR", "ratio (0-1), currency, units, days, ..."), ("detail", "VARCHAR", "How it was computed, or why it is missing.")],
    ),
}

_POR_META = [_CYCLE, ("scenario", "VARCHAR", "The approved scenario."),
             ("plan_version", "VARCHAR", "Hash of the plan tables the executive approved."),
             ("approved_by", "VARCHAR", "Executive who approved."), ("approved_at", "TIMESTAMP", "When (UTC).")]
_POR_COLUMNS = [*_POR_META, _FAMILY, _MONTH,
                ("demand_units", "DOUBLE", "Consensus demand (units)."),
                ("production", "DOUBLE", "Planned production (units)."),
                ("ending_inventory", "DOUBLE", "Projected month-end stock (units)."),
                ("shortfall", "DOUBLE", "Demand not delivered (units)."),
                ("revenue", "DOUBLE", "Planned revenue."), ("cogs", "DOUBLE", "Cost of goods sold."),
                ("gross_margin", "DOUBLE", "revenue - cogs."), ("inventory_value", "DOUBLE", "Month-end inventory at standard cost.")]
_POR_DESCRIPTION = ("The approved plan (plan of record) per cycle, family and month: demand, supply and money of the scenario "
                    "an executive approved, with the version and approver. Detail per SKU and resource is in "
                    "planning.plan_of_record_demand/_supply/_capacity/_financial.")

BI_DICTIONARY: dict[str, tuple[str, dict[str, str]]] = {
    **{view: (desc, {c: d for c, _, d in [*cols, _CURRENT]}) for view, (_, desc, cols) in _SIMPLE_VIEWS.items()},
    "plan_of_record": (_POR_DESCRIPTION, {c: d for c, _, d in [*_POR_COLUMNS, _CURRENT]}),
}
BI_DICTIONARY["plan_of_record"][1]["is_current_cycle"] = "True for the latest cycle with a published plan of record."


def _columns_of(con: duckdb.DuckDBPyConnection, table: str) -> set[str] | None:
    schema, name = table.split(".")
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?", [schema, name]
    ).fetchall()
    return {r[0] for r in rows} or None


def _typed_select(con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str, str]]) -> str:
    """`select` of the columns with their declared types from `table`; NULL for a column the
    table lacks, and no rows (but the same columns) when the table does not exist."""
    present = _columns_of(con, table)
    if present is None:
        return "select " + ", ".join(f"cast(null as {t}) as {c}" for c, t, _ in columns) + " where false"
    cols = ", ".join(f"cast({c} as {t}) as {c}" if c in present else f"cast(null as {t}) as {c}" for c, t, _ in columns)
    return f"select {cols} from {table}"


def _plan_of_record_sql(con: duckdb.DuckDBPyConnection) -> str:
    meta = [c for c, _, _ in _POR_META]
    keys = ", ".join(meta + ["family", "month"])

    def part(table: str, measures: dict[str, tuple[str, str]]) -> str:
        # measures: output column -> (source column, type)
        source_cols = [*_POR_META, _FAMILY, _MONTH] + [(src, t, "") for src, t in measures.values()]
        sums = ", ".join(f"sum({src}) as {out}" for out, (src, _) in measures.items())
        return f"select {keys}, {sums} from ({_typed_select(con, table, source_cols)}) group by all"

    demand = part("planning.plan_of_record_demand", {"demand_units": ("quantity", "DOUBLE")})
    supply = part("planning.plan_of_record_supply", {c: (c, "DOUBLE") for c in ("production", "ending_inventory", "shortfall")})
    money = part("planning.plan_of_record_financial", {c: (c, "DOUBLE") for c in ("revenue", "cogs", "gross_margin", "inventory_value")})

    def on(a: str) -> str:
        return f"k.cycle = {a}.cycle and k.family is not distinct from {a}.family and k.month = {a}.month"

    return f"""
        with demand as ({demand}), supply as ({supply}), money as ({money}),
        k as (select {keys} from demand union select {keys} from supply union select {keys} from money)
        select {', '.join('k.' + c for c in meta)}, k.family, k.month,
               d.demand_units, s.production, s.ending_inventory, s.shortfall,
               m.revenue, m.cogs, m.gross_margin, m.inventory_value,
               k.cycle = max(k.cycle) over () as is_current_cycle
        from k
        left join demand d on {on('d')}
        left join supply s on {on('s')}
        left join money m on {on('m')}
    """


def create_bi_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create every `bi` view on this connection's database; returns the view names.

    Idempotent. Views over planning tables that do not exist yet are empty, typed stand-ins
    (see the module docstring); rerun after a step first creates its table (publishing the BI
    copy always does).
    """
    con.execute("create schema if not exists bi")
    for view, (table, _, columns) in _SIMPLE_VIEWS.items():
        con.execute(
            f"create or replace view bi.{view} as "
            f"select *, cycle = max(cycle) over () as is_current_cycle from ({_typed_select(con, table, columns)})"
        )
    con.execute(f"create or replace view bi.plan_of_record as {_plan_of_record_sql(con)}")
    for view, (description, _) in BI_DICTIONARY.items():
        con.execute(f"comment on view bi.{view} is '{description.replace(chr(39), chr(39) * 2)}'")
    return list(BI_DICTIONARY)


def default_bi_path(warehouse_path: str | Path) -> Path:
    """Where the BI copy goes: `SOP_BI_WAREHOUSE`, else `sop_bi.duckdb` next to the warehouse."""
    env = os.environ.get("SOP_BI_WAREHOUSE")
    return Path(env) if env else Path(warehouse_path).parent / BI_FILE_NAME


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _attach_read_only(con: duckdb.DuckDBPyConnection, path: Path, alias: str, wait_seconds: float) -> None:
    """ATTACH the source read-only, waiting (like `warehouse.connect`) while a writer holds it."""
    try:
        retry_while_locked(lambda: con.execute(f"attach {_sql_string(str(path))} as {alias} (read_only)"), wait_seconds)
    except duckdb.ResourceInUseException as exc:
        raise RuntimeError(
            f"{path} is open in this process: close the warehouse connection before publishing the BI copy"
        ) from exc


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
    tmp = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        con = duckdb.connect(str(tmp))
        try:
            own = con.execute("select current_database()").fetchall()[0][0]
            _attach_read_only(con, source, "sop_source", wait_seconds)
            try:
                schemas = {r[0] for r in con.execute(
                    "select schema_name from duckdb_schemas() where database_name = 'sop_source'").fetchall()} | {"bi"}
                if own in schemas:
                    # DuckDB names a file's catalog after its name: `bi.x` would be ambiguous to readers.
                    raise ValueError(f"the BI copy's file name {target.name!r} clashes with the schema {own!r}: choose another name")
                con.execute(f'copy from database sop_source to "{own}"')
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
