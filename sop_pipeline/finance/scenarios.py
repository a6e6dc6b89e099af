"""Every scenario in money, side by side with the baseline."""

from __future__ import annotations

import polars as pl

from sop_pipeline.finance.common import safe_div
from sop_pipeline.settings.scenarios import BASELINE, Scenario


def scenario_comparison(financial_plan: pl.DataFrame, scenarios: dict[str, Scenario] | None = None) -> pl.DataFrame:
    """Every scenario in money over the whole horizon, side by side with the baseline.

    Per cycle and scenario: its kind (baseline, risk, opportunity, lever, from
    `models/scenarios.yaml`), volume, late_units, revenue, unconstrained_revenue, cogs,
    cost_variance, overtime_cost, lateness_cost, gross_margin, gross_margin_pct,
    inventory_value (end of horizon: the last month's stock) and inventory_value_avg (average
    month-end value), then delta_<x> = scenario - baseline for volume, revenue, cogs,
    gross_margin and inventory_value (null without a baseline). exposure = delta_gross_margin
    for risks and opportunities (what the company stands to lose or win); levers carry
    lever_cost = their extra cogs + cost variance over the baseline, what taking them costs.
    """
    kinds = pl.DataFrame(
        {"scenario": list((scenarios or {}).keys()), "kind": [s.kind for s in (scenarios or {}).values()]},
        schema={"scenario": pl.String, "kind": pl.String},
    )
    last = financial_plan.group_by("cycle", "scenario", maintain_order=True).agg(pl.col("month").max().alias("_last"))
    monthly_inv = financial_plan.group_by("cycle", "scenario", "month", maintain_order=True).agg(pl.col("inventory_value").sum())
    inv = (
        monthly_inv.join(last, on=["cycle", "scenario"])
        .group_by("cycle", "scenario", maintain_order=True)
        .agg(
            pl.col("inventory_value").filter(pl.col("month") == pl.col("_last")).sum().alias("inventory_value"),
            pl.col("inventory_value").mean().alias("inventory_value_avg"),
        )
    )
    totals = (
        financial_plan.sort("cycle", "scenario", "family", "month")
        .group_by("cycle", "scenario", maintain_order=True)
        .agg(
            pl.col(
                "volume",
                "late_units",
                "revenue",
                "unconstrained_revenue",
                "cogs",
                "cost_variance",
                "overtime_cost",
                "lateness_cost",
                "gross_margin",
            ).sum()
        )
        .join(inv, on=["cycle", "scenario"], how="left")
        .with_columns((100 * safe_div(pl.col("gross_margin"), pl.col("revenue"))).alias("gross_margin_pct"))
    )
    deltas = ["volume", "revenue", "cogs", "cost_variance", "gross_margin", "inventory_value"]
    base = totals.filter(pl.col("scenario") == BASELINE).select("cycle", *[pl.col(c).alias(f"_base_{c}") for c in deltas])
    kind = pl.coalesce(pl.col("kind"), pl.when(pl.col("scenario") == BASELINE).then(pl.lit(BASELINE)).otherwise(pl.lit("risk")))
    return (
        totals.join(base, on="cycle", how="left")
        .with_columns([(pl.col(c) - pl.col(f"_base_{c}")).alias(f"delta_{c}") for c in deltas])
        .join(kinds, on="scenario", how="left")
        .with_columns(kind.alias("kind"))
        .with_columns(
            pl.when(pl.col("kind").is_in(["risk", "opportunity"])).then(pl.col("delta_gross_margin")).alias("exposure"),
            pl.when(pl.col("kind") == "lever").then(pl.col("delta_cogs") + pl.col("delta_cost_variance")).alias("lever_cost"),
        )
        .sort(pl.col("scenario") != BASELINE, "scenario")
        .select(
            "cycle",
            "scenario",
            "kind",
            "volume",
            "late_units",
            "revenue",
            "unconstrained_revenue",
            "cogs",
            "cost_variance",
            "overtime_cost",
            "lateness_cost",
            "gross_margin",
            "gross_margin_pct",
            "inventory_value",
            "inventory_value_avg",
            *[f"delta_{c}" for c in deltas if c != "cost_variance"],
            "exposure",
            "lever_cost",
        )
    )
