"""The expected demand surface: the noise-free SKU x month demand everything else is sized from.

E = base volume x family seasonality x trend x price response x macro sensitivity x lifecycle.
History is sampled from it (`history.py`); capacities, supplier limits, stock, open supply and
consensus inputs are sized from it, which is what makes the pieces of the company consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sop_pipeline.demo.families import Families
from sop_pipeline.demo.months import Window
from sop_pipeline.demo.skus import Skus


@dataclass(frozen=True)
class Demand:
    launch_t: np.ndarray  # model month of launch (launched and new SKUs; far past otherwise)
    disc_t: np.ndarray  # model month from which a phase-out no longer sells
    lifecycle: np.ndarray  # n x T multiplier: ramps for launches, decay and stop for phase-outs
    expected: np.ndarray  # n x T expected demand, E


def expected_demand(rng: np.random.Generator, window: Window, fams: Families, skus: Skus) -> Demand:
    """Each SKU follows its family's season (more or less strongly) and trend (with some spread)."""
    n, fam, H, t = skus.n, skus.family, window.history, window.t
    launch_t, disc_t, lc, kept_on = _lifecycle(rng, window, skus)
    strength = rng.uniform(0.75, 1.25, n)
    s_sku = fams.season[fam] ** strength[:, None]
    s_sku /= s_sku.mean(axis=1, keepdims=True)
    g_sku = fams.growth[fam] + rng.normal(0.0, 0.03, n)
    trend = np.exp(g_sku[:, None] * (t[None, :] - H) / 12)
    level = skus.base[:, None] * s_sku[:, window.month_of_year] * trend * fams.price_effect[fam] * fams.macro[fam]
    E = level * lc
    # A superseded phase-out's customers buy its successor once it is gone.
    old = np.flatnonzero(skus.has_successor)
    np.add.at(E, skus.successor[old], level[old] * (kept_on[old] - lc[old]))
    return Demand(launch_t=launch_t, disc_t=disc_t, lifecycle=lc, expected=E)


def _lifecycle(rng: np.random.Generator, window: Window, skus: Skus) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Launch month, discontinue month and the lifecycle multiplier over model time: launched SKUs
    started in the history, new ones start within the horizon's first year; phase-outs decline
    from a few months before the cycle and stop at their discontinue month. A successor is
    launched by its predecessor's discontinue month (two months before, when that is after the
    cycle), so it sells when the predecessor's customers move. Also returns the multiplier a
    phase-out would have had without its stop (what its customers still want after it)."""
    n, H, t = skus.n, window.history, window.t
    launch_t = np.where(skus.is_launch, rng.integers(6, H - 3, n), -(10**6))
    launch_t = np.where(skus.is_npi, H + rng.integers(1, 13, n), launch_t)
    ramp = rng.integers(2, 6, n)
    decline_t = H - rng.integers(3, 13, n)
    decline_rate = rng.uniform(0.03, 0.08, n)
    disc_t = H + rng.integers(1, 19, n)
    old = np.flatnonzero(skus.has_successor)
    new = skus.successor[old]
    launch_t[new] = np.minimum(launch_t[new], np.maximum(H + 1, disc_t[old] - 2))
    lc = np.clip((t[None, :] - launch_t[:, None] + 1) / ramp[:, None], 0.0, 1.0)
    po_open = np.exp(-decline_rate[:, None] * np.maximum(0, t[None, :] - decline_t[:, None]))
    po_curve = np.where(t[None, :] >= disc_t[:, None], 0.0, po_open)
    return launch_t, disc_t, np.where(skus.is_po[:, None], po_curve, lc), np.where(skus.is_po[:, None], po_open, lc)
