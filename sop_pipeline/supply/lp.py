"""The supply LP as arrays (column costs, bounds, one sparse matrix) and its solve in one HiGHS call."""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from sop_pipeline.settings.supply import SupplySettings
from sop_pipeline.supply.company import Company
from sop_pipeline.supply.items import Items


@dataclass
class LinearProgram:
    offsets: dict[str, int]
    rows: dict[str, int]
    n_cols: int
    n_rows: int
    cost: np.ndarray
    offset: float
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    matrix: sp.csc_matrix


def build_lp(c: Company, it: Items, settings: SupplySettings) -> LinearProgram:
    """The supply LP as arrays: one block of columns or rows per variable or constraint family.

    Columns, each per month: X production per (item, resource) routing pair, Y production per
    item, E stock above target, U stock below target (ending inventory = target - U + E, which
    spares a target row per item and month), S shortfall (backlog at month end, or units
    lost), O overtime hours per resource, Q receipts of new purchases per material (ordered
    lead-time months earlier), M material stock. Rows, each per month: LINK (Y = sum of X), BAL
    (item inventory balance), CAP (hours <= capacity + overtime), MAT (material stock balance
    with BOM usage) for the materials that can bind; ample ones are only a cost per unit used
    and are bought after the LP (see `disaggregate`). Alternate routings that only some of an item's SKUs have are capped by a
    column bound (see `build_items`), not a row: rows of that kind tripled HiGHS's time at 20,000
    SKUs. Every block is built from index arithmetic on whole arrays; nothing loops over SKUs,
    items or months.
    """
    layout = _Layout(c, it)
    matrix = _matrix(c, it, layout, backorder=settings.costs.shortfall_mode == "backorder")
    row_lower, row_upper = _row_bounds(c, it, layout)
    cost, offset = _costs(c, it, layout, settings)
    return LinearProgram(
        layout.offsets,
        layout.rows,
        layout.n_cols,
        layout.n_rows,
        cost,
        offset,
        _column_upper(c, it, layout, settings),
        row_lower,
        row_upper,
        matrix,
    )


class _Layout:
    """Where each block of columns and rows starts: column (k, t) of block B is offsets[B] + k*T + t."""

    def __init__(self, c: Company, it: Items):
        self.T = len(c.months)
        self.mats_in = np.flatnonzero(it.in_lp)
        self.G, self.P, self.R, self.M = len(it.names), len(it.p_item), len(c.resources), len(self.mats_in)
        local = np.full(len(c.materials), -1, dtype=np.int64)
        local[self.mats_in] = np.arange(self.M)
        self.local = local  # material -> its row block index (-1: ample, no rows)
        self.q_in = local[it.q_mat] >= 0
        G, P, R, M = self.G, self.P, self.R, self.M
        self.offsets, self.n_cols = _blocks({"X": P, "Y": G, "E": G, "U": G, "S": G, "O": R, "Q": M, "M": M}, self.T)
        self.rows, self.n_rows = _blocks({"LINK": G, "BAL": G, "CAP": R, "MAT": M}, self.T)

    def at(self, base: int, k: np.ndarray, shift: int = 0) -> np.ndarray:
        """Flat indices of entries (k, t + shift) of a block, as a (len(k), T) array."""
        tt = np.arange(self.T)
        return base + np.asarray(k)[:, None] * self.T + (tt + shift)[None, :]


def _blocks(sizes: dict[str, int], T: int) -> tuple[dict[str, int], int]:
    offsets, start = {}, 0
    for name, count in sizes.items():
        offsets[name], start = start, start + count * T
    return offsets, start


def _matrix(c: Company, it: Items, lay: _Layout, backorder: bool) -> sp.csc_matrix:
    """Every constraint row's coefficients, built block by block from index arithmetic."""
    at, col, row = lay.at, lay.offsets, lay.rows
    later = np.arange(lay.T) >= 1  # entries that refer to the month before
    items, res, mats = np.arange(lay.G), np.arange(lay.R), np.arange(lay.M)
    ent_r, ent_c, ent_v = [], [], []

    def add(r: np.ndarray, cl: np.ndarray, v: np.ndarray | float, mask: np.ndarray | None = None) -> None:
        v = np.broadcast_to(v, r.shape)
        if mask is not None:
            r, cl, v = r[:, mask], cl[:, mask], v[:, mask]
        ent_r.append(r.ravel())
        ent_c.append(cl.ravel())
        ent_v.append(np.asarray(v, dtype=float).ravel())

    # LINK: Y - sum_p X = 0 (free row for items without routing).
    add(at(row["LINK"], items), at(col["Y"], items), 1.0)
    add(at(row["LINK"], it.p_item), at(col["X"], np.arange(lay.P)), -1.0)
    # BAL with I = TGT - U + E: (E - U)_t - (E - U)_{t-1} - Y_t - S_t (+ S_{t-1} for backorders)
    #   = OS_t - D_t - TGT_t + TGT_{t-1}, with TGT_{-1} read as the opening stock.
    bal = at(row["BAL"], items)
    add(bal, at(col["E"], items), 1.0)
    add(bal, at(col["U"], items), -1.0)
    add(bal, at(col["E"], items, -1), -1.0, later)
    add(bal, at(col["U"], items, -1), 1.0, later)
    add(bal, at(col["Y"], items), -1.0)
    add(bal, at(col["S"], items), -1.0)
    if backorder:
        add(bal, at(col["S"], items, -1), 1.0, later)
    # CAP: sum_p H X - O <= capacity.
    add(at(row["CAP"], it.p_res), at(col["X"], np.arange(lay.P)), it.H)
    add(at(row["CAP"], res), at(col["O"], res), -1.0)
    # MAT: M_t - M_{t-1} - Q_t + sum_i A Y = open supply (+ on hand in month 0).
    add(at(row["MAT"], mats), at(col["M"], mats), 1.0)
    add(at(row["MAT"], mats), at(col["M"], mats, -1), -1.0, later)
    add(at(row["MAT"], mats), at(col["Q"], mats), -1.0)
    add(at(row["MAT"], lay.local[it.q_mat[lay.q_in]]), at(col["Y"], it.q_item[lay.q_in]), it.A[lay.q_in])
    return sp.csc_matrix((np.concatenate(ent_v), (np.concatenate(ent_r), np.concatenate(ent_c))), shape=(lay.n_rows, lay.n_cols))


def _row_bounds(c: Company, it: Items, lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Balances are equalities on their right-hand sides; capacity rows are upper bounds."""
    inf = highspy.kHighsInf
    has_pair = np.zeros(lay.G, dtype=bool)
    has_pair[it.p_item] = True
    previous_target = np.concatenate([it.I0[:, None], it.TGT[:, :-1]], axis=1)
    bal_rhs = it.OS - it.D - it.TGT + previous_target
    mat_rhs = c.OSM[lay.mats_in].copy()
    mat_rhs[:, 0] += c.M0[lay.mats_in]
    link = np.where(has_pair[:, None], 0.0, inf) * np.ones((1, lay.T))
    row_lower = np.concatenate([-link.ravel(), bal_rhs.ravel(), np.full(lay.R * lay.T, -inf), mat_rhs.ravel()])
    row_upper = np.concatenate([link.ravel(), bal_rhs.ravel(), c.cap.ravel(), mat_rhs.ravel()])
    return row_lower, row_upper


def _column_upper(c: Company, it: Items, lay: _Layout, settings: SupplySettings) -> np.ndarray:
    """Purchases that would have had to be ordered before the cycle cannot arrive: Q = 0 for
    t < lead time. New receipts fill what the supplier can still deliver beside open orders."""
    inf = highspy.kHighsInf
    G, T, M = lay.G, lay.T, lay.M
    tt = np.arange(T)
    receipt_cap = np.where(tt[None, :] >= c.lead[:, None], np.maximum(c.supcap[:, None] - c.OSM, 0.0), 0.0)[lay.mats_in]
    backorder = settings.costs.shortfall_mode == "backorder"
    shortfall_cap = np.full((G, T), inf) if backorder else np.maximum(it.D, 0.0)
    return np.concatenate(
        [
            it.x_cap.ravel(),
            np.full((G + G) * T, inf),
            it.TGT.ravel(),
            shortfall_cap.ravel(),
            c.ot.ravel(),
            receipt_cap.ravel(),
            np.full(M * T, inf),
        ]
    )


def _costs(c: Company, it: Items, lay: _Layout, settings: SupplySettings) -> tuple[np.ndarray, float]:
    """Money per unit of every column, and the objective's constant (holding cost of targets)."""
    T, mats_in = lay.T, lay.mats_in
    # Ample materials have no rows: each unit used costs its purchase price.
    ample_cost = np.zeros((lay.G, T))
    np.add.at(ample_cost, it.q_item[~lay.q_in], it.A[~lay.q_in] * c.mcost[it.q_mat[~lay.q_in]][:, None])
    premium = np.maximum(c.otc - c.cph, 0.0)  # overtime hours also count as load at the regular rate
    below = np.concatenate([np.repeat(it.below[:, None], T - 1, axis=1), it.end_below[:, None]], axis=1)
    cost = np.concatenate(
        [
            (it.H * c.cph[it.p_res][:, None]).ravel(),
            (it.noroute + ample_cost).ravel(),
            np.repeat(it.hold, T),
            below.ravel() - np.repeat(it.hold, T),
            it.penalty.ravel(),
            np.repeat(premium, T),
            np.repeat(c.mcost[mats_in], T),
            np.repeat(settings.costs.material_holding_rate_per_month * c.mcost[mats_in], T),
        ]
    )
    return cost, float((it.hold[:, None] * it.TGT).sum())


def solve(lp: LinearProgram, settings: SupplySettings) -> tuple[str, bool, float | None, np.ndarray | None, np.ndarray | None]:
    """Pass the model to HiGHS in one call and read primal values and row duals back as arrays."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(settings.solver.time_limit_seconds))
    h.setOptionValue("solver", settings.solver.method)
    h.setOptionValue("run_crossover", "on" if settings.solver.crossover else "off")
    m = lp.matrix
    h.passModel(
        lp.n_cols,
        lp.n_rows,
        m.nnz,
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        lp.offset,
        lp.cost,
        np.zeros(lp.n_cols),
        lp.col_upper,
        lp.row_lower,
        lp.row_upper,
        m.indptr.astype(np.int32),
        m.indices.astype(np.int32),
        m.data.astype(np.float64),
        np.zeros(lp.n_cols, dtype=np.int32),
    )
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    optimal = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    info = h.getInfo()
    if info.primal_solution_status != 2:  # no feasible primal solution to report
        return status, False, None, None, None
    sol = h.getSolution()
    return status, optimal, float(info.objective_function_value), np.asarray(sol.col_value), np.asarray(sol.row_dual)
