"""The pack's pages between page 1 and the review steps' detail: the plan by family against
supply and budget, last month against the plan of record, the assumptions, risks and
opportunities in money, the scenarios side by side and how earlier decisions stand. An
executive reads these; the step pages after them are for the questions they raise.

Each page states its horizon and its units in its titles: a number without them is read as
the one the reader expects, which is rarely the one printed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from sop_pipeline.executive.exceptions import with_scenario
from sop_pipeline.executive.governance import scenario_order
from sop_pipeline.executive.kpis import window
from sop_pipeline.periods import add_months, cycle_month
from sop_pipeline.reporting.layout import _Block, _fmt, _months, _Note, _Spec
from sop_pipeline.reporting.pack_inputs import ACTUALS, EARLIER_DEMAND, EARLIER_FINANCIAL, PRICE_PLAN, SCENARIOS
from sop_pipeline.settings.scenarios import BASELINE

MONEY = "money (input currency)"
# The pages in pack order, by the start of their title (each continues on more pages when long).
PAGES = (
    "Demand vs supply vs budget by family",
    "Last month: actual vs plan of record",
    "Assumptions",
    "Risks and opportunities in money",
    "Scenarios side by side",
    "Follow-up of earlier decisions",
)
TOP_INPUTS = 10  # consensus inputs listed on the assumptions page
TOP_RISKS = 8
Frame = Callable[[str], pl.DataFrame | None]


@dataclass(frozen=True)
class Horizon:
    """The months the summary pages add up: the KPI horizon page 1 uses, so a family total
    here and a scenario's revenue on page 1 cover the same months."""

    start: dt.date
    months: int

    @property
    def end(self) -> dt.date:  # first month after the horizon
        return add_months(self.start, self.months)

    @property
    def text(self) -> str:
        return f"next {self.months} months ({_months(self.start, add_months(self.start, self.months - 1))})"


def _total(frame: pl.DataFrame, key: str, label: str = "TOTAL") -> pl.DataFrame:
    """The frame with a last row adding up every numeric column (nulls count as nothing)."""
    numeric = [c for c, t in frame.schema.items() if c != key and t.is_numeric()]
    total = frame.select(pl.lit(label).alias(key), *[pl.col(c).sum() for c in numeric])
    return pl.concat([frame.select(key, *numeric), total], how="vertical_relaxed")


def scenario_list(names: list[str], every: set[str]) -> str:
    """Baseline first; an exception found in every scenario says so instead of listing them."""
    if len(every) > 1 and set(names) >= every:
        return f"all {len(every)} scenarios"
    return ", ".join(scenario_order(names))


def _pct(diff: str, base: str) -> pl.Expr:
    return pl.when(pl.col(base).abs() > 0).then(100 * pl.col(diff) / pl.col(base).abs())


# --- demand vs supply vs budget --------------------------------------------------------------


def _monthly_budget(budget: pl.DataFrame, scenario: str, h: Horizon) -> pl.DataFrame | None:
    """Budget units and revenue by family over the horizon's months the budget covers (its
    monthly rows: quarters and fiscal years would count the same months again)."""
    rows = with_scenario(budget).filter(pl.col("scenario") == scenario)
    if "period" in rows.columns:
        rows = rows.filter(pl.col("period") == "month")
    rows = window(rows, h.start, h.end).filter(pl.col("measure").is_in(["volume", "revenue"]) & (pl.col("family") != "ALL"))
    if not rows.height:
        return None
    wide = rows.group_by("family").agg(
        pl.col("budget").filter(pl.col("measure") == "volume").sum().alias("budget_units"),
        pl.col("budget").filter(pl.col("measure") == "revenue").sum().alias("budget_revenue"),
    )
    return wide.with_columns(pl.lit(rows["month"].n_unique()).alias("_months"))


def family_page(frame: Frame, scenario: str, h: Horizon) -> _Spec:
    spec = _Spec(
        "Demand vs supply vs budget by family",
        f"{h.text}; supply and revenue of scenario {scenario}; units, and {MONEY}",
        [],
    )
    consensus, supply, financial, budget = (frame(n) for n in ("consensus_demand", "supply_plan", "financial_plan", "budget_gap"))
    parts: list[pl.DataFrame] = []
    if consensus is not None:
        parts.append(window(consensus, h.start, h.end).group_by("family").agg(pl.col("quantity").sum().alias("demand_units")))
    if supply is not None:
        plan = window(with_scenario(supply), h.start, h.end).filter(pl.col("scenario") == scenario)
        parts.append(plan.group_by("family").agg(pl.col("shipped").sum().alias("supplied_units")))
    budgeted = _monthly_budget(budget, scenario, h) if budget is not None else None
    if financial is not None:
        fin = window(with_scenario(financial), h.start, h.end).filter(pl.col("scenario") == scenario)
        parts.append(fin.group_by("family").agg(pl.col("revenue").sum().alias("revenue")))
    if not parts:
        spec.missing = "demand, supply and financial plan: not available this cycle"
        return spec
    table = parts[0]
    for part in parts[1:]:
        table = table.join(part, on="family", how="full", coalesce=True)
    covered = None
    if budgeted is not None:
        covered = budgeted["_months"][0]
        table = table.join(budgeted.drop("_months"), on="family", how="left")
    order = [c for c in ("demand_units", "supplied_units", "budget_units", "revenue", "budget_revenue") if c in table.columns]
    table = _total(table.select("family", *order).sort(order[0], descending=True), "family")
    if {"revenue", "budget_revenue"} <= set(table.columns):
        table = table.with_columns((pl.col("revenue") - pl.col("budget_revenue")).alias("gap_to_budget"))
        table = table.with_columns(_pct("gap_to_budget", "budget_revenue").alias("gap_pct"))
    units = {c: "units" for c in ("demand_units", "supplied_units", "budget_units")}
    units |= {c: "currency" for c in ("revenue", "budget_revenue", "gap_to_budget")} | {"gap_pct": "pct"}
    names = {
        "demand_units": "consensus demand (units)",
        "supplied_units": "supplied (units)",
        "budget_units": "budget (units)",
        "revenue": "revenue at plan price",
        "budget_revenue": "budget revenue",
        "gap_to_budget": "revenue - budget",
        "gap_pct": "gap %",
    }
    shown = table.rename({c: n for c, n in names.items() if c in table.columns})
    spec.items.append(
        _Block(
            shown,
            f"Units and {MONEY} by family, {h.text}, scenario {scenario}",
            {names[c]: u for c, u in units.items() if c in table.columns},
            max_rows=30,
        )
    )
    spec.items.append(_Note(_budget_note(budget is not None, covered, h), 8, "#555555"))
    return spec


def _budget_note(has_budget: bool, covered: int | None, h: Horizon) -> str:
    base = "Supplied: units the supply plan ships in their month or later within the horizon; revenue: those units at the planned price. "
    if not has_budget or covered is None:
        return base + "No budget covers these months: the budget columns are left out."
    if covered < h.months:
        return base + f"The budget covers {covered} of the {h.months} months: its columns and the gap add up those months only."
    return base + "Gap: revenue at plan price - budget revenue; a family without a budget shows -."


# --- last month ------------------------------------------------------------------------------


def last_month_page(frame: Frame, label: str) -> _Spec:
    month = add_months(cycle_month(label), -1)
    spec = _Spec(f"Last month: actual vs plan of record, {month:%Y-%m}", f"Sales of {month:%Y-%m}, units and {MONEY}", [])
    planned, actual, money = frame(EARLIER_DEMAND), frame(ACTUALS), frame(EARLIER_FINANCIAL)
    if planned is None:
        spec.items.append(
            _Note(f"No earlier plan of record planned {month:%Y-%m}: no approved plan to compare last month's sales with.", 10)
        )
        return spec
    if actual is None:
        spec.items.append(_Note(f"The actual sales of {month:%Y-%m} are not in the warehouse yet.", 10))
        return spec
    first = planned.row(0, named=True)
    spec.subtitle = (
        f"Sales of {month:%Y-%m} against the plan of record of cycle {first['cycle']} (scenario {first['scenario']}, "
        f"approved by {first['approved_by']} on {first['approved_at']:%Y-%m-%d}); units, and {MONEY}"
    )
    table = (
        planned.group_by("family")
        .agg(pl.col("quantity").sum().alias("planned_units"))
        .join(actual.group_by("family").agg(pl.col("quantity").sum().alias("actual_units")), on="family", how="full", coalesce=True)
    )
    money_cols: list[str] = []
    if money is not None and "revenue" in actual.columns:
        table = table.join(money.group_by("family").agg(pl.col("revenue").sum().alias("planned_revenue")), on="family", how="left").join(
            actual.group_by("family").agg(pl.col("revenue").sum().alias("actual_revenue")), on="family", how="left"
        )
        money_cols = ["planned_revenue", "actual_revenue"]
    table = _total(table.fill_null(0.0).sort("planned_units", descending=True), "family")
    table = table.with_columns((pl.col("actual_units") - pl.col("planned_units")).alias("units_diff"))
    table = table.with_columns(_pct("units_diff", "planned_units").alias("units_diff_pct"))
    if money_cols:
        table = table.with_columns((pl.col("actual_revenue") - pl.col("planned_revenue")).alias("revenue_diff"))
        table = table.with_columns(_pct("revenue_diff", "planned_revenue").alias("revenue_diff_pct"))
    cols = ["family", "planned_units", "actual_units", "units_diff", "units_diff_pct"]
    cols += [*money_cols, "revenue_diff", "revenue_diff_pct"] if money_cols else []
    units = {"planned_units": "units", "actual_units": "units", "units_diff": "units", "units_diff_pct": "pct"}
    units |= {"planned_revenue": "currency", "actual_revenue": "currency", "revenue_diff": "currency", "revenue_diff_pct": "pct"}
    names = {
        "units_diff": "units difference",
        "units_diff_pct": "units difference %",
        "revenue_diff": "revenue difference",
        "revenue_diff_pct": "revenue difference %",
    }
    units = {names.get(c, c): u for c, u in units.items()}
    spec.items.append(
        _Block(
            table.select(cols).rename(names, strict=False),
            f"Planned (consensus demand of the plan of record) and actual sales by family, {month:%Y-%m}: units, {MONEY}, difference %",
            units,
            max_rows=30,
        )
    )
    spec.items.append(
        _Note("Difference: actual - planned; %: of the planned. Planned revenue: the plan of record's financial plan.", 8, "#555555")
    )
    return spec


# --- assumptions -----------------------------------------------------------------------------


def _input_key(layers: pl.DataFrame, consensus: pl.DataFrame | None) -> pl.DataFrame:
    """Each layer row with the key its input was entered at: the family for a family-level
    input (spread over its SKUs), else the SKU."""
    if consensus is not None and "family" not in layers.columns:
        layers = layers.join(consensus.select("sku", "family").unique(), on="sku", how="left")
    family = pl.col("family") if "family" in layers.columns else pl.col("sku")
    level = pl.col("input_level") if "input_level" in layers.columns else pl.lit("sku")
    return layers.with_columns(pl.when(level == "family").then(family).otherwise(pl.col("sku")).alias("key"), level.alias("level"))


def top_inputs(layers: pl.DataFrame, consensus: pl.DataFrame | None, n: int = TOP_INPUTS) -> pl.DataFrame:
    """The consensus inputs (one layer's change on one key and month, by one owner for one
    reason) with the largest absolute change in units against the layer below, largest first."""
    moved = _input_key(layers.filter((pl.col("layer") != "statistical") & (pl.col("adjustment") != 0)), consensus)
    group = ["layer", "owner", "level", "key", "month", "reason"]
    return (
        moved.with_columns(pl.col("reason").fill_null("(no reason given)"), pl.col("owner").fill_null("-"))
        .group_by(group)
        .agg(pl.col("adjustment").sum().alias("units_change"))
        .sort([pl.col("units_change").abs(), *group], descending=[True] + [False] * len(group))
        .head(n)
        .select("layer", "owner", (pl.col("level") + " " + pl.col("key")).alias("input on"), "month", "reason", "units_change")
    )


def assumptions_page(frame: Frame, h: Horizon, plan_months: tuple[dt.date, dt.date] | None) -> _Spec:
    spec = _Spec("Assumptions", "The scenarios, the price plan and the consensus inputs that moved the plan most", [])
    scenarios = frame(SCENARIOS)
    if scenarios is not None:
        spec.items.append(
            _Block(scenarios, "Scenarios: what each one assumes", max_rows=20, wrap={"description": 4.4, "changes": 2.6}, max_chars=200)
        )
    else:
        spec.items.append(_Note("Scenario descriptions: not available (models/scenarios.yaml was not read).", 9))
    spec.items.append(_price_plan(frame(PRICE_PLAN), plan_months))
    layers, consensus = frame("demand_plan_layers"), frame("consensus_demand")
    if layers is not None and {"layer", "adjustment"} <= set(layers.columns):
        spread = _months(layers["month"].min(), layers["month"].max())
        net = layers.filter(pl.col("layer") != "statistical")["adjustment"].sum()
        stat = layers.filter(pl.col("layer") == "statistical")["quantity"].sum()
        spec.items.append(
            _Block(
                top_inputs(layers, consensus),
                f"Consensus inputs that moved the plan most, {spread}: change in units against the layer below, top {TOP_INPUTS}",
                {"units_change": "units"},
                wrap={"reason": 3.2, "owner": 2.0},
                key_columns=0,
            )
        )
        share = f" ({100 * net / stat:+.1f}%)" if stat else ""
        spec.items.append(
            _Note(f"All consensus inputs together: {net:+,.0f} units{share} against the statistical forecast, {spread}.", 8.5)
        )
    else:
        spec.items.append(_Note("Consensus inputs: the demand plan layers are not available this cycle.", 9))
    return spec


def _price_plan(prices: pl.DataFrame | None, plan_months: tuple[dt.date, dt.date] | None) -> _Block | _Note:
    if plan_months is None:
        return _Note("Price plan: no financial plan this cycle.", 9)
    first, last = plan_months
    rows = None if prices is None else prices.filter(pl.col("month") <= last).sort("month", "level", "key")
    if rows is None or not rows.height:
        return _Note(f"Price plan, {_months(first, last)}: no price changes; prices are the product master's list prices.", 9)
    when = pl.when(pl.col("month") < first).then(pl.lit(f"before {first:%Y-%m}")).otherwise(pl.col("month").dt.strftime("%Y-%m"))
    table = rows.select("level", "key", when.alias("from month"), pl.col("price_change_pct").alias("price change %"))
    return _Block(
        table,
        f"Price plan (every scenario), {_months(first, last)}: list price change from the month on, % (changes compound)",
        {"price change %": "pct"},
        max_rows=15,
    )


# --- risks and opportunities -----------------------------------------------------------------


def _scenario_money(financial: pl.DataFrame, h: Horizon) -> pl.DataFrame:
    """Each scenario's revenue and gross margin over the horizon, and the difference to the baseline."""
    fin = window(with_scenario(financial), h.start, h.end).group_by("scenario").agg(pl.col("revenue").sum(), pl.col("gross_margin").sum())
    base = fin.filter(pl.col("scenario") == BASELINE)
    if not base.height:
        return fin.head(0).with_columns(pl.lit(0.0).alias("revenue_vs_baseline"), pl.lit(0.0).alias("margin_vs_baseline"))
    return fin.filter(pl.col("scenario") != BASELINE).with_columns(
        (pl.col("revenue") - base["revenue"][0]).alias("revenue_vs_baseline"),
        (pl.col("gross_margin") - base["gross_margin"][0]).alias("margin_vs_baseline"),
    )


def _kinds(frame: Frame) -> dict[str, str]:
    for name in (SCENARIOS, "scenario_financials"):
        f = frame(name)
        if f is not None and "kind" in f.columns:
            return dict(f.select("scenario", "kind").iter_rows())
    return {}


def _demand_upside(frame: Frame, h: Horizon, scenario: str) -> pl.DataFrame | None:
    """p90 - p50 of the statistical family forecast over the horizon, at the family's average
    planned price (revenue / volume of the plan over the same months)."""
    forecast, financial = frame("family_forecast"), frame("financial_plan")
    if forecast is None or financial is None:
        return None
    upside = (
        window(forecast, h.start, h.end)
        .filter(pl.col("family") != "ALL")
        .group_by("family")
        .agg((pl.col("p90") - pl.col("p50")).sum().alias("upside_units"))
    )
    price = (
        window(with_scenario(financial), h.start, h.end)
        .filter(pl.col("scenario") == scenario)
        .group_by("family")
        .agg((pl.col("revenue").sum() / pl.col("volume").sum()).alias("average_price"))
    )
    return (
        upside.join(price, on="family", how="inner")
        .with_columns((pl.col("upside_units") * pl.col("average_price")).alias("upside_revenue"))
        .sort("upside_revenue", descending=True)
    )


def _exception_rows(excs: pl.DataFrame, every: set[str]) -> pl.DataFrame:
    subject = pl.concat_str(
        [pl.col(c) for c in ("family", "sku", "resource", "material") if c in excs.columns], separator=" / ", ignore_nulls=True
    )
    names = pl.col("scenarios").fill_null("").str.split(",").list.eval(pl.element().str.strip_chars())
    return excs.sort("rank").select(
        "rank",
        pl.col("kind").str.replace_all("_", " "),
        subject.alias("subject"),
        pl.col("period_label").alias("months"),
        "money",
        pl.col("money_basis").alias("basis"),
        names.map_elements(lambda s: scenario_list([n for n in s.to_list() if n], every), return_dtype=pl.Utf8).alias("scenarios"),
    )


def _exception_items(excs: pl.DataFrame | None, every: set[str]) -> list[_Block | _Note]:
    """Exceptions are money at risk, but for a plan above its budget: that gap is an upside
    to confirm (its recommendation says so), so it is listed with the opportunities."""
    if excs is None:
        return [_Note("Risks: no exception above the materiality thresholds this cycle.", 9)]
    rows = _exception_rows(excs, every)
    if "in_executive_list" in excs.columns:
        rows = rows.with_columns(excs.sort("rank")["in_executive_list"].alias("_listed"))
    else:
        rows = rows.with_columns(pl.lit(False).alias("_listed"))
    upside = (pl.col("kind") == "budget gap") & pl.col("basis").str.contains("(above)", literal=True)
    risks, above = rows.filter(~upside), rows.filter(upside).drop("_listed")
    # Every risk on the executive list (page 1 points here for those it has no room for).
    most = max(TOP_RISKS, int(risks["_listed"].sum()))
    risks = risks.drop("_listed")
    shown = min(risks.height, most)
    items: list[_Block | _Note] = [
        _Block(
            risks.rename({"money": "money at risk"}),
            f"Risks: exceptions above materiality, largest money first (top {shown} of {risks.height}), {MONEY}, over the months shown",
            {"money at risk": "currency"},
            max_rows=most,
            wrap={"basis": 2.6, "scenarios": 2.6},
            key_columns=0,
        )
    ]
    if above.height:
        items.append(
            _Block(
                above.rename({"money": "money above budget"}),
                f"Opportunities: plan above budget beyond tolerance, {MONEY}, over the periods shown",
                {"money above budget": "currency"},
                max_rows=TOP_RISKS,
                wrap={"basis": 2.6, "scenarios": 2.6},
                key_columns=0,
            )
        )
    return items


def risks_page(frame: Frame, h: Horizon, scenario: str) -> _Spec:
    spec = _Spec("Risks and opportunities in money", f"{MONEY}; each table states the months it covers", [])
    financial = frame("financial_plan")
    every = set(with_scenario(financial)["scenario"].unique().to_list()) if financial is not None else set()
    spec.items += _exception_items(frame("exceptions"), every)
    if financial is not None and "gross_margin" in financial.columns:
        kinds = _kinds(frame)
        money = _scenario_money(financial, h).with_columns(pl.col("scenario").replace_strict(kinds, default="-").alias("kind"))
        shown = money.select("scenario", "kind", "revenue_vs_baseline", "margin_vs_baseline").sort("margin_vs_baseline")
        units = {"revenue_vs_baseline": "currency", "margin_vs_baseline": "currency"}
        for title, rows in (
            (f"Risk scenarios: gross margin below the baseline's, {h.text}, {MONEY}", shown.filter(pl.col("margin_vs_baseline") < -0.5)),
            (
                f"Opportunities: scenarios whose gross margin beats the baseline's, {h.text}, {MONEY}",
                shown.filter(pl.col("margin_vs_baseline") > 0.5).sort("margin_vs_baseline", descending=True),
            ),
        ):
            spec.items.append(_Block(rows, title, units, max_rows=12))
    upside = _demand_upside(frame, h, scenario)
    if upside is not None and upside.height:
        spec.items.append(
            _Block(
                upside,
                f"Opportunities: demand upside by family, statistical p90 - p50, {h.text}: units; {MONEY} at the plan's average price",
                {"upside_units": "units", "average_price": "currency", "upside_revenue": "currency"},
                max_rows=12,
            )
        )
        spec.items.append(
            _Note(
                "Monthly p90s added up: an upper bound for the horizon (every month high at once), and before supply: "
                "the supply plan is not solved for it.",
                8,
                "#555555",
            )
        )
    return spec


# --- scenarios side by side ------------------------------------------------------------------

_SIDE = (
    ("fill_rate", "fill rate %", "ratio"),
    ("revenue", "revenue", "currency"),
    ("cost", "cost (revenue - gross margin)", "currency"),
    ("gross_margin", "gross margin", "currency"),
    ("gross_margin_pct", "gross margin %", "ratio"),
    ("late_units", "late units", "units"),
    ("overtime_hours", "overtime hours", "hours"),
    ("inventory_value", "inventory, average month-end value", "currency"),
)


def _delta(value: float | None, unit: str) -> str:
    """A difference as printed: what rounds to zero is 0, not -0."""
    if value is None:
        return "-"
    if unit == "ratio":
        points = round(100 * value, 1)
        return f"{points:+.1f} pts" if points else "0.0 pts"
    whole = round(value)
    return f"{whole:+,.0f}" if whole else "0"


def side_by_side(summary: pl.DataFrame, financial: pl.DataFrame | None, h: Horizon) -> pl.DataFrame:
    """KPIs as rows (each followed by its difference to the baseline), scenarios as columns."""
    wide = summary.filter(pl.col("subject").is_null() if "subject" in summary.columns else pl.lit(True)).pivot(
        on="kpi", index="scenario", values="value", aggregate_function="first"
    )
    if financial is not None:
        fin = (
            window(with_scenario(financial), h.start, h.end)
            .group_by("scenario")
            .agg(
                (pl.col("revenue") - pl.col("gross_margin")).sum().alias("cost"),
                (pl.col("overtime_hours").sum() if "overtime_hours" in financial.columns else pl.lit(None, pl.Float64)).alias(
                    "overtime_hours"
                ),
            )
        )
        wide = wide.join(fin, on="scenario", how="left")
    scenarios = scenario_order(wide["scenario"].to_list())
    values = {row["scenario"]: row for row in wide.iter_rows(named=True)}
    base = values.get(BASELINE, {})
    rows: list[dict[str, str]] = []
    for kpi, label, unit in _SIDE:
        if kpi not in wide.columns:
            continue
        rows.append({"kpi": label, **{s: _fmt(values[s][kpi], unit if unit != "hours" else "units") for s in scenarios}})
        if base and kpi in base:
            rows.append(
                {
                    "kpi": "  vs baseline",
                    **{
                        s: ""
                        if s == BASELINE
                        else _delta(None if values[s][kpi] is None or base[kpi] is None else values[s][kpi] - base[kpi], unit)
                        for s in scenarios
                    },
                }
            )
    return pl.DataFrame(rows, schema={"kpi": pl.Utf8, **{s: pl.Utf8 for s in scenarios}})


def scenarios_page(frame: Frame, h: Horizon, approved: str | None) -> _Spec:
    subtitle = f"{h.text}; {MONEY}, units, hours" + (f"; approved: {approved}" if approved else "")
    spec = _Spec("Scenarios side by side", subtitle, [])
    summary = frame("executive_summary")
    if summary is None:
        spec.missing = "executive summary: not available this cycle"
        return spec
    table = side_by_side(summary, frame("financial_plan"), h)
    kinds = _kinds(frame)
    if kinds:
        table = pl.concat([pl.DataFrame([{"kpi": "kind", **{s: kinds.get(s, "-") for s in table.columns[1:]}}]), table])
    spec.items.append(_Block(table, f"Every scenario, {h.text}: {MONEY}, units, hours; vs baseline: difference (% in points)", max_rows=30))
    spec.items.append(
        _Note(
            "Fill rate: 1 - late units / demand. Cost: everything the gross margin is charged with (cost of goods, "
            "variances, overtime, lateness). Inventory: average month-end value over the horizon.",
            8,
            "#555555",
        )
    )
    return spec


# --- follow-up of earlier decisions ----------------------------------------------------------


def followup_page(frame: Frame, label: str) -> _Spec:
    spec = _Spec("Follow-up of earlier decisions", f"Every decision of earlier meetings as cycle {label} finds it; {MONEY}", [])
    followup = frame("decision_followup")
    if followup is None:
        spec.items.append(_Note("No earlier decisions to follow up: none was recorded in earlier cycles (sop decide).", 10))
        return spec
    order = {"overdue": 0, "open": 1, "resolved": 2, "closed": 3}
    rows = followup.sort([pl.col("status").replace_strict(order, default=4), "due_cycle", "decision_id"])
    if "kind" in rows.columns:
        rows = rows.with_columns(pl.col("kind").str.replace_all("_", " "))
    rows = rows.with_columns(pl.concat_str([pl.col("raised_cycle"), pl.col("due_cycle")], separator=" / ").alias("raised / due"))
    cols = ["decision_id", "kind", "action", "owner", "raised / due", "status", "money_when_raised", "money_now", "outcome", "decided_by"]
    spec.items.append(
        _Block(
            rows.select([c for c in cols if c in rows.columns]).rename(
                {"money_when_raised": "money then", "money_now": "money now"}, strict=False
            ),
            f"Decisions by status (overdue, open, resolved, closed): money of the exception when raised and now, {MONEY}",
            {"money then": "currency", "money now": "currency"},
            max_rows=max(rows.height, 1),
            wrap={"action": 1.9, "outcome": 2.1, "owner": 1.1, "decided_by": 1.1, "kind": 0.8},
        )
    )
    counts = rows.group_by("status").len().sort(pl.col("status").replace_strict(order, default=4))
    spec.items.append(_Note(", ".join(f"{n} {s}" for s, n in counts.iter_rows()) + ".", 9))
    return spec
