"""Plants, production lines (resources) and routings, sized from next year's expected demand.

About one line per 32 SKUs, grouped in plants. Each family is made in one home plant, and a
plant's lines are shared by its families (a line makes fans in summer and heaters in winter),
which levels the load as real plants do. Most lines run ~75-90% on average and cope with peaks
on overtime; a few are genuinely tight and force pre-building, alternates or unmet demand, and
the first line (VLC-L01) is the bottleneck whose peak season goes short in the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sop_pipeline.demo.catalogue import PLANTS, largest_remainder, pick
from sop_pipeline.demo.demand import Demand
from sop_pipeline.demo.families import Families
from sop_pipeline.demo.months import Window
from sop_pipeline.demo.skus import Skus


@dataclass(frozen=True)
class Plants:
    family_plant: np.ndarray  # home plant per family
    size: np.ndarray  # lines per plant
    start: np.ndarray  # index of each plant's first line

    @property
    def count(self) -> int:
        return self.size.size

    @property
    def line_plant(self) -> np.ndarray:
        return np.repeat(np.arange(self.count), self.size)


@dataclass(frozen=True)
class Lines:
    plants: Plants
    codes: list[str]
    rate: np.ndarray  # cost per hour per line
    capacity: np.ndarray  # hours per month per line
    overtime: np.ndarray
    primary: np.ndarray  # priority-1 line per SKU
    hours: np.ndarray  # hours per unit on the primary line
    has_alt: np.ndarray  # SKUs with a priority-2 line
    alt: np.ndarray
    alt_hours: np.ndarray


def raw_hours(rng_sku: np.random.Generator, fams: Families, skus: Skus) -> np.ndarray:
    """Hours per unit before calibration to the lines; the last draw on the SKU stream."""
    return np.maximum(np.round(fams.hours_level[skus.family] * rng_sku.lognormal(0.0, 0.35, skus.n), 4), 0.002)


def build_lines(rng: np.random.Generator, window: Window, fams: Families, skus: Skus, demand: Demand, hpu: np.ndarray) -> Lines:
    """Lay out plants and lines, route every SKU, calibrate its hours and size the capacities."""
    H, n = window.history, skus.n
    year = demand.expected[:, H : H + 12]
    R = max(6, round(n / 32))
    plants = _plants(rng, fams, R)
    sku_plant = plants.family_plant[skus.family]
    primary = _deal_to_lines(year.mean(axis=1) * hpu, sku_plant, plants)
    hpu = _calibrate_hours(rng, hpu, year, sku_plant, plants)
    has_alt, alt, alt_hpu = _alternates(rng, hpu, primary, sku_plant, plants, R)
    has_alt &= primary != 0  # the bottleneck's SKUs have no qualified alternate (see _capacity)
    plant_rate = rng.uniform(32.0, 60.0, plants.count)
    rate = np.round(plant_rate[plants.line_plant] * rng.uniform(0.9, 1.15, R), 2)
    cap, overtime = _capacity(rng, year, primary, hpu, R)
    codes = [f"{PLANTS[p][1]}-L{j + 1:02d}" for p in range(plants.count) for j in range(plants.size[p])]
    return Lines(
        plants=plants,
        codes=codes,
        rate=rate,
        capacity=cap,
        overtime=overtime,
        primary=primary,
        hours=hpu,
        has_alt=has_alt,
        alt=alt,
        alt_hours=alt_hpu,
    )


def _plants(rng: np.random.Generator, fams: Families, R: int) -> Plants:
    """Two plants for a small company, more for a large one; every plant gets at least one line
    and the rest in proportion to the SKUs it makes."""
    F = fams.count
    P = 2 if R < 8 else min(3 + R // 60, len(PLANTS))
    P = min(P, F)
    fam_plant = rng.permutation(F) % P
    plant_skus = np.bincount(fam_plant, weights=fams.counts, minlength=P)
    plant_size = 1 + largest_remainder(plant_skus, R - P)
    plant_start = np.concatenate([[0], np.cumsum(plant_size)[:-1]])
    return Plants(family_plant=fam_plant, size=plant_size, start=plant_start)


def _deal_to_lines(h_raw: np.ndarray, sku_plant: np.ndarray, plants: Plants) -> np.ndarray:
    """Primary line per SKU: a plant's SKUs are dealt to its lines in a snake order of their
    hours (biggest first), so the lines carry similar loads."""
    n = h_raw.size
    order = np.lexsort((-h_raw, sku_plant))
    plant_first = np.concatenate([[0], np.cumsum(np.bincount(sku_plant, minlength=plants.count))[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - plant_first[sku_plant[order]]
    L = plants.size[sku_plant]
    lane = np.where((rank // L) % 2 == 1, L - 1 - rank % L, rank % L)
    return plants.start[sku_plant] + lane


def _calibrate_hours(rng: np.random.Generator, hpu: np.ndarray, year: np.ndarray, sku_plant: np.ndarray, plants: Plants) -> np.ndarray:
    """Scale hours per unit so a line's peak-month load is a plausible 420-540 h (a month has ~720)."""
    plant_hours = np.zeros((plants.count, 12))
    np.add.at(plant_hours, sku_plant, year * hpu[:, None])
    plant_peak = plant_hours.max(axis=1)
    hpu_scale = plants.size * rng.uniform(420.0, 540.0, plants.count) / np.maximum(plant_peak, 1e-9)
    return np.maximum(np.round(hpu * hpu_scale[sku_plant], 4), 0.001)


def _alternates(
    rng: np.random.Generator, hpu: np.ndarray, primary: np.ndarray, sku_plant: np.ndarray, plants: Plants, R: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Alternates (priority 2) for ~30% of SKUs: mostly a sister line, sometimes another plant,
    always a little slower than the primary."""
    n = hpu.size
    has_alt = rng.random(n) < 0.30
    p_start, p_size = plants.start[sku_plant], plants.size[sku_plant]
    same = (rng.random(n) < 0.6) & (p_size > 1)
    alt_same = p_start + (primary - p_start + 1 + rng.integers(0, np.maximum(p_size - 1, 1))) % p_size
    k = rng.integers(0, np.maximum(R - p_size, 1))
    alt_other = np.where(k < p_start, k, k + p_size)
    alt = np.where(same, alt_same, alt_other)
    alt_hpu = np.round(hpu * rng.uniform(1.10, 1.35, n), 4)
    return has_alt, alt, alt_hpu


def _capacity(rng: np.random.Generator, year: np.ndarray, primary: np.ndarray, hpu: np.ndarray, R: int) -> tuple[np.ndarray, np.ndarray]:
    """Capacity and overtime hours from the next year's load on the primary lines: about a fifth
    of the lines are tight, the others cope with their peak on overtime."""
    load = np.zeros((R, 12))
    np.add.at(load, primary, year * hpu[:, None])
    avg, peak = load.mean(axis=1), load.max(axis=1)
    n_tight = max(1, round(0.2 * R))
    tight = np.zeros(R, dtype=bool)
    tight[rng.choice(R, n_tight, replace=False)] = True
    cap = np.where(
        tight,
        np.maximum(avg / rng.uniform(0.86, 0.93, R), peak / rng.uniform(1.18, 1.30, R)),
        np.maximum(avg / rng.uniform(0.76, 0.90, R), peak / rng.uniform(1.00, 1.12, R)),
    )
    # The first line (VLC-L01, where the demo's outage and Saturday-shift scenarios act) is the
    # bottleneck: its year's load is just above its regular hours, so it runs overtime most
    # months and its peak season goes short even with all of it, unless something is decided.
    cap[0] = avg[0] / 1.4 if avg[0] > 0 else cap[0]  # no draw: the rest of the company stays as it was
    cap = np.where(cap > 0, np.ceil(cap / 10) * 10, 160.0)
    ot_share = rng.uniform(0.10, 0.20, R)
    ot_share = np.where(tight, ot_share, np.maximum(ot_share, peak / cap - 1 + 0.03))
    ot_share[0] = 0.08
    return cap, np.round(cap * ot_share)


def resources_frame(lines: Lines) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "resource": lines.codes,
            "plant": pick([x[0] for x in PLANTS[: lines.plants.count]], lines.plants.line_plant),
            "capacity_hours": lines.capacity.astype(np.int64),
            "overtime_hours": lines.overtime.astype(np.int64),
            "cost_per_hour": lines.rate,
            "overtime_cost_per_hour": np.round(lines.rate * 1.5, 2),
        }
    )


def routings_frame(lines: Lines, sku_codes: pl.Series) -> pl.DataFrame:
    """A SKU's primary routing, then its alternate, SKUs in catalogue order."""
    n = sku_codes.len()
    ai = np.flatnonzero(lines.has_alt)
    return (
        pl.DataFrame(
            {
                "sku": pl.concat([sku_codes, sku_codes.gather(ai)]),
                "resource": pl.Series(lines.codes, dtype=pl.String).gather(np.concatenate([lines.primary, lines.alt[ai]])),
                "hours_per_unit": np.concatenate([lines.hours, lines.alt_hours[ai]]),
                "priority": np.concatenate([np.ones(n, np.int64), np.full(ai.size, 2, np.int64)]),
                "_i": np.concatenate([np.arange(n), ai]),
            }
        )
        .sort(["_i", "priority"])
        .drop("_i")
    )
