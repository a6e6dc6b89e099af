"""Sales history sampled from the expected demand: noise, promotions, slow movers, price changes.

What a forecaster sees is not the expected surface but this distorted sample of it: promotions
lift a month and depress the next (pantry loading), intermittent SKUs sell whole orders at
random, and the net price carries the list-price history and the promotional discounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sop_pipeline.demo.demand import Demand
from sop_pipeline.demo.families import Families
from sop_pipeline.demo.materials import Prices
from sop_pipeline.demo.months import Window, month_column
from sop_pipeline.demo.skus import Skus


@dataclass(frozen=True)
class History:
    quantity: np.ndarray  # n x H whole units sold
    net_price: np.ndarray  # n x H
    promotion: np.ndarray  # n x H share of the month on promotion, 0.0 without one


def sample_history(rng: np.random.Generator, window: Window, fams: Families, skus: Skus, demand: Demand, prices: Prices) -> History:
    H = window.history
    Eh = demand.expected[:, :H]
    noise = _noise(rng, skus.base, H)
    share = _promotions(rng, skus.smooth, demand.lifecycle[:, :H] > 0)
    Q = _quantities(rng, Eh, noise, share, skus, demand.launch_t)
    depth = rng.uniform(0.10, 0.25, skus.n)
    pnoise = np.where(skus.is_int, 0.03, 0.012)
    net = (
        prices.unit_price[:, None]
        * fams.price_factor[skus.family][:, :H]
        * (1 - depth[:, None] * share)
        * np.exp(pnoise[:, None] * rng.normal(size=(skus.n, H)))
    )
    return History(quantity=Q, net_price=np.round(net, 2), promotion=share)


def _noise(rng: np.random.Generator, base: np.ndarray, H: int) -> np.ndarray:
    """Multiplicative log-normal noise with mean 1; big runners are relatively less noisy."""
    n = base.size
    sigma = np.clip(0.42 - 0.045 * np.log(np.maximum(base, 1.0)), 0.08, 0.40) * rng.uniform(0.85, 1.15, n)
    return np.exp(sigma[:, None] * rng.normal(size=(n, H)) - sigma[:, None] ** 2 / 2)


def _promotions(rng: np.random.Generator, smooth: np.ndarray, sold: np.ndarray) -> np.ndarray:
    """Share of each month on promotion: about a third of the smooth SKUs are promoted now and
    then, never in back-to-back months nor in months they do not sell."""
    n, H = sold.shape
    prone = smooth & (rng.random(n) < 0.35)
    pm0 = prone[:, None] & (rng.random((n, H)) < 0.12) & sold
    pm = pm0.copy()
    pm[:, 1:] &= ~pm0[:, :-1]  # no back-to-back promotions
    return np.where(pm, np.minimum(np.round(rng.integers(7, 31, (n, H)) / 30, 2), 1.0), 0.0)


def _quantities(
    rng: np.random.Generator, Eh: np.ndarray, noise: np.ndarray, share: np.ndarray, skus: Skus, launch_t: np.ndarray
) -> np.ndarray:
    """Whole units sold per SKU and history month. New products have no history; a launched
    SKU's history starts in its launch month."""
    n, H = Eh.shape
    lift = rng.uniform(0.4, 1.0, n)
    mult = 1 + lift[:, None] * share
    mult[:, 1:] *= 1 - 0.35 * lift[:, None] * share[:, :-1]  # post-promo dip (pantry loading)
    q_smooth = np.round(Eh * mult * noise)
    occ_size = skus.occ_size
    size = 1 + rng.poisson(np.maximum(occ_size - 1, 0)[:, None], size=(n, H))
    occurs = rng.random((n, H)) < np.clip(Eh / occ_size[:, None], 0.0, 0.95)
    q_int = np.where(occurs, size, 0)
    Q = np.where(skus.is_int[:, None], q_int, q_smooth).astype(np.int64)
    Q[skus.is_npi] = 0
    li = np.flatnonzero(skus.is_launch)
    Q[li, launch_t[li]] = np.maximum(Q[li, launch_t[li]], 1)
    return Q


def sales_history_frame(window: Window, sku_codes: pl.Series, hist: History) -> pl.DataFrame:
    """Month-major, like a monthly ERP extract; no row for a month without sales."""
    Q = hist.quantity
    mi, si = np.nonzero(Q.T > 0)
    return pl.DataFrame(
        {
            "month": month_column(window.first + mi),
            "sku": sku_codes.gather(si),
            "quantity": Q[si, mi],
            "net_price": hist.net_price[si, mi],
            "promotion": hist.promotion[si, mi],
        }
    )
