"""Supply review: inventory targets, a constrained supply plan, bottlenecks and scenarios.

The supply review answers one question for the executive meeting: can operations deliver the
consensus demand, and if not, which resource or material stops it and what would one more
hour or one more unit of it be worth? It does so with one linear program per scenario: the
demand, the inventory targets, capacity by resource and month, materials with their lead times
and supplier limits all meet in a single money objective, and HiGHS finds the cheapest plan.
The LP's duals answer the second half of the question: the shadow price of a capacity row is
what one more hour of that resource in that month saves.

How the plan is made, step by step:

1. `compute_inventory_targets`: safety stock from the forecast's own p10-p90 spread and the
   segment's service level, plus cycle stock.
2. Planning items. A monolithic SKU-level LP does not scale (about 500k columns at 5,000 SKUs
   took HiGHS 140-150 s) and S&OP decides volumes, not SKU schedules. So by default the LP plans
   rough-cut items, a family on its primary resource (`_items`), on net requirements (what
   each SKU's own stock and open orders leave uncovered), with requirement-weighted average
   hours and bills of materials. `planning.level: sku` plans every SKU instead.
3. The LP (`_build_lp`), built from index arithmetic and scipy.sparse, passed to HiGHS in one
   call; primal values and duals come back as arrays.
4. SKU detail (`_disaggregate`): a fair-share split of each item's production to its SKUs, then
   the MRP check of that SKU plan against capacity, its own BOMs, lead times and supplier
   capacity. Every output table is written from this executable SKU plan.
5. Diagnosis: exceptions per SKU-month with the constraint behind them, a bottleneck ranking,
   and `check_plan_feasibility`, which re-checks the tables without the solver.

Missing data: without any capacity data (resources + routings) and any material data
(materials + bom) there is nothing to plan against and `plan_supply` raises
`SupplyDataMissing`, which the pipeline reports as "supply review skipped". With only one of
the two, the other is planned without limits and the result's `notes` say so; SKUs without a
routing are made without a capacity limit at their standard cost; missing stock or open
orders count as none.

Everything here is a plain function on polars frames; nothing opens a file except the two YAML
loaders, and nothing knows about Dagster.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import highspy
import numpy as np
import polars as pl
import scipy.sparse as sp
import yaml
from scipy.special import ndtri

from sop_pipeline.warehouse import cycle_label

# p90 - p10 of a standard normal distribution: (p90 - p10) / 2.563 estimates sigma.
P10_P90_SPAN = 2.5631031
BASELINE = "baseline"
LEVELS = ("family", "sku")
SHORTFALL_MODES = ("backorder", "lost_sales")
# Quantities below this are solver noise, not a shortage or a load.
QTY_TOL = 1e-3
OVERLAY_KINDS = ("demand_change", "capacity_change", "lead_time_change", "price_change")
# An exception in month t is explained by constraints binding in months t-3..t.
EXPLAIN_LOOKBACK_MONTHS = 3


class SupplyDataMissing(Exception):
    """The company handed over no capacity and no material data: there is nothing to plan against.

    The orchestration layer turns this into a "supply review skipped" message rather than a
    failed run, as the product design asks for steps whose inputs are absent.
    """


# --------------------------------------------------------------------------------------------
# Settings and scenarios
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplySettings:
    """Everything a planner tunes in `models/supply.yaml`, read once into a typed object."""

    planning_level: str = "family"
    protection_months: float = 1.0
    cycle_stock_months: float = 0.5
    service_level_default: float = 0.95
    service_level_by_abc: Mapping[str, float] = field(default_factory=lambda: {"A": 0.98, "B": 0.95, "C": 0.90})
    service_level_by_segment: Mapping[str, float] = field(default_factory=dict)
    fallback_cv: float = 0.3
    shortfall_mode: str = "backorder"
    holding_rate_per_month: float = 0.015
    material_holding_rate_per_month: float = 0.01
    shortfall_penalty_factor: float = 1.5
    below_target_penalty_factor: float = 0.25
    end_target_penalty_factor: float = 1.5
    solver_method: str = "ipm"
    crossover: bool = False
    critical_material_margin: float = 1.0
    ample_material_margin: float = 1.2
    time_limit_seconds: float = 600.0


_SETTING_KEYS = {
    "planning": {"level", "critical_material_margin", "ample_material_margin"},
    "inventory_targets": {"protection_months", "cycle_stock_months", "fallback_cv", "service_level"},
    "costs": {
        "shortfall_mode", "shortfall_penalty_factor", "below_target_penalty_factor", "end_target_penalty_factor",
        "holding_rate_per_month", "material_holding_rate_per_month",
    },
    "solver": {"method", "crossover", "time_limit_seconds"},
}


def load_supply_settings(path: str | Path) -> SupplySettings:
    """Read `models/supply.yaml`; a typo or a bad value fails here, not halfway through a cycle."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    return supply_settings_from_dict(raw, source=str(path))


def supply_settings_from_dict(raw: Mapping[str, Any], source: str = "supply settings") -> SupplySettings:
    """Settings from the YAML's structure (see `models/supply.yaml`); absent keys take defaults."""
    for section, body in raw.items():
        if section not in _SETTING_KEYS:
            raise ValueError(f"{source}: unknown section {section!r} (expected {sorted(_SETTING_KEYS)})")
        unknown = set(body or {}) - _SETTING_KEYS[section]
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {sorted(unknown)} in {section} (expected {sorted(_SETTING_KEYS[section])})")
    planning = raw.get("planning", {}) or {}
    targets = raw.get("inventory_targets", {}) or {}
    service = targets.get("service_level", {}) or {}
    costs = raw.get("costs", {}) or {}
    solver = raw.get("solver", {}) or {}
    settings = SupplySettings(
        planning_level=str(planning.get("level", "family")),
        protection_months=float(targets.get("protection_months", 1.0)),
        cycle_stock_months=float(targets.get("cycle_stock_months", 0.5)),
        service_level_default=float(service.get("default", 0.95)),
        service_level_by_abc={str(k): float(v) for k, v in (service.get("abc") or {}).items()},
        service_level_by_segment={str(k): float(v) for k, v in (service.get("segment") or {}).items()},
        fallback_cv=float(targets.get("fallback_cv", 0.3)),
        shortfall_mode=str(costs.get("shortfall_mode", "backorder")),
        holding_rate_per_month=float(costs.get("holding_rate_per_month", 0.015)),
        material_holding_rate_per_month=float(costs.get("material_holding_rate_per_month", 0.01)),
        shortfall_penalty_factor=float(costs.get("shortfall_penalty_factor", 1.5)),
        below_target_penalty_factor=float(costs.get("below_target_penalty_factor", 0.25)),
        end_target_penalty_factor=float(costs.get("end_target_penalty_factor", costs.get("shortfall_penalty_factor", 1.5))),
        solver_method=str(solver.get("method", "ipm")),
        crossover=bool(solver.get("crossover", False)),
        critical_material_margin=float(planning.get("critical_material_margin", 1.0)),
        ample_material_margin=float(planning.get("ample_material_margin", 1.2) or 0.0),
        time_limit_seconds=float(solver.get("time_limit_seconds", 600)),
    )
    if settings.planning_level not in LEVELS:
        raise ValueError(f"{source}: planning.level must be one of {LEVELS}, got {settings.planning_level!r}")
    if settings.shortfall_mode not in SHORTFALL_MODES:
        raise ValueError(f"{source}: costs.shortfall_mode must be one of {SHORTFALL_MODES}, got {settings.shortfall_mode!r}")
    levels = [settings.service_level_default, *settings.service_level_by_abc.values(), *settings.service_level_by_segment.values()]
    if any(not 0.5 <= level < 1.0 for level in levels):
        raise ValueError(f"{source}: service levels must be in [0.5, 1), got {levels}")
    if settings.holding_rate_per_month >= settings.below_target_penalty_factor:
        raise ValueError(f"{source}: below_target_penalty_factor must exceed holding_rate_per_month, or targets are never held")
    return settings


@dataclass(frozen=True)
class Overlay:
    """One change to the inputs: `kind` names the rule, `params` its arguments from the YAML."""

    kind: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    overlays: tuple[Overlay, ...] = ()


_OVERLAY_KEYS = {
    "demand_change": ({"pct"}, {"family", "sku", "months"}),
    "capacity_change": ({"resource", "factor"}, {"months", "overtime"}),
    "lead_time_change": ({"factor"}, {"supplier", "material"}),
    # Money only: the financial review prices the scenario with it; supply is unchanged.
    "price_change": ({"pct"}, {"family", "sku", "months"}),
}


def load_scenarios(path: str | Path) -> dict[str, Scenario]:
    """Read `models/scenarios.yaml` into named scenarios; `baseline` is always first and empty."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    return scenarios_from_dict(raw, source=str(path))


def scenarios_from_dict(raw: Mapping[str, Any], source: str = "scenarios") -> dict[str, Scenario]:
    scenarios: dict[str, Scenario] = {BASELINE: Scenario(BASELINE, "The consensus demand against today's supply base.")}
    for name, body in (raw.get("scenarios") or {}).items():
        if name == BASELINE:
            raise ValueError(f"{source}: '{BASELINE}' is reserved for the unchanged plan")
        body = body or {}
        overlays = []
        for position, entry in enumerate(body.get("overlays") or [], start=1):
            entry = dict(entry)
            kind = entry.pop("kind", None)
            if kind not in _OVERLAY_KEYS:
                raise ValueError(f"{source}: scenario {name}, overlay {position}: kind must be one of {OVERLAY_KINDS}, got {kind!r}")
            required, optional = _OVERLAY_KEYS[kind]
            missing, unknown = required - entry.keys(), entry.keys() - required - optional
            if missing or unknown:
                raise ValueError(
                    f"{source}: scenario {name}, overlay {position} ({kind}): "
                    + (f"missing {sorted(missing)} " if missing else "")
                    + (f"unknown {sorted(unknown)}" if unknown else "")
                )
            if kind in ("demand_change", "price_change") and ("family" in entry) == ("sku" in entry):
                raise ValueError(f"{source}: scenario {name}, overlay {position}: {kind} needs exactly one of family or sku")
            if kind == "lead_time_change" and ("supplier" in entry) == ("material" in entry):
                raise ValueError(f"{source}: scenario {name}, overlay {position}: lead_time_change needs exactly one of supplier or material")
            overlays.append(Overlay(kind, entry))
        scenarios[str(name)] = Scenario(str(name), str(body.get("description", "")), tuple(overlays))
    return scenarios


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "products": {"sku": pl.Utf8, "family": pl.Utf8, "unit_price": pl.Float64, "unit_cost": pl.Float64},
    "demand": {"sku": pl.Utf8, "month": pl.Date, "quantity": pl.Float64, "p10": pl.Float64, "p90": pl.Float64},
    "segmentation": {"sku": pl.Utf8, "abc_class": pl.Utf8, "xyz_class": pl.Utf8},
    "resources": {
        "resource": pl.Utf8, "plant": pl.Utf8, "capacity_hours": pl.Float64, "overtime_hours": pl.Float64,
        "cost_per_hour": pl.Float64, "overtime_cost_per_hour": pl.Float64,
    },
    "routings": {"sku": pl.Utf8, "resource": pl.Utf8, "hours_per_unit": pl.Float64, "priority": pl.Int64},
    "materials": {
        "material": pl.Utf8, "supplier": pl.Utf8, "unit_cost": pl.Float64, "lead_time_months": pl.Int64,
        "supplier_capacity": pl.Float64, "on_hand": pl.Float64,
    },
    "bom": {"sku": pl.Utf8, "material": pl.Utf8, "qty_per": pl.Float64},
    "inventory": {"sku": pl.Utf8, "on_hand": pl.Float64},
    "open_supply": {"item_type": pl.Utf8, "item": pl.Utf8, "month": pl.Date, "quantity": pl.Float64},
    "resource_calendar": {"resource": pl.Utf8, "month": pl.Date, "capacity_hours": pl.Float64, "overtime_hours": pl.Float64},
}


_SORT_KEYS: dict[str, list[str]] = {
    "products": ["sku"], "demand": ["sku", "month"], "segmentation": ["sku"], "resources": ["resource"],
    "routings": ["sku", "resource"], "materials": ["material"], "bom": ["sku", "material"], "inventory": ["sku"],
    "open_supply": ["item_type", "item", "month"], "resource_calendar": ["resource", "month"],
}


def _as_month(column: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Date:
        return pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return pl.col(column).dt.date()
    return (pl.col(column).cast(pl.Utf8).str.slice(0, 7) + "-01").str.to_date("%Y-%m-%d")


def _typed(frame: pl.DataFrame | None, name: str) -> pl.DataFrame:
    """The frame with the columns this step reads, cast to their types (months as dates).

    Demo frames carry months as 'YYYY-MM' text and marts carry dates; both are accepted. An
    absent frame becomes an empty one with the right columns, so "no routings" is an empty
    frame, never a special case further down.
    """
    schema = _SCHEMAS[name]
    if frame is None or frame.height == 0:
        extra = {} if frame is None else {c: t for c, t in frame.schema.items() if c not in schema}
        return pl.DataFrame(schema={**schema, **extra})
    missing = [c for c in schema if c not in frame.columns and c not in ("p10", "p90", "xyz_class", "supplier", "plant", "priority")]
    if missing:
        raise ValueError(f"supply review: {name} lacks column(s) {missing}")
    exprs = []
    for column, dtype in schema.items():
        if column not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(column))
        elif dtype == pl.Date:
            exprs.append(_as_month(column, frame.schema[column]).alias(column))
        else:
            exprs.append(pl.col(column).cast(dtype, strict=False))
    # A fixed row order makes the LP identical run after run: an LP with several optimal
    # plans would otherwise return another one, and an unchanged rerun would look like a new
    # plan version to the approval step.
    return frame.with_columns(exprs).sort(_SORT_KEYS[name])


@dataclass(frozen=True)
class SupplyInputs:
    """The typed mart frames the supply review reads, plus the scenario's capacity calendar.

    `resource_calendar` (resource, month, capacity_hours, overtime_hours) is only set by
    scenario overlays that change capacity in some months; without it every resource has its
    `resources` capacity in every month.
    """

    products: pl.DataFrame
    demand: pl.DataFrame
    segmentation: pl.DataFrame | None = None
    resources: pl.DataFrame | None = None
    routings: pl.DataFrame | None = None
    materials: pl.DataFrame | None = None
    bom: pl.DataFrame | None = None
    inventory: pl.DataFrame | None = None
    open_supply: pl.DataFrame | None = None
    resource_calendar: pl.DataFrame | None = None

    @classmethod
    def from_frames(cls, frames: Mapping[str, pl.DataFrame], demand: pl.DataFrame, segmentation: pl.DataFrame | None = None) -> SupplyInputs:
        """Build from a dict of input frames (demo generator or marts) and the consensus demand."""
        names = ("products", "resources", "routings", "materials", "bom", "inventory", "open_supply")
        return cls(demand=demand, segmentation=segmentation, **{n: frames.get(n) for n in names}).typed()

    def typed(self) -> SupplyInputs:
        """Cast every frame to the columns and types the planner reads."""
        products = _typed(self.products, "products")
        demand = _typed(self.demand, "demand")
        if "family" not in demand.columns:
            demand = demand.join(products.select("sku", "family"), on="sku", how="left")
        return SupplyInputs(
            products=products,
            demand=demand,
            segmentation=_typed(self.segmentation, "segmentation"),
            resources=_typed(self.resources, "resources"),
            routings=_typed(self.routings, "routings"),
            materials=_typed(self.materials, "materials"),
            bom=_typed(self.bom, "bom"),
            inventory=_typed(self.inventory, "inventory"),
            open_supply=_typed(self.open_supply, "open_supply"),
            resource_calendar=None if self.resource_calendar is None else _typed(self.resource_calendar, "resource_calendar"),
        )

    @property
    def months(self) -> list[dt.date]:
        return sorted(self.demand.get_column("month").unique().to_list())

    def capacity_calendar(self) -> pl.DataFrame:
        """Capacity and overtime hours per resource and horizon month, overlays applied."""
        if self.resource_calendar is not None:
            return self.resource_calendar
        months = pl.DataFrame({"month": self.months}, schema={"month": pl.Date})
        return self.resources.select("resource", "capacity_hours", "overtime_hours").join(months, how="cross").select(
            "resource", "month", "capacity_hours", "overtime_hours"
        )


def _month_window(spec: Any, months: list[dt.date]) -> list[dt.date]:
    """Months a scenario overlay touches.

    `months` may be absent (the whole horizon), {from: 0, to: 2} as offsets from the cycle
    month (0 = cycle month, so a YAML scenario stays valid cycle after cycle), {from: '2027-01',
    to: '2027-03'}, a list of 'YYYY-MM' or one 'YYYY-MM'.
    """
    if spec is None:
        return list(months)

    def to_date(value: Any) -> dt.date:
        if isinstance(value, int):
            return months[min(max(value, 0), len(months) - 1)]
        return dt.datetime.strptime(str(value)[:7], "%Y-%m").date()

    if isinstance(spec, Mapping):
        start, end = to_date(spec.get("from", 0)), to_date(spec.get("to", len(months) - 1))
        return [m for m in months if start <= m <= end]
    values = spec if isinstance(spec, list | tuple) else [spec]
    wanted = {to_date(v) for v in values}
    return [m for m in months if m in wanted]


def apply_scenario(inputs: SupplyInputs, scenario: Scenario) -> SupplyInputs:
    """The inputs as the scenario sees them: demand, capacity or lead times changed by overlays.

    A scenario is an overlay on the baseline's inputs, not a second data set, so every scenario
    is solved from the same cycle's data and differs only where its YAML says so. Unknown
    families, SKUs, resources, suppliers or materials are errors: a typo in a scenario must not
    silently produce a copy of the baseline.
    """
    inputs = inputs.typed()
    months = inputs.months
    for overlay in scenario.overlays:
        p = overlay.params
        where = f"scenario {scenario.name}: {overlay.kind}"
        if overlay.kind == "demand_change":
            key, value = ("family", p["family"]) if "family" in p else ("sku", p["sku"])
            if inputs.demand.filter(pl.col(key) == value).height == 0:
                raise ValueError(f"{where}: no demand for {key} {value!r}")
            factor = 1.0 + float(p["pct"]) / 100.0
            hit = (pl.col(key) == value) & pl.col("month").is_in(_month_window(p.get("months"), months))
            inputs = replace(
                inputs,
                demand=inputs.demand.with_columns(
                    [pl.when(hit).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in ("quantity", "p10", "p90")]
                ),
            )
        elif overlay.kind == "capacity_change":
            resource = str(p["resource"])
            if inputs.resources.filter(pl.col("resource") == resource).height == 0:
                raise ValueError(f"{where}: unknown resource {resource!r}")
            factor = float(p["factor"])
            # overtime: true (default) scales overtime hours by the same factor, false leaves
            # them as they are, a number is the overtime hours' own factor (0 = no overtime).
            overtime = p.get("overtime", True)
            ot_factor = factor if overtime is True else 1.0 if overtime is False else float(overtime)
            hit = (pl.col("resource") == resource) & pl.col("month").is_in(_month_window(p.get("months"), months))
            calendar = inputs.capacity_calendar().with_columns(
                pl.when(hit).then(pl.col("capacity_hours") * factor).otherwise(pl.col("capacity_hours")).alias("capacity_hours"),
                pl.when(hit).then(pl.col("overtime_hours") * ot_factor).otherwise(pl.col("overtime_hours")).alias("overtime_hours"),
            )
            inputs = replace(inputs, resource_calendar=calendar)
        elif overlay.kind == "price_change":
            continue  # priced by the financial review (scenario_price_plan); supply is unchanged
        elif overlay.kind == "lead_time_change":
            key, value = ("supplier", p["supplier"]) if "supplier" in p else ("material", p["material"])
            if inputs.materials.filter(pl.col(key) == value).height == 0:
                raise ValueError(f"{where}: unknown {key} {value!r}")
            factor = float(p["factor"])
            # Lead times are whole months; a change rounds up (a doubled 1-month lead is 2 months).
            longer = (pl.col("lead_time_months") * factor - 1e-9).ceil().clip(lower_bound=0).cast(pl.Int64)
            inputs = replace(
                inputs,
                materials=inputs.materials.with_columns(
                    pl.when(pl.col(key) == value).then(longer).otherwise(pl.col("lead_time_months")).alias("lead_time_months")
                ),
            )
    return inputs


def scenario_price_plan(price_plan: pl.DataFrame | None, scenario: Scenario, months: list[dt.date]) -> pl.DataFrame | None:
    """The price plan a scenario is priced with: the company's plan plus the scenario's
    `price_change` overlays, as rows of the `price_plan` input (level, key, month,
    price_change_pct). A change limited to some months is a rise from the first month and the
    inverse change after the last, so it holds only inside the window."""
    rows = []
    for overlay in scenario.overlays:
        if overlay.kind != "price_change":
            continue
        p = overlay.params
        level, key = ("family", p["family"]) if "family" in p else ("sku", p["sku"])
        window = _month_window(p.get("months"), months)
        if not window:
            continue
        pct = float(p["pct"])
        rows.append((level, str(key), window[0], pct))
        after = [m for m in months if m > window[-1]]
        if after:
            rows.append((level, str(key), after[0], 100.0 * (1.0 / (1.0 + pct / 100.0) - 1.0)))
    if not rows:
        return price_plan
    extra = pl.DataFrame(rows, schema={"level": pl.Utf8, "key": pl.Utf8, "month": pl.Date, "price_change_pct": pl.Float64}, orient="row")
    if price_plan is None or price_plan.height == 0:
        return extra
    base = price_plan.select("level", "key", pl.col("month").cast(pl.Date), pl.col("price_change_pct").cast(pl.Float64))
    return pl.concat([base, extra], how="vertical")


# --------------------------------------------------------------------------------------------
# Inventory targets
# --------------------------------------------------------------------------------------------


def compute_inventory_targets(demand: pl.DataFrame, segmentation: pl.DataFrame | None, settings: SupplySettings, cycle: str) -> pl.DataFrame:
    """Safety stock and target inventory per SKU and month, sized on the forecast's own doubt.

    The demand review's p10-p90 band says how wrong the consensus may be: sigma is about
    (p90 - p10) / 2.563 for a normal error. Stock at the end of a month must protect the demand
    of the months until the next replenishment can arrive (`protection_months`: review period
    plus production lead time), so safety stock = z(service level) x sigma of next month's
    demand x sqrt(protection months). The service level comes from the SKU's segment: an
    'AX'-style entry first, then its ABC class, then the default. Target inventory adds cycle
    stock (`cycle_stock_months` of next month's demand): with monthly replenishment the average
    lot on hand. Targets are end-of-month targets; the last horizon month reuses its own month.
    Missing or inverted p10/p90 fall back to sigma = fallback_cv x quantity.
    """
    demand = _typed(demand, "demand")
    seg = _typed(segmentation, "segmentation")
    levels = seg.select(
        "sku",
        pl.col("abc_class").fill_null(""),
        (pl.col("abc_class").fill_null("") + pl.col("xyz_class").fill_null("")).alias("segment"),
    )
    by_segment = pl.DataFrame(
        {"segment": list(settings.service_level_by_segment), "sl_segment": list(settings.service_level_by_segment.values())},
        schema={"segment": pl.Utf8, "sl_segment": pl.Float64},
    )
    by_abc = pl.DataFrame(
        {"abc_class": list(settings.service_level_by_abc), "sl_abc": list(settings.service_level_by_abc.values())},
        schema={"abc_class": pl.Utf8, "sl_abc": pl.Float64},
    )
    service = (
        levels.join(by_segment, on="segment", how="left")
        .join(by_abc, on="abc_class", how="left")
        .select("sku", pl.coalesce("sl_segment", "sl_abc", pl.lit(settings.service_level_default)).alias("service_level"))
    )
    spread = (pl.col("p90") - pl.col("p10")) / P10_P90_SPAN
    sigma = pl.when(spread.is_not_null() & (spread >= 0)).then(spread).otherwise(settings.fallback_cv * pl.col("quantity"))
    frame = (
        demand.select("sku", "family", "month", "quantity", sigma.alias("sigma"))
        .join(service, on="sku", how="left")
        .with_columns(pl.col("service_level").fill_null(settings.service_level_default))
        .sort("sku", "month")
        .with_columns(
            pl.col("sigma").shift(-1).over("sku").fill_null(pl.col("sigma")).alias("sigma_next"),
            pl.col("quantity").shift(-1).over("sku").fill_null(pl.col("quantity")).alias("demand_next"),
        )
    )
    z = ndtri(frame.get_column("service_level").to_numpy())
    return frame.with_columns(pl.Series("z", z)).select(
        pl.lit(cycle_label(cycle)).alias("cycle"),
        "sku",
        "family",
        "month",
        "service_level",
        (pl.col("z") * pl.col("sigma_next") * math.sqrt(settings.protection_months)).clip(lower_bound=0).alias("safety_stock"),
        (settings.cycle_stock_months * pl.col("demand_next")).clip(lower_bound=0).alias("cycle_stock"),
    ).with_columns((pl.col("safety_stock") + pl.col("cycle_stock")).alias("target_inventory"))


# --------------------------------------------------------------------------------------------
# From frames to arrays
# --------------------------------------------------------------------------------------------


@dataclass
class _Company:
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


def _company(inputs: SupplyInputs, targets: pl.DataFrame) -> _Company:
    notes: list[str] = []
    demand = inputs.demand
    months = inputs.months
    T = len(months)
    month_ix = _index(pl.Series(months, dtype=pl.Date), "month")
    sku_ix = _index(demand.get_column("sku").unique().sort(), "sku")
    n = sku_ix.height
    skus = sku_ix.get_column("sku").to_numpy()

    d = demand.join(sku_ix, on="sku").join(month_ix, on="month")
    D = np.maximum(_dense(d, "sku_i", n, T, "quantity"), 0.0)
    tg = targets.join(sku_ix, on="sku").join(month_ix, on="month")
    TGT = _dense(tg, "sku_i", n, T, "target_inventory")
    SS = _dense(tg, "sku_i", n, T, "safety_stock")
    prod = sku_ix.join(inputs.products.select("sku", "family", "unit_price", "unit_cost"), on="sku", how="left").sort("sku_i")
    fam_from_demand = demand.group_by("sku").agg(pl.col("family").first()) if "family" in demand.columns else None
    if fam_from_demand is not None:
        prod = prod.join(fam_from_demand.rename({"family": "_f"}), on="sku", how="left").with_columns(
            pl.coalesce("family", "_f").alias("family")
        )
    family = prod.get_column("family").fill_null("(no family)").to_numpy()
    price = prod.get_column("unit_price").fill_null(0).to_numpy()
    cost = prod.get_column("unit_cost").fill_null(0).to_numpy()

    inv = inputs.inventory.group_by("sku").agg(pl.col("on_hand").sum()).join(sku_ix, on="sku")
    I0 = np.bincount(inv.get_column("sku_i").to_numpy(), weights=inv.get_column("on_hand").fill_null(0).to_numpy(), minlength=n)
    osp = inputs.open_supply.filter(pl.col("item_type") == "product").rename({"item": "sku"}).join(sku_ix, on="sku").join(month_ix, on="month")
    OSP = _dense(osp, "sku_i", n, T, "quantity")
    stray = inputs.open_supply.filter((pl.col("item_type") == "product") & ~pl.col("item").is_in(sku_ix.get_column("sku").implode()))
    if stray.height:
        notes.append(f"{stray.height} open production orders for SKUs without demand in the horizon are ignored")

    # Capacity: a resource without routings, or routings without resources, constrain nothing.
    routings = inputs.routings.join(sku_ix, on="sku")
    res_names = inputs.resources.get_column("resource").unique().sort()
    res_ix = _index(res_names, "resource")
    # Joins do not keep row order; sums over routing and BOM rows must add in the same order
    # every run, or a rerun would produce a plan that differs in the last digits.
    routings = routings.join(res_ix, on="resource").sort("sku_i", "resource_i")
    has_capacity = routings.height > 0
    R = res_ix.height
    res = res_ix.join(inputs.resources, on="resource", how="left").sort("resource_i")
    cal = inputs.capacity_calendar().join(res_ix, on="resource").join(month_ix, on="month")
    cap = _dense(cal, "resource_i", R, T, "capacity_hours")
    ot = _dense(cal, "resource_i", R, T, "overtime_hours")

    mat_names = inputs.materials.get_column("material").unique().sort()
    mat_ix = _index(mat_names, "material")
    mats = mat_ix.join(inputs.materials, on="material", how="left").sort("material_i")
    bom = inputs.bom.join(sku_ix, on="sku").join(mat_ix, on="material").sort("sku_i", "material_i")
    has_materials = bom.height > 0
    M = mat_ix.height
    osm = inputs.open_supply.filter(pl.col("item_type") == "material").rename({"item": "material"}).join(mat_ix, on="material").join(month_ix, on="month")

    if not has_capacity and not has_materials:
        raise SupplyDataMissing(
            "no supply data: resources/routings and materials/bom are empty or do not cover the demand's SKUs, "
            "so there is no capacity or material to plan against (supply review skipped)"
        )
    if not has_capacity:
        notes.append("no resources/routings: production is planned without capacity limits")
    if not has_materials:
        notes.append("no materials/bom: production is planned without material limits")
    unrouted = n - routings.get_column("sku").n_unique() if has_capacity else 0
    if has_capacity and unrouted:
        notes.append(f"{unrouted} SKUs have no routing: planned without capacity limit at their standard cost")

    return _Company(
        months=months, skus=skus, family=family, D=D, TGT=TGT, SS=SS, OSP=OSP, I0=I0, price=price, cost=cost,
        resources=res.get_column("resource").to_numpy(), plant=res.get_column("plant").fill_null("").to_numpy(),
        cap=cap, ot=ot, cph=res.get_column("cost_per_hour").fill_null(0).to_numpy(),
        otc=res.get_column("overtime_cost_per_hour").fill_null(0).to_numpy(),
        r_sku=routings.get_column("sku_i").to_numpy(), r_res=routings.get_column("resource_i").to_numpy(),
        r_hours=routings.get_column("hours_per_unit").to_numpy(),
        r_prio=routings.get_column("priority").fill_null(1).to_numpy(),
        materials=mats.get_column("material").to_numpy(), supplier=mats.get_column("supplier").fill_null("").to_numpy(),
        mcost=mats.get_column("unit_cost").fill_null(0).to_numpy(),
        lead=mats.get_column("lead_time_months").fill_null(0).to_numpy().astype(np.int64),
        supcap=mats.get_column("supplier_capacity").fill_null(np.inf).to_numpy(),
        M0=mats.get_column("on_hand").fill_null(0).to_numpy(), OSM=_dense(osm, "material_i", M, T, "quantity"),
        b_sku=bom.get_column("sku_i").to_numpy(), b_mat=bom.get_column("material_i").to_numpy(), b_qty=bom.get_column("qty_per").to_numpy(),
        has_capacity=has_capacity, has_materials=has_materials, notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Planning items: SKUs, or families split by routing, on net requirements
# --------------------------------------------------------------------------------------------


def _own_supply_projection(c: _Company, mode: str) -> tuple[np.ndarray, np.ndarray]:
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


def _unconstrained_requirement(c: _Company, mode: str) -> np.ndarray:
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


def _fair_share(c: _Company, t: int, quantity: np.ndarray, member_sku: np.ndarray, group: np.ndarray,
                avail: np.ndarray, cum_demand: np.ndarray) -> np.ndarray:
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


def _disaggregate(c: _Company, it: _Items, X: np.ndarray, Y: np.ndarray, receipts: np.ndarray, settings: SupplySettings) -> dict[str, np.ndarray]:
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
    R, M, P = len(c.resources), len(c.materials), len(it.p_item)
    backorder = settings.shortfall_mode == "backorder"
    cum_demand = np.concatenate([np.zeros((n, 1)), np.cumsum(c.D, axis=1)], axis=1)
    is_primary = c.r_res == it.primary[c.r_sku]
    alt_rows = np.flatnonzero(~is_primary)
    prim_rows = np.flatnonzero(is_primary)
    prim_pair = np.zeros(P, dtype=bool)
    prim_pair[it.row_pair[prim_rows]] = True
    alt_of_item = np.zeros((len(it.names), T))
    np.add.at(alt_of_item, it.p_item[~prim_pair], X[~prim_pair])
    primary_qty = np.maximum(Y - alt_of_item, 0.0)
    bom = sp.csr_matrix((c.b_qty, (c.b_mat, c.b_sku)), shape=(M, n))
    receipt_cap = np.where(np.arange(T)[None, :] >= c.lead[:, None], np.maximum(c.supcap[:, None] - c.OSM, 0.0), 0.0)
    b_order = np.argsort(c.b_sku, kind="stable")
    r_order = np.argsort(c.r_sku, kind="stable")

    def min_per_sku(sku_of_row: np.ndarray, order: np.ndarray, values: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

    prod, inv, short = (np.zeros((n, T)) for _ in range(3))
    row_prod = np.zeros((len(c.r_sku), T))
    load, usage, rec, mstock = np.zeros((R, T)), np.zeros((M, T)), np.zeros((M, T)), np.zeros((M, T))
    stock, backlog, mat_level = c.I0.copy(), np.zeros(n), c.M0.copy()
    owed = np.zeros(len(it.names))  # planned volume an item could not make yet: it is made up later
    # Where SKU detail had to cut a SKU: 1 capacity, 2 material, and which resource or material.
    limit_kind = np.zeros((n, T), dtype=np.int8)
    limit_ref = np.full((n, T), -1, dtype=np.int64)
    for t in range(T):  # a recursion in time, vectorised over SKUs, routings and materials
        avail = stock + c.OSP[:, t] - backlog
        on_alt = _fair_share(c, t, X[:, t], c.r_sku[alt_rows], it.row_pair[alt_rows], avail, cum_demand)
        alt_sku = np.bincount(c.r_sku[alt_rows], weights=on_alt, minlength=n)
        p = alt_sku + _fair_share(c, t, primary_qty[:, t] + owed, np.arange(n), it.item_of_sku, avail + alt_sku, cum_demand)
        rows = np.zeros(len(c.r_sku))
        rows[alt_rows] = on_alt
        rows[prim_rows] = np.maximum(p[c.r_sku[prim_rows]] - alt_sku[c.r_sku[prim_rows]], 0.0)
        material_in = mat_level + c.OSM[:, t] + receipts[:, t]
        for attempt in range(3):
            # Row fractions are fixed within one check, so cutting a SKU by the tightest ratio
            # of its resources and materials brings every one of them within its limit.
            hours = np.bincount(c.r_res, weights=rows * c.r_hours, minlength=R)
            # Solver noise (a millionth) is not a shortage.
            cap_ratio = np.divide(c.cap[:, t] + c.ot[:, t] + 1e-6 * (1 + hours), hours, out=np.ones(R), where=hours > 0).clip(0, 1)
            need = bom @ p
            topup = np.clip(need - material_in, 0.0, receipt_cap[:, t] - receipts[:, t])
            mat_ratio = np.divide(material_in + topup + 1e-6 * (1 + need), need, out=np.ones(M), where=need > 0).clip(0, 1)
            f_cap, by_res = min_per_sku(c.r_sku, r_order, np.where(rows > 0, cap_ratio[c.r_res], 1.0), c.r_res)
            f_mat, by_mat = min_per_sku(c.b_sku, b_order, mat_ratio[c.b_mat], c.b_mat)
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
                ok = f >= 1 - 1e-9
                members = np.flatnonzero(ok)
                extra = np.zeros(n)
                freed_item = np.bincount(it.item_of_sku, weights=freed, minlength=len(it.names))
                extra[members] = _fair_share(c, t, freed_item, members, it.item_of_sku[members], avail + p, cum_demand)
                p = p + extra
                rows[prim_rows] += extra[c.r_sku[prim_rows]]
                # SKUs without a routing have no rows; their extra is still production.
        owed = np.maximum(Y[:, t] + owed - np.bincount(it.item_of_sku, weights=p, minlength=len(it.names)), 0.0)
        need = bom @ p
        rec[:, t] = receipts[:, t] + np.clip(need - material_in, 0.0, receipt_cap[:, t] - receipts[:, t])
        mat_level = np.maximum(mat_level + c.OSM[:, t] + rec[:, t] - need, 0.0)
        usage[:, t], mstock[:, t] = need, mat_level
        row_prod[:, t] = rows
        load[:, t] = np.bincount(c.r_res, weights=rows * c.r_hours, minlength=R)
        net = avail + p - c.D[:, t]
        prod[:, t], inv[:, t], short[:, t] = p, np.maximum(net, 0.0), np.maximum(-net, 0.0)
        stock = inv[:, t]
        backlog = short[:, t] if backorder else np.zeros(n)
    return {"production": prod, "inventory": inv, "shortfall": short, "row_production": row_prod, "load": load,
            "usage": usage, "receipts": rec, "material_stock": mstock, "limit_kind": limit_kind, "limit_ref": limit_ref}


@dataclass
class _Items:
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


def _primary_resource(c: _Company) -> np.ndarray:
    """Each SKU's preferred routing: lowest priority number, then fewest hours; -1 if none."""
    primary = np.full(len(c.skus), -1, dtype=np.int64)
    if len(c.r_sku):
        order = np.lexsort((c.r_hours, c.r_prio, c.r_sku))
        first = order[np.r_[True, c.r_sku[order][1:] != c.r_sku[order][:-1]]]
        primary[c.r_sku[first]] = c.r_res[first]
    return primary


def _items(c: _Company, settings: SupplySettings) -> _Items:
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
    mode = settings.shortfall_mode
    sku_level = settings.planning_level == "sku"
    primary = _primary_resource(c)
    # What each SKU would need produced each month without limits (demand and target).
    W_sku = _unconstrained_requirement(c, mode) + 1e-6 * c.D + 1e-12
    sku_req = np.zeros((len(c.materials), T))
    np.add.at(sku_req, c.b_mat, W_sku[c.b_sku] * c.b_qty[:, None])
    critical = _critical_materials(c, sku_req, settings.critical_material_margin) if len(c.materials) else np.zeros(0, dtype=bool)
    margin = settings.ample_material_margin
    in_lp = _critical_materials(c, sku_req, margin) if margin > 0 else np.ones(len(c.materials), dtype=bool)
    if sku_level:
        key = c.skus.astype(str)
    else:
        res_label = np.where(primary >= 0, c.resources[np.maximum(primary, 0)] if len(c.resources) else "", "(no routing)")
        key = c.family.astype(object) + " @ " + res_label.astype(object)
        crit_rows = critical[c.b_mat] if len(c.b_mat) else np.zeros(0, dtype=bool)
        if crit_rows.any():
            uses = pl.DataFrame({"sku_i": c.b_sku[crit_rows], "material": c.materials[c.b_mat[crit_rows]]})
            sig = uses.group_by("sku_i").agg(pl.col("material").sort().str.join("+"))
            suffix = np.full(n, "", dtype=object)
            suffix[sig.get_column("sku_i").to_numpy()] = " | " + sig.get_column("material").to_numpy().astype(object)
            key = key + suffix
        key = key.astype(str)
    names, item_of_sku = np.unique(key, return_inverse=True)
    G = len(names)
    item_family = np.empty(G, dtype=object)
    item_family[item_of_sku] = c.family
    agg_items = sp.csr_matrix((np.ones(n), (item_of_sku, np.arange(n))), shape=(G, n))

    if sku_level:
        D, I0, OS, TGT = c.D, c.I0, c.OSP, c.TGT
    else:
        # Net requirements: demand the SKU's own stock and open supply leave uncovered, and the
        # part of its target its own surplus does not already meet.
        deficit, excess = _own_supply_projection(c, mode)
        D, I0, OS = agg_items @ deficit, np.zeros(G), np.zeros((G, T))
        TGT = agg_items @ np.maximum(c.TGT - excess, 0.0)
    # Averages use each SKU's requirement over the whole horizon, the same in every month: with
    # month-by-month weights the LP would learn to produce an item in the months whose mix
    # happens to need less of a scarce part, which the SKUs' own bills of materials never do.
    W = np.repeat(W_sku.sum(axis=1, keepdims=True), T, axis=1)
    WG = agg_items @ W
    total_demand = (c.D.sum(axis=1) + 1e-9)[:, None]
    zeros = np.zeros((G, 1))
    base = np.maximum(c.price, c.cost)
    hold = _weighted(item_of_sku, G, (settings.holding_rate_per_month * c.cost)[:, None], total_demand, zeros)[:, 0]
    penalty = _weighted(item_of_sku, G, (settings.shortfall_penalty_factor * base)[:, None], total_demand, zeros)[:, 0]
    below = _weighted(item_of_sku, G, (settings.below_target_penalty_factor * c.cost)[:, None], total_demand, zeros)[:, 0]
    end_below = _weighted(item_of_sku, G, (settings.end_target_penalty_factor * base)[:, None], total_demand, zeros)[:, 0]

    # Routing pairs (item, resource).
    R = max(len(c.resources), 1)
    pair_key = item_of_sku[c.r_sku] * R + c.r_res
    pair_keys, row_pair = np.unique(pair_key, return_inverse=True)
    P = len(pair_keys)
    p_item, p_res = pair_keys // R, pair_keys % R
    plain = _weighted(row_pair, P, c.r_hours[:, None], np.ones((len(c.r_sku), 1)), np.zeros((P, 1)))
    H = _weighted(row_pair, P, c.r_hours[:, None], W[c.r_sku], plain)
    agg_rows = sp.csr_matrix((np.ones(len(row_pair)), (row_pair, np.arange(len(row_pair)))), shape=(P, len(row_pair)))
    capable = agg_rows @ W_sku[c.r_sku]
    all_capable = np.asarray(agg_rows.sum(axis=1)).ravel() == np.bincount(item_of_sku, minlength=G)[p_item]
    x_cap = np.where(all_capable[:, None], np.inf, capable)

    # Material pairs (item, material): units per item unit over all the item's SKUs.
    M = max(len(c.materials), 1)
    q_keys, row_q = np.unique(item_of_sku[c.b_sku] * M + c.b_mat, return_inverse=True)
    q_item, q_mat = q_keys // M, q_keys % M
    agg_q = sp.csr_matrix((np.ones(len(row_q)), (row_q, np.arange(len(row_q)))), shape=(len(q_keys), len(row_q)))
    num = agg_q @ (c.b_qty[:, None] * W[c.b_sku])
    count = np.bincount(item_of_sku, minlength=G).astype(float)
    plain_q = (agg_q @ c.b_qty) / count[q_item] if len(q_keys) else np.zeros(0)
    A = np.where(WG[q_item] > 0, num / np.where(WG[q_item] > 0, WG[q_item], 1.0), plain_q[:, None])

    # Items without a routing still cost money to make: standard cost less their materials.
    routed = np.zeros(G, dtype=bool)
    routed[p_item] = True
    avg_cost = _weighted(item_of_sku, G, c.cost[:, None], total_demand, zeros)
    mat_cost = np.zeros((G, T))
    np.add.at(mat_cost, q_item, A * c.mcost[q_mat][:, None])
    noroute = np.where(routed[:, None], 0.0, np.maximum(avg_cost - mat_cost, 0.0))
    return _Items(
        names=names, family=item_family, item_of_sku=item_of_sku, primary=primary, D=D, I0=I0, OS=OS, TGT=TGT, hold=hold,
        penalty=penalty, below=below, end_below=end_below, p_item=p_item, p_res=p_res, H=H, x_cap=x_cap, q_item=q_item,
        q_mat=q_mat, A=A, noroute=noroute, row_pair=row_pair, critical=critical, in_lp=in_lp, W=agg_items @ W_sku,
    )


# --------------------------------------------------------------------------------------------
# The linear program
# --------------------------------------------------------------------------------------------


@dataclass
class _LP:
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


def _build_lp(c: _Company, it: _Items, settings: SupplySettings) -> _LP:
    """The supply LP as arrays: one block of columns or rows per variable or constraint family.

    Columns, each per month: X production per (item, resource) routing pair, Y production per
    item, E stock above target, U stock below target (ending inventory = target - U + E, which
    spares a target row per item and month), S shortfall (backlog at month end, or units
    lost), O overtime hours per resource, Q receipts of new purchases per material (ordered
    lead-time months earlier), M material stock. Rows, each per month: LINK (Y = sum of X), BAL
    (item inventory balance), CAP (hours <= capacity + overtime), MAT (material stock balance
    with BOM usage) for the materials that can bind; ample ones are only a cost per unit used
    and are bought after the LP (see `_disaggregate`). Alternate routings that only some of an item's SKUs have are capped by a
    column bound (see `_items`), not a row: rows of that kind tripled HiGHS's time at 20,000
    SKUs. Every block is built from index arithmetic on whole arrays; nothing loops over SKUs,
    items or months.
    """
    T = len(c.months)
    mats_in = np.flatnonzero(it.in_lp)
    G, P, R, M = len(it.names), len(it.p_item), len(c.resources), len(mats_in)
    local = np.full(len(c.materials), -1, dtype=np.int64)
    local[mats_in] = np.arange(M)
    q_in = local[it.q_mat] >= 0
    backorder = settings.shortfall_mode == "backorder"
    inf = highspy.kHighsInf
    sizes = {"X": P, "Y": G, "E": G, "U": G, "S": G, "O": R, "Q": M, "M": M}
    offsets, start = {}, 0
    for name, count in sizes.items():
        offsets[name], start = start, start + count * T
    n_cols = start
    row_sizes = {"LINK": G, "BAL": G, "CAP": R, "MAT": M}
    rows, start = {}, 0
    for name, count in row_sizes.items():
        rows[name], start = start, start + count * T
    n_rows = start
    tt = np.arange(T)

    def at(base: int, k: np.ndarray, shift: int = 0) -> np.ndarray:
        """Flat indices of entries (k, t + shift) of a block, as a (len(k), T) array."""
        return base + np.asarray(k)[:, None] * T + (tt + shift)[None, :]

    later = tt >= 1  # entries that refer to the month before
    items, res, mats = np.arange(G), np.arange(R), np.arange(M)
    ent_r, ent_c, ent_v = [], [], []

    def add(r: np.ndarray, col: np.ndarray, v: np.ndarray | float, mask: np.ndarray | None = None) -> None:
        v = np.broadcast_to(v, r.shape)
        if mask is not None:
            r, col, v = r[:, mask], col[:, mask], v[:, mask]
        ent_r.append(r.ravel())
        ent_c.append(col.ravel())
        ent_v.append(np.asarray(v, dtype=float).ravel())

    # LINK: Y - sum_p X = 0 (free row for items without routing).
    add(at(rows["LINK"], items), at(offsets["Y"], items), 1.0)
    add(at(rows["LINK"], it.p_item), at(offsets["X"], np.arange(P)), -1.0)
    # BAL with I = TGT - U + E: (E - U)_t - (E - U)_{t-1} - Y_t - S_t (+ S_{t-1} for backorders)
    #   = OS_t - D_t - TGT_t + TGT_{t-1}, with TGT_{-1} read as the opening stock.
    bal = at(rows["BAL"], items)
    add(bal, at(offsets["E"], items), 1.0)
    add(bal, at(offsets["U"], items), -1.0)
    add(bal, at(offsets["E"], items, -1), -1.0, later)
    add(bal, at(offsets["U"], items, -1), 1.0, later)
    add(bal, at(offsets["Y"], items), -1.0)
    add(bal, at(offsets["S"], items), -1.0)
    if backorder:
        add(bal, at(offsets["S"], items, -1), 1.0, later)
    # CAP: sum_p H X - O <= capacity.
    add(at(rows["CAP"], it.p_res), at(offsets["X"], np.arange(P)), it.H)
    add(at(rows["CAP"], res), at(offsets["O"], res), -1.0)
    # MAT: M_t - M_{t-1} - Q_t + sum_i A Y = open supply (+ on hand in month 0).
    add(at(rows["MAT"], mats), at(offsets["M"], mats), 1.0)
    add(at(rows["MAT"], mats), at(offsets["M"], mats, -1), -1.0, later)
    add(at(rows["MAT"], mats), at(offsets["Q"], mats), -1.0)
    add(at(rows["MAT"], local[it.q_mat[q_in]]), at(offsets["Y"], it.q_item[q_in]), it.A[q_in])
    matrix = sp.csc_matrix((np.concatenate(ent_v), (np.concatenate(ent_r), np.concatenate(ent_c))), shape=(n_rows, n_cols))

    has_pair = np.zeros(G, dtype=bool)
    has_pair[it.p_item] = True
    previous_target = np.concatenate([it.I0[:, None], it.TGT[:, :-1]], axis=1)
    bal_rhs = it.OS - it.D - it.TGT + previous_target
    mat_rhs = c.OSM[mats_in].copy()
    mat_rhs[:, 0] += c.M0[mats_in]
    link = np.where(has_pair[:, None], 0.0, inf) * np.ones((1, T))
    row_lower = np.concatenate([-link.ravel(), bal_rhs.ravel(), np.full(R * T, -inf), mat_rhs.ravel()])
    row_upper = np.concatenate([link.ravel(), bal_rhs.ravel(), c.cap.ravel(), mat_rhs.ravel()])

    # Purchases that would have had to be ordered before the cycle cannot arrive: Q = 0 for
    # t < lead time. New receipts fill what the supplier can still deliver beside open orders.
    receipt_cap = np.where(tt[None, :] >= c.lead[:, None], np.maximum(c.supcap[:, None] - c.OSM, 0.0), 0.0)[mats_in]
    shortfall_cap = np.full((G, T), inf) if backorder else np.maximum(it.D, 0.0)
    col_upper = np.concatenate([
        it.x_cap.ravel(), np.full((G + G) * T, inf), it.TGT.ravel(), shortfall_cap.ravel(), c.ot.ravel(),
        receipt_cap.ravel(), np.full(M * T, inf),
    ])
    # Ample materials have no rows: each unit used costs its purchase price.
    ample_cost = np.zeros((G, T))
    np.add.at(ample_cost, it.q_item[~q_in], it.A[~q_in] * c.mcost[it.q_mat[~q_in]][:, None])
    premium = np.maximum(c.otc - c.cph, 0.0)  # overtime hours also count as load at the regular rate
    cost = np.concatenate([
        (it.H * c.cph[it.p_res][:, None]).ravel(),
        (it.noroute + ample_cost).ravel(),
        np.repeat(it.hold, T),
        np.concatenate([np.repeat(it.below[:, None], T - 1, axis=1), it.end_below[:, None]], axis=1).ravel() - np.repeat(it.hold, T),
        np.repeat(it.penalty, T),
        np.repeat(premium, T),
        np.repeat(c.mcost[mats_in], T),
        np.repeat(settings.material_holding_rate_per_month * c.mcost[mats_in], T),
    ])
    offset = float((it.hold[:, None] * it.TGT).sum())
    return _LP(offsets, rows, n_cols, n_rows, cost, offset, col_upper, row_lower, row_upper, matrix)


def _critical_materials(c: _Company, requirement: np.ndarray, margin: float) -> np.ndarray:
    """Materials that cannot cover the unconstrained requirement: stock, open orders and the
    supplier's deliveries from the lead time on fall short of `margin` x the requirement,
    cumulatively, in some month. These are the materials that will decide which SKUs get made."""
    T = len(c.months)
    receipt_cap = np.where(np.arange(T)[None, :] >= c.lead[:, None], np.maximum(c.supcap[:, None] - c.OSM, 0.0), 0.0)
    available = c.M0[:, None] + np.cumsum(c.OSM + receipt_cap, axis=1)
    return (available < margin * np.cumsum(requirement, axis=1) - QTY_TOL).any(axis=1)


def _solve(lp: _LP, settings: SupplySettings) -> tuple[str, bool, float | None, np.ndarray | None, np.ndarray | None]:
    """Pass the model to HiGHS in one call and read primal values and row duals back as arrays."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(settings.time_limit_seconds))
    h.setOptionValue("solver", settings.solver_method)
    h.setOptionValue("run_crossover", "on" if settings.crossover else "off")
    m = lp.matrix
    h.passModel(
        lp.n_cols, lp.n_rows, m.nnz, int(highspy.MatrixFormat.kColwise), int(highspy.ObjSense.kMinimize), lp.offset,
        lp.cost, np.zeros(lp.n_cols), lp.col_upper, lp.row_lower, lp.row_upper,
        m.indptr.astype(np.int32), m.indices.astype(np.int32), m.data.astype(np.float64),
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


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


@dataclass
class SupplyResult:
    """One scenario's supply plan, its diagnosis and how long each stage took.

    Frames (columns in `OUTPUT_SCHEMAS`, all with cycle and scenario): `supply_plan` per SKU
    and month, `capacity_plan` per resource and month, `material_plan` per material and month,
    `production_plan` per planning item, resource and month (what the LP planned next to what
    the SKU plan makes), `supply_exceptions` per SKU-month with shortfall or stock below target
    and the constraint behind it, `bottlenecks` ranked by shadow price x usage. `status` is
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
    bottlenecks: pl.DataFrame
    detail: dict[str, Any] = field(default_factory=dict, repr=False)


_KEY = {"cycle": pl.Utf8, "scenario": pl.Utf8}
F64 = pl.Float64
# The columns and types of every table a result carries (the contract for the warehouse and BI).
OUTPUT_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "supply_plan": {
        **_KEY, "sku": pl.Utf8, "family": pl.Utf8, "month": pl.Date, "demand": F64, "open_supply": F64, "production": F64,
        "ending_inventory": F64, "shortfall": F64, "safety_stock": F64, "target_inventory": F64,
    },
    "capacity_plan": {
        **_KEY, "resource": pl.Utf8, "plant": pl.Utf8, "month": pl.Date, "capacity_hours": F64, "overtime_available": F64,
        "load_hours": F64, "overtime_hours": F64, "utilization": F64, "shadow_price": F64,
    },
    "material_plan": {
        **_KEY, "material": pl.Utf8, "supplier": pl.Utf8, "month": pl.Date, "requirement": F64, "purchase": F64,
        "purchase_receipts": F64, "open_supply": F64, "ending_inventory": F64, "shadow_price": F64,
    },
    "production_plan": {
        **_KEY, "family": pl.Utf8, "item": pl.Utf8, "resource": pl.Utf8, "plant": pl.Utf8, "month": pl.Date,
        "planned_production": F64, "production": F64, "load_hours": F64,
    },
    "supply_exceptions": {
        **_KEY, "sku": pl.Utf8, "family": pl.Utf8, "month": pl.Date, "exception": pl.Utf8, "demand": F64, "shortfall": F64,
        "below_target": F64, "constraint_kind": pl.Utf8, "constraint": pl.Utf8, "constraint_month": pl.Date, "shadow_price": F64,
        "value_per_unit": F64, "evidence": pl.Utf8, "explanation": pl.Utf8,
    },
    "bottlenecks": {
        **_KEY, "rank": pl.Int64, "kind": pl.Utf8, "constraint": pl.Utf8, "plant": pl.Utf8, "binding_months": pl.Int64,
        "max_shadow_price": F64, "shadow_value": F64, "usage": F64, "peak_utilization": F64,
    },
}


def _conform(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    return frame.select([pl.col(column).cast(dtype) for column, dtype in OUTPUT_SCHEMAS[name].items()])


def _grid(names: np.ndarray, months: list[dt.date], name: str) -> dict[str, pl.Series]:
    T = len(months)
    k = len(names)
    return {
        name: pl.Series(name, names, dtype=pl.Utf8).gather(np.repeat(np.arange(k), T)) if k else pl.Series(name, [], dtype=pl.Utf8),
        "month": pl.Series("month", months, dtype=pl.Date).gather(np.tile(np.arange(T), k)) if k else pl.Series("month", [], dtype=pl.Date),
    }


def _recent_best(values: np.ndarray, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row and month t, the largest value over months t-lookback..t and the month it is in."""
    T = values.shape[1]
    best = values.copy()
    month = np.repeat(np.arange(T)[None, :], values.shape[0], axis=0)
    for k in range(1, lookback + 1):  # a handful of shifts, each over whole arrays
        earlier = np.full_like(values, -np.inf)
        earlier[:, k:] = values[:, :-k]
        better = earlier > best
        best = np.where(better, earlier, best)
        month = np.where(better, month - k, month)
    return best, month


def _best_per_sku(n: int, sku_of_row: np.ndarray, values: np.ndarray, month: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per SKU and month, the largest value over the SKU's rows (routings or BOM lines)."""
    T = values.shape[1]
    best = np.zeros((n, T))
    best_label = np.full((n, T), -1, dtype=np.int64)
    best_month = np.full((n, T), -1, dtype=np.int64)
    if len(sku_of_row) == 0:
        return best, best_label, best_month
    order = np.argsort(sku_of_row, kind="stable")
    s, v, mo, lab = sku_of_row[order], values[order], month[order], label[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    top = np.maximum.reduceat(v, starts, axis=0)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(s)]))
    is_top = v >= top[seg]
    first = np.minimum.reduceat(np.where(is_top, np.arange(len(s))[:, None], len(s)), starts, axis=0)
    first = np.minimum(first, len(s) - 1)
    best[s[starts]] = top
    best_label[s[starts]] = np.take_along_axis(lab, first, axis=0)
    best_month[s[starts]] = np.take_along_axis(mo, first, axis=0)
    return best, best_label, best_month


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

    The LP plans items (a family on a primary resource, or SKUs; see `_items`); the SKU plan
    that every output table is written from comes from `_disaggregate`. `objective` is the
    LP's; `cost_breakdown` is the money of the SKU plan with the same cost terms.
    """
    t_start = time.perf_counter()
    inputs = inputs.typed()
    cycle = cycle_label(cycle or inputs.months[0])
    if targets is None:
        targets = compute_inventory_targets(inputs.demand, inputs.segmentation, settings, cycle)
    c = _company(inputs, targets)
    it = _items(c, settings)
    T = len(c.months)
    G, P, R, M = len(it.names), len(it.p_item), len(c.resources), len(c.materials)
    t_prepared = time.perf_counter()
    lp = _build_lp(c, it, settings)
    t_built = time.perf_counter()
    status, optimal, objective, x, duals = _solve(lp, settings)
    t_solved = time.perf_counter()
    lp_size = {"rows": lp.n_rows, "cols": lp.n_cols, "nonzeros": int(lp.matrix.nnz), "items": G}
    timings = {"prepare": t_prepared - t_start, "build": t_built - t_prepared, "solve": t_solved - t_built}
    if x is None:
        empty = _empty_result(cycle, scenario, settings, status, lp_size, timings, c.notes)
        empty.timings["total"] = time.perf_counter() - t_start
        return empty

    def block(name: str, size: int) -> np.ndarray:
        return np.maximum(x[lp.offsets[name]: lp.offsets[name] + size * T].reshape(size, T), 0.0)

    X, Y, U, S = block("X", P), block("Y", G), block("U", G), block("S", G)
    mats_in = np.flatnonzero(it.in_lp)
    Qr, Mi = np.zeros((M, T)), np.zeros((M, T))
    Qr[mats_in], Mi[mats_in] = block("Q", len(mats_in)), block("M", len(mats_in))
    mat_dual = np.zeros((M, T))
    mat_dual[mats_in] = duals[lp.rows["MAT"]: lp.rows["MAT"] + len(mats_in) * T].reshape(len(mats_in), T)
    cap_dual = duals[lp.rows["CAP"]: lp.rows["CAP"] + R * T].reshape(R, T)
    shadow = np.maximum(-cap_dual, 0.0)  # value of one more regular hour
    # Material rows price a unit at its purchase cost when it can still be bought; what one more
    # unit in that month is worth above that is the scarcity (lead time or supplier capacity).
    rent = np.where(it.in_lp[:, None], np.maximum(-mat_dual - c.mcost[:, None], 0.0), 0.0)
    # An interior-point solution (no crossover) leaves tiny duals on rows that do not bind:
    # a tenth of a cent per hour, or a thousandth of a material's price, is no bottleneck.
    shadow[shadow < 1e-4 * np.maximum(c.cph[:, None], 1.0)] = 0.0
    rent[rent < 1e-3 * np.maximum(c.mcost[:, None], 1.0)] = 0.0

    # SKU detail: the executable plan every output table is written from.
    detail = _disaggregate(c, it, X, Y, Qr, settings)
    sku_prod, sku_inv, sku_short = detail["production"], detail["inventory"], detail["shortfall"]
    load, usage, receipts, mstock = detail["load"], detail["usage"], detail["receipts"], detail["material_stock"]
    t_disaggregated = time.perf_counter()
    timings["disaggregate"] = t_disaggregated - t_solved

    placed_src = np.arange(T)[None, :] + c.lead[:, None]
    placed = np.where(placed_src < T, np.take_along_axis(receipts, np.minimum(placed_src, T - 1), axis=1), 0.0)
    overtime = np.clip(load - c.cap, 0.0, None)
    n = len(c.skus)
    supply_plan = pl.DataFrame({
        **_grid(c.skus, c.months, "sku"),
        "family": pl.Series(c.family.astype(str)).gather(np.repeat(np.arange(n), T)),
        "demand": c.D.ravel(), "open_supply": c.OSP.ravel(), "production": sku_prod.ravel(), "ending_inventory": sku_inv.ravel(),
        "shortfall": sku_short.ravel(), "safety_stock": c.SS.ravel(), "target_inventory": c.TGT.ravel(),
    }).select(pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario"), "sku", "family", "month", "demand", "open_supply",
              "production", "ending_inventory", "shortfall", "safety_stock", "target_inventory")
    capacity_plan = pl.DataFrame({
        **_grid(c.resources, c.months, "resource"),
        "plant": pl.Series(c.plant.astype(str)).gather(np.repeat(np.arange(R), T)) if R else pl.Series([], dtype=pl.Utf8),
        "capacity_hours": c.cap.ravel(), "overtime_available": c.ot.ravel(), "load_hours": load.ravel(),
        "overtime_hours": overtime.ravel(),
        "utilization": np.divide(load, c.cap, out=np.where(load > 0, np.inf, 0.0), where=c.cap > 0).ravel(),
        "shadow_price": shadow.ravel(),
    }).select(pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario"), "resource", "plant", "month", "capacity_hours",
              "overtime_available", "load_hours", "overtime_hours", "utilization", "shadow_price")
    material_plan = pl.DataFrame({
        **_grid(c.materials, c.months, "material"),
        "supplier": pl.Series(c.supplier.astype(str)).gather(np.repeat(np.arange(M), T)) if M else pl.Series([], dtype=pl.Utf8),
        "requirement": usage.ravel(), "purchase": placed.ravel(), "purchase_receipts": receipts.ravel(),
        "open_supply": c.OSM.ravel(), "ending_inventory": mstock.ravel(), "shadow_price": rent.ravel(),
    }).select(pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario"), "material", "supplier", "month", "requirement",
              "purchase", "purchase_receipts", "open_supply", "ending_inventory", "shadow_price")
    production_plan = _production_plan(c, it, X, Y, detail, cycle, scenario)
    exceptions = _exceptions(c, it, settings, detail, S, U, shadow, rent, cycle, scenario)
    bottlenecks = _bottlenecks(c, load, shadow, rent, usage, cycle, scenario)
    cost_breakdown = _plan_cost(c, settings, detail)
    timings["report"] = time.perf_counter() - t_disaggregated
    timings["total"] = time.perf_counter() - t_start
    return SupplyResult(
        cycle=cycle, scenario=scenario, planning_level=settings.planning_level, shortfall_mode=settings.shortfall_mode,
        status=status, optimal=optimal, objective=objective, lp_size=lp_size, timings=timings, notes=c.notes,
        cost_breakdown=cost_breakdown,
        **{name: _conform(frame, name) for name, frame in (
            ("supply_plan", supply_plan), ("capacity_plan", capacity_plan), ("material_plan", material_plan),
            ("production_plan", production_plan), ("supply_exceptions", exceptions), ("bottlenecks", bottlenecks))},
        detail={"company": c, "items": it, "X": X, "Y": Y, "lp_receipts": Qr, **detail},
    )


def _plan_cost(c: _Company, settings: SupplySettings, d: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The SKU plan's money with the LP's cost terms, each SKU at its own cost and price."""
    routed = np.zeros(len(c.skus), dtype=bool)
    routed[c.r_sku] = True
    bom_cost = np.bincount(c.b_sku, weights=c.b_qty * c.mcost[c.b_mat], minlength=len(c.skus))
    unrouted_cost = np.where(routed, 0.0, np.maximum(c.cost - bom_cost, 0.0))
    premium = np.maximum(c.otc - c.cph, 0.0)
    base = np.maximum(c.price, c.cost)
    load = d["load"]
    below_rate = np.repeat((settings.below_target_penalty_factor * c.cost)[:, None], c.D.shape[1], axis=1)
    below_rate[:, -1] = settings.end_target_penalty_factor * base
    costs = {
        "conversion": float((load * c.cph[:, None]).sum() + (d["production"] * unrouted_cost[:, None]).sum()),
        "overtime_premium": float((np.clip(load - c.cap, 0, None) * premium[:, None]).sum()),
        "purchases": float((d["receipts"] * c.mcost[:, None]).sum()),
        "holding": float((d["inventory"] * (settings.holding_rate_per_month * c.cost)[:, None]).sum()
                         + (d["material_stock"] * (settings.material_holding_rate_per_month * c.mcost)[:, None]).sum()),
        "shortfall_penalty": float((d["shortfall"] * (settings.shortfall_penalty_factor * base)[:, None]).sum()),
        "below_target_penalty": float((np.maximum(c.TGT - d["inventory"], 0) * below_rate).sum()),
    }
    costs["total"] = sum(costs.values())
    return costs


def _production_plan(c: _Company, it: _Items, X: np.ndarray, Y: np.ndarray, detail: Mapping[str, np.ndarray], cycle: str, scenario: str) -> pl.DataFrame:
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
    return pl.DataFrame({
        "family": pl.Series(it.family[item].astype(str) if k else [], dtype=pl.Utf8).gather(rep),
        "item": pl.Series(it.names[item] if k else [], dtype=pl.Utf8).gather(rep),
        "resource": pl.Series(resource, dtype=pl.Utf8).gather(rep),
        "plant": pl.Series(plant, dtype=pl.Utf8).gather(rep),
        "month": pl.Series(c.months, dtype=pl.Date).gather(np.tile(np.arange(T), k)),
        "planned_production": np.concatenate([X, Y[free]]).ravel() if k else np.zeros(0),
        "production": np.concatenate([made, sku_made[free]]).ravel() if k else np.zeros(0),
        "load_hours": np.concatenate([hours, np.zeros((len(free), T))]).ravel() if k else np.zeros(0),
    }).select(pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario"), pl.all())


def _exceptions(c, it, settings, detail, S, U, shadow, rent, cycle, scenario) -> pl.DataFrame:
    """Each SKU-month short of demand or below target, with the constraint that explains it.

    The explanation is read from the duals first (`evidence` 'dual'): among the capacity rows
    of the SKU's routings and the material rows of its BOM, in its month or the
    `EXPLAIN_LOOKBACK_MONTHS` before (stock for a month is built in the months before it; a
    constraint from much earlier explains little), the one where one more hour or unit would be
    worth most to this SKU: shadow price x hours per unit, or scarcity value x quantity per
    unit. Where no dual binds but the SKU plan had to cut this SKU (its own mix needed more of
    a resource or material than the family plan assumed, and it could not be bought or moved
    in time), that resource or material is named (`evidence` 'sku_detail', no shadow price).
    Otherwise no constraint is identified and `explanation` is null; `constraint_kind` says
    whether the LP's own item was short too, a cost trade-off the penalties in
    `models/supply.yaml` allow ('cost'), or only the SKU: a mix the family total covers but this
    SKU's share does not ('mix').
    """
    n, T = c.D.shape
    sku_inv, sku_short = detail["inventory"], detail["shortfall"]
    below = np.maximum(c.TGT - sku_inv, 0.0)
    flag = (sku_short > QTY_TOL) | (below > QTY_TOL)
    sku_i, month_i = np.nonzero(flag)
    schema = OUTPUT_SCHEMAS["supply_exceptions"]
    if len(sku_i) == 0:
        return pl.DataFrame(schema=schema)
    empty = (np.zeros((0, T)), np.zeros((0, T), dtype=np.int64))
    cap_val, cap_month = _recent_best(shadow[c.r_res] * c.r_hours[:, None], EXPLAIN_LOOKBACK_MONTHS) if len(c.r_res) else empty
    mat_val, mat_month = _recent_best(rent[c.b_mat] * c.b_qty[:, None], EXPLAIN_LOOKBACK_MONTHS) if len(c.b_mat) else empty
    cv, cl, cm = _best_per_sku(n, c.r_sku, cap_val, cap_month, np.repeat(c.r_res[:, None], T, axis=1))
    mv, ml, mm = _best_per_sku(n, c.b_sku, mat_val, mat_month, np.repeat(c.b_mat[:, None], T, axis=1))
    # The latest cut SKU detail made for this SKU up to the month.
    last_cut = np.maximum.accumulate(np.where(detail["limit_kind"] > 0, np.arange(T)[None, :], -1), axis=1)
    cut_kind = np.where(last_cut >= 0, np.take_along_axis(detail["limit_kind"], np.maximum(last_cut, 0), axis=1), 0)
    cut_ref = np.take_along_axis(detail["limit_ref"], np.maximum(last_cut, 0), axis=1)
    cv, cl, cm, mv, ml, mm, ck, cr, ct = (a[sku_i, month_i] for a in (cv, cl, cm, mv, ml, mm, cut_kind, cut_ref, last_cut))
    use_cap = (cv >= mv) & (cv > 1e-9)
    use_mat = ~use_cap & (mv > 1e-9)
    by_dual = use_cap | use_mat
    cut_cap = ~by_dual & (ck == 1)
    cut_mat = ~by_dual & (ck == 2)
    item = it.item_of_sku[sku_i]
    item_gap = (S[item, month_i] > QTY_TOL) | (U[item, month_i] > QTY_TOL)
    kind = np.select(
        [use_cap | cut_cap, use_mat | cut_mat, item_gap | (settings.planning_level == "sku")], ["capacity", "material", "cost"], "mix"
    )
    res_names = np.append(c.resources.astype(object), None)  # index -1 reads None
    mat_names = np.append(c.materials.astype(object), None)
    constraint = np.select(
        [use_cap, use_mat, cut_cap, cut_mat], [res_names[cl], mat_names[ml], res_names[np.where(ck == 1, cr, -1)], mat_names[np.where(ck == 2, cr, -1)]], None
    )
    cmonth = np.select([use_cap, use_mat, cut_cap | cut_mat], [cm, mm, ct], -1)
    price = np.select([use_cap, use_mat], [shadow[np.maximum(cl, 0), np.maximum(cm, 0)] if len(c.resources) else 0.0,
                                           rent[np.maximum(ml, 0), np.maximum(mm, 0)] if len(c.materials) else 0.0], np.nan)
    value = np.select([use_cap, use_mat], [cv, mv], np.nan)
    evidence = np.select([by_dual, cut_cap | cut_mat], ["dual", "sku_detail"], "none")
    short, gap = sku_short[sku_i, month_i], below[sku_i, month_i]
    months = pl.Series(c.months, dtype=pl.Date)
    frame = pl.DataFrame({
        "sku": c.skus[sku_i].astype(str), "family": c.family[sku_i].astype(str),
        "month": months.gather(month_i), "demand": c.D[sku_i, month_i],
        "exception": np.where(short > QTY_TOL, "shortfall", "below_target"),
        "shortfall": short, "below_target": gap, "constraint_kind": kind,
        "constraint": pl.Series(list(constraint), dtype=pl.Utf8),
        "constraint_month": months.gather(np.maximum(cmonth, 0)), "_has": cmonth >= 0,
        "shadow_price": price, "value_per_unit": value, "evidence": evidence,
    }).with_columns(
        pl.when(pl.col("_has")).then(pl.col("constraint_month")).alias("constraint_month"),
        pl.col("shadow_price", "value_per_unit").fill_nan(None),  # unknown, not a number
    )
    when = pl.col("constraint_month").dt.strftime("%Y-%m")
    what = (
        pl.when((pl.col("evidence") == "dual") & (pl.col("constraint_kind") == "capacity")).then(
            pl.format("{} capacity is full in {}: one more hour is worth {}, {} per unit of this SKU",
                      "constraint", when, pl.col("shadow_price").round(2), pl.col("value_per_unit").round(2)))
        .when(pl.col("evidence") == "dual").then(
            pl.format("material {} is scarce in {} (lead time or supplier capacity): one more unit is worth {} above its cost, {} per unit of this SKU",
                      "constraint", when, pl.col("shadow_price").round(2), pl.col("value_per_unit").round(2)))
        .when(pl.col("evidence") == "sku_detail").then(
            pl.format("{} ran out for this SKU in {}: its own mix needed more than the family plan assumed, and it could not be bought or moved in time",
                      "constraint", when))
        # No constraint identified: no explanation (the checkpoint counts these as unexplained);
        # constraint_kind still says 'cost' (the penalties allow it) or 'mix' (family covered).
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )
    return frame.with_columns(what.alias("explanation"), pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario")).select(list(schema))


def _bottlenecks(c, load, shadow, rent, requirement, cycle, scenario) -> pl.DataFrame:
    """Resources and materials ranked by what their scarcity costs the plan (dual x usage)."""
    res = pl.DataFrame({
        "kind": "capacity", "constraint": c.resources.astype(str), "plant": c.plant.astype(str),
        "binding_months": (shadow > 0).sum(axis=1), "max_shadow_price": shadow.max(axis=1, initial=0.0),
        "shadow_value": (shadow * load).sum(axis=1), "usage": load.sum(axis=1),
        "peak_utilization": np.divide(load, c.cap, out=np.zeros_like(load), where=c.cap > 0).max(axis=1, initial=0.0),
    }, schema_overrides={"plant": pl.Utf8})
    mat = pl.DataFrame({
        "kind": "material", "constraint": c.materials.astype(str), "plant": [None] * len(c.materials),
        "binding_months": (rent > 0).sum(axis=1), "max_shadow_price": rent.max(axis=1, initial=0.0),
        "shadow_value": (rent * requirement).sum(axis=1), "usage": requirement.sum(axis=1),
        "peak_utilization": np.full(len(c.materials), np.nan),
    }, schema=res.schema)
    return (
        pl.concat([res, mat])
        .filter(pl.col("binding_months") > 0)
        .sort("shadow_value", descending=True)
        .with_row_index("rank", offset=1)
        .select(pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario"), pl.col("rank").cast(pl.Int64), pl.exclude("rank"))
    )


def _empty_result(cycle, scenario, settings, status, lp_size, timings, notes) -> SupplyResult:
    frames = {name: pl.DataFrame(schema=schema) for name, schema in OUTPUT_SCHEMAS.items()}
    return SupplyResult(
        cycle=cycle, scenario=scenario, planning_level=settings.planning_level, shortfall_mode=settings.shortfall_mode,
        status=status, optimal=False, objective=None, lp_size=lp_size, timings=timings,
        notes=[*notes, f"no plan: solver status {status}"], cost_breakdown={}, **frames,
    )


# --------------------------------------------------------------------------------------------
# Cost of a plan on SKU detail
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Independent feasibility check and service
# --------------------------------------------------------------------------------------------


def check_plan_feasibility(result: SupplyResult, inputs: SupplyInputs, tolerance: float = 1e-4) -> list[str]:
    """Violations of the plan's physical rules, read from the output tables and inputs only.

    Deliberately no solver and no LP arrays: if the LP were built wrong, or a later step
    altered a table, the plan's own rows would have to show it. Checks: load <= capacity +
    overtime and overtime within what is available; production plan, capacity plan and SKU plan
    agree; per SKU, opening stock + open supply + production - delivered = ending stock (with
    backlog carried in backorder mode, or lost units <= demand in lost-sales mode) and demand as
    given; per material, stock balance with receipts and requirement, stock never negative,
    new receipts only from the lead time on and within supplier capacity, orders placed lead
    time before receipt. `inputs` must be the scenario's inputs. Returns messages, empty if fine.
    """
    inputs = inputs.typed()
    tol = tolerance
    out: list[str] = []

    def excess(expr_over: pl.Expr, scale: pl.Expr) -> pl.Expr:
        return expr_over > tol * pl.max_horizontal(pl.lit(1.0), scale.abs())

    def report(frame: pl.DataFrame, template: str, limit: int = 20) -> None:
        for row in frame.head(limit).iter_rows(named=True):
            out.append(template.format(**{k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()}))
        if frame.height > limit:
            out.append(f"... and {frame.height - limit} more like the above")

    cap = result.capacity_plan.join(
        inputs.capacity_calendar().rename({"capacity_hours": "cap_in", "overtime_hours": "ot_in"}), on=["resource", "month"], how="left"
    )
    report(cap.filter(pl.col("cap_in").is_null()), "capacity: resource {resource} is not in the inputs")
    report(cap.filter(excess(pl.col("load_hours") - pl.col("cap_in") - pl.col("ot_in"), pl.col("cap_in"))),
           "capacity: {resource} {month}: load {load_hours} h exceeds capacity {cap_in} + overtime {ot_in}")
    # Overtime is load above regular hours, so its precision is that of the load: scale by both.
    report(cap.filter(excess(pl.col("overtime_hours") - pl.col("ot_in"), pl.col("cap_in") + pl.col("ot_in"))),
           "capacity: {resource} {month}: overtime {overtime_hours} h exceeds the {ot_in} h available")
    report(cap.filter(pl.col("load_hours") < -tol), "capacity: {resource} {month}: negative load {load_hours}")

    pp = result.production_plan
    loads = pp.filter(pl.col("resource").is_not_null()).group_by("resource", "month").agg(pl.col("load_hours").sum().alias("pp_load"))
    both = cap.join(loads, on=["resource", "month"], how="full", coalesce=True).with_columns(pl.col("pp_load", "load_hours").fill_null(0))
    report(both.filter(excess((pl.col("pp_load") - pl.col("load_hours")).abs(), pl.col("load_hours"))),
           "capacity: {resource} {month}: capacity plan load {load_hours} h differs from production plan {pp_load} h")
    report(pp.filter(pl.col("production") < -tol), "production: {item} on {resource} {month}: negative production {production}")

    sp_ = result.supply_plan.sort("sku", "month")
    fam = sp_.group_by("family", "month").agg(pl.col("production").sum().alias("sku_total")).join(
        pp.group_by("family", "month").agg(pl.col("production").sum().alias("family_total")), on=["family", "month"], how="full", coalesce=True
    ).with_columns(pl.col("sku_total", "family_total").fill_null(0))
    report(fam.filter(excess((pl.col("sku_total") - pl.col("family_total")).abs(), pl.col("family_total"))),
           "production: family {family} {month}: SKU production {sku_total} does not add up to the family plan {family_total}")

    opening = inputs.inventory.group_by("sku").agg(pl.col("on_hand").sum())
    receipts = inputs.open_supply.filter(pl.col("item_type") == "product").group_by("item", "month").agg(pl.col("quantity").sum().alias("os_in")).rename({"item": "sku"})
    demand = inputs.demand.select("sku", "month", pl.col("quantity").alias("demand_in"))
    bal = (
        sp_.join(opening, on="sku", how="left").join(receipts, on=["sku", "month"], how="left").join(demand, on=["sku", "month"], how="left")
        .with_columns(pl.col("on_hand", "os_in").fill_null(0))
        .with_columns(
            pl.col("ending_inventory").shift(1).over("sku").fill_null(pl.col("on_hand")).alias("prev_inv"),
            pl.col("shortfall").shift(1).over("sku").fill_null(0).alias("prev_short"),
        )
    )
    if result.shortfall_mode == "backorder":
        gap = (pl.col("prev_inv") - pl.col("prev_short") + pl.col("os_in") + pl.col("production") - pl.col("demand")
               - (pl.col("ending_inventory") - pl.col("shortfall")))
    else:
        gap = pl.col("prev_inv") + pl.col("os_in") + pl.col("production") - (pl.col("demand") - pl.col("shortfall")) - pl.col("ending_inventory")
        report(bal.filter(excess(pl.col("shortfall") - pl.col("demand"), pl.col("demand"))),
               "inventory: {sku} {month}: lost sales {shortfall} exceed demand {demand}")
    bal = bal.with_columns(gap.alias("gap"))
    report(bal.filter(excess(pl.col("gap").abs(), pl.col("demand") + pl.col("prev_inv"))),
           "inventory: {sku} {month}: balance off by {gap} (opening {prev_inv} + open supply {os_in} + production {production} - demand {demand} vs ending {ending_inventory}, shortfall {shortfall})")
    report(bal.filter(excess((pl.col("demand") - pl.col("demand_in").fill_null(0)).abs(), pl.col("demand"))),
           "inventory: {sku} {month}: plan demand {demand} differs from the consensus {demand_in}")
    report(bal.filter((pl.col("production") < -tol) | (pl.col("ending_inventory") < -tol) | (pl.col("shortfall") < -tol)),
           "inventory: {sku} {month}: negative quantity (production {production}, ending {ending_inventory}, shortfall {shortfall})")

    mp = result.material_plan.sort("material", "month").join(
        inputs.materials.select("material", "lead_time_months", "supplier_capacity", pl.col("on_hand").alias("m_on_hand")), on="material", how="left"
    )
    m_os = inputs.open_supply.filter(pl.col("item_type") == "material").group_by("item", "month").agg(pl.col("quantity").sum().alias("os_in")).rename({"item": "material"})
    mp = (
        mp.join(m_os, on=["material", "month"], how="left")
        .with_columns(pl.col("os_in", "m_on_hand").fill_null(0), pl.int_range(pl.len()).over("material").alias("t"))
        .with_columns(
            pl.col("ending_inventory").shift(1).over("material").fill_null(pl.col("m_on_hand")).alias("prev_inv"),
            pl.col("purchase").shift(pl.col("lead_time_months").first()).over("material").alias("ordered_then"),
        )
    )
    report(mp.filter(pl.col("lead_time_months").is_null()), "materials: {material} is not in the inputs")
    report(mp.filter(excess((pl.col("prev_inv") + pl.col("purchase_receipts") + pl.col("os_in") - pl.col("requirement") - pl.col("ending_inventory")).abs(),
                            pl.col("requirement") + pl.col("prev_inv"))),
           "materials: {material} {month}: stock balance off (opening {prev_inv} + receipts {purchase_receipts} + open supply {os_in} - requirement {requirement} vs ending {ending_inventory})")
    report(mp.filter(pl.col("ending_inventory") < -tol), "materials: {material} {month}: negative stock {ending_inventory}")
    report(mp.filter((pl.col("t") < pl.col("lead_time_months")) & (pl.col("purchase_receipts") > tol)),
           "materials: {material} {month}: {purchase_receipts} units received from a purchase that had to be ordered before the cycle (lead time {lead_time_months} months)")
    report(mp.filter(excess(pl.col("purchase_receipts") + pl.col("os_in") - pl.max_horizontal("supplier_capacity", "os_in"), pl.col("supplier_capacity"))),
           "materials: {material} {month}: receipts {purchase_receipts} + open supply {os_in} exceed supplier capacity {supplier_capacity}")
    report(mp.filter((pl.col("t") >= pl.col("lead_time_months")) & excess((pl.col("ordered_then").fill_null(0) - pl.col("purchase_receipts")).abs(), pl.col("purchase_receipts"))),
           "materials: {material} {month}: receipts {purchase_receipts} do not match the order placed {lead_time_months} months earlier ({ordered_then})")
    report(mp.filter((pl.col("purchase") < -tol) | (pl.col("purchase_receipts") < -tol)), "materials: {material} {month}: negative purchase")

    # Every level: the material requirement is the BOM explosion of the SKU plan.
    need = sp_.join(inputs.bom, on="sku").group_by("material", "month").agg((pl.col("production") * pl.col("qty_per")).sum().alias("bom_need"))
    chk = result.material_plan.join(need, on=["material", "month"], how="left").with_columns(pl.col("bom_need").fill_null(0))
    report(chk.filter(excess((pl.col("bom_need") - pl.col("requirement")).abs(), pl.col("requirement"))),
           "materials: {material} {month}: requirement {requirement} differs from the BOM explosion of the SKU plan {bom_need}")
    return out


def late_units(supply_plan: pl.DataFrame, shortfall_mode: str) -> pl.Expr:
    """Units of a month's demand not delivered in that month.

    Lost sales are the shortfall itself; with backorders the month-end backlog holds the newest
    demand first (oldest orders ship first), so min(demand, backlog) of this month's demand is late.
    """
    return pl.col("shortfall") if shortfall_mode == "lost_sales" else pl.min_horizontal("demand", "shortfall")


def fill_rate(supply_plan: pl.DataFrame, shortfall_mode: str, by: list[str] | None = None) -> float | pl.DataFrame:
    """Volume fill rate, 1 - late units / demand: overall (a float) or per `by` columns (a frame)."""
    agg = [pl.col("demand").sum().alias("demand"), late_units(supply_plan, shortfall_mode).sum().alias("late_units")]
    rate = pl.when(pl.col("demand") > 0).then(1 - pl.col("late_units") / pl.col("demand")).otherwise(1.0).alias("fill_rate")
    if by:
        return supply_plan.group_by(by).agg(agg).with_columns(rate).sort(by)
    return float(supply_plan.select(agg).select(rate).item())


# --------------------------------------------------------------------------------------------
# The whole review: baseline and scenarios
# --------------------------------------------------------------------------------------------


@dataclass
class SupplyReview:
    """Every scenario of one cycle side by side: frames stacked with a `scenario` column."""

    cycle: str
    inventory_targets: pl.DataFrame
    results: dict[str, SupplyResult]
    scenario_summary: pl.DataFrame
    violations: dict[str, list[str]]

    def frame(self, name: str) -> pl.DataFrame:
        """One output table over all scenarios, e.g. `review.frame('capacity_plan')`."""
        return pl.concat([getattr(r, name) for r in self.results.values()], how="diagonal_relaxed")


def run_supply_review(
    inputs: SupplyInputs,
    settings: SupplySettings,
    scenarios: Mapping[str, Scenario] | None = None,
    cycle: str | None = None,
    check: bool = True,
) -> SupplyReview:
    """Targets once, then the baseline and each scenario solved on the same cycle's data.

    Inventory targets are computed once from the consensus and kept for every scenario: the
    policy is the same, only the scenario's overlays differ. Each plan is checked by
    `check_plan_feasibility` (unless `check=False`); a scenario that is not optimal is reported
    in the summary, not raised, so that one broken what-if never hides the baseline.
    """
    inputs = inputs.typed()
    cycle = cycle_label(cycle or inputs.months[0])
    scenarios = dict(scenarios or {BASELINE: Scenario(BASELINE)})
    scenarios.setdefault(BASELINE, Scenario(BASELINE))
    order = [BASELINE] + [s for s in scenarios if s != BASELINE]
    targets = compute_inventory_targets(inputs.demand, inputs.segmentation, settings, cycle)
    results, violations = {}, {}
    for name in order:
        scenario_inputs = apply_scenario(inputs, scenarios[name]) if name != BASELINE else inputs
        result = plan_supply(scenario_inputs, settings, name, cycle, targets)
        results[name] = result
        if check:
            started = time.perf_counter()
            violations[name] = check_plan_feasibility(result, scenario_inputs) if result.objective is not None else [f"no plan: {result.status}"]
            result.timings["check"] = time.perf_counter() - started
    return SupplyReview(cycle, targets, results, scenario_summary(results.values(), violations), violations)


def scenario_summary(results: Any, violations: Mapping[str, list[str]] | None = None) -> pl.DataFrame:
    """One row per scenario: solver status, cost, service, overtime and the top bottleneck."""
    rows = []
    for r in results:
        plan = r.supply_plan
        top = r.bottlenecks.head(1)
        rows.append({
            "cycle": r.cycle, "scenario": r.scenario, "status": r.status, "optimal": r.optimal,
            "feasibility_violations": len((violations or {}).get(r.scenario, [])),
            "objective": r.objective, **{f"cost_{k}": v for k, v in r.cost_breakdown.items()},
            "demand": float(plan["demand"].sum()),
            "late_units": float(plan.select(late_units(plan, r.shortfall_mode).sum()).item() or 0.0),
            "fill_rate": fill_rate(plan, r.shortfall_mode) if plan.height else None,
            "below_target_sku_months": int(plan.filter(pl.col("ending_inventory") < pl.col("target_inventory") - QTY_TOL).height),
            "overtime_hours": float(r.capacity_plan["overtime_hours"].sum()),
            "top_bottleneck": top["constraint"][0] if top.height else None,
            "solve_seconds": r.timings.get("solve"), "total_seconds": r.timings.get("total"),
        })
    return pl.DataFrame(rows, infer_schema_length=None)


# --------------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------------


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def capacity_chart(capacity_plan: pl.DataFrame, bottlenecks: pl.DataFrame, top_n: int = 4, scenario: str = BASELINE) -> bytes:
    """Load against capacity and capacity + overtime for the top bottleneck resources (PNG)."""
    # A bare Figure renders with Agg and touches no pyplot global state.
    from matplotlib.figure import Figure

    plan = capacity_plan.filter(pl.col("scenario") == scenario)
    ranked = bottlenecks.filter((pl.col("scenario") == scenario) & (pl.col("kind") == "capacity"))["constraint"].to_list()
    busiest = plan.group_by("resource").agg(pl.col("utilization").max()).sort("utilization", descending=True)["resource"].to_list()
    chosen = list(dict.fromkeys(ranked + busiest))[:top_n]
    fig = Figure(figsize=(10, 2.6 * max(len(chosen), 1)), layout="constrained")
    for k, resource in enumerate(chosen, start=1):
        ax = fig.add_subplot(len(chosen), 1, k)
        rows = plan.filter(pl.col("resource") == resource).sort("month")
        months = rows["month"].to_list()
        ax.bar(months, rows["load_hours"].to_list(), width=20, color="#4C78A8", label="load")
        ax.step(months, rows["capacity_hours"].to_list(), where="mid", color="black", label="capacity")
        ax.step(months, (rows["capacity_hours"] + rows["overtime_available"]).to_list(), where="mid", color="#E45756", linestyle="--", label="capacity + overtime")
        ax.set_title(f"{resource}: load vs capacity ({scenario})", fontsize=10)
        ax.set_ylabel("hours")
        ax.legend(fontsize=8, loc="upper right")
    if not chosen:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no resources", ha="center")
    return _png(fig)


def inventory_chart(supply_plan: pl.DataFrame, top_n: int = 4, scenario: str = BASELINE) -> bytes:
    """Projected inventory against target, with shortfall, for the families most at risk (PNG)."""
    from matplotlib.figure import Figure

    plan = supply_plan.filter(pl.col("scenario") == scenario)
    fam = plan.group_by("family", "month").agg(pl.col("ending_inventory", "target_inventory", "shortfall", "demand").sum())
    risk = fam.group_by("family").agg(
        ((pl.col("target_inventory") - pl.col("ending_inventory")).clip(lower_bound=0) + pl.col("shortfall")).sum().alias("risk"),
        pl.col("demand").sum(),
    ).sort("risk", "demand", descending=True)
    chosen = risk["family"].head(top_n).to_list()
    fig = Figure(figsize=(10, 2.6 * max(len(chosen), 1)), layout="constrained")
    for k, family in enumerate(chosen, start=1):
        ax = fig.add_subplot(len(chosen), 1, k)
        rows = fam.filter(pl.col("family") == family).sort("month")
        months = rows["month"].to_list()
        ax.plot(months, rows["ending_inventory"].to_list(), color="#4C78A8", label="projected inventory")
        ax.plot(months, rows["target_inventory"].to_list(), color="black", linestyle="--", label="target")
        ax.bar(months, rows["shortfall"].to_list(), width=20, color="#E45756", alpha=0.6, label="shortfall")
        ax.set_title(f"{family}: inventory vs target ({scenario})", fontsize=10)
        ax.set_ylabel("units")
        ax.legend(fontsize=8, loc="upper right")
    if not chosen:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no families", ha="center")
    return _png(fig)


# --------------------------------------------------------------------------------------------
# The checkpoint
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplyGates:
    """Thresholds of the supply review's checkpoint (models/gates.yaml, `supply_review`)."""

    fill_rate_target: float = 0.95


def load_supply_gates(path: str | Path) -> SupplyGates:
    raw = (yaml.safe_load(Path(path).read_text()) or {}).get("supply_review", {})
    return SupplyGates(fill_rate_target=float(raw.get("fill_rate_target", 0.95)))


def supply_gate_findings(review: SupplyReview, gates: SupplyGates) -> dict[str, Any]:
    """The supply checkpoint's verdict: every scenario optimal, no violation found by the
    independent feasibility check, and the baseline's fill rate at target, or else every
    baseline SKU-month that misses demand explained by a binding constraint.

    A miss is acceptable when it is explained: the executive meeting decides what to do about
    a bottleneck; a plan that breaks its own physics, or a miss nobody can explain, is not.
    """
    problems = []
    not_optimal = [name for name, r in review.results.items() if not r.optimal]
    if not_optimal:
        problems.append(f"not solved to optimality: {', '.join(not_optimal)}")
    violations = [f"{name}: {v}" for name, vs in review.violations.items() for v in vs]
    if violations:
        problems.append(f"{len(violations)} feasibility violations (first: {violations[0]})")
    baseline = review.results[BASELINE]
    plan = baseline.supply_plan
    rate = fill_rate(plan, baseline.shortfall_mode) if plan.height else 1.0
    misses = plan.filter(late_units(plan, baseline.shortfall_mode) > QTY_TOL).select("sku", "month")
    explained = baseline.supply_exceptions.filter(
        (pl.col("exception") == "shortfall") & pl.col("explanation").is_not_null()
    ).select("sku", "month")
    unexplained = misses.join(explained, on=["sku", "month"], how="anti")
    if rate < gates.fill_rate_target and unexplained.height:
        problems.append(
            f"baseline fill rate {rate:.3f} is below the target {gates.fill_rate_target:.3f} and "
            f"{unexplained.height} SKU-months miss demand without an explanation"
        )
    if problems:
        description = "; ".join(problems)
    elif rate < gates.fill_rate_target:
        description = (f"baseline fill rate {rate:.3f} below target {gates.fill_rate_target:.3f}; "
                       f"all {misses.height} missed SKU-months are explained in planning.supply_exceptions")
    else:
        description = f"all {len(review.results)} scenarios optimal and feasible; baseline fill rate {rate:.3f}"
    return {"passed": not problems, "description": description, "fill_rate": rate, "unexplained": unexplained, "violations": violations}
