"""Executive review: KPIs and exceptions, the approval of one plan version, the plan of record.

The executive meeting does not re-plan; it chooses. It sees every scenario's headline numbers
side by side, only the exceptions that are worth its time (above the materiality thresholds in
`models/gates.yaml`, ranked by money), and approves one scenario. An approval is bound to a
*plan version*: a hash of the cycle's plan tables. If anyone reruns a step after the approval
and a single number changes, the version changes, the approval no longer matches and the plan
of record refuses to publish: executives approve numbers, not a table name.

The plan of record is the approved scenario's demand, supply, capacity and financial rows,
copied into `planning.plan_of_record_*` with the version and the approver, so BI tools and
later cycles can always say what was agreed, even after the cycle's working tables are rerun.

Everything here is plain functions on polars frames or on a DuckDB connection; the review pack
is drawn with matplotlib's object API (no pyplot state).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

from sop_pipeline.warehouse import (
    add_months,
    cycle_label,
    cycle_month,
    query,
    table_exists,
)

BASELINE = "baseline"
APPROVED = "approved"
# Planning tables that describe the plan's review rather than the plan itself: recording a
# decision or a checkpoint, or publishing the plan of record, must not change the version
# that was approved.
NOT_PLAN_TABLES = frozenset({"decisions", "checkpoints", "executive_summary", "executive_exceptions"})
NOT_PLAN_PREFIXES = ("plan_of_record",)
# The plan of record: target table -> the working table it copies.
PLAN_OF_RECORD_SOURCES = {
    "planning.plan_of_record_demand": "planning.consensus_demand",
    "planning.plan_of_record_supply": "planning.supply_plan",
    "planning.plan_of_record_capacity": "planning.capacity_plan",
    "planning.plan_of_record_financial": "planning.financial_plan",
}
DAYS_PER_MONTH = 365.25 / 12
VERSION_SHOWN = 12  # characters of the version hash shown in messages


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutiveGates:
    """Materiality thresholds and KPI window (models/gates.yaml, `executive_review`)."""

    kpi_horizon_months: int = 12
    top_bottlenecks: int = 3
    shortfall_revenue: float = 10_000.0
    budget_gap_amount: float = 50_000.0
    budget_gap_pct: float = 5.0
    budget_gap_period: str = "month"
    utilization: float = 0.95
    capacity_money: float = 0.0
    max_exceptions_in_pack: int = 15


def load_executive_gates(path: str | Path) -> ExecutiveGates:
    raw = (yaml.safe_load(Path(path).read_text()) or {}).get("executive_review", {}) or {}
    m = raw.get("materiality", {}) or {}
    d = ExecutiveGates()
    return ExecutiveGates(
        kpi_horizon_months=int(raw.get("kpi_horizon_months", d.kpi_horizon_months)),
        top_bottlenecks=int(raw.get("top_bottlenecks", d.top_bottlenecks)),
        shortfall_revenue=float(m.get("shortfall_revenue", d.shortfall_revenue)),
        budget_gap_amount=float(m.get("budget_gap_amount", d.budget_gap_amount)),
        budget_gap_pct=float(m.get("budget_gap_pct", d.budget_gap_pct)),
        budget_gap_period=str(raw.get("budget_gap_period", d.budget_gap_period)),
        utilization=float(m.get("utilization", d.utilization)),
        capacity_money=float(m.get("capacity_money", d.capacity_money)),
        max_exceptions_in_pack=int(raw.get("max_exceptions_in_pack", d.max_exceptions_in_pack)),
    )


# --------------------------------------------------------------------------------------------
# Plan version
# --------------------------------------------------------------------------------------------


def plan_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The `planning` tables that make up a cycle's plan: every table with a `cycle` column,
    except the review's own records (decisions, checkpoints, summary, plan of record)."""
    names = query(
        con,
        "select distinct table_name from information_schema.columns "
        "where table_schema = 'planning' and column_name = 'cycle' order by table_name",
    )["table_name"].to_list()
    return [n for n in names if n not in NOT_PLAN_TABLES and not n.startswith(NOT_PLAN_PREFIXES)]


def plan_version(con: duckdb.DuckDBPyConnection, cycle: str) -> str:
    """sha256 (hex) of the cycle's rows in every plan table: same content, same version.

    Each table contributes its name, its column names and types, its row count and two
    order-independent aggregates of DuckDB's 64-bit hash of each whole row (their sum and their
    xor). So the version does not depend on insertion order or threads, and any changed number,
    added or removed row changes it (barring a 64-bit hash collision). It is computed inside
    DuckDB: 0.4 s for 5 million rows on two cores, where sorting and rendering the rows as CSV
    took 14 s, so the approval sensor can afford it. DuckDB's row hash may change
    with a DuckDB upgrade: an approval given before the upgrade then needs renewing, which is
    the safe direction.
    """
    label = cycle_label(cycle)
    digest = hashlib.sha256(f"sop plan version 1\ncycle {label}\n".encode())
    for table in plan_tables(con):
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'planning' and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
        # Timings (`*_seconds`) change on every run without changing the plan.
        content = [name for name, _ in columns if not name.endswith("_seconds")]
        columns = [c for c in columns if c[0] in content]
        row = "row(" + ", ".join(f'"{name}"' for name in content) + ")"
        rows, total, xor = con.execute(
            f"select count(*), coalesce(sum(hash({row})), 0), coalesce(bit_xor(hash({row})), 0) from planning.{table} where cycle = ?",
            [label],
        ).fetchall()[0]
        digest.update(f"table planning.{table}\n{columns}\n{rows} {total} {xor}\n".encode())
    return digest.hexdigest()


_version_of = plan_version  # `record_decision` has a parameter of the same name


def _utc_naive(moment: dt.datetime | None) -> dt.datetime:
    """Timestamps are stored as UTC without a time zone; a naive input is taken as UTC."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _short(version: str | None) -> str:
    return f"{version[:VERSION_SHOWN]}..." if version else "(none)"


# --------------------------------------------------------------------------------------------
# Decisions and approval
# --------------------------------------------------------------------------------------------

_DECISIONS_DDL = """
create table if not exists planning.decisions (
    cycle varchar, scenario varchar, decision varchar, decided_by varchar,
    note varchar, plan_version varchar, decided_at timestamp
)"""


class PlanNotApprovedError(RuntimeError):
    """The plan of record was asked for a plan version no executive approved."""


def cycle_scenarios(con: duckdb.DuckDBPyConnection, cycle: str) -> list[str]:
    """Scenarios present in the cycle's plan tables (baseline first), [] when none has one."""
    label = cycle_label(cycle)
    found: set[str] = set()
    tables = query(
        con,
        "select distinct table_name from information_schema.columns where table_schema = 'planning' and column_name = 'scenario'",
    )["table_name"].to_list()
    for table in sorted(set(tables) & set(plan_tables(con))):
        found |= set(query(con, f"select distinct scenario from planning.{table} where cycle = ?", [label])["scenario"].drop_nulls())
    return _scenario_order(found)


def _scenario_order(names) -> list[str]:
    names = set(names)
    return ([BASELINE] if BASELINE in names else []) + sorted(names - {BASELINE})


def record_decision(
    con: duckdb.DuckDBPyConnection,
    cycle: str,
    scenario: str,
    by: str,
    note: str = "",
    plan_version: str | None = None,
    decided_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Append an approval of `scenario` to `planning.decisions` and return the row.

    `plan_version` is the version the executive reviewed (the review pack's title page shows
    it); it defaults to the current one. An approval of an older version is still recorded (it
    is what happened) but `approval_status` will report it as not matching. `decided_at` is
    stored as a UTC timestamp without time zone. Decisions are never updated or deleted: the
    table is the audit trail.
    """
    label = cycle_label(cycle)
    if not (by or "").strip():
        raise ValueError("an approval needs the name of the executive who approves (`by`)")
    scenarios = cycle_scenarios(con, label) or [BASELINE]  # without a supply review there is only the baseline
    if scenario not in scenarios:
        raise ValueError(f"scenario {scenario!r} is not in cycle {label}'s plan (scenarios: {', '.join(scenarios)})")
    row = {
        "cycle": label,
        "scenario": scenario,
        "decision": APPROVED,
        "decided_by": by.strip(),
        "note": note or "",
        "plan_version": plan_version or _version_of(con, label),
        "decided_at": _utc_naive(decided_at),
    }
    con.execute("create schema if not exists planning")
    con.execute(_DECISIONS_DDL)
    con.execute(
        "insert into planning.decisions (cycle, scenario, decision, decided_by, note, plan_version, decided_at) values (?, ?, ?, ?, ?, ?, ?)",
        [row[k] for k in ("cycle", "scenario", "decision", "decided_by", "note", "plan_version", "decided_at")],
    )
    return row


def approval_status(con: duckdb.DuckDBPyConnection, cycle: str) -> dict[str, Any]:
    """Does the latest approval of the cycle cover the plan as it is now?

    Returns `current_version`, `latest_approval` (the decisions row as a dict, or None),
    `matches` (True only when the latest approval is for the current version) and `reason`, a
    sentence for the CLI, the review pack and the approval sensor.
    """
    label = cycle_label(cycle)
    current = plan_version(con, label)
    latest = None
    if table_exists(con, "planning", "decisions"):
        rows = query(
            con,
            "select * from planning.decisions where cycle = ? and decision = ? order by decided_at desc, rowid desc limit 1",
            [label, APPROVED],
        ).to_dicts()
        latest = rows[0] if rows else None
    if latest is None:
        return {"current_version": current, "latest_approval": None, "matches": False, "reason": "no approval yet"}
    if latest["plan_version"] == current:
        reason = (f"scenario {latest['scenario']} approved by {latest['decided_by']} at "
                  f"{latest['decided_at']:%Y-%m-%d %H:%M} UTC for version {_short(current)}")
        return {"current_version": current, "latest_approval": latest, "matches": True, "reason": reason}
    reason = (f"plan changed after approval: approved version {_short(latest['plan_version'])} != current "
              f"{_short(current)} (scenario {latest['scenario']} approved by {latest['decided_by']} at "
              f"{latest['decided_at']:%Y-%m-%d %H:%M} UTC); the plan needs a new approval")
    return {"current_version": current, "latest_approval": latest, "matches": False, "reason": reason}


# --------------------------------------------------------------------------------------------
# Plan of record
# --------------------------------------------------------------------------------------------


def build_plan_of_record(con: duckdb.DuckDBPyConnection, cycle: str, scenario: str) -> dict[str, pl.DataFrame]:
    """The approved scenario's plan, keyed by target table (`planning.plan_of_record_*`).

    One table per grain (demand per SKU-month, supply per SKU-month, capacity per
    resource-month, financial per family-month), each the working table's columns for that
    scenario (consensus demand has no scenario: it is the same for all) with `scenario`,
    `plan_version`, `approved_by` and `approved_at` in front. Working tables that do not exist
    this cycle are left out. Raises PlanNotApprovedError unless the latest approval is for
    this scenario and for the plan as it is now.
    """
    label = cycle_label(cycle)
    status = approval_status(con, label)
    approval = status["latest_approval"]
    if approval is None or not status["matches"]:
        raise PlanNotApprovedError(f"cycle {label}: no plan of record without a matching approval: {status['reason']}")
    if approval["scenario"] != scenario:
        raise PlanNotApprovedError(
            f"cycle {label}: scenario {scenario} is not the approved one (approved: {approval['scenario']} by {approval['decided_by']})"
        )
    frames: dict[str, pl.DataFrame] = {}
    for target, source in PLAN_OF_RECORD_SOURCES.items():
        schema, name = source.split(".")
        if not table_exists(con, schema, name):
            continue
        rows = query(con, f"select * from {source} where cycle = ? order by all", [label])
        if "scenario" in rows.columns:
            rows = rows.filter(pl.col("scenario") == scenario)
        frames[target] = rows.select(
            pl.lit(label).alias("cycle"),
            pl.lit(scenario).alias("scenario"),
            pl.lit(status["current_version"]).alias("plan_version"),
            pl.lit(approval["decided_by"]).alias("approved_by"),
            pl.lit(approval["decided_at"], dtype=pl.Datetime("us")).alias("approved_at"),
            pl.exclude("cycle", "scenario"),
        )
    if not frames:
        raise PlanNotApprovedError(f"cycle {label}: there is no demand, supply, capacity or financial plan to publish")
    return frames


def publish_plan_of_record(con: duckdb.DuckDBPyConnection, cycle: str, scenario: str) -> dict[str, int]:
    """Build the plan of record and replace the cycle's rows of every `plan_of_record_*`
    table in one transaction: readers see the old plan of record or the new one, never a mix.
    Returns rows written per table."""
    label = cycle_label(cycle)
    frames = build_plan_of_record(con, label, scenario)
    written: dict[str, int] = {}
    con.execute("create schema if not exists planning")
    con.execute("begin transaction")
    try:
        for target in PLAN_OF_RECORD_SOURCES:
            name = target.split(".")[1]
            frame = frames.get(target)
            if frame is None:
                if table_exists(con, "planning", name):  # a source gone since the last publish
                    con.execute(f"delete from {target} where cycle = ?", [label])
                continue
            con.register("por_frame", frame.to_arrow())
            try:
                if not table_exists(con, "planning", name):
                    con.execute(f"create table {target} as select * from por_frame limit 0")
                con.execute(f"delete from {target} where cycle = ?", [label])
                con.execute(f"insert into {target} by name select * from por_frame")
            finally:
                con.unregister("por_frame")
            written[target] = frame.height
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return written


def plan_of_record_version(con: duckdb.DuckDBPyConnection, cycle: str) -> str | None:
    """The plan version the published plan of record of the cycle holds, or None."""
    label = cycle_label(cycle)
    versions: set[str] = set()
    for target in PLAN_OF_RECORD_SOURCES:
        if table_exists(con, *target.split(".")):
            versions |= set(query(con, f"select distinct plan_version from {target} where cycle = ?", [label])["plan_version"])
    return versions.pop() if len(versions) == 1 else None


# --------------------------------------------------------------------------------------------
# Checkpoints and status
# --------------------------------------------------------------------------------------------

_CHECKPOINTS_DDL = """
create table if not exists planning.checkpoints (
    cycle varchar, checkpoint varchar, passed boolean, description varchar, evaluated_at timestamp, blocking boolean
)"""

# Review steps and the planning tables that show a step ran, in cycle order.
STEP_TABLES = {
    "product review": ["product_portfolio", "product_segmentation"],
    "demand review": ["statistical_forecast", "forecast_backtest", "demand_plan_layers", "consensus_demand", "forecast_accuracy"],
    "supply review": ["inventory_targets", "supply_plan", "capacity_plan", "material_plan", "supply_exceptions", "bottlenecks",
                      "supply_scenarios"],
    "financial review": ["financial_plan", "budget_gap", "plan_bridge", "reconciliation", "scenario_financials"],
    "executive review": ["executive_summary", "executive_exceptions"],
    "plan of record": [t.split(".")[1] for t in PLAN_OF_RECORD_SOURCES],
}


def record_checkpoint(
    con: duckdb.DuckDBPyConnection, cycle: str, checkpoint: str, passed: bool, description: str, blocking: bool = True
) -> None:
    """Record a checkpoint's latest outcome for the cycle (one row per cycle and checkpoint:
    a rerun replaces it), so `sop status` can tell without asking Dagster. A failed
    non-blocking check (a warning such as `overrides_have_reasons`) is shown, but the cycle
    does not wait for it."""
    label = cycle_label(cycle)
    con.execute("create schema if not exists planning")
    con.execute(_CHECKPOINTS_DDL)
    con.execute("begin transaction")
    try:
        con.execute("delete from planning.checkpoints where cycle = ? and checkpoint = ?", [label, checkpoint])
        con.execute(
            "insert into planning.checkpoints (cycle, checkpoint, passed, description, evaluated_at, blocking) values (?, ?, ?, ?, ?, ?)",
            [label, checkpoint, bool(passed), description, _utc_naive(None), bool(blocking)],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def failed_gates(con: duckdb.DuckDBPyConnection, cycle: str, gates: list[str]) -> list[str]:
    """The blocking checkpoints of `gates` that have not passed for the cycle (missing counts
    as not passed: a plan whose checks never ran is not a plan anyone can approve)."""
    label = cycle_label(cycle)
    if not table_exists(con, "planning", "checkpoints"):
        return list(gates)
    rows = query(con, "select checkpoint, passed from planning.checkpoints where cycle = ?", [label])
    passed = {r["checkpoint"] for r in rows.iter_rows(named=True) if r["passed"]}
    return [g for g in gates if g not in passed]


def status_report(con: duckdb.DuckDBPyConnection, cycle: str) -> list[str]:
    """Lines for `sop status --cycle`: checkpoints, tables per review step, approval, and
    what the cycle waits for and from whom."""
    label = cycle_label(cycle)
    lines = [f"cycle {label}"]
    failed: list[str] = []
    if table_exists(con, "planning", "checkpoints"):
        checks = query(con, "select * from planning.checkpoints where cycle = ? order by evaluated_at, checkpoint", [label])
    else:
        checks = pl.DataFrame()
    if checks.height:
        lines.append("checkpoints:")
        for row in checks.iter_rows(named=True):
            blocking = row.get("blocking") is not False
            mark = "passed" if row["passed"] else ("FAILED" if blocking else "WARNING")
            lines.append(f"  {row['checkpoint']}: {mark} ({row['evaluated_at']:%Y-%m-%d %H:%M} UTC) {row['description'] or ''}".rstrip())
            if not row["passed"] and blocking:
                failed.append(row["checkpoint"])
    else:
        lines.append("checkpoints: none recorded for this cycle yet")
    existing = set(query(con, "select table_name from information_schema.tables where table_schema = 'planning'")["table_name"])
    lines.append("planning tables (rows this cycle):")
    ran: dict[str, bool] = {}
    for step, tables in STEP_TABLES.items():
        counts = []
        for table in tables:
            if table in existing:
                n = query(con, f"select count(*) as n from planning.{table} where cycle = ?", [label])["n"][0]
                if n:
                    counts.append(f"{table} {n:,}")
        ran[step] = bool(counts)
        lines.append(f"  {step}: " + (", ".join(counts) if counts else "no rows"))
    known = {t for tables in STEP_TABLES.values() for t in tables} | NOT_PLAN_TABLES
    others = []
    for table in sorted(set(plan_tables(con)) - known):
        n = query(con, f"select count(*) as n from planning.{table} where cycle = ?", [label])["n"][0]
        if n:
            others.append(f"{table} {n:,}")
    if others:
        lines.append("  other: " + ", ".join(others))
    status = approval_status(con, label)
    lines.append(f"plan version: {_short(status['current_version'])}")
    lines.append(f"approval: {status['reason']}")
    scenarios = cycle_scenarios(con, label) or [BASELINE]
    if failed:
        waiting = f"waiting for planners: checkpoint(s) {', '.join(failed)} failed; fix the input and rerun the step"
    elif status["matches"] and plan_of_record_version(con, label) == status["current_version"]:
        waiting = f"plan of record published (scenario {status['latest_approval']['scenario']}, version {_short(status['current_version'])})"
    elif not ran["demand review"]:
        waiting = "waiting for the demand review to run (sop run)"
    elif not ran["executive review"]:
        waiting = "waiting for the executive review step to run (KPIs and the review pack)"
    elif status["latest_approval"] is None:
        which = scenarios[0] if len(scenarios) == 1 else "one of " + ", ".join(scenarios)
        waiting = f"waiting for an executive to approve scenario {which} (sop approve)"
    elif not status["matches"]:
        waiting = f"waiting for an executive to approve again: the plan changed after scenario {status['latest_approval']['scenario']} was approved"
    else:
        waiting = "approved; waiting for the plan of record to be published (approval sensor or sop run)"
    lines.append(waiting)
    return lines


def load_cycle_frames(con: duckdb.DuckDBPyConnection, cycle: str, tables: list[str] | None = None) -> dict[str, pl.DataFrame]:
    """The cycle's rows of every planning table that exists (or of `tables`), by table name."""
    label = cycle_label(cycle)
    existing = query(con, "select distinct table_name from information_schema.columns where table_schema = 'planning' and column_name = 'cycle'")
    names = [n for n in existing["table_name"].to_list() if tables is None or n in tables]
    return {n: query(con, f"select * from planning.{n} where cycle = ?", [label]) for n in sorted(names)}


# --------------------------------------------------------------------------------------------
# KPIs
# --------------------------------------------------------------------------------------------

SUMMARY_SCHEMA = {
    "cycle": pl.Utf8, "scenario": pl.Utf8, "kpi_order": pl.Int32, "kpi": pl.Utf8, "subject": pl.Utf8,
    "value": pl.Float64, "unit": pl.Utf8, "detail": pl.Utf8,
}
EXCEPTIONS_SCHEMA = {
    "cycle": pl.Utf8, "scenario": pl.Utf8, "rank": pl.Int32, "kind": pl.Utf8, "subject": pl.Utf8, "month": pl.Date,
    "period_label": pl.Utf8, "money": pl.Float64, "description": pl.Utf8,
}


def _present(frame: pl.DataFrame | None, *columns: str) -> bool:
    return frame is not None and frame.height > 0 and all(c in frame.columns for c in columns)


def _for_scenario(frame: pl.DataFrame, scenario: str) -> pl.DataFrame:
    return frame.filter(pl.col("scenario") == scenario) if "scenario" in frame.columns else frame


def _window(frame: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    return frame.filter((pl.col("month") >= start) & (pl.col("month") < end)) if "month" in frame.columns else frame


def late_units_expr(shortfall_mode: str) -> pl.Expr:
    """Units of a month's demand not delivered in that month (as `supply_review.late_units`):
    lost sales are the shortfall; a backlog holds the newest demand first, so at most the
    month's demand of it is this month's."""
    return pl.col("shortfall") if shortfall_mode == "lost_sales" else pl.min_horizontal("demand", "shortfall")


def scenarios_of(*frames: pl.DataFrame | None) -> list[str]:
    names: set[str] = set()
    for frame in frames:
        if frame is not None and "scenario" in frame.columns:
            names |= set(frame["scenario"].drop_nulls().to_list())
    return _scenario_order(names) or [BASELINE]


def _budget_rows(budget_gap: pl.DataFrame, gates: ExecutiveGates) -> pl.DataFrame:
    """Budget gap rows at one period grain (the configured one when `period` names grains,
    else the grain with most rows) and per family (the company total is dropped when family
    rows exist, so nothing counts twice). `gap` and `gap_pct` are recomputed from plan and
    budget so their sign and unit are known: gap = plan - budget, gap_pct in percent."""
    rows = budget_gap
    if "period" in rows.columns and rows["period"].dtype == pl.Utf8 and rows.height:
        grains = rows["period"].value_counts(sort=True)
        grain = gates.budget_gap_period if gates.budget_gap_period in grains["period"].to_list() else grains["period"][0]
        rows = rows.filter(pl.col("period") == grain)
    if "family" in rows.columns:
        families = rows.filter(~pl.col("family").str.to_uppercase().is_in(["ALL", "TOTAL"]))
        rows = families if families.height else rows
    label = pl.col("period_label").cast(pl.Utf8) if "period_label" in rows.columns else (
        pl.col("period").cast(pl.Utf8) if "period" in rows.columns else pl.lit(None, pl.Utf8))
    return rows.with_columns(
        (pl.col("plan") - pl.col("budget")).alias("gap"),
        pl.when(pl.col("budget").abs() > 0).then(100 * (pl.col("plan") - pl.col("budget")) / pl.col("budget").abs()).alias("gap_pct"),
        label.alias("period_label"),
    )


def executive_summary(
    cycle: str,
    supply_plan: pl.DataFrame | None = None,
    capacity_plan: pl.DataFrame | None = None,
    financial_plan: pl.DataFrame | None = None,
    budget_gap: pl.DataFrame | None = None,
    forecast_accuracy: pl.DataFrame | None = None,
    gates: ExecutiveGates | None = None,
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """KPIs per scenario, long format (`planning.executive_summary`).

    Over the first `kpi_horizon_months` of the horizon: fill rate (1 - late units / demand),
    late units, revenue, gross margin and its share of revenue, average month-end inventory
    value, days of supply (average inventory value / average daily cost of goods sold; in units
    from the supply plan when there is no financial plan), the peak utilisation of the top
    bottlenecks (resources ranked by shadow price x load hours, then by peak utilisation). Over
    the budget: plan - budget for revenue and gross margin. From accuracy: the consensus's
    lag-1 WAPE pooled over all scored forecast cycles, the latest lag-1 bias and its trend
    (least-squares slope per forecast cycle). Accuracy does not depend on the scenario and is
    repeated for each. A KPI whose input is absent gets a row with a null value and the reason
    in `detail`, so the gap is visible rather than silent.
    """
    gates = gates or ExecutiveGates()
    label = cycle_label(cycle)
    start = cycle_month(label)
    end = add_months(start, gates.kpi_horizon_months)
    window = f"{start:%Y-%m}..{add_months(end, -1):%Y-%m}"
    rows: list[dict[str, Any]] = []
    order: dict[str, int] = {}  # the same KPI has the same kpi_order in every scenario
    scenarios = scenarios_of(supply_plan, capacity_plan, financial_plan, budget_gap)

    def add(scenario: str, kpi: str, value: float | None, unit: str, detail: str, subject: str | None = None) -> None:
        number = None if value is None else float(value)
        rows.append({"cycle": label, "scenario": scenario, "kpi_order": order.setdefault(kpi, len(order)), "kpi": kpi, "subject": subject,
                     "value": number, "unit": unit, "detail": detail})

    def rows_of(frame: pl.DataFrame | None, scenario: str, *needed: str) -> tuple[pl.DataFrame | None, str]:
        """The scenario's rows in the KPI window, or None and why not."""
        if not _present(frame, *needed):
            return None, "this cycle"
        part = _window(_for_scenario(frame, scenario), start, end)
        return (part, "") if part.height else (None, "this scenario")

    accuracy = _accuracy_kpis(forecast_accuracy, label)
    for scenario in scenarios:
        plan, plan_why = rows_of(supply_plan, scenario, "month", "demand", "shortfall")
        fin, fin_why = rows_of(financial_plan, scenario, "month", "revenue")
        cap, cap_why = rows_of(capacity_plan, scenario, "resource", "month", "utilization")
        # Service
        if plan is not None:
            demand = float(plan["demand"].sum())
            late = float(plan.select(late_units_expr(shortfall_mode).sum()).item() or 0.0)
            add(scenario, "fill_rate", 1 - late / demand if demand > 0 else 1.0, "ratio",
                f"1 - late units / demand, {window} ({shortfall_mode})")
            add(scenario, "late_units", late, "units", f"demand not delivered in its month, {window}")
        else:
            add(scenario, "fill_rate", None, "ratio", f"not available: no supply plan {plan_why}")
        # Money
        if fin is not None:
            revenue = float(fin["revenue"].sum())
            add(scenario, "revenue", revenue, "currency", f"planned revenue, {window}")
            if "gross_margin" in fin.columns:
                margin = float(fin["gross_margin"].sum())
                add(scenario, "gross_margin", margin, "currency", f"revenue - cost of goods sold, {window}")
                add(scenario, "gross_margin_pct", margin / revenue if revenue else None, "ratio", "gross margin / revenue")
        else:
            add(scenario, "revenue", None, "currency", f"not available: no financial plan {fin_why}")
        if fin is not None and "inventory_value" in fin.columns:
            months = fin["month"].n_unique()
            inventory = float(fin["inventory_value"].sum()) / months
            add(scenario, "inventory_value", inventory, "currency", f"average month-end inventory value, {window}")
            cogs = float(fin["cogs"].sum()) if "cogs" in fin.columns else 0.0
            if cogs > 0:
                add(scenario, "days_of_supply", inventory / (cogs / (months * DAYS_PER_MONTH)), "days",
                    "average inventory value / average daily cost of goods sold")
        elif plan is not None and "ending_inventory" in plan.columns:
            months = plan["month"].n_unique()
            daily = float(plan["demand"].sum()) / (months * DAYS_PER_MONTH)
            add(scenario, "days_of_supply", float(plan["ending_inventory"].sum()) / months / daily if daily > 0 else None, "days",
                "average month-end inventory / average daily demand, in units (no financial plan)")
        # Capacity
        if cap is not None:
            for k, row in enumerate(_top_bottlenecks(cap, gates.top_bottlenecks), 1):
                add(scenario, f"bottleneck_{k}_peak_utilization", row["peak_utilization"], "ratio",
                    f"{row['resource']} ({row['plant'] or 'no plant'}): peak load / regular capacity in {row['peak_month']:%Y-%m}; "
                    f"shadow value {row['shadow_value']:,.0f}", subject=row["resource"])
        else:
            add(scenario, "bottleneck_1_peak_utilization", None, "ratio", f"not available: no capacity plan {cap_why}")
        # Budget
        budget = _budget_rows(_for_scenario(budget_gap, scenario), gates) if _present(budget_gap, "measure", "plan", "budget") else None
        if budget is not None and budget.height:
            for measure in ("revenue", "gross_margin"):
                part = budget.filter(pl.col("measure") == measure)
                if not part.height:
                    continue
                plan_total, budget_total = float(part["plan"].sum()), float(part["budget"].sum())
                add(scenario, f"budget_gap_{measure}", plan_total - budget_total, "currency",
                    f"plan - budget over {part['period_label'].n_unique()} budgeted period(s)")
                add(scenario, f"budget_gap_{measure}_pct", (plan_total - budget_total) / abs(budget_total) if budget_total else None,
                    "ratio", "gap / budget")
        else:
            why = "this scenario" if budget is not None else "this cycle (no budget or no financial plan)"
            add(scenario, "budget_gap_revenue", None, "currency", f"not available: no budget gap {why}")
        for kpi, value, unit, detail in accuracy:
            add(scenario, kpi, value, unit, detail)
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA) if rows else pl.DataFrame(schema=SUMMARY_SCHEMA)


def _top_bottlenecks(capacity: pl.DataFrame, top_n: int) -> list[dict[str, Any]]:
    """Resources ranked by what their scarcity is worth to the plan (shadow price x load, as
    the supply review ranks bottlenecks), then by peak utilisation when no constraint binds."""
    shadow = (pl.col("shadow_price").fill_null(0) * pl.col("load_hours").fill_null(0)) if {"shadow_price", "load_hours"} <= set(capacity.columns) else pl.lit(0.0)
    plant = pl.col("plant") if "plant" in capacity.columns else pl.lit(None, pl.Utf8)
    ranked = (
        capacity.with_columns(shadow.alias("_shadow"), plant.alias("plant"))
        .sort("utilization", descending=True, nulls_last=True)
        .group_by("resource")
        .agg(
            pl.col("plant").first(),
            pl.col("utilization").max().alias("peak_utilization"),
            pl.col("month").first().alias("peak_month"),
            pl.col("_shadow").sum().alias("shadow_value"),
        )
        .sort(["shadow_value", "peak_utilization", "resource"], descending=[True, True, False])
    )
    return ranked.head(top_n).to_dicts()


def _accuracy_kpis(accuracy: pl.DataFrame | None, label: str) -> list[tuple[str, float | None, str, str]]:
    if not _present(accuracy, "layer", "lag", "actual", "forecast"):
        return [("forecast_wape_lag1", None, "ratio", "not available: no earlier cycle scored yet")]
    rows = accuracy.filter((pl.col("layer") == "consensus") & (pl.col("lag") == 1))
    if "cycle" in rows.columns:
        rows = rows.filter(pl.col("cycle") == label)
    if "family" in rows.columns:
        total = rows.filter(pl.col("family") == "ALL")
        rows = total if total.height else rows
    if not rows.height:
        return [("forecast_wape_lag1", None, "ratio", "not available: no lag-1 consensus forecast scored yet")]
    error = pl.col("abs_error") if "abs_error" in rows.columns else (pl.col("forecast") - pl.col("actual")).abs()
    per_cycle = (
        rows.group_by("forecast_cycle")
        .agg(error.sum().alias("abs_error"), pl.col("actual").sum(), pl.col("forecast").sum())
        .sort("forecast_cycle")
        .with_columns(pl.when(pl.col("actual") > 0).then((pl.col("forecast") - pl.col("actual")) / pl.col("actual")).alias("bias"))
    )
    actual = float(per_cycle["actual"].sum())
    n = per_cycle.height
    out = [("forecast_wape_lag1", float(per_cycle["abs_error"].sum()) / actual if actual > 0 else None, "ratio",
            f"consensus, lag 1, pooled over {n} forecast cycle(s) ({per_cycle['forecast_cycle'][0]}..{per_cycle['forecast_cycle'][-1]})")]
    latest = per_cycle.row(-1, named=True)
    out.append(("forecast_bias_lag1", latest["bias"], "ratio", f"(forecast - actual) / actual of forecast cycle {latest['forecast_cycle']}"))
    series = per_cycle.drop_nulls("bias")
    text = ", ".join(f"{c} {100 * b:+.1f}%" for c, b in series.select("forecast_cycle", "bias").iter_rows())
    if series.height >= 2:
        x = pl.Series(range(series.height), dtype=pl.Float64)
        y = series["bias"]
        slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
        out.append(("forecast_bias_trend", slope, "ratio per cycle", f"least-squares slope of lag-1 bias: {text}"))
    else:
        out.append(("forecast_bias_trend", None, "ratio per cycle", f"needs two scored forecast cycles ({text or 'none'})"))
    return out


# --------------------------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------------------------


def exceptions(
    cycle: str,
    supply_plan: pl.DataFrame | None = None,
    capacity_plan: pl.DataFrame | None = None,
    financial_plan: pl.DataFrame | None = None,
    budget_gap: pl.DataFrame | None = None,
    gates: ExecutiveGates | None = None,
    products: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """What the executive meeting must look at: only exceptions above materiality, ranked by
    money within each scenario (`planning.executive_exceptions`).

    * shortfall: family-months whose late units x price exceed `shortfall_revenue`. Price is
      the SKU's `unit_price` from `products` (sku, family, unit_price) when given, else the
      family-month's planned revenue per unit from the financial plan.
    * budget_gap: family-periods where |plan - budget| of revenue or gross margin exceeds
      `budget_gap_amount` and `budget_gap_pct` percent of the budget, at the
      `budget_gap_period` grain (month or quarter).
    * capacity: resources whose utilisation exceeds `utilization` in some month; money = the
      overtime premium they cost (overtime hours x (overtime_cost_per_hour - cost_per_hour)
      from `resources`, when given) + their shadow value (shadow price x load hours: what
      scarcity costs the plan), listed when that money reaches `capacity_money`.
    Whole horizon, every month: an exception in month 20 still deserves a decision now if it is
    material. Kinds whose inputs are absent are left out; `review_notes` says which.
    """
    gates = gates or ExecutiveGates()
    label = cycle_label(cycle)
    parts = [
        _shortfall_exceptions(supply_plan, financial_plan, products, gates, shortfall_mode),
        _budget_exceptions(budget_gap, gates),
        _capacity_exceptions(capacity_plan, resources, gates),
    ]
    frames = [p for p in parts if p is not None and p.height]
    if not frames:
        return pl.DataFrame(schema=EXCEPTIONS_SCHEMA)
    out = pl.concat(frames, how="diagonal_relaxed").with_columns(pl.lit(label).alias("cycle"))
    return (
        out.sort(["scenario", "money", "kind", "subject", "month"], descending=[False, True, False, False, False], nulls_last=True)
        .with_columns(pl.int_range(1, pl.len() + 1).over("scenario").cast(pl.Int32).alias("rank"))
        .select([pl.col(c).cast(t) if c in out.columns or c == "rank" else pl.lit(None, t).alias(c) for c, t in EXCEPTIONS_SCHEMA.items()])
    )


def _with_scenario(frame: pl.DataFrame) -> pl.DataFrame:
    return frame if "scenario" in frame.columns else frame.with_columns(pl.lit(BASELINE).alias("scenario"))


def _shortfall_exceptions(supply, financial, products, gates, shortfall_mode) -> pl.DataFrame | None:
    if not _present(supply, "sku", "month", "demand", "shortfall"):
        return None
    plan = _with_scenario(supply)
    if products is not None and {"sku", "unit_price"} <= set(products.columns):
        keep = ["sku", "unit_price"] + (["family"] if "family" in products.columns and "family" not in plan.columns else [])
        plan = plan.join(products.select(keep), on="sku", how="left")
    if "family" not in plan.columns:
        return None
    late = plan.with_columns(late_units_expr(shortfall_mode).alias("late"))
    if "unit_price" in late.columns:
        fam = late.group_by("scenario", "family", "month").agg(
            pl.col("late").sum(), pl.col("demand").sum(), (pl.col("late") * pl.col("unit_price").fill_null(0)).sum().alias("money"))
    elif _present(financial, "family", "month", "revenue", "volume"):
        price = _with_scenario(financial).select(
            "scenario", "family", "month",
            pl.when(pl.col("volume") > 0).then(pl.col("revenue") / pl.col("volume")).alias("price"))
        fam = late.group_by("scenario", "family", "month").agg(pl.col("late").sum(), pl.col("demand").sum()).join(
            price, on=["scenario", "family", "month"], how="left").with_columns((pl.col("late") * pl.col("price").fill_null(0)).alias("money"))
    else:
        return None
    return fam.filter((pl.col("money") >= gates.shortfall_revenue) & (pl.col("money") > 0)).select(
        "scenario", pl.lit("shortfall").alias("kind"), pl.col("family").alias("subject"), "month",
        pl.col("month").dt.strftime("%Y-%m").alias("period_label"), "money",
        pl.format("{} {}: {} units late of {} demanded; {} of revenue not delivered in the month",
                  "family", pl.col("month").dt.strftime("%Y-%m"), pl.col("late").round(0).cast(pl.Int64), pl.col("demand").round(0).cast(pl.Int64),
                  pl.col("money").round(0).cast(pl.Int64)).alias("description"),
    )


def _budget_exceptions(budget_gap, gates) -> pl.DataFrame | None:
    if not _present(budget_gap, "measure", "plan", "budget"):
        return None
    rows = _budget_rows(_with_scenario(budget_gap), gates).filter(
        pl.col("measure").is_in(["revenue", "gross_margin"])
        & (pl.col("gap").abs() >= gates.budget_gap_amount)
        & (pl.col("gap_pct").abs() >= gates.budget_gap_pct)
    )
    family = pl.col("family") if "family" in rows.columns else pl.lit("ALL")
    month = pl.col("month").cast(pl.Date) if "month" in rows.columns else pl.lit(None, pl.Date)  # null for a quarter
    return rows.select(
        "scenario", pl.lit("budget_gap").alias("kind"), family.alias("subject"), month.alias("month"), "period_label",
        pl.col("gap").abs().alias("money"),
        pl.format("{} {} {}: plan {} vs budget {} ({} {}%)", family, pl.col("period_label"), pl.col("measure"),
                  pl.col("plan").round(0).cast(pl.Int64), pl.col("budget").round(0).cast(pl.Int64),
                  pl.when(pl.col("gap") < 0).then(pl.lit("below budget by")).otherwise(pl.lit("above budget by")),
                  pl.col("gap_pct").abs().round(1)).alias("description"),
    )


def _capacity_exceptions(capacity, resources, gates) -> pl.DataFrame | None:
    if not _present(capacity, "resource", "month", "utilization"):
        return None
    cap = _with_scenario(capacity)
    for column in ("load_hours", "overtime_hours", "shadow_price"):
        if column not in cap.columns:
            cap = cap.with_columns(pl.lit(0.0).alias(column))
    if "plant" not in cap.columns:
        cap = cap.with_columns(pl.lit(None, pl.Utf8).alias("plant"))
    if resources is not None and {"resource", "overtime_cost_per_hour"} <= set(resources.columns):
        # Regular conversion cost already pays every hour, so an overtime hour costs its premium
        # (as in the supply LP and the financial review); the full rate when cost_per_hour is unknown.
        regular = pl.col("cost_per_hour") if "cost_per_hour" in resources.columns else pl.lit(0.0)
        premium = (pl.col("overtime_cost_per_hour") - regular).clip(lower_bound=0.0).alias("overtime_premium")
        cap = cap.join(resources.select("resource", premium), on="resource", how="left")
    else:
        cap = cap.with_columns(pl.lit(None, pl.Float64).alias("overtime_premium"))
    hot = cap.filter(pl.col("utilization") > gates.utilization)
    per = (
        hot.sort("utilization", descending=True)
        .group_by("scenario", "resource")
        .agg(
            pl.col("plant").first(), pl.len().alias("months"), pl.col("utilization").max().alias("peak"),
            pl.col("month").first().alias("peak_month"), pl.col("overtime_hours").fill_null(0).sum().alias("overtime_hours"),
            (pl.col("overtime_hours").fill_null(0) * pl.col("overtime_premium").fill_null(0)).sum().alias("overtime_cost"),
            (pl.col("shadow_price").fill_null(0) * pl.col("load_hours").fill_null(0)).sum().alias("shadow_value"),
            pl.col("shadow_price").fill_null(0).max().alias("max_shadow_price"),
        )
        .with_columns((pl.col("overtime_cost") + pl.col("shadow_value")).alias("money"))
    )
    return per.filter((pl.col("money") >= gates.capacity_money) & (pl.col("money") > 0)).select(
        "scenario", pl.lit("capacity").alias("kind"), pl.col("resource").alias("subject"), pl.col("peak_month").alias("month"),
        pl.col("peak_month").dt.strftime("%Y-%m").alias("period_label"), "money",
        pl.format("{} ({}): above {}% utilisation in {} month(s), peak {}% in {}; {} overtime hours costing {}; "
                  "one more hour worth up to {}, shadow value {}",
                  "resource", pl.col("plant").fill_null("no plant"), pl.lit(round(100 * gates.utilization)), "months",
                  (100 * pl.col("peak")).round(0).cast(pl.Int64), pl.col("peak_month").dt.strftime("%Y-%m"),
                  pl.col("overtime_hours").round(0).cast(pl.Int64), pl.col("overtime_cost").round(0).cast(pl.Int64),
                  pl.col("max_shadow_price").round(2), pl.col("shadow_value").round(0).cast(pl.Int64)).alias("description"),
    )


def review_notes(frames: Mapping[str, pl.DataFrame | None]) -> list[str]:
    """Which parts of the executive review were skipped this cycle and why (for asset
    metadata, the CLI and the review pack): absent steps are a note, never a failure."""
    notes = []
    checks = [
        ("supply_plan", "no supply plan this cycle: fill rate, late units and shortfall exceptions skipped"),
        ("capacity_plan", "no capacity plan this cycle: bottleneck utilisation and capacity exceptions skipped"),
        ("financial_plan", "no financial plan this cycle: revenue, margin and inventory value skipped"),
        ("budget_gap", "no budget gap this cycle (no budget or no financial plan): budget KPIs and exceptions skipped"),
        ("forecast_accuracy", "no forecast accuracy yet (no earlier cycle scored): WAPE and bias skipped"),
    ]
    for name, note in checks:
        frame = frames.get(name)
        if frame is None or frame.height == 0:
            notes.append(note)
    return notes


# --------------------------------------------------------------------------------------------
# Review pack
# --------------------------------------------------------------------------------------------

PACK_STEPS = ("product", "demand", "supply", "financial", "executive")
# Which step's page a chart belongs to, by the start of its name.
_CHART_STEP = {"product": "product", "portfolio": "product", "demand": "demand", "forecast": "demand", "accuracy": "demand",
               "supply": "supply", "capacity": "supply", "inventory": "supply", "material": "supply",
               "financial": "financial", "budget": "financial", "executive": "executive", "kpi": "executive"}
_PAGE = (11.69, 8.27)  # A4 landscape, inches


def _chart_step(name: str) -> str:
    for prefix, step in _CHART_STEP.items():
        if name.lower().startswith(prefix):
            return step
    return "executive"


def _fmt(value: Any, unit: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float | int) and not isinstance(value, bool):
        if unit == "ratio":
            return f"{100 * value:.1f}%"
        if unit == "ratio per cycle":
            return f"{100 * value:+.2f} pts/cycle"
        if isinstance(value, int) or unit == "units" or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.2f}"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, dt.date):
        return f"{value:%Y-%m}"
    return str(value)


@dataclass(frozen=True)
class _Block:
    """One table on a page: rows beyond `max_rows` are counted, not shown."""

    frame: pl.DataFrame
    title: str
    units: Mapping[str, str] | None = None
    max_rows: int = 12
    max_chars: int = 60


def _table(ax, block: _Block) -> None:
    ax.axis("off")
    ax.set_title(block.title, fontsize=10, loc="left")
    if block.frame.height == 0:
        ax.text(0, 0.8, "nothing to show", fontsize=9)
        return
    shown = block.frame.head(block.max_rows)

    def cell(column: str, value: Any) -> str:
        if isinstance(value, str):
            return value if len(value) <= block.max_chars else value[: block.max_chars - 3] + "..."
        return _fmt(value, (block.units or {}).get(column))

    cells = [[cell(c, v) for c, v in zip(shown.columns, row)] for row in shown.iter_rows()]
    table = ax.table(cellText=cells, colLabels=shown.columns, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(shown.columns))))
    if block.frame.height > block.max_rows:
        ax.text(0, 0, f"... {block.frame.height - block.max_rows} more rows in the warehouse", fontsize=7, transform=ax.transAxes)


def _page(title: str, subtitle: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=_PAGE)
    fig.suptitle(title, fontsize=15, x=0.03, ha="left", y=0.97)
    fig.text(0.03, 0.925, subtitle, fontsize=9, color="#555555")
    return fig


def _not_available(fig, what: str) -> None:
    fig.text(0.5, 0.5, f"{what}: not available this cycle", ha="center", va="center", fontsize=14, color="#888888")


def _layout(fig, blocks: list[_Block], charts: list[bytes]) -> None:
    """Tables stacked on the left (height by rows shown), charts stacked on the right (at most
    three); either takes the whole width when the other is absent."""
    import matplotlib.image as mpimg

    t_width = 0.94 if not charts else 0.45
    # Stacked from the top, each as tall as its rows (about 0.024 of the page per row), squeezed
    # only when they would not fit.
    heights = [0.024 * (min(b.frame.height, b.max_rows) + 3) for b in blocks]
    scale = min(1.0, 0.84 / sum(heights)) if heights else 1.0
    top = 0.88
    for block, height in zip(blocks, heights):
        height *= scale
        ax = fig.add_axes((0.03, top - height, t_width, height - 0.02))
        _table(ax, block)
        top -= height
    left = 0.03 if not blocks else 0.5
    shown = charts[:3]
    for k, png in enumerate(shown):
        height = 0.86 / len(shown)
        ax = fig.add_axes((left, 0.03 + (len(shown) - 1 - k) * height, 0.97 - left, height - 0.02))
        ax.imshow(mpimg.imread(io.BytesIO(png), format="png"))
        ax.axis("off")


def review_pack(
    out_dir: str | Path,
    cycle: str,
    frames: Mapping[str, pl.DataFrame | None],
    charts: Mapping[str, bytes] | None = None,
    plan_version: str | None = None,
    approval: Mapping[str, Any] | None = None,
    gates: ExecutiveGates | None = None,
) -> Path:
    """Write `review_pack_<cycle>.pdf` and every chart as `<name>.png` into `out_dir`.

    A title page (cycle, plan version, approval status, notes on skipped steps), then one page
    per review step: product, demand, supply, financial and executive (every scenario's KPIs
    side by side, and the top exceptions). `frames` are planning tables by name
    (`product_portfolio`, `product_segmentation`, `consensus_demand`, `forecast_accuracy`,
    `supply_plan`, `capacity_plan`, `financial_plan`, `budget_gap`, `executive_summary`,
    `executive_exceptions`); any may be absent, and its page then says so. Charts go on the page
    of the step their name starts with (`demand_...`, `capacity_...`). The PDF is written to a
    temporary file and renamed, so a reader never opens half a pack.
    """
    from matplotlib.backends.backend_pdf import PdfPages

    gates = gates or ExecutiveGates()
    label = cycle_label(cycle)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = dict(charts or {})
    for name, png in charts.items():
        (out / f"{Path(name).stem}.png").write_bytes(png)
    by_step: dict[str, list[bytes]] = {s: [] for s in PACK_STEPS}
    for name in sorted(charts):
        by_step[_chart_step(name)].append(charts[name])

    def frame(name: str) -> pl.DataFrame | None:
        f = frames.get(name)
        return f if f is not None and f.height else None

    pages = [
        _title_page(label, plan_version, approval, frames),
        _product_page(frame("product_portfolio"), frame("product_segmentation"), by_step["product"]),
        _demand_page(label, frame("consensus_demand"), frame("forecast_accuracy"), by_step["demand"]),
        _supply_page(frame("supply_plan"), frame("capacity_plan"), frame("executive_summary"), by_step["supply"]),
        _financial_page(frame("financial_plan"), frame("budget_gap"), frame("executive_summary"), by_step["financial"], gates),
        _executive_page(frame("executive_summary"), frame("executive_exceptions"), approval, by_step["executive"], gates),
    ]
    target = out / f"review_pack_{label}.pdf"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=out)
    os.close(fd)
    try:
        with PdfPages(tmp, metadata={"Title": f"S&OP review pack {label}", "Subject": f"plan version {plan_version or 'unknown'}"}) as pdf:
            for fig in pages:
                pdf.savefig(fig)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _title_page(label, version, approval, frames):
    fig = _page(f"S&OP review pack: cycle {label}", "Sales & operations planning, monthly executive review")
    lines = [
        f"Plan version: {version or 'unknown'}",
        f"Approval: {(approval or {}).get('reason', 'unknown')}",
        f"Generated: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "Pages: 1 product review, 2 demand review, 3 supply review, 4 financial review, 5 executive review",
        "",
    ]
    notes = review_notes(frames)
    lines += (["Not available this cycle:"] + [f"  - {n}" for n in notes]) if notes else ["Every review step produced its tables this cycle."]
    fig.text(0.05, 0.82, "\n".join(lines), fontsize=11, va="top", family="DejaVu Sans", linespacing=1.6)
    return fig


def _product_page(portfolio, segmentation, charts):
    fig = _page("1. Product review", "Portfolio in the cycle month and segmentation")
    if portfolio is None and segmentation is None:
        _not_available(fig, "product review")
        return fig
    tables = []
    if portfolio is not None:
        first = portfolio.filter(pl.col("month") == pl.col("month").min())
        tables.append(_Block(first.group_by("lifecycle_status").agg(pl.len().alias("skus")).sort("lifecycle_status"),
                             "SKUs by lifecycle status in the cycle month"))
    if segmentation is not None and {"abc_class", "xyz_class"} <= set(segmentation.columns):
        revenue = [pl.col("revenue_12m").sum()] if "revenue_12m" in segmentation.columns else []
        seg = segmentation.group_by("abc_class", "xyz_class").agg(pl.len().alias("skus"), *revenue).sort("abc_class", "xyz_class")
        tables.append(_Block(seg, "ABC / XYZ segments (revenue of the last 12 months)", max_rows=9))
    _layout(fig, tables, charts)
    return fig


def _demand_page(label, consensus, accuracy, charts):
    fig = _page("2. Demand review", "Consensus demand, next 12 months by family; forecast accuracy of earlier cycles")
    if consensus is None and accuracy is None:
        _not_available(fig, "demand review")
        return fig
    tables = []
    if consensus is not None:
        start = cycle_month(label)
        fam = _window(consensus, start, add_months(start, 12)).group_by("family").agg(
            pl.col("quantity").sum().alias("units_12m"), pl.col("p10").sum().alias("p10_12m"), pl.col("p90").sum().alias("p90_12m")
        ).sort("units_12m", descending=True)
        tables.append(_Block(fam, "Consensus demand by family, next 12 months (units)", max_rows=12))
    if accuracy is not None:
        acc = accuracy.filter((pl.col("lag") == 1) & (pl.col("family") == "ALL")).group_by("layer").agg(
            (pl.col("abs_error").sum() / pl.col("actual").sum()).alias("wape"),
            ((pl.col("forecast") - pl.col("actual")).sum() / pl.col("actual").sum()).alias("bias"),
            pl.col("forecast_cycle").n_unique().alias("cycles"),
        ).sort("layer")
        tables.append(_Block(acc, "Lag-1 accuracy by layer (all families)", {"wape": "ratio", "bias": "ratio"}, max_rows=8))
    else:
        tables.append(_Block(pl.DataFrame({"forecast accuracy": ["not available this cycle: no earlier cycle scored yet"]}), "Forecast accuracy"))
    _layout(fig, tables, charts)
    return fig


def _pivot_kpis(summary: pl.DataFrame, kpis: list[str] | None = None) -> tuple[pl.DataFrame, list[str]]:
    """KPIs as rows, scenarios as columns, values formatted by unit."""
    rows = summary if kpis is None else summary.filter(pl.col("kpi").is_in(kpis))
    scenarios = _scenario_order(rows["scenario"].unique().to_list())
    cells = rows.with_columns(
        pl.struct("value", "unit", "subject").map_elements(
            lambda s: _fmt(s["value"], s["unit"]) + (f" ({s['subject']})" if s["subject"] else ""), return_dtype=pl.Utf8
        ).alias("cell")
    )
    order = cells.group_by("kpi").agg(pl.col("kpi_order").min()).sort("kpi_order")
    wide = order.join(cells.pivot(on="scenario", index="kpi", values="cell", aggregate_function="first"), on="kpi", how="left")
    return wide.select("kpi", *[s for s in scenarios if s in wide.columns]), scenarios


def _supply_page(supply, capacity, summary, charts):
    fig = _page("3. Supply review", "Service, inventory and bottlenecks per scenario")
    if supply is None and capacity is None:
        _not_available(fig, "supply review")
        return fig
    tables = []
    if summary is not None:
        wide, _ = _pivot_kpis(summary, ["fill_rate", "late_units", "days_of_supply"] + [k for k in summary["kpi"].unique().to_list() if k.startswith("bottleneck_")])
        tables.append(_Block(wide, "Service and bottlenecks, scenarios side by side"))
    if capacity is not None:
        top = _with_scenario(capacity).group_by("scenario", "resource").agg(
            pl.col("utilization").max().alias("peak_utilization"),
            (pl.col("overtime_hours").sum() if "overtime_hours" in capacity.columns else pl.lit(0.0)).alias("overtime_hours"),
            (pl.col("shadow_price").max() if "shadow_price" in capacity.columns else pl.lit(0.0)).alias("max_shadow_price"),
        ).sort("peak_utilization", descending=True)
        tables.append(_Block(top, "Busiest resources (whole horizon)", {"peak_utilization": "ratio"}, max_rows=10))
    _layout(fig, tables, charts)
    return fig


def _financial_page(financial, budget, summary, charts, gates):
    fig = _page("4. Financial review", "The plan in money and against the budget")
    if financial is None and budget is None:
        _not_available(fig, "financial review")
        return fig
    tables = []
    if summary is not None:
        money = [k for k in summary["kpi"].unique().to_list() if k in ("revenue", "gross_margin", "gross_margin_pct", "inventory_value") or k.startswith("budget_gap")]
        wide, _ = _pivot_kpis(summary, money)
        tables.append(_Block(wide, "Money KPIs, scenarios side by side (KPI horizon)"))
    if budget is not None and {"measure", "plan", "budget"} <= set(budget.columns):
        rows = _budget_rows(_with_scenario(budget), gates).filter(
            (pl.col("scenario") == scenarios_of(budget)[0]) & pl.col("measure").is_in(["revenue", "gross_margin"]))
        by_family = rows.group_by("family" if "family" in rows.columns else "measure", "measure").agg(
            pl.col("plan").sum(), pl.col("budget").sum(), pl.col("gap").sum()).sort("gap")
        tables.append(_Block(by_family, f"Plan vs budget by family ({scenarios_of(budget)[0]}, most below budget first)"))
    elif financial is not None:
        margin = [pl.col("gross_margin").sum()] if "gross_margin" in financial.columns else []
        fam = _with_scenario(financial).group_by("scenario", "family").agg(pl.col("revenue").sum(), *margin).sort("revenue", descending=True)
        tables.append(_Block(fam, "Revenue and margin by family (whole horizon); budget not available this cycle"))
    _layout(fig, tables, charts)
    return fig


def _distinct_exceptions(excs: pl.DataFrame) -> pl.DataFrame:
    """Exceptions by money, each listed once: a scenario's exception identical to the
    baseline's (same kind, subject, period and money) is the baseline's, not news."""
    key = ["kind", "subject", "period_label", "money"]
    ranked = excs.with_columns((pl.col("scenario") != "baseline").alias("_not_baseline")).sort(["money", "_not_baseline"], descending=[True, False])
    return ranked.unique(subset=[c for c in key if c in ranked.columns], keep="first", maintain_order=True).drop("_not_baseline")


def _executive_page(summary, excs, approval, charts, gates):
    fig = _page("5. Executive review", f"Scenarios side by side; exceptions above materiality, by money. {(approval or {}).get('reason', '')}")
    if summary is None:
        _not_available(fig, "executive summary")
        return fig
    wide, _ = _pivot_kpis(summary)
    tables = [_Block(wide, "KPIs by scenario", max_rows=24)]
    if excs is not None:
        top = _distinct_exceptions(excs).head(gates.max_exceptions_in_pack).select("scenario", "kind", "money", "description")
        tables.append(_Block(top, f"Top exceptions (of {excs.height} above materiality)", max_rows=gates.max_exceptions_in_pack, max_chars=110))
    else:
        tables.append(_Block(pl.DataFrame({"exceptions": ["none above the materiality thresholds"]}), "Exceptions"))
    _layout(fig, tables, charts)
    return fig
