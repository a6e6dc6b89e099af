"""Materials, suppliers and bills of material; unit cost rolls up from them, and price from cost.

A few common materials (packaging, fasteners) are shared by all SKUs; each family has its own
components. Supplier capacity has comfortable headroom on next year's requirement except for
one or two constrained components, which is what the supply review has to plan around; the
largest of them is short of its average month, so its supplier binds the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from sop_pipeline.demo.catalogue import COMMON_MATERIALS, COMPONENTS, SUPPLIERS, pick
from sop_pipeline.demo.demand import Demand
from sop_pipeline.demo.families import Families
from sop_pipeline.demo.lines import Lines
from sop_pipeline.demo.months import Window
from sop_pipeline.demo.skus import Skus


@dataclass(frozen=True)
class MaterialMaster:
    common: int  # the first `common` materials are shared by all families
    per_family: np.ndarray  # components per family, following the common ones
    family: np.ndarray  # family per material, -1 for common ones
    suppliers: int  # how many of the supplier names are used
    cost: np.ndarray
    supplier: np.ndarray  # supplier index per material
    lead: np.ndarray  # lead time in months

    @property
    def count(self) -> int:
        return self.family.size

    @property
    def offset(self) -> np.ndarray:
        """Index of each family's first component."""
        return self.common + np.concatenate([[0], np.cumsum(self.per_family)[:-1]])


@dataclass(frozen=True)
class Bom:
    """Four slots per SKU (one common material, then family components); `valid` marks the used ones."""

    material: np.ndarray  # n x 4 material index
    qty: np.ndarray  # n x 4 quantity per unit
    valid: np.ndarray  # n x 4


@dataclass(frozen=True)
class Prices:
    unit_cost: np.ndarray
    unit_price: np.ndarray


@dataclass(frozen=True)
class Materials:
    master: MaterialMaster
    bom: Bom
    requirement: np.ndarray  # average monthly requirement over the next year
    supplier_capacity: np.ndarray
    on_hand: np.ndarray
    codes: list[str]
    descriptions: list[str]


def build_materials(
    rng: np.random.Generator, window: Window, fams: Families, skus: Skus, demand: Demand, lines: Lines
) -> tuple[Materials, Prices]:
    """Material master, BOM, unit cost and price, then supplier capacity and material stock sized
    from the BOM's requirement for next year's expected demand (draws in exactly this order)."""
    H = window.history
    master = _material_master(rng, fams, skus.n)
    bom = _bom(rng, master, skus.family)
    prices = _unit_prices(rng, master, bom, lines)
    master = _component_price_rise(master, fams)
    req = _requirements(demand.expected[:, H : H + 12], master, bom)
    r_avg = req.mean(axis=1)
    scap = _supplier_capacity(rng, master, req)
    descriptions = _descriptions(rng, master, fams.names)
    M = master.count
    on_hand = np.where(rng.random(M) < 0.05, 0.0, np.round(r_avg * rng.uniform(0.6, 1.4, M)))
    codes = [f"M-COM-{j + 1:03d}" for j in range(master.common)] + [
        f"M-{fams.codes[f]}-{j + 1:03d}" for f in range(fams.count) for j in range(master.per_family[f])
    ]
    return Materials(
        master=master, bom=bom, requirement=r_avg, supplier_capacity=scap, on_hand=on_hand, codes=codes, descriptions=descriptions
    ), prices


def _material_master(rng: np.random.Generator, fams: Families, n: int) -> MaterialMaster:
    """Common materials are cheap, mostly from the first supplier and quick to get; components
    cost what their family's level says, come mostly from the family's supplier, take 1-3 months."""
    F = fams.count
    C = int(np.clip(round(4 + n / 1000), 4, 30))
    k_f = np.clip(np.round(fams.counts / 8), 4, 60).astype(np.int64)
    M = C + int(k_f.sum())
    mat_fam = np.concatenate([np.full(C, -1), np.repeat(np.arange(F), k_f)])
    n_sup = int(np.clip(5 + M // 80, 5, len(SUPPLIERS)))
    mat_cost = np.where(mat_fam < 0, rng.uniform(0.15, 2.5, M), fams.component_cost[np.maximum(mat_fam, 0)] * rng.lognormal(0.0, 0.6, M))
    mat_cost = np.maximum(np.round(mat_cost, 2), 0.05)
    fam_supplier = 1 + rng.permutation(F) % (n_sup - 1)
    second = rng.integers(1, n_sup, M)
    supplier = np.where(
        mat_fam < 0, np.where(rng.random(M) < 0.7, 0, second), np.where(rng.random(M) < 0.7, fam_supplier[np.maximum(mat_fam, 0)], second)
    )
    lead = np.where(mat_fam < 0, rng.integers(0, 2, M), rng.integers(1, 4, M))
    lead = np.where((mat_fam >= 0) & (rng.random(M) < 0.08), 0, lead)
    return MaterialMaster(common=C, per_family=k_f, family=mat_fam, suppliers=n_sup, cost=mat_cost, supplier=supplier, lead=lead)


def _bom(rng: np.random.Generator, master: MaterialMaster, fam: np.ndarray) -> Bom:
    """One common material plus 1-3 consecutive components of the SKU's family."""
    n, C, k_f = fam.size, master.common, master.per_family
    n_bom = rng.choice(np.array([2, 3, 4]), p=[0.3, 0.45, 0.25], size=n)
    bmat = np.zeros((n, 4), dtype=np.int64)
    bmat[:, 0] = rng.integers(0, C, n)
    start = rng.integers(0, k_f[fam])
    off = master.offset
    for j in range(1, 4):  # BOM slots only
        bmat[:, j] = off[fam] + (start + j - 1) % k_f[fam]
    bqty = np.empty((n, 4))
    bqty[:, 0] = np.where(rng.random(n) < 0.3, rng.integers(2, 5, n), 1)
    discrete = rng.random((n, 3)) < 0.5
    bqty[:, 1:] = np.where(discrete, rng.integers(1, 5, (n, 3)), np.round(rng.uniform(0.1, 3.0, (n, 3)), 3))
    return Bom(material=bmat, qty=bqty, valid=np.arange(4)[None, :] < n_bom[:, None])


# The family whose components got dearer after its standard costs were set (index into the
# families, the last one for companies with fewer), and by how much: the one family whose
# rolled-up cost is off its standard on purpose, so the financial review's cost variance shows.
PRICE_RISE_FAMILY = 3
COMPONENT_PRICE_RISE = 0.25


def _unit_prices(rng: np.random.Generator, master: MaterialMaster, bom: Bom, lines: Lines) -> Prices:
    """Standard cost is the rolled-up cost (materials plus conversion, hours x the primary
    line's rate) within a few percent per SKU (rounding, scrap and overhead allowances); price
    is cost over a gross-margin ratio, so margins differ by SKU but are never negative."""
    n = bom.material.shape[0]
    mat_cost_sku = (bom.qty * master.cost[bom.material] * bom.valid).sum(axis=1)
    conv_cost = lines.hours * lines.rate[lines.primary]
    unit_cost = np.maximum(np.round((mat_cost_sku + conv_cost) * rng.uniform(0.98, 1.04, n), 2), 0.5)
    unit_price = np.round(unit_cost / rng.uniform(0.45, 0.72, n), 2)
    return Prices(unit_cost=unit_cost, unit_price=np.maximum(unit_price, unit_cost + 0.01))


def _component_price_rise(master: MaterialMaster, fams: Families) -> MaterialMaster:
    """One family's components cost COMPONENT_PRICE_RISE more than when its standards were
    set: the material master carries today's prices, the product master the old standard."""
    f = min(PRICE_RISE_FAMILY, fams.count - 1)
    cost = np.where(master.family == f, np.round(master.cost * (1 + COMPONENT_PRICE_RISE), 2), master.cost)
    return replace(master, cost=cost)


def _requirements(year: np.ndarray, master: MaterialMaster, bom: Bom) -> np.ndarray:
    """Material x month requirement of the SKUs' expected demand over the next 12 months."""
    bi, bj = np.nonzero(bom.valid)
    req = np.zeros((master.count, 12))
    np.add.at(req, bom.material[bi, bj], year[bi] * bom.qty[bi, bj][:, None])
    return req


def _supplier_capacity(rng: np.random.Generator, master: MaterialMaster, req: np.ndarray) -> np.ndarray:
    """Headroom over the peak month, except for a few tight components that barely cover the average."""
    M = master.count
    r_avg, r_peak = req.mean(axis=1), req.max(axis=1)
    n_mtight = 1 if M < 60 else 2 + M // 400
    comp_ids = np.flatnonzero((master.family >= 0) & (r_avg > 0))
    m_tight = np.zeros(M, dtype=bool)
    m_tight[rng.choice(comp_ids, min(n_mtight, comp_ids.size), replace=False)] = True
    scap = np.where(m_tight, r_avg * rng.uniform(1.0, 1.08, M), np.maximum(r_avg * rng.uniform(1.2, 1.4, M), r_peak * 1.02))
    # The tight component with the largest requirement is short of it: its supplier delivers 97 %
    # of the average month, so once its stock is used up the plan is bound by the supplier in the
    # months its family sells most (no draw: the rest of the company stays as it was).
    if m_tight.any():
        worst = np.flatnonzero(m_tight)[np.argmax(r_avg[m_tight])]
        scap[worst] = r_avg[worst] * 0.97
    return np.where(r_avg > 0, np.ceil(scap), 100.0)


def _descriptions(rng: np.random.Generator, master: MaterialMaster, fam_names: list[str]) -> list[str]:
    """Common materials by name (numbered types once the names run out), components as
    '<component> for <family>' with the component names shuffled per company."""
    nc, ncomp = len(COMMON_MATERIALS), len(COMPONENTS)
    desc = [COMMON_MATERIALS[j % nc] + ("" if j < nc else f" type {j // nc + 1}") for j in range(master.common)]
    comp_pick = rng.permutation(ncomp)
    desc += [
        COMPONENTS[comp_pick[(f + j) % ncomp]] + (f" {chr(65 + j // ncomp)}" if j >= ncomp else "") + f" for {fam_names[f]}"
        for f in range(len(fam_names))
        for j in range(master.per_family[f])
    ]
    return desc


def materials_frame(mats: Materials) -> pl.DataFrame:
    m = mats.master
    return pl.DataFrame(
        {
            "material": mats.codes,
            "description": mats.descriptions,
            "supplier": pick(SUPPLIERS[: m.suppliers], m.supplier),
            "unit_cost": m.cost,
            "lead_time_months": m.lead.astype(np.int64),
            "supplier_capacity": mats.supplier_capacity.astype(np.int64),
            "on_hand": mats.on_hand.astype(np.int64),
        }
    )


def bom_frame(mats: Materials, sku_codes: pl.Series) -> pl.DataFrame:
    """SKU-major, slots in order."""
    bom = mats.bom
    bi, bj = np.nonzero(bom.valid)
    return pl.DataFrame(
        {
            "sku": sku_codes.gather(bi),
            "material": pl.Series(mats.codes, dtype=pl.String).gather(bom.material[bi, bj]),
            "qty_per": bom.qty[bi, bj],
        }
    )
