"""Business rules more than one review step relies on, each defined once.

If the supply plan and the financial plan disagreed on which routing is preferred, or the
segmentation and the forecast on which SKU is intermittent, the review pack would explain one
plan with another plan's logic. So the rules live here and every step calls them.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def preferred_routings(routings: pl.DataFrame) -> pl.DataFrame:
    """Each SKU's preferred routing: the lowest `priority`, then the fewest hours per unit, then
    the resource code (so a tie is broken the same way on every run).

    Columns: sku, resource, hours_per_unit, priority. SKUs without a routing have no row.
    """
    if routings.height == 0:
        return routings.select("sku", "resource", "hours_per_unit", "priority")
    return (
        routings.select("sku", "resource", pl.col("hours_per_unit").cast(pl.Float64), pl.col("priority").fill_null(1).cast(pl.Int64))
        .sort("sku", "priority", "hours_per_unit", "resource")
        .group_by("sku", maintain_order=True)
        .first()
    )


def intermittent_flags(history_months: np.ndarray, nonzero_months: np.ndarray, adi_cutoff: float, min_history: int) -> np.ndarray:
    """Syntetos-Boylan intermittency from counts over the segmentation window: a SKU is
    intermittent when its average demand interval (months per month with sales) reaches the
    cut-off, or it has history but no sales at all. SKUs with less than `min_history` months
    are new, not intermittent: their pattern is not known yet."""
    history_months = np.asarray(history_months, dtype=float)
    nonzero_months = np.asarray(nonzero_months, dtype=float)
    adi = np.divide(history_months, nonzero_months, out=np.full(history_months.shape, np.inf), where=nonzero_months > 0)
    return (history_months >= min_history) & ((nonzero_months == 0) | (adi >= adi_cutoff))


def late_units(shortfall_mode: str) -> pl.Expr:
    """Units of a month's demand not delivered in that month.

    Lost sales are the shortfall itself; with backorders the month-end backlog holds the newest
    demand first (oldest orders ship first), so min(demand, backlog) of this month's demand is
    late.
    """
    if shortfall_mode not in ("backorder", "lost_sales"):
        raise ValueError(f"shortfall_mode must be backorder or lost_sales, got {shortfall_mode!r}")
    return pl.col("shortfall") if shortfall_mode == "lost_sales" else pl.min_horizontal("demand", "shortfall")
