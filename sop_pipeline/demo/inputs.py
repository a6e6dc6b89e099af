"""Consensus inputs (demand_inputs): the sales and marketing layers on top of the statistical forecast.

They arrive as in a real cycle: sales adjusts its big accounts' SKUs (overrides and adds, mostly
with a reason, one large override without), marketing lifts families for campaigns and supports
launches. Only the first six horizon months, which is where people actually have information.
Inputs from earlier cycles for the months now closing the history come first, so the accuracy
step can score the layers, not just the statistical forecast.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sop_pipeline.demo.catalogue import (
    CUSTOMERS,
    EVENTS,
    MARKETING_OWNERS,
    SALES_OWNERS,
)
from sop_pipeline.demo.demand import Demand
from sop_pipeline.demo.families import Families
from sop_pipeline.demo.months import Window, month_label
from sop_pipeline.demo.skus import LAUNCHED, REGULAR, Skus
from sop_pipeline.inputs.contract import FILES_BY_NAME


def demand_inputs_frame(rng: np.random.Generator, window: Window, fams: Families, skus: Skus, demand: Demand) -> pl.DataFrame:
    """Past inputs, then this cycle's sales rows, then its marketing rows (the layer order)."""
    sales, cand, n_sales = _sales_inputs(rng, window, skus, demand)
    marketing = _marketing_inputs(rng, window, fams, skus, demand)
    rows = _past_inputs(rng, window, fams, skus, demand, cand, n_sales) + sales + marketing
    cols = FILES_BY_NAME["demand_inputs"].column_names
    return pl.DataFrame(rows, schema={c: (pl.Float64 if c == "value" else pl.String) for c in cols}, orient="row")


def _sales_inputs(rng: np.random.Generator, window: Window, skus: Skus, demand: Demand) -> tuple[list[tuple], np.ndarray, int]:
    """Distinct big runners, one month each. Also returns the big runners picked from and how many
    are picked, which the earlier cycles' inputs reuse."""
    n, H, c_abs, E = skus.n, window.history, window.cycle, demand.expected
    n_sales = int(np.clip(round(16 * (n / 300) ** 0.25), 8, 48))
    cand = np.flatnonzero((skus.role == REGULAR) | (skus.role == LAUNCHED))
    cand = cand[np.argsort(-skus.base[cand], kind="stable")][: max(n_sales, len(cand) // 4)]
    picks = rng.choice(cand, size=min(n_sales, cand.size), replace=False)
    offs = rng.integers(0, 6, picks.size)
    is_override = rng.random(picks.size) < 0.55
    factor = rng.uniform(0.75, 1.5, picks.size)
    add_share = rng.uniform(0.1, 0.5, picks.size)
    custs = rng.integers(0, len(CUSTOMERS), picks.size)
    owners = rng.integers(0, len(SALES_OWNERS), picks.size)
    no_reason = set(rng.choice(picks.size, size=2, replace=False).tolist())
    first_nr = min(no_reason)
    negative = int(rng.choice([i for i in range(picks.size) if i not in no_reason]))
    rows: list[tuple] = []
    for i, (s, o) in enumerate(zip(picks, offs)):  # a few dozen rows
        kind = "unexplained" if i == first_nr else "lost" if i == negative else "override" if is_override[i] else "add"
        adj, val, reason = _sales_adjustment(rng, kind, float(E[s, H + o]), CUSTOMERS[custs[i]], factor[i], add_share[i])
        if i in no_reason and i != first_nr:
            reason = None
        rows.append(("sales", "sku", skus.codes[int(s)], month_label(c_abs + int(o)), adj, float(val), SALES_OWNERS[owners[i]], reason))
    rows.sort(key=lambda r: (r[3], r[2]))
    return rows, cand, n_sales


def _sales_adjustment(
    rng: np.random.Generator, kind: str, exp: float, cust: str, factor: float, add_share: float
) -> tuple[str, int, str | None]:
    """Adjustment type, value and reason of one sales input, relative to the expected demand."""
    if kind == "unexplained":  # a large, unexplained override: the pipeline should flag it
        return "override", round(exp * rng.uniform(2.5, 3.2)), None
    if kind == "lost":
        return "add", -round(exp * rng.uniform(0.15, 0.3)), f"Listing lost at {cust}"
    if kind == "override":
        reason = f"Range review at {cust}: fewer facings" if factor < 1 else f"Customer forecast received from {cust}"
        return "override", round(exp * factor), reason
    return "add", round(exp * add_share), f"Extra order: {cust} store openings"


def _marketing_inputs(rng: np.random.Generator, window: Window, fams: Families, skus: Skus, demand: Demand) -> list[tuple]:
    """Family campaigns (uplift in percent), which run in season, and launch support for the new
    products launching within the six months."""
    n, F, H, c_abs, names = skus.n, fams.count, window.history, window.cycle, fams.names
    n_mkt = int(np.clip(round(8 * (n / 300) ** 0.2), 4, 20))
    in_season = fams.season[:, (c_abs + np.arange(6)) % 12].ravel() ** 3  # campaigns run in season
    cells = rng.choice(F * 6, size=min(n_mkt, F * 6), replace=False, p=in_season / in_season.sum())
    mkt = []
    for cell in cells:
        f, o = int(cell // 6), int(cell % 6)
        month = c_abs + o
        mkt.append(
            (
                "marketing",
                "family",
                names[f],
                month_label(month),
                "uplift_pct",
                float(round(rng.uniform(5, 15), 1)),
                MARKETING_OWNERS[int(rng.integers(0, 3))],
                f"{EVENTS[month % 12]}: {names[f]} in-store display and online ads",
            )
        )
    launch_t = demand.launch_t
    early = np.flatnonzero(skus.is_npi & (launch_t < H + 6))[:6]
    for s in early:
        lt = int(launch_t[s])
        mkt.append(
            (
                "marketing",
                "sku",
                skus.codes[int(s)],
                month_label(c_abs + lt - H),
                "add",
                float(max(1, round(0.5 * skus.base[s]))),
                MARKETING_OWNERS[1],
                "Launch campaign: retailer pipeline fill",
            )
        )
    mkt.sort(key=lambda r: (r[3], r[1], r[2]))
    return mkt


def _past_inputs(
    rng: np.random.Generator, window: Window, fams: Families, skus: Skus, demand: Demand, cand: np.ndarray, n_sales: int
) -> list[tuple]:
    """Inputs made in earlier cycles for the six months now closing the history.

    Without them the accuracy step could only score the statistical layer: it is the inputs
    whose months already have actuals that show whether sales and marketing add value. Sales
    overrides here are informed (within about 10% of what demand turned out to be); marketing
    uplifts are blanket family campaigns, which typically destroy a little accuracy.
    """
    H, c_abs, E, names = window.history, window.cycle, demand.expected, fams.names
    rows: list[tuple] = []
    picks = rng.choice(cand, size=min(n_sales, cand.size), replace=False)
    back = rng.integers(1, 7, picks.size)  # 1-6 months before the cycle
    owners = rng.integers(0, len(SALES_OWNERS), picks.size)
    custs = rng.integers(0, len(CUSTOMERS), picks.size)
    for s, b, owner, cust in zip(picks, back, owners, custs):
        value = round(float(E[s, H - b]) * rng.uniform(0.9, 1.12))
        rows.append(
            (
                "sales",
                "sku",
                skus.codes[int(s)],
                month_label(c_abs - int(b)),
                "override",
                float(value),
                SALES_OWNERS[owner],
                f"Customer forecast received from {CUSTOMERS[cust]}",
            )
        )
    families = rng.choice(len(names), size=min(3, len(names)), replace=False)
    for f in families:
        b = int(rng.integers(1, 7))
        rows.append(
            (
                "marketing",
                "family",
                names[int(f)],
                month_label(c_abs - b),
                "uplift_pct",
                float(round(rng.uniform(5, 15), 1)),
                MARKETING_OWNERS[int(rng.integers(0, 3))],
                f"{EVENTS[(c_abs - b) % 12]}: {names[int(f)]} campaign",
            )
        )
    rows.sort(key=lambda r: (r[0] != "sales", r[3], r[2]))  # sales first: the layer order
    return rows
