"""What the review pack shows besides the cycle's own planning tables. The pack is handed the
cycle's rows; last month's comparison needs an earlier cycle's plan of record and the marts'
actual sales, and the assumptions page the price plan and the scenarios as configured. Both
assets that write the pack (`review_pack`, `plan_of_record`) load them here, so the two
packs of a cycle cannot differ in what they compare."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import polars as pl

from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.settings.scenarios import Scenario
from sop_pipeline.warehouse import query, table_exists

# Frame names the pack reads (none is a planning table, so none is taken for this cycle's rows).
EARLIER_DEMAND = "earlier_plan_of_record_demand"
EARLIER_FINANCIAL = "earlier_plan_of_record_financial"
ACTUALS = "actuals_last_month"
PRICE_PLAN = "price_plan"
SCENARIOS = "scenario_settings"
LOOKBACK = 12  # cycles searched back for a plan of record that planned last month


def pack_inputs(con: duckdb.DuckDBPyConnection, cycle: str, scenarios: Mapping[str, Scenario] | None = None) -> dict[str, pl.DataFrame]:
    """Frames by the names above; a frame is left out when its source does not exist."""
    label = cycle_label(cycle)
    last_month = add_months(cycle_month(label), -1)
    out: dict[str, pl.DataFrame] = {}
    earlier = _earlier_record_cycle(con, label, last_month)
    if earlier is not None:
        for name, table in ((EARLIER_DEMAND, "plan_of_record_demand"), (EARLIER_FINANCIAL, "plan_of_record_financial")):
            if table_exists(con, "planning", table):
                out[name] = query(con, f"select * from planning.{table} where cycle = ? and month = ? order by all", [earlier, last_month])
    if table_exists(con, "marts", "fct_sales_monthly"):
        out[ACTUALS] = query(con, "select * from marts.fct_sales_monthly where month = ? order by all", [last_month])
    if table_exists(con, "marts", "fct_price_plan"):
        out[PRICE_PLAN] = query(con, "select * from marts.fct_price_plan order by all")
    if scenarios:
        out[SCENARIOS] = scenario_frame(scenarios, label)
    return out


def _earlier_record_cycle(con: duckdb.DuckDBPyConnection, label: str, month) -> str | None:
    """The latest earlier cycle whose published plan of record planned `month`: normally the
    previous cycle; an older one when the previous cycle's plan was never approved."""
    if not table_exists(con, "planning", "plan_of_record_demand"):
        return None
    first = cycle_label(add_months(cycle_month(label), -LOOKBACK))
    found = query(
        con,
        "select max(cycle) as cycle from planning.plan_of_record_demand where cycle < ? and cycle >= ? and month = ?",
        [label, first, month],
    )["cycle"][0]
    return found


def scenario_frame(scenarios: Mapping[str, Scenario], cycle: str | None = None) -> pl.DataFrame:
    """The scenarios as the meeting reads them: name, kind, description and what each overlay
    changes, its months as calendar months of `cycle` (the file gives offsets from the cycle
    month, so that a scenario stays meaningful cycle after cycle)."""

    def overlays(s: Scenario) -> str:
        return "; ".join(_overlay_text(o.kind, o.params, cycle) for o in s.overlays) or "no change"

    return pl.DataFrame(
        {
            "scenario": list(scenarios),
            "kind": [s.kind for s in scenarios.values()],
            "description": [" ".join(s.description.split()) for s in scenarios.values()],
            "changes": [overlays(s) for s in scenarios.values()],
        },
        schema={"scenario": pl.Utf8, "kind": pl.Utf8, "description": pl.Utf8, "changes": pl.Utf8},
    )


def _overlay_text(kind: str, params: Mapping[str, Any], cycle: str | None) -> str:
    """ "demand change Cooling +10%, 2026-11..2027-10" rather than the file's keys."""
    target = next((str(params[k]) for k in ("family", "sku", "resource", "supplier", "material") if k in params), "")
    parts = [kind.replace("_", " "), target]
    if "pct" in params:
        parts.append(f"{params['pct']:+g}%")
    if "factor" in params:
        parts.append(f"x{params['factor']:g}")
    text = " ".join(p for p in parts if p)
    if "overtime" in params and params["overtime"] is not True:
        text += ", overtime " + ("unchanged" if params["overtime"] is False else f"x{params['overtime']:g}")
    return text + ", " + _months_text(params.get("months"), cycle)


def _months_text(months: Any, cycle: str | None) -> str:
    if months is None:
        return "whole horizon"
    if isinstance(months, dict):
        ends = [months.get("from"), months.get("to")]
        if cycle is not None:
            ends = [f"{add_months(cycle_month(cycle), e):%Y-%m}" if isinstance(e, int) else e for e in ends]
        else:
            ends = [f"cycle month {e:+d}" if isinstance(e, int) else e for e in ends]
        return "..".join(str(e) for e in ends if e is not None)
    if isinstance(months, list):
        return ", ".join(str(m) for m in months)
    return str(months)
