"""What the executive meeting must look at: exceptions above materiality, ranked by money."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from sop_pipeline.executive.kpis import budget_rows, present
from sop_pipeline.periods import cycle_label
from sop_pipeline.rules import late_units
from sop_pipeline.settings.gates import ExecutiveGates
from sop_pipeline.settings.scenarios import BASELINE

EXCEPTIONS_SCHEMA = {
    "cycle": pl.Utf8,
    "scenario": pl.Utf8,
    "rank": pl.Int32,
    "kind": pl.Utf8,
    "subject": pl.Utf8,
    "month": pl.Date,
    "period_label": pl.Utf8,
    "money": pl.Float64,
    "description": pl.Utf8,
}


def exceptions(
    cycle: str,
    supply_plan: pl.DataFrame | None = None,
    capacity_plan: pl.DataFrame | None = None,
    financial_plan: pl.DataFrame | None = None,
    budget_gap: pl.DataFrame | None = None,
    gates: ExecutiveGates | None = None,
    products: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """What the executive meeting must look at: only exceptions above materiality, ranked by
    money within each scenario (`planning.executive_exceptions`).

    * shortfall: family-months whose late units x price exceed `shortfall_revenue`. Price is
      the SKU's `unit_price` from `products` (sku, family, unit_price) when given, else the
      family-month's planned revenue per unit from the financial plan.
    * budget_gap: family-periods where |plan - budget| of revenue or gross margin exceeds
      `budget_gap_amount` and `budget_gap_pct` percent of the budget, at the
      `budget_gap_period` grain (month or quarter).
    * capacity: resources whose utilisation exceeds `utilization` in some month; money = the
      overtime premium they cost (overtime hours x (overtime_cost_per_hour - cost_per_hour)
      from `resources`, when given) + their shadow value (shadow price x load hours: what
      scarcity costs the plan), listed when that money reaches `capacity_money`.
    Whole horizon, every month: an exception in month 20 still deserves a decision now if it is
    material. Kinds whose inputs are absent are left out; `review_notes` says which.
    """
    gates = gates or ExecutiveGates()
    label = cycle_label(cycle)
    parts = [
        _shortfall_exceptions(supply_plan, financial_plan, products, gates, shortfall_mode),
        _budget_exceptions(budget_gap, gates),
        _capacity_exceptions(capacity_plan, resources, gates),
    ]
    frames = [p for p in parts if p is not None and p.height]
    if not frames:
        return pl.DataFrame(schema=EXCEPTIONS_SCHEMA)
    out = pl.concat(frames, how="diagonal_relaxed").with_columns(pl.lit(label).alias("cycle"))
    return (
        out.sort(["scenario", "money", "kind", "subject", "month"], descending=[False, True, False, False, False], nulls_last=True)
        .with_columns(pl.int_range(1, pl.len() + 1).over("scenario").cast(pl.Int32).alias("rank"))
        .select([pl.col(c).cast(t) if c in out.columns or c == "rank" else pl.lit(None, t).alias(c) for c, t in EXCEPTIONS_SCHEMA.items()])
    )


def with_scenario(frame: pl.DataFrame) -> pl.DataFrame:
    return frame if "scenario" in frame.columns else frame.with_columns(pl.lit(BASELINE).alias("scenario"))


def _shortfall_exceptions(supply, financial, products, gates, shortfall_mode) -> pl.DataFrame | None:
    if not present(supply, "sku", "month", "demand", "shortfall"):
        return None
    plan = with_scenario(supply)
    if products is not None and {"sku", "unit_price"} <= set(products.columns):
        keep = ["sku", "unit_price"] + (["family"] if "family" in products.columns and "family" not in plan.columns else [])
        plan = plan.join(products.select(keep), on="sku", how="left")
    if "family" not in plan.columns:
        return None
    late = plan.with_columns(late_units(shortfall_mode).alias("late"))
    if "unit_price" in late.columns:
        fam = late.group_by("scenario", "family", "month").agg(
            pl.col("late").sum(), pl.col("demand").sum(), (pl.col("late") * pl.col("unit_price").fill_null(0)).sum().alias("money")
        )
    elif present(financial, "family", "month", "revenue", "volume"):
        price = with_scenario(financial).select(
            "scenario", "family", "month", pl.when(pl.col("volume") > 0).then(pl.col("revenue") / pl.col("volume")).alias("price")
        )
        fam = (
            late.group_by("scenario", "family", "month")
            .agg(pl.col("late").sum(), pl.col("demand").sum())
            .join(price, on=["scenario", "family", "month"], how="left")
            .with_columns((pl.col("late") * pl.col("price").fill_null(0)).alias("money"))
        )
    else:
        return None
    return fam.filter((pl.col("money") >= gates.materiality.shortfall_revenue) & (pl.col("money") > 0)).select(
        "scenario",
        pl.lit("shortfall").alias("kind"),
        pl.col("family").alias("subject"),
        "month",
        pl.col("month").dt.strftime("%Y-%m").alias("period_label"),
        "money",
        pl.format(
            "{} {}: {} units late of {} demanded; {} of revenue not delivered in the month",
            "family",
            pl.col("month").dt.strftime("%Y-%m"),
            pl.col("late").round(0).cast(pl.Int64),
            pl.col("demand").round(0).cast(pl.Int64),
            pl.col("money").round(0).cast(pl.Int64),
        ).alias("description"),
    )


def _budget_exceptions(budget_gap, gates) -> pl.DataFrame | None:
    if not present(budget_gap, "measure", "plan", "budget"):
        return None
    rows = budget_rows(with_scenario(budget_gap), gates).filter(
        pl.col("measure").is_in(["revenue", "gross_margin"])
        & (pl.col("gap").abs() >= gates.materiality.budget_gap_amount)
        & (pl.col("gap_pct").abs() >= gates.materiality.budget_gap_pct)
    )
    family = pl.col("family") if "family" in rows.columns else pl.lit("ALL")
    month = pl.col("month").cast(pl.Date) if "month" in rows.columns else pl.lit(None, pl.Date)  # null for a quarter
    return rows.select(
        "scenario",
        pl.lit("budget_gap").alias("kind"),
        family.alias("subject"),
        month.alias("month"),
        "period_label",
        pl.col("gap").abs().alias("money"),
        pl.format(
            "{} {} {}: plan {} vs budget {} ({} {}%)",
            family,
            pl.col("period_label"),
            pl.col("measure"),
            pl.col("plan").round(0).cast(pl.Int64),
            pl.col("budget").round(0).cast(pl.Int64),
            pl.when(pl.col("gap") < 0).then(pl.lit("below budget by")).otherwise(pl.lit("above budget by")),
            pl.col("gap_pct").abs().round(1),
        ).alias("description"),
    )


def _capacity_exceptions(capacity, resources, gates) -> pl.DataFrame | None:
    if not present(capacity, "resource", "month", "utilization"):
        return None
    cap = with_scenario(capacity)
    for column in ("load_hours", "overtime_hours", "shadow_price"):
        if column not in cap.columns:
            cap = cap.with_columns(pl.lit(0.0).alias(column))
    if "plant" not in cap.columns:
        cap = cap.with_columns(pl.lit(None, pl.Utf8).alias("plant"))
    if resources is not None and {"resource", "overtime_cost_per_hour"} <= set(resources.columns):
        # Regular conversion cost already pays every hour, so an overtime hour costs its premium
        # (as in the supply LP and the financial review); the full rate when cost_per_hour is unknown.
        regular = pl.col("cost_per_hour") if "cost_per_hour" in resources.columns else pl.lit(0.0)
        premium = (pl.col("overtime_cost_per_hour") - regular).clip(lower_bound=0.0).alias("overtime_premium")
        cap = cap.join(resources.select("resource", premium), on="resource", how="left")
    else:
        cap = cap.with_columns(pl.lit(None, pl.Float64).alias("overtime_premium"))
    hot = cap.filter(pl.col("utilization") > gates.materiality.utilization)
    per = (
        hot.sort("utilization", descending=True)
        .group_by("scenario", "resource")
        .agg(
            pl.col("plant").first(),
            pl.len().alias("months"),
            pl.col("utilization").max().alias("peak"),
            pl.col("month").first().alias("peak_month"),
            pl.col("overtime_hours").fill_null(0).sum().alias("overtime_hours"),
            (pl.col("overtime_hours").fill_null(0) * pl.col("overtime_premium").fill_null(0)).sum().alias("overtime_cost"),
            (pl.col("shadow_price").fill_null(0) * pl.col("load_hours").fill_null(0)).sum().alias("shadow_value"),
            pl.col("shadow_price").fill_null(0).max().alias("max_shadow_price"),
        )
        .with_columns((pl.col("overtime_cost") + pl.col("shadow_value")).alias("money"))
    )
    return per.filter((pl.col("money") >= gates.materiality.capacity_money) & (pl.col("money") > 0)).select(
        "scenario",
        pl.lit("capacity").alias("kind"),
        pl.col("resource").alias("subject"),
        pl.col("peak_month").alias("month"),
        pl.col("peak_month").dt.strftime("%Y-%m").alias("period_label"),
        "money",
        pl.format(
            "{} ({}): above {}% utilisation in {} month(s), peak {}% in {}; {} overtime hours costing {}; "
            "one more hour worth up to {}, shadow value {}",
            "resource",
            pl.col("plant").fill_null("no plant"),
            pl.lit(round(100 * gates.materiality.utilization)),
            "months",
            (100 * pl.col("peak")).round(0).cast(pl.Int64),
            pl.col("peak_month").dt.strftime("%Y-%m"),
            pl.col("overtime_hours").round(0).cast(pl.Int64),
            pl.col("overtime_cost").round(0).cast(pl.Int64),
            pl.col("max_shadow_price").round(2),
            pl.col("shadow_value").round(0).cast(pl.Int64),
        ).alias("description"),
    )


def review_notes(frames: Mapping[str, pl.DataFrame | None]) -> list[str]:
    """Which parts of the executive review were skipped this cycle and why (for asset
    metadata, the CLI and the review pack): absent steps are a note, never a failure."""
    notes = []
    checks = [
        ("supply_plan", "no supply plan this cycle: fill rate, late units and shortfall exceptions skipped"),
        ("capacity_plan", "no capacity plan this cycle: bottleneck utilisation and capacity exceptions skipped"),
        ("financial_plan", "no financial plan this cycle: revenue, margin and inventory value skipped"),
        ("budget_gap", "no budget gap this cycle (no budget or no financial plan): budget KPIs and exceptions skipped"),
        ("forecast_accuracy", "no forecast accuracy yet (no earlier cycle scored): WAPE and bias skipped"),
    ]
    for name, note in checks:
        frame = frames.get(name)
        if frame is None or frame.height == 0:
            notes.append(note)
    return notes
