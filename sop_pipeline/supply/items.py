"""Planning items: SKUs, or families split by primary resource and critical material, with
the aggregated demand, stock, targets, costs and coefficients the LP plans them with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from sop_pipeline.settings.supply import SupplySettings
from sop_pipeline.supply.common import QTY_TOL, shortfall_cost
from sop_pipeline.supply.company import Company, own_supply_projection, unconstrained_requirement


@dataclass
class Items:
    """Planning items with their aggregated demand, stock, targets, costs and coefficients."""

    names: np.ndarray
    family: np.ndarray
    item_of_sku: np.ndarray
    primary: np.ndarray  # per SKU: its preferred resource (-1 without routing)
    D: np.ndarray
    I0: np.ndarray
    OS: np.ndarray
    TGT: np.ndarray
    hold: np.ndarray
    penalty: np.ndarray
    below: np.ndarray
    end_below: np.ndarray  # per unit below target in the last month
    p_item: np.ndarray
    p_res: np.ndarray
    H: np.ndarray
    x_cap: np.ndarray  # upper bound of each pair's production per month (inf on primaries)
    q_item: np.ndarray
    q_mat: np.ndarray
    A: np.ndarray
    noroute: np.ndarray
    row_pair: np.ndarray  # routing row -> pair
    critical: np.ndarray  # materials that split items
    in_lp: np.ndarray  # materials with rows in the LP (the others are ample: cost only)
    W: np.ndarray  # per item: unconstrained requirement (the weights of its averages)


def _weighted(group: np.ndarray, n_groups: int, values: np.ndarray, weights: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Per-group weighted average of `values` (rows x months), `fallback` where weights vanish."""
    agg = sp.csr_matrix((np.ones(len(group)), (group, np.arange(len(group)))), shape=(n_groups, len(group)))
    num = agg @ (values * weights)
    den = agg @ weights
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), fallback)


def build_items(c: Company, settings: SupplySettings) -> Items:
    """Group SKUs into planning items and aggregate everything the LP needs per item.

    At family level an item is a family on one primary resource ("Cooling @ VLC-L01"): the
    rough-cut unit whose load lands on a known line, so that a tight line cuts only the volume
    that really runs on it. SKUs that use a critical material (one whose supply cannot cover
    the unconstrained requirement) form items of their own ("Cooling @ VLC-L01 | M-COO-007"),
    because an average bill of materials would make a whole item wait for a part only some of
    its SKUs need. Hours and material per unit are averages over the item's SKUs weighted by
    what each SKU needs produced that month (its unconstrained net requirement), which is also
    the proportion the disaggregation hands production out in, so the two agree on load.

    An alternate routing becomes a pair too, but when only some of the item's SKUs have it,
    it may carry at most what those SKUs need that month (their unconstrained requirement),
    so a flexibility three SKUs have is not lent to the other ten. (A bound per month rather
    than a row linking it to the item's production: such rows tripled HiGHS's time at 20,000
    SKUs. A window of several months per bound would let an alternate make several times
    what its SKUs need over the horizon.)
    """
    n, T = c.D.shape
    mode = settings.costs.shortfall_mode
    # What each SKU would need produced each month without limits (demand and target).
    W_sku = unconstrained_requirement(c, mode) + 1e-6 * c.D + 1e-12
    critical, in_lp = _material_classes(c, W_sku, settings)
    names, item_of_sku = np.unique(_item_keys(c, critical, settings.planning.level == "sku"), return_inverse=True)
    G = len(names)
    item_family = np.empty(G, dtype=object)
    item_family[item_of_sku] = c.family
    agg_items = sp.csr_matrix((np.ones(n), (item_of_sku, np.arange(n))), shape=(G, n))
    if settings.planning.level == "sku":
        D, I0, OS, TGT = c.D, c.I0, c.OSP, c.TGT
    else:
        # Net requirements: demand the SKU's own stock and open supply leave uncovered, and the
        # part of its target its own surplus does not already meet.
        deficit, excess = own_supply_projection(c, mode)
        D, I0, OS = agg_items @ deficit, np.zeros(G), np.zeros((G, T))
        TGT = agg_items @ np.maximum(c.TGT - excess, 0.0)
    # Averages use each SKU's requirement over the whole horizon, the same in every month: with
    # month-by-month weights the LP would learn to produce an item in the months whose mix
    # happens to need less of a scarce part, which the SKUs' own bills of materials never do.
    W = np.repeat(W_sku.sum(axis=1, keepdims=True), T, axis=1)
    rates = _item_rates(c, item_of_sku, G, settings)
    routes = _routing_pairs(c, item_of_sku, G, W, W_sku)
    bills = _material_pairs(c, item_of_sku, G, W, agg_items @ W)
    # Items without a routing still cost money to make: standard cost less their materials.
    routed = np.zeros(G, dtype=bool)
    routed[routes["p_item"]] = True
    mat_cost = np.zeros((G, T))
    np.add.at(mat_cost, bills["q_item"], bills["A"] * c.mcost[bills["q_mat"]][:, None])
    noroute = np.where(routed[:, None], 0.0, np.maximum(rates.pop("avg_cost") - mat_cost, 0.0))
    return Items(
        names=names,
        family=item_family,
        item_of_sku=item_of_sku,
        primary=c.primary,
        D=D,
        I0=I0,
        OS=OS,
        TGT=TGT,
        **rates,
        **routes,
        **bills,
        noroute=noroute,
        critical=critical,
        in_lp=in_lp,
        W=agg_items @ W_sku,
    )


def _material_classes(c: Company, W_sku: np.ndarray, settings: SupplySettings) -> tuple[np.ndarray, np.ndarray]:
    """Which materials are critical (they split items) and which get rows in the LP at all."""
    sku_req = np.zeros((len(c.materials), W_sku.shape[1]))
    np.add.at(sku_req, c.b_mat, W_sku[c.b_sku] * c.b_qty[:, None])
    if not len(c.materials):
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    critical = critical_materials(c, sku_req, settings.planning.critical_material_margin)
    margin = settings.planning.ample_material_margin
    in_lp = critical_materials(c, sku_req, margin) if margin > 0 else np.ones(len(c.materials), dtype=bool)
    return critical, in_lp


def _item_keys(c: Company, critical: np.ndarray, sku_level: bool) -> np.ndarray:
    """Each SKU's planning item: the SKU itself, or "family @ primary resource" with the
    critical materials it uses appended ("Cooling @ VLC-L01 | M-COO-007")."""
    if sku_level:
        return c.skus.astype(str)
    primary = c.primary
    res_label = np.where(primary >= 0, c.resources[np.maximum(primary, 0)] if len(c.resources) else "", "(no routing)")
    key = c.family.astype(object) + " @ " + res_label.astype(object)
    crit_rows = critical[c.b_mat] if len(c.b_mat) else np.zeros(0, dtype=bool)
    if crit_rows.any():
        uses = pl.DataFrame({"sku_i": c.b_sku[crit_rows], "material": c.materials[c.b_mat[crit_rows]]})
        sig = uses.group_by("sku_i").agg(pl.col("material").sort().str.join("+"))
        suffix = np.full(len(c.skus), "", dtype=object)
        suffix[sig.get_column("sku_i").to_numpy()] = " | " + sig.get_column("material").to_numpy().astype(object)
        key = key + suffix
    return key.astype(str)


def _item_rates(c: Company, item_of_sku: np.ndarray, G: int, settings: SupplySettings) -> dict[str, np.ndarray]:
    """Per item, demand-weighted money per unit: holding, shortfall and below-target penalties,
    and the standard cost (for items made without a routing)."""
    total_demand = (c.D.sum(axis=1) + 1e-9)[:, None]
    zeros = np.zeros((G, 1))
    T = c.D.shape[1]
    base = np.maximum(c.price, c.cost)
    costs = settings.costs

    def per_item(values: np.ndarray) -> np.ndarray:
        return _weighted(item_of_sku, G, values[:, None], total_demand, zeros)[:, 0]

    return {
        "hold": per_item(costs.holding_rate_per_month * c.cost),
        "penalty": _weighted(item_of_sku, G, shortfall_cost(c.price, c.cost, T, costs), total_demand, np.zeros((G, T))),
        "below": per_item(costs.below_target_penalty_factor * c.cost),
        "end_below": per_item(costs.end_target_penalty_factor * base),
        "avg_cost": _weighted(item_of_sku, G, c.cost[:, None], total_demand, zeros),
    }


def _routing_pairs(c: Company, item_of_sku: np.ndarray, G: int, W: np.ndarray, W_sku: np.ndarray) -> dict[str, np.ndarray]:
    """(item, resource) pairs with their requirement-weighted hours per unit and, for an
    alternate only some of the item's SKUs have, the most it may carry per month."""
    R = max(len(c.resources), 1)
    pair_keys, row_pair = np.unique(item_of_sku[c.r_sku] * R + c.r_res, return_inverse=True)
    P = len(pair_keys)
    plain = _weighted(row_pair, P, c.r_hours[:, None], np.ones((len(c.r_sku), 1)), np.zeros((P, 1)))
    agg_rows = sp.csr_matrix((np.ones(len(row_pair)), (row_pair, np.arange(len(row_pair)))), shape=(P, len(row_pair)))
    p_item = pair_keys // R
    all_capable = np.asarray(agg_rows.sum(axis=1)).ravel() == np.bincount(item_of_sku, minlength=G)[p_item]
    return {
        "p_item": p_item,
        "p_res": pair_keys % R,
        "H": _weighted(row_pair, P, c.r_hours[:, None], W[c.r_sku], plain),
        "x_cap": np.where(all_capable[:, None], np.inf, agg_rows @ W_sku[c.r_sku]),
        "row_pair": row_pair,
    }


def _material_pairs(c: Company, item_of_sku: np.ndarray, G: int, W: np.ndarray, WG: np.ndarray) -> dict[str, np.ndarray]:
    """(item, material) pairs with the material units per item unit over all the item's SKUs."""
    M = max(len(c.materials), 1)
    q_keys, row_q = np.unique(item_of_sku[c.b_sku] * M + c.b_mat, return_inverse=True)
    q_item = q_keys // M
    agg_q = sp.csr_matrix((np.ones(len(row_q)), (row_q, np.arange(len(row_q)))), shape=(len(q_keys), len(row_q)))
    num = agg_q @ (c.b_qty[:, None] * W[c.b_sku])
    count = np.bincount(item_of_sku, minlength=G).astype(float)
    plain_q = (agg_q @ c.b_qty) / count[q_item] if len(q_keys) else np.zeros(0)
    A = np.where(WG[q_item] > 0, num / np.where(WG[q_item] > 0, WG[q_item], 1.0), plain_q[:, None])
    return {"q_item": q_item, "q_mat": q_keys % M, "A": A}


def critical_materials(c: Company, requirement: np.ndarray, margin: float) -> np.ndarray:
    """Materials that cannot cover the unconstrained requirement: stock, open orders and the
    supplier's deliveries from the lead time on fall short of `margin` x the requirement,
    cumulatively, in some month. These are the materials that will decide which SKUs get made."""
    T = len(c.months)
    receipt_cap = np.where(np.arange(T)[None, :] >= c.lead[:, None], np.maximum(c.supcap[:, None] - c.OSM, 0.0), 0.0)
    available = c.M0[:, None] + np.cumsum(c.OSM + receipt_cap, axis=1)
    return (available < margin * np.cumsum(requirement, axis=1) - QTY_TOL).any(axis=1)
