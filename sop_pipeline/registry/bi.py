"""The BI contract: the `bi` views BI tools read, each column described once.

A view over a planning table takes its columns' descriptions and units from the table's
registration, so the BI dictionary, the README and the DuckDB column comments cannot drift
from what the planning steps write. Columns a view derives itself are declared here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sop_pipeline.registry.base import Col
from sop_pipeline.registry.common import CYCLE, FAMILY, MONTH, units

CURRENT = Col("is_current_cycle", "bool", "True for the latest cycle in this view (the one BI dashboards usually show).")


@dataclass(frozen=True)
class View:
    """A `bi` view: `source` is the planning table it selects from (None for a custom view)."""

    name: str
    description: str
    columns: tuple[Col, ...]
    source: str | None = None


def _over(name: str, source: str, description: str, names: list[str] | None = None, current: Col = CURRENT) -> View:
    from sop_pipeline.registry import table

    spec = table(source)
    chosen = tuple(spec.column(n) for n in (names or spec.column_names))
    return View(name, description, (*chosen, current), source)


def _plan_of_record_view() -> View:
    from sop_pipeline.registry import table

    supply, money = table("supply_plan"), table("financial_plan")
    meta = table("plan_of_record_demand").columns[:5]
    return View(
        "plan_of_record",
        "The approved plan (plan of record) per cycle, family and month: demand, supply and money of the scenario an "
        "executive approved, with the version and approver. Detail per SKU and resource is in "
        "planning.plan_of_record_demand/_supply/_capacity/_financial.",
        (
            *meta,
            FAMILY,
            MONTH,
            units("demand_units", "Consensus demand."),
            supply.column("production"),
            supply.column("ending_inventory"),
            supply.column("shortfall"),
            money.column("revenue"),
            money.column("cogs"),
            money.column("gross_margin"),
            money.column("inventory_value"),
            CURRENT.with_(description="True for the latest cycle with a published plan of record."),
        ),
    )


def bi_views() -> tuple[View, ...]:
    return (
        _over(
            "demand_plan",
            "consensus_demand",
            "Consensus demand per cycle, SKU and month: the statistical forecast with sales "
            "and marketing inputs layered on, with an 80% band.",
        ),
        _over(
            "family_forecast",
            "family_forecast",
            "Statistical forecast per cycle, family (ALL = total) and month: p50 the sum of the SKUs', p10/p90 the "
            "family's own calibrated 80% band (use these, not sums of SKU bands, for family risk).",
        ),
        _over(
            "supply_plan",
            "supply_plan",
            "Constrained supply plan per cycle, scenario, SKU and month: what is made, what is in stock, what cannot be delivered.",
        ),
        _over(
            "capacity_plan",
            "capacity_plan",
            "Load against capacity per cycle, scenario, resource and month, with the value of one more hour.",
        ),
        _over("financial_plan", "financial_plan", "The supply plan in money per cycle, scenario, family and month."),
        _over(
            "budget_gap", "budget_gap", "Plan against the budget (annual operating plan) per cycle, scenario, period, family and measure."
        ),
        _over(
            "forecast_accuracy",
            "forecast_accuracy",
            "How earlier cycles' forecasts did against actuals, per scoring cycle, forecast cycle, layer, family (ALL = total) and lag.",
        ),
        _over(
            "executive_summary",
            "executive_summary",
            "Executive KPIs per cycle and scenario, one row per KPI (long format: pivot on scenario to compare).",
        ),
        _plan_of_record_view(),
    )


__all__ = ["View", "bi_views", "CURRENT", "CYCLE"]
