"""Scenario overlays applied to the cycle's inputs: demand, capacity, lead times and prices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import polars as pl

from sop_pipeline.settings.scenarios import Scenario
from sop_pipeline.supply.inputs import SupplyInputs


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
