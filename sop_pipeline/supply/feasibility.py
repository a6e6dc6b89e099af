"""The supply checkpoint: the plan's physical rules re-checked from its tables, without the solver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from sop_pipeline.rules import late_units
from sop_pipeline.settings.gates import SupplyGates
from sop_pipeline.supply.common import QTY_TOL
from sop_pipeline.supply.inputs import SupplyInputs


@dataclass(frozen=True)
class PlanTables:
    """One scenario's supply tables as the checkpoint reads them: from the warehouse (the
    checkpoint re-checks what was stored) or from a fresh result."""

    supply_plan: pl.DataFrame
    capacity_plan: pl.DataFrame
    material_plan: pl.DataFrame
    production_plan: pl.DataFrame
    shortfall_mode: str


class _Findings:
    """Collects violation messages, at most `limit` per rule."""

    def __init__(self, tolerance: float):
        self.tol = tolerance
        self.messages: list[str] = []

    def excess(self, expr_over: pl.Expr, scale: pl.Expr) -> pl.Expr:
        return expr_over > self.tol * pl.max_horizontal(pl.lit(1.0), scale.abs())

    def report(self, frame: pl.DataFrame, template: str, limit: int = 20) -> None:
        for row in frame.head(limit).iter_rows(named=True):
            self.messages.append(template.format(**{k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()}))
        if frame.height > limit:
            self.messages.append(f"... and {frame.height - limit} more like the above")


def check_plan_feasibility(plan: PlanTables, inputs: SupplyInputs, tolerance: float = 1e-4) -> list[str]:
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
    found = _Findings(tolerance)
    cap = _capacity_rules(plan, inputs, found)
    _production_rules(plan, cap, found)
    _inventory_rules(plan, inputs, found)
    _material_rules(plan, inputs, found)
    return found.messages


def _capacity_rules(plan: PlanTables, inputs: SupplyInputs, found: _Findings) -> pl.DataFrame:
    """Load within capacity + overtime, overtime within what is available."""
    tol, excess, report = found.tol, found.excess, found.report
    cap = plan.capacity_plan.join(
        inputs.capacity_calendar().rename({"capacity_hours": "cap_in", "overtime_hours": "ot_in"}), on=["resource", "month"], how="left"
    )
    report(cap.filter(pl.col("cap_in").is_null()), "capacity: resource {resource} is not in the inputs")
    report(
        cap.filter(excess(pl.col("load_hours") - pl.col("cap_in") - pl.col("ot_in"), pl.col("cap_in"))),
        "capacity: {resource} {month}: load {load_hours} h exceeds capacity {cap_in} + overtime {ot_in}",
    )
    # Overtime is load above regular hours, so its precision is that of the load: scale by both.
    report(
        cap.filter(excess(pl.col("overtime_hours") - pl.col("ot_in"), pl.col("cap_in") + pl.col("ot_in"))),
        "capacity: {resource} {month}: overtime {overtime_hours} h exceeds the {ot_in} h available",
    )
    report(cap.filter(pl.col("load_hours") < -tol), "capacity: {resource} {month}: negative load {load_hours}")

    return cap


def _production_rules(plan: PlanTables, cap: pl.DataFrame, found: _Findings) -> None:
    """Production plan, capacity plan and SKU plan agree with each other."""
    tol, excess, report = found.tol, found.excess, found.report
    pp = plan.production_plan
    loads = pp.filter(pl.col("resource").is_not_null()).group_by("resource", "month").agg(pl.col("load_hours").sum().alias("pp_load"))
    both = cap.join(loads, on=["resource", "month"], how="full", coalesce=True).with_columns(pl.col("pp_load", "load_hours").fill_null(0))
    report(
        both.filter(excess((pl.col("pp_load") - pl.col("load_hours")).abs(), pl.col("load_hours"))),
        "capacity: {resource} {month}: capacity plan load {load_hours} h differs from production plan {pp_load} h",
    )
    report(pp.filter(pl.col("production") < -tol), "production: {item} on {resource} {month}: negative production {production}")

    sp_ = plan.supply_plan.sort("sku", "month")
    fam = (
        sp_.group_by("family", "month")
        .agg(pl.col("production").sum().alias("sku_total"))
        .join(
            pp.group_by("family", "month").agg(pl.col("production").sum().alias("family_total")),
            on=["family", "month"],
            how="full",
            coalesce=True,
        )
        .with_columns(pl.col("sku_total", "family_total").fill_null(0))
    )
    report(
        fam.filter(excess((pl.col("sku_total") - pl.col("family_total")).abs(), pl.col("family_total"))),
        "production: family {family} {month}: SKU production {sku_total} does not add up to the family plan {family_total}",
    )


def _inventory_rules(plan: PlanTables, inputs: SupplyInputs, found: _Findings) -> None:
    """Per SKU: stock balance month by month, demand as given, nothing negative."""
    tol, excess, report = found.tol, found.excess, found.report
    sp_ = plan.supply_plan.sort("sku", "month")
    opening = inputs.inventory.group_by("sku").agg(pl.col("on_hand").sum())
    receipts = (
        inputs.open_supply.filter(pl.col("item_type") == "product")
        .group_by("item", "month")
        .agg(pl.col("quantity").sum().alias("os_in"))
        .rename({"item": "sku"})
    )
    demand = inputs.demand.select("sku", "month", pl.col("quantity").alias("demand_in"))
    bal = (
        sp_.join(opening, on="sku", how="left")
        .join(receipts, on=["sku", "month"], how="left")
        .join(demand, on=["sku", "month"], how="left")
        .with_columns(pl.col("on_hand", "os_in").fill_null(0))
        .with_columns(
            pl.col("ending_inventory").shift(1).over("sku").fill_null(pl.col("on_hand")).alias("prev_inv"),
            pl.col("shortfall").shift(1).over("sku").fill_null(0).alias("prev_short"),
        )
    )
    if plan.shortfall_mode == "backorder":
        gap = (
            pl.col("prev_inv")
            - pl.col("prev_short")
            + pl.col("os_in")
            + pl.col("production")
            - pl.col("demand")
            - (pl.col("ending_inventory") - pl.col("shortfall"))
        )
    else:
        gap = (
            pl.col("prev_inv")
            + pl.col("os_in")
            + pl.col("production")
            - (pl.col("demand") - pl.col("shortfall"))
            - pl.col("ending_inventory")
        )
        report(
            bal.filter(excess(pl.col("shortfall") - pl.col("demand"), pl.col("demand"))),
            "inventory: {sku} {month}: lost sales {shortfall} exceed demand {demand}",
        )
    bal = bal.with_columns(gap.alias("gap"))
    report(
        bal.filter(excess(pl.col("gap").abs(), pl.col("demand") + pl.col("prev_inv"))),
        (
            "inventory: {sku} {month}: balance off by {gap} (opening {prev_inv} + open supply {os_in} + production "
            "{production} - demand {demand} vs ending {ending_inventory}, shortfall {shortfall})"
        ),
    )
    report(
        bal.filter(excess((pl.col("demand") - pl.col("demand_in").fill_null(0)).abs(), pl.col("demand"))),
        "inventory: {sku} {month}: plan demand {demand} differs from the consensus {demand_in}",
    )
    report(
        bal.filter((pl.col("production") < -tol) | (pl.col("ending_inventory") < -tol) | (pl.col("shortfall") < -tol)),
        "inventory: {sku} {month}: negative quantity (production {production}, ending {ending_inventory}, shortfall {shortfall})",
    )


def _material_rules(plan: PlanTables, inputs: SupplyInputs, found: _Findings) -> None:
    """Per material: stock balance, lead times, supplier capacity, the BOM explosion."""
    tol, excess, report = found.tol, found.excess, found.report
    mp = plan.material_plan.sort("material", "month").join(
        inputs.materials.select("material", "lead_time_months", "supplier_capacity", pl.col("on_hand").alias("m_on_hand")),
        on="material",
        how="left",
    )
    m_os = (
        inputs.open_supply.filter(pl.col("item_type") == "material")
        .group_by("item", "month")
        .agg(pl.col("quantity").sum().alias("os_in"))
        .rename({"item": "material"})
    )
    mp = (
        mp.join(m_os, on=["material", "month"], how="left")
        .with_columns(pl.col("os_in", "m_on_hand").fill_null(0), pl.int_range(pl.len()).over("material").alias("t"))
        .with_columns(
            pl.col("ending_inventory").shift(1).over("material").fill_null(pl.col("m_on_hand")).alias("prev_inv"),
            pl.col("purchase").shift(pl.col("lead_time_months").first()).over("material").alias("ordered_then"),
        )
    )
    report(mp.filter(pl.col("lead_time_months").is_null()), "materials: {material} is not in the inputs")
    report(
        mp.filter(
            excess(
                (
                    pl.col("prev_inv") + pl.col("purchase_receipts") + pl.col("os_in") - pl.col("requirement") - pl.col("ending_inventory")
                ).abs(),
                pl.col("requirement") + pl.col("prev_inv"),
            )
        ),
        (
            "materials: {material} {month}: stock balance off (opening {prev_inv} + receipts "
            "{purchase_receipts} + open supply {os_in} - requirement {requirement} vs ending {ending_inventory})"
        ),
    )
    report(mp.filter(pl.col("ending_inventory") < -tol), "materials: {material} {month}: negative stock {ending_inventory}")
    report(
        mp.filter((pl.col("t") < pl.col("lead_time_months")) & (pl.col("purchase_receipts") > tol)),
        (
            "materials: {material} {month}: {purchase_receipts} units received from a purchase that "
            "had to be ordered before the cycle (lead time {lead_time_months} months)"
        ),
    )
    report(
        mp.filter(
            excess(
                pl.col("purchase_receipts") + pl.col("os_in") - pl.max_horizontal("supplier_capacity", "os_in"), pl.col("supplier_capacity")
            )
        ),
        "materials: {material} {month}: receipts {purchase_receipts} + open supply {os_in} exceed supplier capacity {supplier_capacity}",
    )
    report(
        mp.filter(
            (pl.col("t") >= pl.col("lead_time_months"))
            & excess((pl.col("ordered_then").fill_null(0) - pl.col("purchase_receipts")).abs(), pl.col("purchase_receipts"))
        ),
        (
            "materials: {material} {month}: receipts {purchase_receipts} do not match the "
            "order placed {lead_time_months} months earlier ({ordered_then})"
        ),
    )
    report(
        mp.filter((pl.col("purchase") < -tol) | (pl.col("purchase_receipts") < -tol)), "materials: {material} {month}: negative purchase"
    )

    # Every level: the material requirement is the BOM explosion of the SKU plan.
    need = (
        plan.supply_plan.join(inputs.bom, on="sku")
        .group_by("material", "month")
        .agg((pl.col("production") * pl.col("qty_per")).sum().alias("bom_need"))
    )
    chk = plan.material_plan.join(need, on=["material", "month"], how="left").with_columns(pl.col("bom_need").fill_null(0))
    report(
        chk.filter(excess((pl.col("bom_need") - pl.col("requirement")).abs(), pl.col("requirement"))),
        "materials: {material} {month}: requirement {requirement} differs from the BOM explosion of the SKU plan {bom_need}",
    )


def fill_rate(supply_plan: pl.DataFrame, shortfall_mode: str, by: list[str] | None = None) -> float | pl.DataFrame:
    """Volume fill rate, 1 - late units / demand: overall (a float) or per `by` columns (a frame)."""
    agg = [pl.col("demand").sum().alias("demand"), late_units(shortfall_mode).sum().alias("late_units")]
    rate = pl.when(pl.col("demand") > 0).then(1 - pl.col("late_units") / pl.col("demand")).otherwise(1.0).alias("fill_rate")
    if by:
        return supply_plan.group_by(by).agg(agg).with_columns(rate).sort(by)
    return float(supply_plan.select(agg).select(rate).item())


def _listed(skus: list[str], limit: int = 8) -> str:
    shown = ", ".join(skus[:limit])
    return f"{len(skus)} SKU{'s' if len(skus) != 1 else ''} ({shown}{', ...' if len(skus) > limit else ''})"


def stranded_supply(inputs: SupplyInputs) -> list[str]:
    """What makes a company unplannable, named: a resource with no hours at all that is the only
    route of SKUs with demand, and a material with no supplier capacity, no stock and no open
    order that SKUs with demand need. One sentence each, naming the SKUs it strands; the
    solver only sees a plan that misses demand."""
    wanted = inputs.demand.filter(pl.col("quantity") > QTY_TOL)["sku"].unique()
    lines = []
    if inputs.resources is not None and inputs.routings is not None and inputs.routings.height:
        dead = inputs.resources.filter(pl.col("capacity_hours") + pl.col("overtime_hours") <= 0)["resource"]
        routes = inputs.routings.filter(pl.col("sku").is_in(wanted))
        only_dead = routes.group_by("sku").agg(pl.col("resource").is_in(dead).all().alias("stuck")).filter("stuck")["sku"]
        for resource in dead.sort().to_list():
            skus = routes.filter((pl.col("resource") == resource) & pl.col("sku").is_in(only_dead))["sku"].unique().sort().to_list()
            if skus:
                lines.append(f"resource {resource} has no capacity (0 h regular, 0 h overtime) and is the only route of {_listed(skus)}")
    if inputs.materials is not None and inputs.bom is not None and inputs.bom.height:
        ordered = pl.Series([], dtype=pl.Utf8)
        if inputs.open_supply is not None:
            ordered = inputs.open_supply.filter((pl.col("item_type") == "material") & (pl.col("quantity") > 0))["item"]
        dry = inputs.materials.filter((pl.col("supplier_capacity") <= 0) & (pl.col("on_hand") <= 0) & ~pl.col("material").is_in(ordered))[
            "material"
        ]
        needs = inputs.bom.filter(pl.col("sku").is_in(wanted) & (pl.col("qty_per") > 0) & pl.col("material").is_in(dry))
        for material in needs["material"].unique().sort().to_list():
            skus = needs.filter(pl.col("material") == material)["sku"].unique().sort().to_list()
            lines.append(f"material {material} has no supplier capacity, no stock and no open order, and {_listed(skus)} need it")
    return lines


def supply_gate_findings(
    scenarios: pl.DataFrame,
    violations: dict[str, list[str]],
    baseline_plan: pl.DataFrame,
    baseline_exceptions: pl.DataFrame,
    gates: SupplyGates,
    shortfall_mode: str,
    min_units: float = QTY_TOL,
    stranded: list[str] | None = None,
) -> dict[str, Any]:
    """The supply checkpoint's verdict: every scenario optimal (`scenarios`: the
    planning.supply_scenarios rows), no violation found by the independent feasibility check,
    and the baseline's fill rate at target, or else every baseline SKU-month that misses demand
    explained by a binding constraint (`baseline_exceptions`: planning.supply_exception_skus,
    where a miss under `min_units` is noise and not listed, so it is not asked for either).

    A miss is acceptable when it is explained: the executive meeting decides what to do about
    a bottleneck; a plan that breaks its own physics, or a miss nobody can explain, is not.
    `stranded` (`stranded_supply`) names what cannot be supplied at all; it leads the
    description whenever the baseline misses its fill-rate target.
    """
    problems = []
    not_optimal = scenarios.filter(~pl.col("optimal"))["scenario"].to_list()
    if not_optimal:
        problems.append(f"not solved to optimality: {', '.join(not_optimal)}")
    messages = [f"{name}: {v}" for name, vs in violations.items() for v in vs]
    if messages:
        problems.append(f"{len(messages)} feasibility violations (first: {messages[0]})")
    plan = baseline_plan
    rate = fill_rate(plan, shortfall_mode) if plan.height else 1.0
    misses = plan.filter(late_units(shortfall_mode) >= max(min_units, QTY_TOL)).select("sku", "month")
    # Every listed row carries a sentence; a miss counts as explained when a constraint was found.
    explained = baseline_exceptions.filter((pl.col("exception") == "shortfall") & (pl.col("evidence") != "none")).select("sku", "month")
    unexplained = misses.join(explained, on=["sku", "month"], how="anti")
    if rate < gates.fill_rate_target and stranded:
        problems.append("the company cannot supply everything it sells: " + "; ".join(stranded))
    if rate < gates.fill_rate_target and unexplained.height:
        problems.append(
            f"baseline fill rate {rate:.3f} is below the target {gates.fill_rate_target:.3f} and "
            f"{unexplained.height} SKU-months miss demand without an explanation"
        )
    if problems:
        description = "; ".join(problems)
    elif rate < gates.fill_rate_target:
        description = (
            f"baseline fill rate {rate:.3f} below target {gates.fill_rate_target:.3f}; "
            f"all {misses.height} missed SKU-months are explained in planning.supply_exception_skus"
        )
    else:
        description = f"all {scenarios.height} scenarios optimal and feasible; baseline fill rate {rate:.3f}"
    return {"passed": not problems, "description": description, "fill_rate": rate, "unexplained": unexplained, "violations": messages}
