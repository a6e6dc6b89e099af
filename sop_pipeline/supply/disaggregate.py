"""From the family plan to an executable SKU plan: fair shares, then the MRP check."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sop_pipeline.settings.supply import SupplySettings
from sop_pipeline.supply.common import QTY_TOL
from sop_pipeline.supply.company import Company
from sop_pipeline.supply.items import Items


def _fair_share(
    c: Company, t: int, quantity: np.ndarray, member_sku: np.ndarray, group: np.ndarray, avail: np.ndarray, cum_demand: np.ndarray
) -> np.ndarray:
    """Split each group's quantity over its members (SKUs, or SKU routings) in month t.

    First to this month's demand (backlog included), in proportion to what each member's SKU
    lacks, so that a shortage is shared as equal fill rates. What is left lifts stock by equal
    run-out: every SKU is covered to its target this month, then through next month's demand
    and target, and so on, as far as the quantity reaches; the last month reached is shared in
    proportion to what each SKU still needs for it. A pre-build the LP makes ahead of a peak or
    an outage thus lands on the SKUs that will need it, in the order they will need it. Beyond
    every need, the rest follows the SKUs' share of demand.
    """
    T = c.D.shape[1]
    k, G = len(member_sku), len(quantity)
    if k == 0:
        return np.zeros(0)
    agg = sp.csr_matrix((np.ones(k), (group, np.arange(k))), shape=(G, k))
    a = avail[member_sku]
    need_now = np.maximum(c.D[member_sku, t] - a, 0.0)
    total = agg @ need_now
    frac = np.divide(quantity, total, out=np.ones(G), where=total > 0).clip(0, 1)
    given = need_now * frac[group]
    left = np.maximum(quantity - agg @ given, 0.0)
    if not (left > QTY_TOL).any():
        return given
    on_hand = np.maximum(a + given - c.D[member_sku, t], 0.0)
    # Level j needs: demand of months t+1..t+j plus the target at the end of month t+j.
    j = np.arange(T - t)
    future = cum_demand[member_sku][:, t + 1 + j] - cum_demand[member_sku][:, [t + 1]]
    level = np.maximum.accumulate(np.maximum(future + c.TGT[member_sku][:, t + j] - on_hand[:, None], 0.0), axis=1)
    level_total = agg @ level
    reached = (level_total <= left[:, None] + 1e-9).sum(axis=1)  # levels fully covered per group
    rows = np.arange(k)
    full = np.where(reached[group] > 0, level[rows, np.maximum(reached - 1, 0)[group]], 0.0)
    full_total = np.where(reached > 0, level_total[np.arange(G), np.maximum(reached - 1, 0)], 0.0)
    step = level[rows, np.minimum(reached, T - t - 1)[group]] - full
    step_total = agg @ step
    spill = left - full_total
    in_range = reached < T - t
    frac = np.where(in_range, np.divide(spill, step_total, out=np.zeros(G), where=step_total > 0), 0.0).clip(0, 1)
    rest = np.maximum(spill - np.where(in_range, step_total * frac, 0.0), 0.0)
    weight = cum_demand[member_sku, -1] + 1e-9
    return given + full + step * frac[group] + rest[group] * weight / (agg @ weight)[group]


def disaggregate(
    c: Company, it: Items, X: np.ndarray, Y: np.ndarray, receipts: np.ndarray, settings: SupplySettings
) -> dict[str, np.ndarray]:
    """From the family plan to an executable SKU plan, month by month (vectorised over SKUs).

    Each alternate routing's production goes to the SKUs that have that routing, the rest of
    the item's production to all its SKUs, both by `_fair_share`. Then the SKU plan is checked
    the way MRP would: its own hours on each resource against capacity + overtime, its own
    BOM against material stock, open orders and the LP's purchases, topped up where the SKU
    mix needs more and lead time and supplier capacity still allow. Where a resource or a
    material still runs out, the SKUs using it are cut in proportion, the freed volume goes to
    the item's other SKUs, and what is still infeasible is cut. So every table the review
    writes adds up at SKU level; the price is that the plan may make slightly less than the LP.
    Ample materials, which have no rows in the LP, are bought here, just in time. At SKU level
    every item is one SKU, so the split is the LP's own plan and only the MRP step acts.
    """
    n, T = c.D.shape
    backorder = settings.costs.shortfall_mode == "backorder"
    mrp = _SkuPlanner(c, it, X, Y)
    prod, inv, short = (np.zeros((n, T)) for _ in range(3))
    R, M = len(c.resources), len(c.materials)
    row_prod = np.zeros((len(c.r_sku), T))
    load, usage, rec, mstock = np.zeros((R, T)), np.zeros((M, T)), np.zeros((M, T)), np.zeros((M, T))
    stock, backlog, mat_level = c.I0.copy(), np.zeros(n), c.M0.copy()
    owed = np.zeros(len(it.names))  # planned volume an item could not make yet: it is made up later
    # Where SKU detail had to cut a SKU: 1 capacity, 2 material, and which resource or material.
    limit_kind = np.zeros((n, T), dtype=np.int8)
    limit_ref = np.full((n, T), -1, dtype=np.int64)
    for t in range(T):  # a recursion in time, vectorised over SKUs, routings and materials
        avail = stock + c.OSP[:, t] - backlog
        p, rows = mrp.split(t, avail, owed)
        material_in = mat_level + c.OSM[:, t] + receipts[:, t]
        p, rows = mrp.check(t, p, rows, avail, material_in, receipts[:, t], limit_kind, limit_ref)
        owed = np.maximum(Y[:, t] + owed - np.bincount(it.item_of_sku, weights=p, minlength=len(it.names)), 0.0)
        need = mrp.bom @ p
        rec[:, t] = receipts[:, t] + np.clip(need - material_in, 0.0, mrp.receipt_cap[:, t] - receipts[:, t])
        mat_level = np.maximum(mat_level + c.OSM[:, t] + rec[:, t] - need, 0.0)
        usage[:, t], mstock[:, t] = need, mat_level
        row_prod[:, t] = rows
        load[:, t] = np.bincount(c.r_res, weights=rows * c.r_hours, minlength=R)
        net = avail + p - c.D[:, t]
        prod[:, t], inv[:, t], short[:, t] = p, np.maximum(net, 0.0), np.maximum(-net, 0.0)
        stock = inv[:, t]
        backlog = short[:, t] if backorder else np.zeros(n)
    # What leaves the warehouse: the month's demand plus the backlog it inherits, less what is
    # still owed at month end (the shortfall is a backlog under backorders, a loss otherwise).
    inherited = np.concatenate([np.zeros((n, 1)), short[:, :-1]], axis=1) if backorder else 0.0
    return {
        "production": prod,
        "inventory": inv,
        "shortfall": short,
        "shipped": np.maximum(c.D + inherited - short, 0.0),
        "row_production": row_prod,
        "load": load,
        "usage": usage,
        "receipts": rec,
        "material_stock": mstock,
        "limit_kind": limit_kind,
        "limit_ref": limit_ref,
    }


class _SkuPlanner:
    """What the month-by-month SKU plan needs besides its running state: which routing rows are
    alternates, the BOM as a sparse matrix, what suppliers can still deliver."""

    def __init__(self, c: Company, it: Items, X: np.ndarray, Y: np.ndarray):
        n, T = c.D.shape
        self.c, self.it, self.X, self.n = c, it, X, n
        self.cum_demand = np.concatenate([np.zeros((n, 1)), np.cumsum(c.D, axis=1)], axis=1)
        is_primary = c.r_res == it.primary[c.r_sku]
        self.alt_rows, self.prim_rows = np.flatnonzero(~is_primary), np.flatnonzero(is_primary)
        prim_pair = np.zeros(len(it.p_item), dtype=bool)
        prim_pair[it.row_pair[self.prim_rows]] = True
        alt_of_item = np.zeros((len(it.names), T))
        np.add.at(alt_of_item, it.p_item[~prim_pair], X[~prim_pair])
        self.primary_qty = np.maximum(Y - alt_of_item, 0.0)
        self.bom = sp.csr_matrix((c.b_qty, (c.b_mat, c.b_sku)), shape=(len(c.materials), n))
        self.receipt_cap = np.where(np.arange(T)[None, :] >= c.lead[:, None], np.maximum(c.supcap[:, None] - c.OSM, 0.0), 0.0)
        self.b_order = np.argsort(c.b_sku, kind="stable")
        self.r_order = np.argsort(c.r_sku, kind="stable")

    def split(self, t: int, avail: np.ndarray, owed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Month t's production per SKU and per routing row: alternates to the SKUs that have
        them, the rest of each item (and what it still owes) to all its SKUs."""
        c, it, alt_rows, prim_rows = self.c, self.it, self.alt_rows, self.prim_rows
        on_alt = _fair_share(c, t, self.X[:, t], c.r_sku[alt_rows], it.row_pair[alt_rows], avail, self.cum_demand)
        alt_sku = np.bincount(c.r_sku[alt_rows], weights=on_alt, minlength=self.n)
        p = alt_sku + _fair_share(c, t, self.primary_qty[:, t] + owed, np.arange(self.n), it.item_of_sku, avail + alt_sku, self.cum_demand)
        rows = np.zeros(len(c.r_sku))
        rows[alt_rows] = on_alt
        rows[prim_rows] = np.maximum(p[c.r_sku[prim_rows]] - alt_sku[c.r_sku[prim_rows]], 0.0)
        return p, rows

    def check(self, t, p, rows, avail, material_in, receipts_t, limit_kind, limit_ref) -> tuple[np.ndarray, np.ndarray]:
        """The MRP check of month t: cut SKUs whose resource or material runs out (recording
        which), hand the freed volume to the item's unblocked SKUs once, and cut again."""
        c, it, n = self.c, self.it, self.n
        R, M = len(c.resources), len(c.materials)
        for attempt in range(3):
            # Row fractions are fixed within one check, so cutting a SKU by the tightest ratio
            # of its resources and materials brings every one of them within its limit.
            hours = np.bincount(c.r_res, weights=rows * c.r_hours, minlength=R)
            # Solver noise (a millionth) is not a shortage.
            cap_ratio = np.divide(c.cap[:, t] + c.ot[:, t] + 1e-6 * (1 + hours), hours, out=np.ones(R), where=hours > 0).clip(0, 1)
            need = self.bom @ p
            topup = np.clip(need - material_in, 0.0, self.receipt_cap[:, t] - receipts_t)
            mat_ratio = np.divide(material_in + topup + 1e-6 * (1 + need), need, out=np.ones(M), where=need > 0).clip(0, 1)
            f_cap, by_res = _min_per_sku(n, c.r_sku, self.r_order, np.where(rows > 0, cap_ratio[c.r_res], 1.0), c.r_res)
            f_mat, by_mat = _min_per_sku(n, c.b_sku, self.b_order, mat_ratio[c.b_mat], c.b_mat)
            f = np.minimum(f_cap, f_mat)
            if (f >= 1 - 1e-9).all() or attempt == 2:
                break
            hit = f < 1 - 1e-9
            limit_kind[hit, t] = np.where(f_cap[hit] <= f_mat[hit], 1, 2)
            limit_ref[hit, t] = np.where(f_cap[hit] <= f_mat[hit], by_res[hit], by_mat[hit])
            freed = p * (1 - f)
            p, rows = p * f, rows * f[c.r_sku]
            if attempt == 0 and freed.sum() > QTY_TOL:
                # The freed volume goes to the item's SKUs that are not blocked, on their primary.
                members = np.flatnonzero(f >= 1 - 1e-9)
                extra = np.zeros(n)
                freed_item = np.bincount(it.item_of_sku, weights=freed, minlength=len(it.names))
                extra[members] = _fair_share(c, t, freed_item, members, it.item_of_sku[members], avail + p, self.cum_demand)
                p = p + extra
                rows[self.prim_rows] += extra[c.r_sku[self.prim_rows]]
                # SKUs without a routing have no rows; their extra is still production.
        return p, rows


def _min_per_sku(n: int, sku_of_row: np.ndarray, order: np.ndarray, values: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per SKU the smallest value over its rows, and the label (resource or material) of it."""
    out, which = np.ones(n), np.full(n, -1, dtype=np.int64)
    if len(order):
        s, v = sku_of_row[order], values[order]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        low = np.minimum.reduceat(v, starts)
        seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(s)]))
        first = np.minimum.reduceat(np.where(v <= low[seg], np.arange(len(s)), len(s)), starts)
        out[s[starts]], which[s[starts]] = low, label[order][np.minimum(first, len(s) - 1)]
    return out, which
