"""The BI contract: the `bi` views BI tools read, each with one grain and each column described once.

Read as an analyst reads a warehouse, three rules hold in every view:

- **One grain.** A view's rows are unique on its `grain` and nothing else is mixed in: no
  company-total rows beside family rows, no quarters beside months. `sum(revenue)` over any
  view is a real total. Company totals of additive measures are sums over families; measures
  that do not add (a company bridge's mix step, company forecast accuracy) get their own view.
- **One name per quantity.** Units end in `_units` (`demand_units`, `shipped_units`,
  `production_units` ...), money columns carry the measure's name (`revenue`, `cogs`,
  `gross_margin`), and every share is a ratio (0.083 = 8.3 %), never a percent: a planning
  table's `*_pct` column arrives as `*_ratio`.
- **Every column commented.** A view over a planning table takes descriptions and units from
  the table's registration, a view over a mart from the dbt model's YAML, so the BI
  dictionary, the README and the DuckDB comments cannot drift from what the steps write.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from sop_pipeline.registry.base import Col
from sop_pipeline.registry.common import CYCLE, FAMILY, MONTH, units

CURRENT = Col("is_current_cycle", "bool", "True for the latest cycle in this view (the one BI dashboards usually show).")
MARTS_YAML = Path(__file__).resolve().parents[2] / "transforms" / "models" / "marts" / "_marts.yml"

# Planning-table names of quantities, and the one name the BI contract gives each.
UNIT_NAMES = {
    "quantity": "demand_units",
    "demand": "demand_units",
    "p10": "demand_units_p10",
    "p90": "demand_units_p90",
    "volume": "shipped_units",
    "unconstrained_volume": "unconstrained_units",
    "open_supply": "open_supply_units",
    "production": "production_units",
    "ending_inventory": "ending_inventory_units",
    "shortfall": "shortfall_units",
    "safety_stock": "safety_stock_units",
    "target_inventory": "target_inventory_units",
    "shipped": "shipped_units",
    "delta_volume": "delta_shipped_units",
}

# A statistical forecast's quantiles are forecast units, not the consensus demand.
FORECAST_NAMES = {"p10": "forecast_units_p10", "p50": "forecast_units_p50", "p90": "forecast_units_p90"}


@dataclass(frozen=True)
class Field:
    """A BI column: its contract (`col`) and the SQL that computes it from the source row.
    `reads` are the source columns the SQL needs: the column is NULL when the source lacks one
    (a warehouse written before the column existed)."""

    col: Col
    sql: str
    reads: tuple[str, ...]


@dataclass(frozen=True)
class View:
    """A `bi` view over one relation (`source`, schema-qualified), filtered by `where`.

    `per_cycle` views carry `is_current_cycle`; `aggregated` views group by their
    non-aggregate fields (`group by all`); `custom` names a builder in `sop_pipeline.bi` for a
    view that is more than a filtered projection (the plan of record joins three tables).
    """

    name: str
    description: str
    grain: tuple[str, ...]
    fields: tuple[Field, ...]
    source: str = ""
    where: str | None = None
    per_cycle: bool = True
    aggregated: bool = False
    custom: str | None = None

    @property
    def columns(self) -> tuple[Col, ...]:
        return tuple(f.col for f in self.fields) + ((CURRENT,) if self.per_cycle else ())


def _bi_field(col: Col, names: dict[str, str] | None = None) -> Field:
    """The planning column under its BI name: quantities renamed, percents as ratios."""
    source = f'"{col.name}"'
    names = {**UNIT_NAMES, **(names or {})}
    if col.unit == "percent":
        name = col.name[: -len("_pct")] + "_ratio" if col.name.endswith("_pct") else col.name + "_ratio"
        description = col.description.replace(" x 100", "").replace("x 100", "")
        bounds = {b: (getattr(col, b) / 100 if getattr(col, b) is not None else None) for b in ("ge", "gt", "le", "lt")}
        return Field(col.with_(name=name, description=description, unit="ratio", **bounds), f"{source} / 100.0", (col.name,))
    if col.name in names:
        return Field(col.with_(name=names[col.name]), source, (col.name,))
    return Field(col, source, (col.name,))


def _over(
    name: str,
    table: str,
    description: str,
    *,
    where: str | None = None,
    drop: tuple[str, ...] = (),
    grain: tuple[str, ...] | None = None,
    replace: dict[str, Col] | None = None,
    names: dict[str, str] | None = None,
) -> View:
    """A view over planning table `table`: every column but `drop`, under its BI name."""
    from sop_pipeline.registry import table as planning_table

    spec = planning_table(table)
    replace = replace or {}
    fields = tuple(_bi_field(replace.get(c.name, c), names) for c in spec.columns if c.name not in drop)
    renamed = {f.reads[0]: f.col.name for f in fields if f.reads}
    key = grain or tuple(renamed.get(g, g) for g in spec.grain if g not in drop)
    return View(name, description, key, fields, source=spec.qualified, where=where)


@cache
def mart_descriptions() -> dict[str, dict[str, str]]:
    """Column descriptions of the dbt marts, from their YAML: model -> column -> description."""
    models = yaml.safe_load(MARTS_YAML.read_text())["models"]
    return {m["name"]: {c["name"]: c.get("description", "") for c in m.get("columns", [])} for m in models}


def _mart_view(
    name: str,
    model: str,
    description: str,
    grain: tuple[str, ...],
    columns: dict[str, tuple[str, str]],
    names: dict[str, str] | None = None,
) -> View:
    """A view over dbt mart `model`: `columns` maps a mart column to (type, unit); descriptions
    come from the model's YAML (a column the YAML does not describe is an error here)."""
    described = mart_descriptions()[model]
    fields = []
    for column, (kind, unit) in columns.items():
        if not described.get(column):
            raise KeyError(f"marts.{model}.{column} has no description in {MARTS_YAML.name}")
        fields.append(_bi_field(Col(column, kind, described[column], unit=unit, nullable=True), names))
    return View(name, description, grain, tuple(fields), source=f"marts.{model}", per_cycle=False)


def _plan_of_record_view() -> View:
    from sop_pipeline.registry import table

    supply, money = table("supply_plan"), table("financial_plan")
    meta = table("plan_of_record_demand").columns[:5]
    fields = [Field(c, f'"{c.name}"', (c.name,)) for c in (*meta, FAMILY, MONTH)]
    fields.append(Field(units("demand_units", "Consensus demand."), "", ()))
    fields += [_bi_field(supply.column(c)) for c in ("production", "ending_inventory", "shortfall")]
    fields.append(Field(units("shipped_units", "Units shipped in the month (demand delivered, backlog included)."), "", ()))
    fields += [_bi_field(money.column(c)) for c in ("revenue", "cogs", "gross_margin", "inventory_value")]
    return View(
        "plan_of_record",
        "The approved plan (plan of record) per cycle, family and month: demand, supply and money of the scenario an "
        "executive approved, with the version and approver. Detail per SKU and resource is in "
        "planning.plan_of_record_demand/_supply/_capacity/_financial.",
        ("cycle", "family", "month"),
        tuple(fields),
        custom="plan_of_record",
    )


def _status_count(name: str, description: str, status: str) -> Field:
    return Field(Col(name, "int", description, unit="SKUs"), f"count(*) filter (where status = '{status}')", ("status",))


def _families_view() -> View:
    described = mart_descriptions()["dim_product"]
    return View(
        "families",
        "One row per product family: how many SKUs it holds and in which lifecycle status (from the product master).",
        ("family",),
        (
            Field(Col("family", "text", described["family"]), "family", ("family",)),
            Field(Col("skus", "int", "SKUs in the family.", unit="SKUs"), "count(*)", ()),
            _status_count("active_skus", "SKUs with status active.", "active"),
            _status_count("npi_skus", "New products (status npi).", "npi"),
            _status_count("phase_out_skus", "SKUs being phased out.", "phase_out"),
        ),
        source="marts.dim_product",
        per_cycle=False,
        aggregated=True,
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
            "supersession",
            "supersession",
            "The demand each phase-out hands to its successor (products.csv successor_sku) per cycle, phasing-out SKU "
            "and month: what it would have sold, what it keeps and the units moved to the successor.",
        ),
        _over(
            "family_forecast",
            "family_forecast",
            "Statistical forecast per cycle, family and month: p50 the sum of the SKUs', p10/p90 the family's own "
            "calibrated 80% band (use these, not sums of SKU bands, for family risk). The company's own band is in "
            "bi.company_forecast.",
            where="family <> 'ALL'",
            replace={"family": FAMILY},
            names=FORECAST_NAMES,
        ),
        _over(
            "company_forecast",
            "family_forecast",
            "Statistical forecast of the whole company per cycle and month, with its own calibrated 80% band (not the "
            "sum of the families' bands: quantiles do not add).",
            where="family = 'ALL'",
            drop=("family",),
            names=FORECAST_NAMES,
        ),
        _over(
            "supply_plan",
            "supply_plan",
            "Constrained supply plan per cycle, scenario, SKU and month: what is made, what is in stock, what is "
            "shipped and what cannot be delivered.",
        ),
        _over(
            "capacity_plan",
            "capacity_plan",
            "Load against capacity per cycle, scenario, resource and month, with the value of one more hour.",
        ),
        _over("financial_plan", "financial_plan", "The supply plan in money per cycle, scenario, family and month."),
        _over(
            "budget_gap",
            "budget_gap",
            "Plan against the budget (annual operating plan) per cycle, scenario, family, month and measure. Company "
            "totals are sums over families; fiscal quarters and years are in bi.budget_gap_by_quarter and "
            "bi.budget_gap_by_fiscal_year.",
            where="period = 'month' and family <> 'ALL'",
            drop=("period", "period_label"),
            replace={"family": FAMILY},
            grain=("cycle", "scenario", "family", "month", "measure"),
        ),
        _over(
            "budget_gap_by_quarter",
            "budget_gap",
            "Plan against the budget per cycle, scenario, family, fiscal quarter and measure; whole quarters, their "
            "closed months at actuals (actual_months says how many).",
            where="period = 'quarter' and family <> 'ALL'",
            drop=("period", "month"),
            replace={"family": FAMILY, "period_label": Col("period_label", "text", "The fiscal quarter, e.g. FY2026-Q4.")},
        ),
        _over(
            "budget_gap_by_fiscal_year",
            "budget_gap",
            "Plan against the budget per cycle, scenario, family, fiscal year and measure; closed months at actuals.",
            where="period = 'fiscal_year' and family <> 'ALL'",
            drop=("period", "month"),
            replace={"family": FAMILY, "period_label": Col("period_label", "text", "The fiscal year, e.g. FY2026.")},
        ),
        _over(
            "latest_estimate",
            "latest_estimate",
            "The fiscal year's latest estimate (actuals to date + plan for the rest) against the annual budget, per cycle, "
            "scenario, family and measure; the company's is the sum over families.",
            where="family <> 'ALL'",
            replace={"family": FAMILY},
        ),
        _over(
            "forecast_accuracy",
            "forecast_accuracy",
            "How earlier cycles' forecasts did against actuals, per scoring cycle, forecast cycle, layer, family and lag. "
            "The company's own accuracy is in bi.forecast_accuracy_company (errors do not add up).",
            where="family <> 'ALL'",
            replace={"family": FAMILY},
        ),
        _over(
            "forecast_accuracy_company",
            "forecast_accuracy",
            "How earlier cycles' forecasts did against actuals for the company as a whole, per scoring cycle, forecast "
            "cycle, layer and lag.",
            where="family = 'ALL'",
            drop=("family",),
        ),
        _over(
            "executive_summary",
            "executive_summary",
            "Executive KPIs per cycle and scenario, one row per KPI (long format: pivot on scenario to compare).",
        ),
        _over(
            "exceptions",
            "exceptions",
            "The cycle's exceptions across demand, supply and finance, each once with the scenarios it appears in, ranked "
            "by money at stake; in_executive_list marks the executive's top list.",
        ),
        _over(
            "reconciliation",
            "reconciliation",
            "Every material family-month gap between unconstrained demand, the constrained plan and the budget, split into "
            "parts with their cause, and the levers that could close it.",
        ),
        _over(
            "bridge",
            "plan_bridge",
            "Revenue bridges per cycle, comparison, scenario and family: from the budget (or last cycle's plan of record) to "
            "this plan, step by step. The company's bridge is in bi.bridge_company (its mix is across families).",
            where="family <> 'ALL'",
            replace={"family": FAMILY},
        ),
        _over(
            "bridge_company",
            "plan_bridge",
            "The company's revenue bridge per cycle, comparison and scenario, step by step.",
            where="family = 'ALL'",
            drop=("family",),
        ),
        _over("scenarios", "scenario_financials", "Every scenario in money over the horizon, side by side with the baseline."),
        _over(
            "scenario_service",
            "supply_scenarios",
            "Every scenario's supply outcome over the horizon: service, shortfall and cost, side by side with the baseline.",
        ),
        _over(
            "decisions",
            "decisions",
            "Every decision an executive recorded (approvals, actions, accepted risks, closings): the audit trail, never "
            "updated or deleted.",
            grain=("cycle", "decided_at"),
        ),
        _over(
            "decision_followup",
            "decision_followup",
            "Each earlier decision as a later cycle finds it: open, overdue, closed or resolved, with the money of the "
            "exception it answered then and now.",
        ),
        _plan_of_record_view(),
        _mart_view(
            "products",
            "dim_product",
            "The product master as of the latest ingested cycle: one row per SKU.",
            ("sku",),
            {
                "sku": ("text", ""),
                "description": ("text", ""),
                "family": ("text", ""),
                "status": ("text", ""),
                "unit_price": ("float", "money per unit"),
                "unit_cost": ("float", "money per unit"),
                "launch_month": ("date", ""),
                "discontinue_month": ("date", ""),
                "like_sku": ("text", ""),
                "launch_volume": ("float", "units per month"),
                "successor_sku": ("text", ""),
                "first_sale_month": ("date", ""),
                "last_sale_month": ("date", ""),
                "lifetime_quantity": ("float", "units"),
            },
            names={"lifetime_quantity": "lifetime_units"},
        ),
        _families_view(),
        _mart_view(
            "months",
            "dim_month",
            "The calendar of the latest ingested cycle: every history month and every plan month, with its year and quarter.",
            ("month",),
            {
                "month": ("date", ""),
                "cycle": ("text", ""),
                "year": ("int", ""),
                "quarter": ("int", ""),
                "month_of_year": ("int", ""),
                "month_label": ("text", ""),
                "quarter_label": ("text", ""),
                "period": ("text", ""),
                "months_from_cycle": ("int", "months"),
            },
        ),
        _mart_view(
            "actuals",
            "fct_sales_monthly",
            "Actual sales per SKU and month up to the month before the latest ingested cycle (months without sales are 0).",
            ("sku", "month"),
            {
                "sku": ("text", ""),
                "family": ("text", ""),
                "month": ("date", ""),
                "quantity": ("float", "units"),
                "net_price": ("float", "money per unit"),
                "promotion": ("float", "ratio"),
                "revenue": ("float", "money"),
            },
            names={"quantity": "sold_units"},
        ),
    )


__all__ = ["View", "Field", "bi_views", "CURRENT", "CYCLE"]
