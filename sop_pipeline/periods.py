"""Months, cycles and fiscal periods: the planning calendar's arithmetic.

A cycle is named by its first plan month (`2026-11`); months are first-of-month dates. Every
step counts months the same way through these helpers, so "the horizon", "the last 12 months"
and "the fiscal year" mean one thing everywhere.
"""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

_CYCLE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])(-01)?")


def cycle_label(cycle: str | dt.date) -> str:
    """'2026-11' for a cycle given as '2026-11', '2026-11-01' (a Dagster partition key) or a
    date. Anything else is refused, '2026-1' included: a cycle is never guessed."""
    if isinstance(cycle, dt.date):
        return cycle.strftime("%Y-%m")
    found = _CYCLE.fullmatch(str(cycle).strip())
    if found is None:
        raise ValueError(f"cycle {cycle!r} is not a month in YYYY-MM form (e.g. 2026-11)")
    return f"{found[1]}-{found[2]}"


def cycle_month(cycle: str | dt.date) -> dt.date:
    """The cycle's first plan month as a date (first day of the month)."""
    return dt.datetime.strptime(cycle_label(cycle), "%Y-%m").date()


def add_months(month: dt.date, months: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def horizon_months(cycle: str | dt.date, months: int) -> pl.Series:
    """The plan horizon's months, from the cycle month on."""
    start = cycle_month(cycle)
    return pl.Series("month", [add_months(start, i) for i in range(months)], dtype=pl.Date)


def months_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Whole months from `earlier` to `later` (both month dates): 0 for the same month."""
    return (later.dt.year() * 12 + later.dt.month()) - (earlier.dt.year() * 12 + earlier.dt.month())


def fiscal_year(month: pl.Expr, start_month: int = 1) -> pl.Expr:
    """The fiscal year a month falls in, named by the calendar year it ends in: with a fiscal
    year starting in April, April 2026 - March 2027 is fiscal 2027; starting in January it is
    the calendar year."""
    shift = 0 if start_month == 1 else 1
    return month.dt.year() + pl.when(month.dt.month() >= start_month).then(shift).otherwise(0)


def fiscal_quarter(month: pl.Expr, start_month: int = 1) -> pl.Expr:
    """1-4: the fiscal quarter a month falls in (quarters of three months from the start month)."""
    return ((month.dt.month() - start_month) % 12) // 3 + 1


def fiscal_year_label(month: pl.Expr, start_month: int = 1) -> pl.Expr:
    return pl.format("FY{}", fiscal_year(month, start_month))


def fiscal_quarter_label(month: pl.Expr, start_month: int = 1) -> pl.Expr:
    return pl.format("FY{}-Q{}", fiscal_year(month, start_month), fiscal_quarter(month, start_month))
