"""Conventions every financial table shares: month keys, the company-total label, shipped units,
what counts as a gap worth listing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from sop_pipeline.settings.gates import FinancialGates

ALL = "ALL"
SHORTFALL_MODES = ("backorder", "lost_sales")


MEASURES = ("volume", "revenue", "gross_margin")


BRIDGE_STEPS = ("start", "volume", "mix", "price", "end")


COMPONENTS = ("demand", "price", "cost", "cost_variance", "service", "supply")


# Below this, an amount is floating-point noise, not a gap component.
EPS = 1e-9


def as_month(frame: pl.DataFrame, name: str = "month") -> pl.DataFrame:
    """`name` as a first-of-month Date, whether it arrives as 'YYYY-MM' text, a datetime or a date."""
    dtype = frame.schema[name]
    if dtype == pl.String:
        expr = pl.col(name).str.slice(0, 7).str.strptime(pl.Date, "%Y-%m")
    elif isinstance(dtype, pl.Datetime):
        expr = pl.col(name).dt.date()
    else:
        expr = pl.col(name).cast(pl.Date)
    return frame.with_columns(expr.dt.month_start().alias(name))


def safe_div(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den != 0).then(num / den).otherwise(None)


def significant(gap: pl.Expr, reference: pl.Expr, gates: FinancialGates, measure: pl.Expr | None = None) -> pl.Expr:
    """A material gap: at least the floor of its measure (`gap_min_amount` in money for revenue
    and margin, `gap_min_units` for volume; `measure` defaults to the frame's measure column)
    and at least `gap_tolerance_pct` of its reference (any gap above the floor counts when the
    reference is zero). Null gaps are not gaps."""
    measure = pl.col("measure") if measure is None else measure
    floor = pl.when(measure == "volume").then(pl.lit(gates.gap_min_units)).otherwise(pl.lit(gates.gap_min_amount))
    size = gap.abs()
    return ((size >= floor) & ((reference.abs() <= 0) | (size >= gates.gap_tolerance_pct / 100 * reference.abs()))).fill_null(False)


def quarter_label(month: pl.Expr) -> pl.Expr:
    return pl.format("{}-Q{}", month.dt.year(), month.dt.quarter())


def months_frame(months: Iterable[dt.date] | pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"month": pl.Series("month", list(months), dtype=pl.Date)}).unique(maintain_order=True).sort("month")


def shipped_units(shortfall_mode: str) -> pl.Expr:
    """Units shipped in the month; the frame must be sorted by scenario, sku, month and hold a
    row for every month (the previous row is the previous month's backlog)."""
    if shortfall_mode not in SHORTFALL_MODES:
        raise ValueError(f"shortfall_mode must be one of {SHORTFALL_MODES}, got {shortfall_mode!r}")
    if shortfall_mode == "lost_sales":
        return pl.col("demand") - pl.col("shortfall")
    previous = pl.col("shortfall").shift(1, fill_value=0.0).over("scenario", "sku")
    return pl.col("demand") + previous - pl.col("shortfall")
