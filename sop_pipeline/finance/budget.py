"""Plan against the budget per family (and in total), month and quarter."""

from __future__ import annotations

import datetime as dt

import polars as pl

from sop_pipeline.finance.common import ALL, MEASURES, as_month, safe_div, significant
from sop_pipeline.periods import cycle_month, fiscal_quarter_label, fiscal_year_label
from sop_pipeline.settings.gates import FinancialGates


def budget_by_family_month(budget: pl.DataFrame) -> pl.DataFrame:
    """The budget per family and month with cogs (revenue - gross margin when not given)."""
    frame = as_month(budget)
    cogs = pl.col("cogs") if "cogs" in frame.columns else pl.col("revenue") - pl.col("gross_margin")
    return (
        frame.select(
            "family",
            "month",
            pl.col("volume").cast(pl.Float64),
            pl.col("revenue").cast(pl.Float64),
            pl.col("gross_margin").cast(pl.Float64),
            cogs.cast(pl.Float64).alias("cogs"),
        )
        .sort("family", "month")
        .group_by("family", "month", maintain_order=True)
        .sum()
    )


def _plan_vs_budget(plan: pl.DataFrame, budget: pl.DataFrame) -> pl.DataFrame:
    """Plan and budget side by side per cycle, scenario, family and month, over the months both
    cover: a plan month beyond the budget year has nothing to be compared with, while a family
    one side lacks in a covered month counts as zero on that side."""
    bud = budget_by_family_month(budget)
    months = plan.select("month").unique(maintain_order=True).join(bud.select("month").unique(maintain_order=True), on="month", how="inner")
    p = plan.join(months, on="month", how="semi")
    b = bud.join(months, on="month", how="semi")
    heads = p.select("cycle", "scenario").unique(maintain_order=True)
    families = pl.concat([p.select("family"), b.select("family")]).unique(maintain_order=True)
    grid = heads.join(families, how="cross").join(months, how="cross")
    return (
        grid.join(
            p.select("cycle", "scenario", "family", "month", *[pl.col(m).alias(f"plan_{m}") for m in MEASURES]),
            on=["cycle", "scenario", "family", "month"],
            how="left",
        )
        .join(b.select("family", "month", *[pl.col(m).alias(f"budget_{m}") for m in MEASURES]), on=["family", "month"], how="left")
        .with_columns(pl.col("^(plan|budget)_.*$").fill_null(0.0))
    )


def budget_gap(
    financial_plan: pl.DataFrame,
    budget: pl.DataFrame,
    gates: FinancialGates = FinancialGates(),
    actuals: pl.DataFrame | None = None,
    fiscal_start_month: int = 1,
) -> pl.DataFrame:
    """planning.budget_gap: plan against budget for volume, revenue and gross margin.

    One row per cycle, scenario, family (each family and `ALL`), period ('month' | 'quarter' |
    'fiscal_year'), period label ('2026-11' | 'FY2026-Q4' | 'FY2026') and measure, with plan,
    budget, gap = plan - budget, gap_pct = gap / |budget| x 100 (null when the budget is zero),
    above_tolerance (material: `significant`) and actual_months. Month rows compare the plan
    months the budget covers. Quarters and fiscal years (from `fiscal_start_month`) are whole:
    a period is listed only when every one of its months is either closed (in `actuals`, the
    history valued by `actuals_by_family`) or planned, and budgeted; its 'plan' is then actuals
    to date + plan (a latest estimate of the period), and actual_months says how many of its
    months are history. `month` is set on month rows only.
    """
    wide = _plan_vs_budget(financial_plan, budget)
    value_cols = [f"{side}_{m}" for side in ("plan", "budget") for m in MEASURES]
    monthly = _with_total(wide.select("cycle", "scenario", "family", "month", *value_cols), value_cols).with_columns(
        pl.lit(0, dtype=pl.Int32).alias("actual_months")
    )
    months = monthly.with_columns(pl.lit("month").alias("period"), pl.col("month").dt.strftime("%Y-%m").alias("period_label"))
    closed = _closed_vs_budget(financial_plan, budget, actuals, value_cols)
    periods = []
    for period, label, size in (
        ("quarter", fiscal_quarter_label(pl.col("month"), fiscal_start_month), 3),
        ("fiscal_year", fiscal_year_label(pl.col("month"), fiscal_start_month), 12),
    ):
        periods.append(
            pl.concat([monthly, closed], how="vertical_relaxed")
            .with_columns(label.alias("period_label"))
            .sort("cycle", "scenario", "family", "month")
            .group_by("cycle", "scenario", "family", "period_label", maintain_order=True)
            .agg(pl.col(value_cols).sum(), pl.col("actual_months").sum(), pl.col("month").n_unique().alias("_months"))
            .filter(pl.col("_months") == size)
            .drop("_months")
            .with_columns(pl.lit(period).alias("period"), pl.lit(None, dtype=pl.Date).alias("month"))
        )
    both = pl.concat([months.select(periods[0].columns), *periods], how="vertical_relaxed")
    long = pl.concat(
        [
            both.select(
                "cycle",
                "scenario",
                "family",
                "period",
                "period_label",
                "month",
                pl.lit(m).alias("measure"),
                pl.col(f"plan_{m}").alias("plan"),
                pl.col(f"budget_{m}").alias("budget"),
                "actual_months",
            )
            for m in MEASURES
        ],
        how="vertical",
    )
    order = {m: i for i, m in enumerate(MEASURES)}
    grains = {"month": 0, "quarter": 1, "fiscal_year": 2}
    return (
        long.with_columns(
            (pl.col("plan") - pl.col("budget")).alias("gap"),
        )
        .with_columns(
            (100 * safe_div(pl.col("gap"), pl.col("budget").abs())).alias("gap_pct"),
            significant(pl.col("gap"), pl.col("budget"), gates).alias("above_tolerance"),
        )
        .sort(
            "scenario",
            pl.col("family") == ALL,
            "family",
            pl.col("period").replace_strict(grains, return_dtype=pl.Int32),
            "period_label",
            pl.col("measure").replace_strict(order, return_dtype=pl.Int32),
        )
        .select(
            "cycle",
            "scenario",
            "family",
            "period",
            "period_label",
            "month",
            "measure",
            "plan",
            "budget",
            "gap",
            "gap_pct",
            "above_tolerance",
            pl.col("actual_months").cast(pl.Int32),
        )
    )


def _with_total(frame: pl.DataFrame, value_cols: list[str]) -> pl.DataFrame:
    total = (
        frame.sort("cycle", "scenario", "month", "family")
        .group_by("cycle", "scenario", "month", maintain_order=True)
        .agg(pl.col(value_cols).sum())
        .with_columns(pl.lit(ALL).alias("family"))
    )
    return pl.concat([frame, total.select(frame.columns)])


def _closed_vs_budget(
    financial_plan: pl.DataFrame, budget: pl.DataFrame, actuals: pl.DataFrame | None, value_cols: list[str]
) -> pl.DataFrame:
    """Closed months (actuals before the plan's first month) beside their budget, for every
    scenario of the plan (history is the same in all of them), with a family and ALL row."""
    if actuals is None or actuals.height == 0 or financial_plan.height == 0:
        return pl.DataFrame(
            schema={
                "cycle": pl.String,
                "scenario": pl.String,
                "family": pl.String,
                "month": pl.Date,
                **{c: pl.Float64 for c in value_cols},
                "actual_months": pl.Int32,
            }
        )
    first = financial_plan["month"].min()
    bud = budget_by_family_month(budget)
    act = as_month(actuals).filter(pl.col("month") < first)
    act = act.join(bud.select("month").unique(), on="month", how="semi")
    families = (
        pl.concat([act.select("family"), bud.join(act.select("month").unique(), on="month", how="semi").select("family")])
        .unique()
        .sort("family")
    )
    grid = families.join(act.select("month").unique().sort("month"), how="cross")
    wide = (
        grid.join(act.select("family", "month", *[pl.col(m).alias(f"plan_{m}") for m in MEASURES]), on=["family", "month"], how="left")
        .join(bud.select("family", "month", *[pl.col(m).alias(f"budget_{m}") for m in MEASURES]), on=["family", "month"], how="left")
        .with_columns(pl.col(value_cols).fill_null(0.0))
    )
    heads = financial_plan.select("cycle", "scenario").unique(maintain_order=True)
    frame = heads.join(wide, how="cross").select("cycle", "scenario", "family", "month", *value_cols)
    return _with_total(frame, value_cols).with_columns(pl.lit(1, dtype=pl.Int32).alias("actual_months"))


def actuals_by_family(sales: pl.DataFrame | None, unit_costs: pl.DataFrame, before: dt.date) -> pl.DataFrame:
    """Closed months in money per family and month: volume (units sold), revenue at the actual
    net price where the history has one (`marts.fct_sales_monthly`, the list price elsewhere)
    and gross_margin = revenue - units x the cost basis (the history has no actual cost).
    Only months before `before` (the cycle month). Columns: family, month, volume, revenue,
    gross_margin."""
    schema = {"family": pl.String, "month": pl.Date, "volume": pl.Float64, "revenue": pl.Float64, "gross_margin": pl.Float64}
    if sales is None or sales.height == 0:
        return pl.DataFrame(schema=schema)
    frame = as_month(sales).filter(pl.col("month") < before)
    revenue = pl.col("revenue") if "revenue" in frame.columns else pl.col("quantity") * pl.col("net_price")
    return (
        frame.select("sku", "month", pl.col("quantity").cast(pl.Float64), revenue.cast(pl.Float64).alias("revenue"))
        .join(unit_costs.select("sku", "family", "valuation_cost"), on="sku", how="inner")
        .sort("family", "month", "sku")
        .group_by("family", "month", maintain_order=True)
        .agg(
            pl.col("quantity").sum().alias("volume"),
            pl.col("revenue").sum(),
            (pl.col("revenue") - pl.col("quantity") * pl.col("valuation_cost")).sum().alias("gross_margin"),
        )
        .select(list(schema))
    )


def latest_estimate(budget_gap_rows: pl.DataFrame, cycle: str, fiscal_start_month: int = 1) -> pl.DataFrame:
    """planning.latest_estimate: the fiscal year the cycle falls in, actuals to date + plan for
    the rest of it, against the annual budget, per scenario, family (and ALL) and measure.

    Read from budget_gap's fiscal_year row of that year, which is listed only when the year is
    whole (closed months in the history, the rest planned, every month budgeted): actual,
    plan, latest_estimate (= actual + plan), budget, gap, gap_pct, above_tolerance,
    actual_months, plan_months.
    """
    label = pl.select(fiscal_year_label(pl.lit(cycle_month(cycle)), fiscal_start_month)).item()
    fy = budget_gap_rows.filter((pl.col("period") == "fiscal_year") & (pl.col("period_label") == label))
    month_rows = budget_gap_rows.filter(pl.col("period") == "month").with_columns(
        fiscal_year_label(pl.col("month"), fiscal_start_month).alias("_fy")
    )
    planned = (
        month_rows.filter(pl.col("_fy") == label)
        .sort("scenario", "family", "measure", "month")
        .group_by("scenario", "family", "measure", maintain_order=True)
        .agg(pl.col("plan").sum().alias("plan_part"), pl.len().cast(pl.Int32).alias("plan_months"))
    )
    return (
        fy.join(planned, on=["scenario", "family", "measure"], how="left")
        .with_columns(pl.col("plan_part").fill_null(0.0), pl.col("plan_months").fill_null(0))
        .select(
            "cycle",
            "scenario",
            "family",
            pl.col("period_label").alias("fiscal_year"),
            "measure",
            (pl.col("plan") - pl.col("plan_part")).alias("actual"),
            pl.col("plan_part").alias("plan"),
            pl.col("plan").alias("latest_estimate"),
            "budget",
            "gap",
            "gap_pct",
            "above_tolerance",
            "actual_months",
            "plan_months",
        )
    )
