"""The financial side of the plan: the family budget and the planned list-price changes."""

from __future__ import annotations

import numpy as np
import polars as pl

from sop_pipeline.demo.catalogue import pick
from sop_pipeline.demo.families import Families
from sop_pipeline.demo.history import History
from sop_pipeline.demo.materials import Prices
from sop_pipeline.demo.months import Window, month_column, month_label
from sop_pipeline.demo.skus import Skus


def budget_frame(window: Window, fams: Families, skus: Skus, hist: History, prices: Prices) -> pl.DataFrame:
    """Last year's actuals plus a growth ambition, at last year's volume-weighted family price and
    standard cost; for declining families (and those with extra ambition) this opens the gap that
    the S&OP meeting has to talk about. The budget is annual: it starts in January of the cycle's
    year (the demo's fiscal year is the calendar year), so the months already closed have a
    budget that the latest estimate compares actuals with, and runs to the horizon's end. A
    closed month's budget is the same month a year earlier with one year's growth. Month-major
    rows."""
    F, fam, H = fams.count, skus.family, window.history
    Q = hist.quantity
    fam_hist = np.zeros((F, H))
    np.add.at(fam_hist, fam, Q.astype(float))
    w = Q[:, H - 12 :].sum(axis=1).astype(float)
    wsum = np.bincount(fam, weights=w, minlength=F)
    avg_price = np.bincount(fam, weights=w * prices.unit_price, minlength=F) / np.maximum(wsum, 1)
    avg_cost = np.bincount(fam, weights=w * prices.unit_cost, minlength=F) / np.maximum(wsum, 1)
    closed = window.cycle % 12  # months of the fiscal year before the cycle month
    hz = np.arange(-closed, window.horizon)
    base = np.where(hz < 0, H - 12 + hz, H - 12 + hz % 12)
    years = np.where(hz < 0, 1, 1 + hz // 12)
    bvol = np.round(fam_hist[:, base] * (1 + fams.budget_growth[:, None]) ** years[None, :])
    bf, bt = np.meshgrid(np.arange(F), np.arange(hz.size), indexing="xy")  # month-major rows
    bf, bt = bf.ravel(), bt.ravel()
    vol = bvol[bf, bt]
    bt = hz[bt]
    revenue = np.round(vol * avg_price[bf], 2)
    return pl.DataFrame(
        {
            "month": month_column(window.cycle + bt),
            "family": pick(fams.names, bf),
            "volume": vol.astype(np.int64),
            "revenue": revenue,
            "gross_margin": np.round(revenue - vol * avg_cost[bf], 2),
        }
    )


def price_plan_frame(fam_names: list[str], c_abs: int) -> pl.DataFrame:
    """Planned list-price changes: two families pass on cost inflation early in the horizon and
    every family moves with general inflation at the start of the second plan year. Enough for
    the financial review's bridge to show a price effect and for the forecast's price covariate."""
    order = sorted(range(len(fam_names)), key=lambda f: fam_names[f])
    rows = [
        ("family", fam_names[order[0]], month_label(c_abs + 2), 3.0),
        ("family", fam_names[order[1 % len(order)]], month_label(c_abs + 5), 4.5),
    ]
    rows += [("family", fam_names[f], month_label(c_abs + 14), 2.0) for f in order]
    schema = {"level": pl.String, "key": pl.String, "month": pl.String, "price_change_pct": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row").unique(subset=["level", "key", "month"], keep="first", maintain_order=True)
