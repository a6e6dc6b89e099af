"""The executive summary: per scenario, the KPIs an executive meeting looks at."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from sop_pipeline.executive.governance import scenario_order
from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.rules import late_units
from sop_pipeline.settings.gates import ExecutiveGates
from sop_pipeline.settings.scenarios import BASELINE

DAYS_PER_MONTH = 365.25 / 12


SUMMARY_SCHEMA = {
    "cycle": pl.Utf8,
    "scenario": pl.Utf8,
    "kpi_order": pl.Int32,
    "kpi": pl.Utf8,
    "subject": pl.Utf8,
    "value": pl.Float64,
    "unit": pl.Utf8,
    "detail": pl.Utf8,
}


def present(frame: pl.DataFrame | None, *columns: str) -> bool:
    return frame is not None and frame.height > 0 and all(c in frame.columns for c in columns)


def for_scenario(frame: pl.DataFrame, scenario: str) -> pl.DataFrame:
    return frame.filter(pl.col("scenario") == scenario) if "scenario" in frame.columns else frame


def window(frame: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    return frame.filter((pl.col("month") >= start) & (pl.col("month") < end)) if "month" in frame.columns else frame


def scenarios_of(*frames: pl.DataFrame | None) -> list[str]:
    names: set[str] = set()
    for frame in frames:
        if frame is not None and "scenario" in frame.columns:
            names |= set(frame["scenario"].drop_nulls().to_list())
    return scenario_order(names) or [BASELINE]


def budget_rows(budget_gap: pl.DataFrame, gates: ExecutiveGates) -> pl.DataFrame:
    """Budget gap rows at one period grain (the configured one when `period` names grains,
    else the grain with most rows) and per family (the company total is dropped when family
    rows exist, so nothing counts twice). `gap` and `gap_pct` are recomputed from plan and
    budget so their sign and unit are known: gap = plan - budget, gap_pct in percent."""
    rows = budget_gap
    if "period" in rows.columns and rows["period"].dtype == pl.Utf8 and rows.height:
        grains = rows["period"].value_counts(sort=True)
        grain = gates.budget_gap_period if gates.budget_gap_period in grains["period"].to_list() else grains["period"][0]
        rows = rows.filter(pl.col("period") == grain)
    if "family" in rows.columns:
        families = rows.filter(~pl.col("family").str.to_uppercase().is_in(["ALL", "TOTAL"]))
        rows = families if families.height else rows
    label = (
        pl.col("period_label").cast(pl.Utf8)
        if "period_label" in rows.columns
        else (pl.col("period").cast(pl.Utf8) if "period" in rows.columns else pl.lit(None, pl.Utf8))
    )
    return rows.with_columns(
        (pl.col("plan") - pl.col("budget")).alias("gap"),
        pl.when(pl.col("budget").abs() > 0).then(100 * (pl.col("plan") - pl.col("budget")) / pl.col("budget").abs()).alias("gap_pct"),
        label.alias("period_label"),
    )


def executive_summary(
    cycle: str,
    supply_plan: pl.DataFrame | None = None,
    capacity_plan: pl.DataFrame | None = None,
    financial_plan: pl.DataFrame | None = None,
    budget_gap: pl.DataFrame | None = None,
    forecast_accuracy: pl.DataFrame | None = None,
    gates: ExecutiveGates | None = None,
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """KPIs per scenario, long format (`planning.executive_summary`).

    Over the first `kpi_horizon_months` of the horizon: fill rate (1 - late units / demand),
    late units, revenue, gross margin and its share of revenue, average month-end inventory
    value, days of supply (average inventory value / average daily cost of goods sold; in units
    from the supply plan when there is no financial plan), the peak utilisation of the top
    bottlenecks (resources ranked by shadow price x load hours, then by peak utilisation). Over
    the budget: plan - budget for revenue and gross margin. From accuracy: the consensus's
    lag-1 WAPE pooled over all scored forecast cycles, the latest lag-1 bias and its trend
    (least-squares slope per forecast cycle). Accuracy does not depend on the scenario and is
    repeated for each. A KPI whose input is absent gets a row with a null value and the reason
    in `detail`, so the gap is visible rather than silent.
    """
    gates = gates or ExecutiveGates()
    label = cycle_label(cycle)
    start = cycle_month(label)
    end = add_months(start, gates.kpi_horizon_months)
    kpis = _Kpis(label, f"{start:%Y-%m}..{add_months(end, -1):%Y-%m}", start, end)
    accuracy = _accuracy_kpis(forecast_accuracy, label)
    for scenario in scenarios_of(supply_plan, capacity_plan, financial_plan, budget_gap):
        plan, plan_why = kpis.rows_of(supply_plan, scenario, "month", "demand", "shortfall")
        fin, fin_why = kpis.rows_of(financial_plan, scenario, "month", "revenue")
        cap, cap_why = kpis.rows_of(capacity_plan, scenario, "resource", "month", "utilization")
        _service_kpis(kpis, scenario, plan, plan_why, shortfall_mode)
        _money_kpis(kpis, scenario, fin, fin_why, plan)
        _capacity_kpis(kpis, scenario, cap, cap_why, gates)
        _budget_kpis(kpis, scenario, budget_gap, gates)
        for kpi, value, unit, detail in accuracy:
            kpis.add(scenario, kpi, value, unit, detail)
    return pl.DataFrame(kpis.rows, schema=SUMMARY_SCHEMA) if kpis.rows else pl.DataFrame(schema=SUMMARY_SCHEMA)


class _Kpis:
    """Collects KPI rows; the same KPI has the same kpi_order in every scenario."""

    def __init__(self, label: str, window: str, start: dt.date, end: dt.date):
        self.label, self.window, self.start, self.end = label, window, start, end
        self.rows: list[dict[str, Any]] = []
        self.order: dict[str, int] = {}

    def add(self, scenario: str, kpi: str, value: float | None, unit: str, detail: str, subject: str | None = None) -> None:
        number = None if value is None else float(value)
        self.rows.append(
            {
                "cycle": self.label,
                "scenario": scenario,
                "kpi_order": self.order.setdefault(kpi, len(self.order)),
                "kpi": kpi,
                "subject": subject,
                "value": number,
                "unit": unit,
                "detail": detail,
            }
        )

    def rows_of(self, frame: pl.DataFrame | None, scenario: str, *needed: str) -> tuple[pl.DataFrame | None, str]:
        """The scenario's rows in the KPI window, or None and why not."""
        if not present(frame, *needed):
            return None, "this cycle"
        part = window(for_scenario(frame, scenario), self.start, self.end)
        return (part, "") if part.height else (None, "this scenario")


def _service_kpis(kpis: _Kpis, scenario: str, plan: pl.DataFrame | None, why: str, shortfall_mode: str) -> None:
    if plan is None:
        kpis.add(scenario, "fill_rate", None, "ratio", f"not available: no supply plan {why}")
        return
    demand = float(plan["demand"].sum())
    late = float(plan.select(late_units(shortfall_mode).sum()).item() or 0.0)
    kpis.add(
        scenario,
        "fill_rate",
        1 - late / demand if demand > 0 else 1.0,
        "ratio",
        f"1 - late units / demand, {kpis.window} ({shortfall_mode})",
    )
    kpis.add(scenario, "late_units", late, "units", f"demand not delivered in its month, {kpis.window}")


def _money_kpis(kpis: _Kpis, scenario: str, fin: pl.DataFrame | None, why: str, plan: pl.DataFrame | None) -> None:
    if fin is None:
        kpis.add(scenario, "revenue", None, "currency", f"not available: no financial plan {why}")
    else:
        revenue = float(fin["revenue"].sum())
        kpis.add(scenario, "revenue", revenue, "currency", f"planned revenue, {kpis.window}")
        margin = float(fin["gross_margin"].sum())
        kpis.add(scenario, "gross_margin", margin, "currency", f"revenue - cost of goods sold, {kpis.window}")
        kpis.add(scenario, "gross_margin_pct", margin / revenue if revenue else None, "ratio", "gross margin / revenue")
    if fin is not None:
        months = fin["month"].n_unique()
        inventory = float(fin["inventory_value"].sum()) / months
        kpis.add(scenario, "inventory_value", inventory, "currency", f"average month-end inventory value, {kpis.window}")
        cogs = float(fin["cogs"].sum())
        if cogs > 0:
            kpis.add(
                scenario,
                "days_of_supply",
                inventory / (cogs / (months * DAYS_PER_MONTH)),
                "days",
                "average inventory value / average daily cost of goods sold",
            )
    elif plan is not None:
        months = plan["month"].n_unique()
        daily = float(plan["demand"].sum()) / (months * DAYS_PER_MONTH)
        kpis.add(
            scenario,
            "days_of_supply",
            float(plan["ending_inventory"].sum()) / months / daily if daily > 0 else None,
            "days",
            "average month-end inventory / average daily demand, in units (no financial plan)",
        )


def _capacity_kpis(kpis: _Kpis, scenario: str, cap: pl.DataFrame | None, why: str, gates: ExecutiveGates) -> None:
    if cap is None:
        kpis.add(scenario, "bottleneck_1_peak_utilization", None, "ratio", f"not available: no capacity plan {why}")
        return
    for k, row in enumerate(_top_bottlenecks(cap, gates.top_bottlenecks), 1):
        kpis.add(
            scenario,
            f"bottleneck_{k}_peak_utilization",
            row["peak_utilization"],
            "ratio",
            f"{row['resource']} ({row['plant'] or 'no plant'}): peak load / regular capacity in {row['peak_month']:%Y-%m}; "
            f"shadow value {row['shadow_value']:,.0f}",
            subject=row["resource"],
        )


def _budget_kpis(kpis: _Kpis, scenario: str, budget_gap: pl.DataFrame | None, gates: ExecutiveGates) -> None:
    budget = budget_rows(for_scenario(budget_gap, scenario), gates) if present(budget_gap, "measure", "plan", "budget") else None
    if budget is None or not budget.height:
        why = "this scenario" if budget is not None else "this cycle (no budget or no financial plan)"
        kpis.add(scenario, "budget_gap_revenue", None, "currency", f"not available: no budget gap {why}")
        return
    # Over the same months as revenue and margin, so the figures side by side are comparable.
    monthly = "month" in budget.columns and budget["month"].null_count() == 0
    if monthly:
        budget = window(budget, kpis.start, kpis.end)
    for measure in ("revenue", "gross_margin"):
        part = budget.filter(pl.col("measure") == measure)
        if not part.height:
            continue
        plan_total, budget_total = float(part["plan"].sum()), float(part["budget"].sum())
        periods = part["period_label"].n_unique()
        kpis.add(
            scenario,
            f"budget_gap_{measure}",
            plan_total - budget_total,
            "currency",
            f"plan - budget, {kpis.window} ({periods} budgeted month(s))"
            if monthly
            else f"plan - budget over {periods} budgeted period(s), whole horizon",
        )
        kpis.add(
            scenario,
            f"budget_gap_{measure}_pct",
            (plan_total - budget_total) / abs(budget_total) if budget_total else None,
            "ratio",
            "gap / budget",
        )


def _top_bottlenecks(capacity: pl.DataFrame, top_n: int) -> list[dict[str, Any]]:
    """Resources ranked by what their scarcity is worth to the plan (shadow price x load, as
    the supply review ranks bottlenecks), then by peak utilisation when no constraint binds."""
    shadow = (
        (pl.col("shadow_price").fill_null(0) * pl.col("load_hours").fill_null(0))
        if {"shadow_price", "load_hours"} <= set(capacity.columns)
        else pl.lit(0.0)
    )
    plant = pl.col("plant") if "plant" in capacity.columns else pl.lit(None, pl.Utf8)
    ranked = (
        capacity.with_columns(shadow.alias("_shadow"), plant.alias("plant"))
        .sort("utilization", descending=True, nulls_last=True)
        .group_by("resource")
        .agg(
            pl.col("plant").first(),
            pl.col("utilization").max().alias("peak_utilization"),
            pl.col("month").first().alias("peak_month"),
            pl.col("_shadow").sum().alias("shadow_value"),
        )
        .sort(["shadow_value", "peak_utilization", "resource"], descending=[True, True, False])
    )
    return ranked.head(top_n).to_dicts()


def _accuracy_kpis(accuracy: pl.DataFrame | None, label: str) -> list[tuple[str, float | None, str, str]]:
    if not present(accuracy, "layer", "lag", "actual", "forecast"):
        return [("forecast_wape_lag1", None, "ratio", "not available: no earlier cycle scored yet")]
    rows = accuracy.filter((pl.col("layer") == "consensus") & (pl.col("lag") == 1))
    if "cycle" in rows.columns:
        rows = rows.filter(pl.col("cycle") == label)
    if "family" in rows.columns:
        total = rows.filter(pl.col("family") == "ALL")
        rows = total if total.height else rows
    if not rows.height:
        return [("forecast_wape_lag1", None, "ratio", "not available: no lag-1 consensus forecast scored yet")]
    error = pl.col("abs_error") if "abs_error" in rows.columns else (pl.col("forecast") - pl.col("actual")).abs()
    per_cycle = (
        rows.group_by("forecast_cycle")
        .agg(error.sum().alias("abs_error"), pl.col("actual").sum(), pl.col("forecast").sum())
        .sort("forecast_cycle")
        .with_columns(pl.when(pl.col("actual") > 0).then((pl.col("forecast") - pl.col("actual")) / pl.col("actual")).alias("bias"))
    )
    actual = float(per_cycle["actual"].sum())
    n = per_cycle.height
    out = [
        (
            "forecast_wape_lag1",
            float(per_cycle["abs_error"].sum()) / actual if actual > 0 else None,
            "ratio",
            f"consensus, lag 1, pooled over {n} forecast cycle(s) ({per_cycle['forecast_cycle'][0]}..{per_cycle['forecast_cycle'][-1]})",
        )
    ]
    latest = per_cycle.row(-1, named=True)
    out.append(
        ("forecast_bias_lag1", latest["bias"], "ratio", f"(forecast - actual) / actual of forecast cycle {latest['forecast_cycle']}")
    )
    series = per_cycle.drop_nulls("bias")
    text = ", ".join(f"{c} {100 * b:+.1f}%" for c, b in series.select("forecast_cycle", "bias").iter_rows())
    if series.height >= 2:
        x = pl.Series(range(series.height), dtype=pl.Float64)
        y = series["bias"]
        slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
        out.append(("forecast_bias_trend", slope, "ratio per cycle", f"least-squares slope of lag-1 bias: {text}"))
    else:
        out.append(("forecast_bias_trend", None, "ratio per cycle", f"needs two scored forecast cycles ({text or 'none'})"))
    return out
