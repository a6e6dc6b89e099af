"""What a finished cycle tells the person who ran it, in a few lines of text.

Printed by `sop run` so that a data engineer sees at a glance that the cycle produced a
plan, and a planner sees the headline numbers, before opening the UI or a BI tool.
"""

from __future__ import annotations

import duckdb
import polars as pl

from sop_pipeline.warehouse import cycle_label, query, table_exists


def cycle_summary(con: duckdb.DuckDBPyConnection, cycle: str) -> list[str]:
    label = cycle_label(cycle)
    lines: list[str] = []
    tables = query(
        con, "select table_name from information_schema.tables where table_schema = 'planning' order by table_name"
    )["table_name"].to_list()
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
                select sum(quantity) filter (where month < (select min(month) from planning.consensus_demand where cycle = ?) + interval 12 month) as next_12
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
            lines.append(f"consensus demand, next 12 months: {next_12:,.0f} units ({100 * (next_12 / last_12 - 1):+.1f}% on the last 12 months)")
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
            parts = [f"{r['layer']} {100 * r['wape']:.1f}% (bias {100 * r['bias']:+.1f}%)" for r in acc.filter(pl.col("wape").is_not_null()).iter_rows(named=True)]
            lines.append(f"lag-1 WAPE over {cycles} earlier cycle(s): " + ", ".join(parts))
        else:
            lines.append("forecast accuracy: no earlier cycle to score yet (run `sop backfill` over earlier months)")
    return lines
