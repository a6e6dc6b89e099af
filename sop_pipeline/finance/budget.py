"""Plan against the budget per family (and in total), month and quarter."""

from __future__ import annotations

import polars as pl

from sop_pipeline.finance.common import ALL, MEASURES, as_month, quarter_label, safe_div, significant
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


def budget_gap(financial_plan: pl.DataFrame, budget: pl.DataFrame, gates: FinancialGates = FinancialGates()) -> pl.DataFrame:
    """planning.budget_gap: plan against budget for volume, revenue and gross margin.

    One row per cycle, scenario, family (each family and `ALL`), period ('month' | 'quarter'),
    period label ('2026-11' | '2026-Q4') and measure, with plan, budget, gap = plan - budget,
    gap_pct = gap / |budget| x 100 (null when the budget is zero) and above_tolerance (the gap
    passes `gap_tolerance_pct` and `gap_min_abs`). Only months both the plan and the budget
    cover are compared; a quarter sums its covered months, so the first and last quarter of the
    horizon may be partial. `month` is set on month rows only.
    """
    wide = _plan_vs_budget(financial_plan, budget)
    value_cols = [f"{side}_{m}" for side in ("plan", "budget") for m in MEASURES]
    total = (
        wide.sort("cycle", "scenario", "month", "family")
        .group_by("cycle", "scenario", "month", maintain_order=True)
        .agg(pl.col(value_cols).sum())
        .with_columns(pl.lit(ALL).alias("family"))
    )
    monthly = pl.concat(
        [
            wide.select("cycle", "scenario", "family", "month", *value_cols),
            total.select("cycle", "scenario", "family", "month", *value_cols),
        ]
    )
    months = monthly.with_columns(pl.lit("month").alias("period"), pl.col("month").dt.strftime("%Y-%m").alias("period_label"))
    quarters = (
        monthly.with_columns(quarter_label(pl.col("month")).alias("period_label"))
        .sort("cycle", "scenario", "family", "month")
        .group_by("cycle", "scenario", "family", "period_label", maintain_order=True)
        .agg(pl.col(value_cols).sum())
        .with_columns(pl.lit("quarter").alias("period"), pl.lit(None, dtype=pl.Date).alias("month"))
    )
    both = pl.concat([months.select(quarters.columns), quarters], how="vertical")
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
            )
            for m in MEASURES
        ],
        how="vertical",
    )
    order = {m: i for i, m in enumerate(MEASURES)}
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
            "period",
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
        )
    )
