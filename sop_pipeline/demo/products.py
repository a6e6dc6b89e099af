"""The products file: the SKU master as an ERP would export it (names, prices, status, lifecycle)."""

from __future__ import annotations

import numpy as np
import polars as pl

from sop_pipeline.demo.catalogue import COLOURS, VARIANTS, pick
from sop_pipeline.demo.demand import Demand
from sop_pipeline.demo.families import Families
from sop_pipeline.demo.materials import Prices
from sop_pipeline.demo.months import Window, month_column, nullable_month_column
from sop_pipeline.demo.skus import Skus


def products_frame(rng: np.random.Generator, window: Window, fams: Families, skus: Skus, demand: Demand, prices: Prices) -> pl.DataFrame:
    """Catalogue SKUs get a launch month before the history window; `like_sku` and
    `launch_volume` are filled only for new products, exactly one of the two; `successor_sku`
    only for the superseded phase-out."""
    n, h0 = skus.n, window.first
    description = _descriptions(rng, fams, skus)
    old_launch = rng.integers(-120, 0, n)  # catalogue SKUs launched before the history window
    launch_abs = h0 + np.where(skus.is_launch | skus.is_npi, demand.launch_t, old_launch)
    codes = skus.codes
    return pl.DataFrame(
        {
            "sku": codes,
            "description": description,
            "family": pick(fams.names, skus.family),
            "unit_price": prices.unit_price,
            "unit_cost": prices.unit_cost,
            "status": pick(("active", "npi", "phase_out"), np.where(skus.is_npi, 1, np.where(skus.is_po, 2, 0))),
            "launch_month": month_column(launch_abs),
            "discontinue_month": nullable_month_column(h0 + demand.disc_t, skus.is_po),
            "like_sku": pl.select(
                pl.when(pl.lit(pl.Series(skus.has_like))).then(pl.lit(codes.gather(np.maximum(skus.like, 0))))
            ).to_series(),
            "launch_volume": pl.Series(skus.launch_volume).fill_nan(None).cast(pl.Int64),
            "successor_sku": pl.select(
                pl.when(pl.lit(pl.Series(skus.has_successor))).then(pl.lit(codes.gather(np.maximum(skus.successor, 0))))
            ).to_series(),
        }
    )


def _descriptions(rng: np.random.Generator, fams: Families, skus: Skus) -> pl.Series:
    """'<family noun> <variant> <colour>', e.g. 'Desk Fan Pro White'."""
    n = skus.n
    noun = fams.nouns[skus.family, rng.integers(0, 4, n)]
    variant = np.array(VARIANTS)[rng.integers(0, len(VARIANTS), n)]
    colour = np.array(COLOURS)[rng.integers(0, len(COLOURS), n)]
    return pl.select(
        pl.concat_str([pl.lit(pl.Series(noun)), pl.lit(pl.Series(variant)), pl.lit(pl.Series(colour))], separator=" ")
    ).to_series()
