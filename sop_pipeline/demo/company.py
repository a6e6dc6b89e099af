"""The generator's stages, run in order: `generate_demo_company`.

Seven independent random streams are spawned from the seed, one per concern, so that a stage's
draws do not shift when another stage changes. Within a stream the order of the draws is part
of the output: the stages below must run in this order for a seed to give the same company.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sop_pipeline.demo.demand import expected_demand
from sop_pipeline.demo.families import draw_families
from sop_pipeline.demo.finance import budget_frame, price_plan_frame
from sop_pipeline.demo.history import sales_history_frame, sample_history
from sop_pipeline.demo.indicators import draw_indicators, indicators_frame
from sop_pipeline.demo.inputs import demand_inputs_frame
from sop_pipeline.demo.lines import (
    build_lines,
    raw_hours,
    resources_frame,
    routings_frame,
)
from sop_pipeline.demo.materials import bom_frame, build_materials, materials_frame
from sop_pipeline.demo.months import HORIZON_MONTHS, Window, parse_month
from sop_pipeline.demo.products import products_frame
from sop_pipeline.demo.skus import draw_skus
from sop_pipeline.demo.stock import inventory_frame, open_supply_frame
from sop_pipeline.inputs.contract import INPUT_FILES


@dataclass(frozen=True)
class _Streams:
    family: np.random.Generator  # families, then SKUs per family
    sku: np.random.Generator  # roles, volumes, lifecycle, raw hours per unit
    history: np.random.Generator
    lines: np.random.Generator  # plants, lines, routings, capacity
    materials: np.random.Generator  # materials, BOM, cost and price, supplier capacity
    misc: np.random.Generator  # products, stock, open supply, consensus inputs (in that order)
    indicators: np.random.Generator

    @classmethod
    def spawn(cls, seed: int) -> _Streams:
        return cls(*(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)))


def generate_demo_company(
    skus: int = 300, seed: int = 7, cycle: str = "2026-11", history_months: int = 48, horizon_months: int = HORIZON_MONTHS
) -> dict[str, pl.DataFrame]:
    """Build every input file of the contract for a synthetic company.

    `cycle` is the planning month: history ends the month before it, the horizon (budget,
    indicators, open supply, consensus inputs, lifecycle dates) starts at it; `horizon_months`
    is the planning calendar's (the demo draws its whole time window at once, so another
    horizon gives another, equally plausible, company).
    Returns one DataFrame per contract file, keyed by file name, columns in contract order.
    """
    n = int(skus)
    H = int(history_months)
    if n < 20:
        raise ValueError("the demo company needs at least 20 SKUs")
    if H < 24:
        raise ValueError("history_months must be at least 24 (the budget uses last year's months)")
    window = Window(cycle=parse_month(cycle), history=H, horizon=int(horizon_months))
    rng = _Streams.spawn(seed)

    ind = draw_indicators(rng.indicators, window)
    fams = draw_families(rng.family, window, n, ind)
    cat = draw_skus(rng.sku, fams, n)
    demand = expected_demand(rng.sku, window, fams, cat)
    lines = build_lines(rng.lines, window, fams, cat, demand, raw_hours(rng.sku, fams, cat))
    mats, prices = build_materials(rng.materials, window, fams, cat, demand, lines)
    hist = sample_history(rng.history, window, fams, cat, demand, prices)

    frames = {  # built in this order: the misc stream is shared by products, stock and inputs
        "products": products_frame(rng.misc, window, fams, cat, demand, prices),
        "inventory": inventory_frame(rng.misc, window, cat, demand, hist),
        "open_supply": open_supply_frame(rng.misc, window, cat, demand, mats),
        "demand_inputs": demand_inputs_frame(rng.misc, window, fams, cat, demand),
        "sales_history": sales_history_frame(window, cat.codes, hist),
        "resources": resources_frame(lines),
        "routings": routings_frame(lines, cat.codes),
        "materials": materials_frame(mats),
        "bom": bom_frame(mats, cat.codes),
        "budget": budget_frame(window, fams, cat, hist, prices),
        "indicators": indicators_frame(window, ind),
        "price_plan": price_plan_frame(fams.names, window.cycle),
    }
    return {f.name: frames[f.name].select(f.column_names) for f in INPUT_FILES}
