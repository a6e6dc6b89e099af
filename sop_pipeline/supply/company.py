"""The inputs as dense arrays indexed by SKU, resource, material and month, and what each
SKU's own stock and open supply cover before any new production."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from sop_pipeline.rules import preferred_routings
from sop_pipeline.supply.common import SupplyDataMissing
from sop_pipeline.supply.inputs import SupplyInputs


@dataclass
class Company:
    """The inputs as dense arrays indexed by SKU, resource, material and month."""

    months: list[dt.date]
    skus: np.ndarray
    family: np.ndarray
    D: np.ndarray
    TGT: np.ndarray
    SS: np.ndarray
    OSP: np.ndarray
    I0: np.ndarray
    price: np.ndarray
    cost: np.ndarray
    resources: np.ndarray
    plant: np.ndarray
    cap: np.ndarray
    ot: np.ndarray
    cph: np.ndarray
    otc: np.ndarray
    r_sku: np.ndarray
    r_res: np.ndarray
    r_hours: np.ndarray
    r_prio: np.ndarray
    primary: np.ndarray  # per SKU: its preferred resource (sop_pipeline.rules), -1 without routing
    materials: np.ndarray
    supplier: np.ndarray
    mcost: np.ndarray
    lead: np.ndarray
    supcap: np.ndarray
    M0: np.ndarray
    OSM: np.ndarray
    b_sku: np.ndarray
    b_mat: np.ndarray
    b_qty: np.ndarray
    has_capacity: bool
    has_materials: bool
    notes: list[str]


def _index(values: pl.Series, name: str) -> pl.DataFrame:
    return pl.DataFrame({name: values}).with_row_index(f"{name}_i").with_columns(pl.col(f"{name}_i").cast(pl.Int64))


def _dense(frame: pl.DataFrame, row: str, n_rows: int, n_cols: int, value: str, col: str = "month_i") -> np.ndarray:
    if frame.height == 0:
        return np.zeros((n_rows, n_cols))
    flat = frame.get_column(row).to_numpy() * n_cols + frame.get_column(col).to_numpy()
    return np.bincount(flat, weights=frame.get_column(value).fill_null(0).to_numpy(), minlength=n_rows * n_cols).reshape(n_rows, n_cols)


def build_company(inputs: SupplyInputs, targets: pl.DataFrame) -> Company:
    """Index every input by SKU, resource, material and month, and say what is planned without
    limits (and why) in `notes`. Raises `SupplyDataMissing` without capacity and material data."""
    notes: list[str] = []
    months = inputs.months
    month_ix = _index(pl.Series(months, dtype=pl.Date), "month")
    sku_ix = _index(inputs.demand.get_column("sku").unique().sort(), "sku")
    skus = _sku_arrays(inputs, targets, sku_ix, month_ix, notes)
    capacity = _capacity_arrays(inputs, sku_ix, month_ix)
    materials = _material_arrays(inputs, sku_ix, month_ix)
    has_capacity, has_materials = len(capacity["r_sku"]) > 0, len(materials["b_sku"]) > 0
    if not has_capacity and not has_materials:
        raise SupplyDataMissing(
            "no supply data: resources/routings and materials/bom are empty or do not cover the demand's SKUs, "
            "so there is no capacity or material to plan against (supply review skipped)"
        )
    if not has_capacity:
        notes.append("no resources/routings: production is planned without capacity limits")
    if not has_materials:
        notes.append("no materials/bom: production is planned without material limits")
    unrouted = sku_ix.height - len(np.unique(capacity["r_sku"])) if has_capacity else 0
    if unrouted:
        notes.append(f"{unrouted} SKUs have no routing: planned without capacity limit at their standard cost")
    return Company(months=months, **skus, **capacity, **materials, has_capacity=has_capacity, has_materials=has_materials, notes=notes)


def _sku_arrays(
    inputs: SupplyInputs, targets: pl.DataFrame, sku_ix: pl.DataFrame, month_ix: pl.DataFrame, notes: list[str]
) -> dict[str, np.ndarray]:
    """Demand, targets, stock, open production orders, price and cost per SKU (and month)."""
    n, T = sku_ix.height, month_ix.height
    demand = inputs.demand
    d = demand.join(sku_ix, on="sku").join(month_ix, on="month")
    tg = targets.join(sku_ix, on="sku").join(month_ix, on="month")
    prod = sku_ix.join(inputs.products.select("sku", "family", "unit_price", "unit_cost"), on="sku", how="left").sort("sku_i")
    if "family" in demand.columns:
        from_demand = demand.group_by("sku").agg(pl.col("family").first().alias("_f"))
        prod = prod.join(from_demand, on="sku", how="left").with_columns(pl.coalesce("family", "_f").alias("family"))
    inv = inputs.inventory.group_by("sku").agg(pl.col("on_hand").sum()).join(sku_ix, on="sku")
    products = inputs.open_supply.filter(pl.col("item_type") == "product")
    osp = products.rename({"item": "sku"}).join(sku_ix, on="sku").join(month_ix, on="month")
    stray = products.filter(~pl.col("item").is_in(sku_ix.get_column("sku").implode()))
    if stray.height:
        notes.append(f"{stray.height} open production orders for SKUs without demand in the horizon are ignored")
    return {
        "skus": sku_ix.get_column("sku").to_numpy(),
        "family": prod.get_column("family").fill_null("(no family)").to_numpy(),
        "D": np.maximum(_dense(d, "sku_i", n, T, "quantity"), 0.0),
        "TGT": _dense(tg, "sku_i", n, T, "target_inventory"),
        "SS": _dense(tg, "sku_i", n, T, "safety_stock"),
        "OSP": _dense(osp, "sku_i", n, T, "quantity"),
        "I0": np.bincount(inv.get_column("sku_i").to_numpy(), weights=inv.get_column("on_hand").fill_null(0).to_numpy(), minlength=n),
        "price": prod.get_column("unit_price").fill_null(0).to_numpy(),
        "cost": prod.get_column("unit_cost").fill_null(0).to_numpy(),
    }


def _capacity_arrays(inputs: SupplyInputs, sku_ix: pl.DataFrame, month_ix: pl.DataFrame) -> dict[str, np.ndarray]:
    """Resources with their monthly hours and rates, the routing rows, and each SKU's preferred
    resource. A resource without routings, or routings without resources, constrain nothing."""
    T = month_ix.height
    res_ix = _index(inputs.resources.get_column("resource").unique().sort(), "resource")
    # Joins do not keep row order; sums over routing and BOM rows must add in the same order
    # every run, or a rerun would produce a plan that differs in the last digits.
    routings = inputs.routings.join(sku_ix, on="sku").join(res_ix, on="resource").sort("sku_i", "resource_i")
    res = res_ix.join(inputs.resources, on="resource", how="left").sort("resource_i")
    cal = inputs.capacity_calendar().join(res_ix, on="resource").join(month_ix, on="month")
    preferred = preferred_routings(routings.select("sku", "resource", "hours_per_unit", "priority"))
    preferred = preferred.join(sku_ix, on="sku").join(res_ix, on="resource")
    primary = np.full(sku_ix.height, -1, dtype=np.int64)
    primary[preferred.get_column("sku_i").to_numpy()] = preferred.get_column("resource_i").to_numpy()
    return {
        "resources": res.get_column("resource").to_numpy(),
        "plant": res.get_column("plant").fill_null("").to_numpy(),
        "cap": _dense(cal, "resource_i", res_ix.height, T, "capacity_hours"),
        "ot": _dense(cal, "resource_i", res_ix.height, T, "overtime_hours"),
        "cph": res.get_column("cost_per_hour").fill_null(0).to_numpy(),
        "otc": res.get_column("overtime_cost_per_hour").fill_null(0).to_numpy(),
        "r_sku": routings.get_column("sku_i").to_numpy(),
        "r_res": routings.get_column("resource_i").to_numpy(),
        "r_hours": routings.get_column("hours_per_unit").to_numpy(),
        "r_prio": routings.get_column("priority").fill_null(1).to_numpy(),
        "primary": primary,
    }


def _material_arrays(inputs: SupplyInputs, sku_ix: pl.DataFrame, month_ix: pl.DataFrame) -> dict[str, np.ndarray]:
    """Materials with cost, lead time, supplier capacity, stock and open orders, and the BOM rows."""
    mat_ix = _index(inputs.materials.get_column("material").unique().sort(), "material")
    mats = mat_ix.join(inputs.materials, on="material", how="left").sort("material_i")
    bom = inputs.bom.join(sku_ix, on="sku").join(mat_ix, on="material").sort("sku_i", "material_i")
    osm = (
        inputs.open_supply.filter(pl.col("item_type") == "material")
        .rename({"item": "material"})
        .join(mat_ix, on="material")
        .join(month_ix, on="month")
    )
    return {
        "materials": mats.get_column("material").to_numpy(),
        "supplier": mats.get_column("supplier").fill_null("").to_numpy(),
        "mcost": mats.get_column("unit_cost").fill_null(0).to_numpy(),
        "lead": mats.get_column("lead_time_months").fill_null(0).to_numpy().astype(np.int64),
        "supcap": mats.get_column("supplier_capacity").fill_null(np.inf).to_numpy(),
        "M0": mats.get_column("on_hand").fill_null(0).to_numpy(),
        "OSM": _dense(osm, "material_i", mat_ix.height, month_ix.height, "quantity"),
        "b_sku": bom.get_column("sku_i").to_numpy(),
        "b_mat": bom.get_column("material_i").to_numpy(),
        "b_qty": bom.get_column("qty_per").to_numpy(),
    }


def own_supply_projection(c: Company, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """What each SKU's own stock and open supply cover without any new production.

    Returns (deficit, excess): per SKU and month, the demand its own supply leaves uncovered
    (incremental backlog, or lost units) and the own stock left at month end. Rough-cut planning
    runs on these net requirements so that one SKU's surplus never hides another's shortage.
    """
    n, T = c.D.shape
    excess = np.zeros((n, T))
    deficit = np.zeros((n, T))
    position = c.I0.copy()
    backlog_prev = np.zeros(n)
    for t in range(T):  # a recursion in time, vectorised over SKUs
        position = position + c.OSP[:, t] - c.D[:, t]
        if mode == "backorder":
            backlog = np.maximum(-position, 0.0)
            deficit[:, t] = backlog - backlog_prev
            backlog_prev = backlog
        else:
            deficit[:, t] = np.maximum(-position, 0.0)
            position = np.maximum(position, 0.0)
        excess[:, t] = np.maximum(position, 0.0)
    return deficit, excess


def unconstrained_requirement(c: Company, mode: str) -> np.ndarray:
    """What each SKU would need produced each month without limits: demand and target net of
    its own stock and open supply (lot for lot)."""
    n, T = c.D.shape
    need = np.zeros((n, T))
    stock = c.I0.copy()
    for t in range(T):  # a recursion in time, vectorised over SKUs
        avail = stock + c.OSP[:, t]
        need[:, t] = np.maximum(c.D[:, t] + c.TGT[:, t] - avail, 0.0)
        stock = avail + need[:, t] - c.D[:, t]
    return need
