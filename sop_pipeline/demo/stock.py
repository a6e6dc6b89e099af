"""Stock and open supply at the start of the cycle: where the supply plan starts from."""

from __future__ import annotations

import numpy as np
import polars as pl

from sop_pipeline.demo.demand import Demand
from sop_pipeline.demo.history import History
from sop_pipeline.demo.materials import Materials
from sop_pipeline.demo.months import Window, month_column
from sop_pipeline.demo.skus import REGULAR, Skus


def inventory_frame(rng: np.random.Generator, window: Window, skus: Skus, demand: Demand, hist: History) -> pl.DataFrame:
    """Finished goods: a bit over a month of cover on average, uneven, some stocked out; new
    products have no stock yet."""
    n, H = skus.n, window.history
    stocked = np.flatnonzero(~skus.is_npi)
    level = np.maximum(hist.quantity[:, H - 3 :].mean(axis=1), demand.expected[:, H])
    fg = np.round(level * rng.uniform(0.5, 2.5, n))
    fg = np.where(rng.random(n) < 0.05, 0.0, fg)
    return pl.DataFrame({"sku": skus.codes.gather(stocked), "on_hand": fg[stocked].astype(np.int64)})


def open_supply_frame(rng: np.random.Generator, window: Window, skus: Skus, demand: Demand, mats: Materials) -> pl.DataFrame:
    """Production orders already released for the next months, purchase orders already placed
    within each material's lead time; products first."""
    ps, pk, pq = _production_orders(rng, window, skus, demand)
    ms, mk, mq = _purchase_orders(rng, mats)
    c_abs = window.cycle
    return pl.DataFrame(
        {
            "item_type": ["product"] * ps.size + ["material"] * ms.size,
            "item": pl.concat([skus.codes.gather(ps), pl.Series(mats.codes, dtype=pl.String).gather(ms)]),
            "month": pl.concat([month_column(c_abs + pk), month_column(c_abs + mk)]),
            "quantity": np.concatenate([pq, mq]).astype(np.int64),
        }
    )


def _production_orders(rng: np.random.Generator, window: Window, skus: Skus, demand: Demand) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """About a fifth of the established SKUs have orders in the first three horizon months
    (always one in the first month when any): SKU, horizon month and quantity per order."""
    n, H = skus.n, window.history
    prod_sel = (skus.role == REGULAR) | skus.is_launch
    prod_sel &= rng.random(n) < 0.2
    pmask = prod_sel[:, None] & (rng.random((n, 3)) < np.array([0.7, 0.4, 0.2]))
    pmask[:, 0] |= prod_sel & ~pmask.any(axis=1)
    pq = np.maximum(np.round(demand.expected[:, H : H + 3] * rng.uniform(0.5, 1.5, (n, 3))), 1)
    ps, pk = np.nonzero(pmask)
    return ps, pk, pq[ps, pk]


def _purchase_orders(rng: np.random.Generator, mats: Materials) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Most months within a material's lead time already have a purchase order of about a
    month's requirement: material, horizon month and quantity per order."""
    M, r_avg = mats.master.count, mats.requirement
    mmask = (mats.master.lead[:, None] > np.arange(3)[None, :]) & (rng.random((M, 3)) < 0.85) & (r_avg[:, None] > 0)
    mq = np.maximum(np.round(r_avg[:, None] * rng.uniform(0.8, 1.2, (M, 3))), 1)
    ms, mk = np.nonzero(mmask)
    return ms, mk, mq[ms, mk]
