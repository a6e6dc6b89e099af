"""One scenario's supply plan: inputs to arrays, items, LP, SKU detail, output tables."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from sop_pipeline import registry
from sop_pipeline.periods import cycle_label
from sop_pipeline.settings.scenarios import BASELINE
from sop_pipeline.settings.supply import SupplySettings
from sop_pipeline.supply.common import shortfall_cost
from sop_pipeline.supply.company import Company, build_company
from sop_pipeline.supply.diagnose import bottlenecks, exceptions
from sop_pipeline.supply.disaggregate import disaggregate
from sop_pipeline.supply.feasibility import PlanTables
from sop_pipeline.supply.inputs import SupplyInputs
from sop_pipeline.supply.items import Items, build_items
from sop_pipeline.supply.lp import build_lp, solve
from sop_pipeline.supply.rollup import family_exceptions, sku_exceptions
from sop_pipeline.supply.targets import compute_inventory_targets


@dataclass
class SupplyResult:
    """One scenario's supply plan, its diagnosis and how long each stage took.

    Frames (columns as registered in `sop_pipeline.registry`, all with cycle and scenario): `supply_plan` per SKU
    and month, `capacity_plan` per resource and month, `material_plan` per material and month,
    `production_plan` per planning item, resource and month (what the LP planned next to what
    the SKU plan makes), `supply_exceptions` per family, binding constraint and month with
    `supply_exception_skus` its SKU detail (shortfall or stock below target of at least
    `min_units`, and the constraint behind it), `bottlenecks` ranked by shadow price x usage;
    `exceptions_left_out` the late and below-target units and value of the family rows under
    `min_units`. `status` is
    HiGHS's model status ("Optimal" when solved); `objective` the LP's value; `cost_breakdown`
    the SKU plan's money by cost term; `lp_size` rows, cols, nonzeros and planning items;
    `timings` seconds per stage; `notes` what was planned without limits and why. `detail`
    keeps the arrays behind the frames for `evaluate_on_sku_detail` (not for storage).
    """

    cycle: str
    scenario: str
    planning_level: str
    shortfall_mode: str
    status: str
    optimal: bool
    objective: float | None
    lp_size: dict[str, int]
    timings: dict[str, float]
    notes: list[str]
    cost_breakdown: dict[str, float]
    supply_plan: pl.DataFrame
    capacity_plan: pl.DataFrame
    material_plan: pl.DataFrame
    production_plan: pl.DataFrame
    supply_exceptions: pl.DataFrame
    supply_exception_skus: pl.DataFrame
    bottlenecks: pl.DataFrame
    exceptions_left_out: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict, repr=False)

    def tables(self) -> PlanTables:
        return PlanTables(self.supply_plan, self.capacity_plan, self.material_plan, self.production_plan, self.shortfall_mode)


# The tables a result carries, all registered planning tables.
FRAMES = (
    "supply_plan",
    "capacity_plan",
    "material_plan",
    "production_plan",
    "supply_exceptions",
    "supply_exception_skus",
    "bottlenecks",
)


def conform_output(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """The frame with its registered columns and types (sop_pipeline.registry)."""
    return frame.select([pl.col(c.name).cast(c.polars_type) for c in registry.table(name).columns])


def grid(names: np.ndarray, months: list[dt.date], name: str) -> dict[str, pl.Series]:
    T = len(months)
    k = len(names)
    return {
        name: pl.Series(name, names, dtype=pl.Utf8).gather(np.repeat(np.arange(k), T)) if k else pl.Series(name, [], dtype=pl.Utf8),
        "month": pl.Series("month", months, dtype=pl.Date).gather(np.tile(np.arange(T), k)) if k else pl.Series("month", [], dtype=pl.Date),
    }


def plan_supply(
    inputs: SupplyInputs,
    settings: SupplySettings,
    scenario: str = BASELINE,
    cycle: str | None = None,
    targets: pl.DataFrame | None = None,
) -> SupplyResult:
    """Solve one scenario's constrained supply plan and explain where it falls short.

    `inputs` are the scenario's inputs (see `apply_scenario`); `targets` the baseline's
    inventory targets (computed from `inputs.demand` when omitted; scenarios keep the
    baseline's targets so that they differ only in what their overlays change). Raises
    `SupplyDataMissing` when there is neither capacity nor material data.

    The LP plans items (a family on a primary resource, or SKUs; see `build_items`); the SKU plan
    that every output table is written from comes from `disaggregate`. `objective` is the
    LP's; `cost_breakdown` is the money of the SKU plan with the same cost terms.
    """
    t_start = time.perf_counter()
    inputs = inputs.typed()
    cycle = cycle_label(cycle or inputs.months[0])
    if targets is None:
        targets = compute_inventory_targets(inputs.demand, inputs.segmentation, settings.inventory_targets, cycle)
    c = build_company(inputs, targets)
    it = build_items(c, settings)
    t_prepared = time.perf_counter()
    lp = build_lp(c, it, settings)
    t_built = time.perf_counter()
    status, optimal, objective, x, duals = solve(lp, settings)
    t_solved = time.perf_counter()
    lp_size = {"rows": lp.n_rows, "cols": lp.n_cols, "nonzeros": int(lp.matrix.nnz), "items": len(it.names)}
    timings = {"prepare": t_prepared - t_start, "build": t_built - t_prepared, "solve": t_solved - t_built}
    if x is None:
        empty = empty_result(cycle, scenario, settings, status, lp_size, timings, c.notes)
        empty.timings["total"] = time.perf_counter() - t_start
        return empty
    sol = _read_solution(c, it, lp, x, duals)
    # SKU detail: the executable plan every output table is written from.
    detail = disaggregate(c, it, sol["X"], sol["Y"], sol["Qr"], settings)
    t_disaggregated = time.perf_counter()
    timings["disaggregate"] = t_disaggregated - t_solved
    frames = _sku_frames(c, detail, sol, cycle, scenario)
    frames["production_plan"] = production_plan(c, it, sol["X"], sol["Y"], detail, cycle, scenario)
    every = exceptions(c, it, settings, detail, sol["S"], sol["U"], sol["shadow"], sol["rent"], cycle, scenario)
    min_units = settings.exceptions.min_units
    frames["supply_exceptions"], left_out = family_exceptions(every, min_units)
    frames["supply_exception_skus"] = sku_exceptions(every, min_units)
    frames["bottlenecks"] = bottlenecks(c, detail["load"], sol["shadow"], sol["rent"], detail["usage"], cycle, scenario)
    cost_breakdown = _plan_cost(c, settings, detail)
    timings["report"] = time.perf_counter() - t_disaggregated
    timings["total"] = time.perf_counter() - t_start
    return SupplyResult(
        cycle=cycle,
        scenario=scenario,
        planning_level=settings.planning.level,
        shortfall_mode=settings.costs.shortfall_mode,
        status=status,
        optimal=optimal,
        objective=objective,
        lp_size=lp_size,
        timings=timings,
        notes=c.notes,
        cost_breakdown=cost_breakdown,
        **{name: conform_output(frame, name) for name, frame in frames.items()},
        exceptions_left_out=left_out,
        detail={"company": c, "items": it, "X": sol["X"], "Y": sol["Y"], "lp_receipts": sol["Qr"], **detail},
    )


def _read_solution(c: Company, it: Items, lp, x: np.ndarray, duals: np.ndarray) -> dict[str, np.ndarray]:
    """The LP's primal blocks and the duals as the values of one more hour or unit."""
    T = len(c.months)
    G, P, R, M = len(it.names), len(it.p_item), len(c.resources), len(c.materials)

    def block(name: str, size: int) -> np.ndarray:
        return np.maximum(x[lp.offsets[name] : lp.offsets[name] + size * T].reshape(size, T), 0.0)

    mats_in = np.flatnonzero(it.in_lp)
    Qr, Mi = np.zeros((M, T)), np.zeros((M, T))
    Qr[mats_in], Mi[mats_in] = block("Q", len(mats_in)), block("M", len(mats_in))
    mat_dual = np.zeros((M, T))
    mat_dual[mats_in] = duals[lp.rows["MAT"] : lp.rows["MAT"] + len(mats_in) * T].reshape(len(mats_in), T)
    cap_dual = duals[lp.rows["CAP"] : lp.rows["CAP"] + R * T].reshape(R, T)
    shadow = np.maximum(-cap_dual, 0.0)  # value of one more regular hour
    # Material rows price a unit at its purchase cost when it can still be bought; what one more
    # unit in that month is worth above that is the scarcity (lead time or supplier capacity).
    rent = np.where(it.in_lp[:, None], np.maximum(-mat_dual - c.mcost[:, None], 0.0), 0.0)
    # An interior-point solution (no crossover) leaves tiny duals on rows that do not bind:
    # a tenth of a cent per hour, or a thousandth of a material's price, is no bottleneck.
    shadow[shadow < 1e-4 * np.maximum(c.cph[:, None], 1.0)] = 0.0
    rent[rent < 1e-3 * np.maximum(c.mcost[:, None], 1.0)] = 0.0
    return {"X": block("X", P), "Y": block("Y", G), "U": block("U", G), "S": block("S", G), "Qr": Qr, "shadow": shadow, "rent": rent}


def _sku_frames(
    c: Company, detail: Mapping[str, np.ndarray], sol: Mapping[str, np.ndarray], cycle: str, scenario: str
) -> dict[str, pl.DataFrame]:
    """supply_plan, capacity_plan and material_plan from the SKU detail."""
    T, n, R, M = len(c.months), len(c.skus), len(c.resources), len(c.materials)
    load, usage, receipts = detail["load"], detail["usage"], detail["receipts"]
    placed_src = np.arange(T)[None, :] + c.lead[:, None]
    placed = np.where(placed_src < T, np.take_along_axis(receipts, np.minimum(placed_src, T - 1), axis=1), 0.0)
    keys = (pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario"))

    def labels(values: np.ndarray, k: int) -> pl.Series:
        return pl.Series(values.astype(str)).gather(np.repeat(np.arange(k), T)) if k else pl.Series([], dtype=pl.Utf8)

    supply_plan = pl.DataFrame(
        {
            **grid(c.skus, c.months, "sku"),
            "family": labels(c.family, n),
            "demand": c.D.ravel(),
            "open_supply": c.OSP.ravel(),
            "production": detail["production"].ravel(),
            "ending_inventory": detail["inventory"].ravel(),
            "shortfall": detail["shortfall"].ravel(),
            "shipped": detail["shipped"].ravel(),
            "safety_stock": c.SS.ravel(),
            "target_inventory": c.TGT.ravel(),
        }
    ).select(*keys, pl.all())
    capacity_plan = pl.DataFrame(
        {
            **grid(c.resources, c.months, "resource"),
            "plant": labels(c.plant, R),
            "capacity_hours": c.cap.ravel(),
            "overtime_available": c.ot.ravel(),
            "load_hours": load.ravel(),
            "overtime_hours": np.clip(load - c.cap, 0.0, None).ravel(),
            "utilization": np.divide(load, c.cap, out=np.where(load > 0, np.inf, 0.0), where=c.cap > 0).ravel(),
            "shadow_price": sol["shadow"].ravel(),
        }
    ).select(*keys, pl.all())
    material_plan = pl.DataFrame(
        {
            **grid(c.materials, c.months, "material"),
            "supplier": labels(c.supplier, M),
            "requirement": usage.ravel(),
            "purchase": placed.ravel(),
            "purchase_receipts": receipts.ravel(),
            "open_supply": c.OSM.ravel(),
            "ending_inventory": detail["material_stock"].ravel(),
            "shadow_price": sol["rent"].ravel(),
        }
    ).select(*keys, pl.all())
    return {"supply_plan": supply_plan, "capacity_plan": capacity_plan, "material_plan": material_plan}


def _plan_cost(c: Company, settings: SupplySettings, d: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The SKU plan's money with the LP's cost terms, each SKU at its own cost and price."""
    routed = np.zeros(len(c.skus), dtype=bool)
    routed[c.r_sku] = True
    bom_cost = np.bincount(c.b_sku, weights=c.b_qty * c.mcost[c.b_mat], minlength=len(c.skus))
    unrouted_cost = np.where(routed, 0.0, np.maximum(c.cost - bom_cost, 0.0))
    premium = np.maximum(c.otc - c.cph, 0.0)
    base = np.maximum(c.price, c.cost)
    load = d["load"]
    below_rate = np.repeat((settings.costs.below_target_penalty_factor * c.cost)[:, None], c.D.shape[1], axis=1)
    below_rate[:, -1] = settings.costs.end_target_penalty_factor * base
    costs = {
        "conversion": float((load * c.cph[:, None]).sum() + (d["production"] * unrouted_cost[:, None]).sum()),
        "overtime_premium": float((np.clip(load - c.cap, 0, None) * premium[:, None]).sum()),
        "purchases": float((d["receipts"] * c.mcost[:, None]).sum()),
        "holding": float(
            (d["inventory"] * (settings.costs.holding_rate_per_month * c.cost)[:, None]).sum()
            + (d["material_stock"] * (settings.costs.material_holding_rate_per_month * c.mcost)[:, None]).sum()
        ),
        "shortfall_penalty": float((d["shortfall"] * shortfall_cost(c.price, c.cost, c.D.shape[1], settings.costs)).sum()),
        "below_target_penalty": float((np.maximum(c.TGT - d["inventory"], 0) * below_rate).sum()),
    }
    costs["total"] = sum(costs.values())
    return costs


def production_plan(
    c: Company, it: Items, X: np.ndarray, Y: np.ndarray, detail: Mapping[str, np.ndarray], cycle: str, scenario: str
) -> pl.DataFrame:
    """Production per planning item, resource and month: what the SKU plan makes there
    (`production`, `load_hours`) next to what the LP planned (`planned_production`). Items
    without a routing have rows without a resource."""
    T = len(c.months)
    P = len(it.p_item)
    made = np.zeros((P, T))
    hours = np.zeros((P, T))
    np.add.at(made, it.row_pair, detail["row_production"])
    np.add.at(hours, it.row_pair, detail["row_production"] * c.r_hours[:, None])
    routed = np.zeros(len(it.names), dtype=bool)
    routed[it.p_item] = True
    free = np.flatnonzero(~routed)
    sku_made = np.zeros((len(it.names), T))
    np.add.at(sku_made, it.item_of_sku, detail["production"])
    item = np.concatenate([it.p_item, free])
    k = len(item)
    rep = np.repeat(np.arange(k), T)
    resource = [*c.resources[it.p_res].tolist(), *([None] * len(free))]
    plant = [*c.plant[it.p_res].tolist(), *([None] * len(free))]
    return pl.DataFrame(
        {
            "family": pl.Series(it.family[item].astype(str) if k else [], dtype=pl.Utf8).gather(rep),
            "item": pl.Series(it.names[item] if k else [], dtype=pl.Utf8).gather(rep),
            "resource": pl.Series(resource, dtype=pl.Utf8).gather(rep),
            "plant": pl.Series(plant, dtype=pl.Utf8).gather(rep),
            "month": pl.Series(c.months, dtype=pl.Date).gather(np.tile(np.arange(T), k)),
            "planned_production": np.concatenate([X, Y[free]]).ravel() if k else np.zeros(0),
            "production": np.concatenate([made, sku_made[free]]).ravel() if k else np.zeros(0),
            "load_hours": np.concatenate([hours, np.zeros((len(free), T))]).ravel() if k else np.zeros(0),
        }
    ).select(pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario"), pl.all())


def empty_result(cycle, scenario, settings, status, lp_size, timings, notes) -> SupplyResult:
    frames = {name: registry.table(name).empty() for name in FRAMES}
    return SupplyResult(
        cycle=cycle,
        scenario=scenario,
        planning_level=settings.planning.level,
        shortfall_mode=settings.costs.shortfall_mode,
        status=status,
        optimal=False,
        objective=None,
        lp_size=lp_size,
        timings=timings,
        notes=[*notes, f"no plan: solver status {status}"],
        cost_breakdown={},
        **frames,
    )


def evaluate_on_sku_detail(result: SupplyResult, settings: SupplySettings) -> dict[str, float]:
    """The plan's money on SKU detail, with how far that detail strays from the LP's own plan.

    A family-level plan is optimal for its items' averages; what the company would actually
    pay shows on SKU detail: each SKU's own hours, BOM, cost and price. That is the
    `cost_breakdown` every result carries; for an SKU-level plan it equals the LP objective.
    Added here: production the SKU plan could not make of what the LP planned (units),
    purchases it had to add to the LP's (units) and, as a check, capacity overshoot (hours).
    """
    d = result.detail
    c = d["company"]
    costs = dict(result.cost_breakdown)
    costs["production_units"] = float(d["production"].sum())
    costs["production_below_lp_units"] = float(max(d["Y"].sum() - d["production"].sum(), 0.0))
    costs["purchases_added_units"] = float(max(d["receipts"].sum() - result.detail.get("lp_receipts", d["receipts"]).sum(), 0.0))
    costs["capacity_excess_hours"] = float(np.clip(d["load"] - c.cap - c.ot, 0, None).sum())
    return costs
