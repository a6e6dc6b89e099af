"""Where a cycle stands, for `sop status`: checkpoints, tables per review step, approval and
what the cycle waits for, and from whom."""

from __future__ import annotations

import duckdb
import polars as pl

from sop_pipeline import registry
from sop_pipeline.executive.governance import (
    StepGraph,
    approval_status,
    cycle_scenarios,
    plan_of_record_version,
    short_version,
)
from sop_pipeline.periods import cycle_label
from sop_pipeline.settings.scenarios import BASELINE
from sop_pipeline.warehouse import query, read_cycle, table_exists

REVIEW_STEPS = ("product_review", "demand_review", "supply_review", "financial_review", "executive_review")
# Review steps and the planning tables that show a step ran, in cycle order (the registry's).
STEP_TABLES = {
    **{
        step.replace("_", " "): [
            name for name, spec in registry.TABLES.items() if spec.step == step and name not in registry.PLAN_OF_RECORD_SOURCES
        ]
        for step in REVIEW_STEPS
    },
    "plan of record": list(registry.PLAN_OF_RECORD_SOURCES),
}


def status_report(con: duckdb.DuckDBPyConnection, cycle: str, graph: StepGraph | None = None) -> list[str]:
    """Lines for `sop status --cycle`: checkpoints, tables per review step, whether the
    cycle's tables form one plan (given the step `graph`), approval, and what the cycle waits
    for and from whom."""
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
    status = approval_status(con, label, graph)
    state = status["state"]
    if state is not None:
        lines.append(f"state: {state.status.replace('_', ' ')}: {state.reason}")
    lines.append(f"plan version: {short_version(status['current_version'])}")
    lines.append(f"approval: {status['reason']}")
    scenarios = cycle_scenarios(con, label) or [BASELINE]
    if failed:
        waiting = (
            f"waiting for planners: checkpoint(s) {', '.join(failed)} failed; fix the input and run the cycle again "
            f"(sop run --cycle {label}, or materialize from the ingestion in the UI, so the fixed file is read)"
        )
    elif state is not None and not state.complete:
        waiting = f"waiting for a run: {state.reason}"
    elif status["matches"] and plan_of_record_version(con, label) == status["current_version"]:
        waiting = (
            "plan of record published (scenario "
            f"{status['latest_approval']['scenario']}, version {short_version(status['current_version'])})"
        )
    elif not ran["demand review"]:
        waiting = "waiting for the demand review to run (sop run)"
    elif not ran["executive review"]:
        waiting = "waiting for the executive review step to run (KPIs and the review pack)"
    elif status["latest_approval"] is None:
        which = scenarios[0] if len(scenarios) == 1 else "one of " + ", ".join(scenarios)
        waiting = f"waiting for an executive to approve scenario {which} (sop approve)"
    elif not status["matches"]:
        waiting = (
            "waiting for an executive to approve again: the plan changed after "
            f"scenario {status['latest_approval']['scenario']} was approved"
        )
    else:
        waiting = "approved; waiting for the plan of record to be published (approval sensor or sop run)"
    lines.append(waiting)
    return lines


def load_cycle_frames(con: duckdb.DuckDBPyConnection, cycle: str, tables: list[str] | None = None) -> dict[str, pl.DataFrame]:
    """The cycle's rows of every registered planning table that exists (or of `tables`), by name."""
    present = set(query(con, "select table_name from information_schema.tables where table_schema = 'planning'")["table_name"])
    names = [n for n in registry.TABLES if n in present and (tables is None or n in tables)]
    return {n: read_cycle(con, n, cycle) for n in names}


def cycle_summary(con: duckdb.DuckDBPyConnection, cycle: str) -> list[str]:
    label = cycle_label(cycle)
    lines: list[str] = []
    tables = query(con, "select table_name from information_schema.tables where table_schema = 'planning' order by table_name")[
        "table_name"
    ].to_list()
    counts = []
    for table in tables:
        n = query(con, f"select count(*) as n from planning.{table} where cycle = ?", [label])["n"][0]
        counts.append(f"{table} {n:,}")
    lines.append("planning tables (rows this cycle): " + ", ".join(counts))
    if table_exists(con, "planning", "product_portfolio"):
        status = query(
            con,
            "select lifecycle_status, count(*) as n from planning.product_portfolio "
            "where cycle = ? and month = (select min(month) from planning.product_portfolio where cycle = ?) group by 1 order by 1",
            [label, label],
        )
        lines.append("portfolio in the cycle month: " + ", ".join(f"{s} {n}" for s, n in status.iter_rows()))
    if table_exists(con, "planning", "consensus_demand"):
        demand = query(
            con,
            """
            with plan as (
                select sum(quantity) filter (
                    where month < (select min(month) from planning.consensus_demand where cycle = ?) + interval 12 month
                ) as next_12
                from planning.consensus_demand where cycle = ?
            ),
            actual as (
                select sum(quantity) as last_12 from marts.fct_sales_monthly
                where month >= (select max(month) from marts.fct_sales_monthly) - interval 11 month
            )
            select next_12, last_12 from plan, actual
            """,
            [label, label],
        )
        next_12, last_12 = demand.row(0)
        if next_12 is not None and last_12:
            lines.append(
                f"consensus demand, next 12 months: {next_12:,.0f} units ({100 * (next_12 / last_12 - 1):+.1f}% on the last 12 months)"
            )
    if table_exists(con, "planning", "forecast_accuracy"):
        acc = query(
            con,
            "select layer, sum(abs_error) / nullif(sum(actual), 0) as wape, sum(forecast - actual) / nullif(sum(actual), 0) as bias, "
            "count(distinct forecast_cycle) as cycles from planning.forecast_accuracy "
            "where cycle = ? and family = 'ALL' and lag = 1 group by layer order by layer",
            [label],
        )
        if acc.height:
            cycles = acc["cycles"].max()
            parts = [
                f"{r['layer']} {100 * r['wape']:.1f}% (bias {100 * r['bias']:+.1f}%)"
                for r in acc.filter(pl.col("wape").is_not_null()).iter_rows(named=True)
            ]
            lines.append(f"lag-1 WAPE over {cycles} earlier cycle(s): " + ", ".join(parts))
        else:
            lines.append("forecast accuracy: no earlier cycle to score yet (run `sop backfill` over earlier months)")
    return lines
