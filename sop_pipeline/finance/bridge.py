"""Revenue bridges: volume, mix and price steps from the budget, or last cycle's plan, to this plan."""

from __future__ import annotations

import polars as pl

from sop_pipeline.finance.budget import _plan_vs_budget
from sop_pipeline.finance.common import ALL, BRIDGE_STEPS, as_month
from sop_pipeline.settings.scenarios import BASELINE


def _pvm(start: pl.DataFrame, end: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Family-level price/volume/mix steps from `start` to `end` (family, volume, revenue per keys).

    With V total units, s a family's unit share and p its average price (revenue / units),
    start values indexed 0 and end values 1, per family f:
      volume_f = (V1 - V0) x s0_f x p0_f   (sums to (V1 - V0) x average start price)
      mix_f    = (s1_f - s0_f) x V1 x p0_f
      price_f  = (R1_f - R0_f) - volume_f - mix_f   (= V1_f x (p1_f - p0_f) when p0_f exists)
    Price is the residual so that the steps add up to R1 - R0 exactly, also for a family new
    on one side (its start price is its end price: it is all mix) or a budget with revenue but
    no units. SKU mix inside a family moves the family's average price, so it shows as price.
    """
    s = start.select(*keys, "family", pl.col("volume").alias("v0"), pl.col("revenue").alias("r0"))
    e = end.select(*keys, "family", pl.col("volume").alias("v1"), pl.col("revenue").alias("r1"))
    frame = s.join(e, on=[*keys, "family"], how="full", coalesce=True).with_columns(pl.col("v0", "r0", "v1", "r1").fill_null(0.0))
    frame = (
        frame.with_columns(
            pl.col("v0").sum().over(keys).alias("V0"),
            pl.col("v1").sum().over(keys).alias("V1"),
        )
        .with_columns(
            pl.when(pl.col("V0") > 0).then(pl.col("v0") / pl.col("V0")).otherwise(0.0).alias("s0"),
            pl.when(pl.col("V1") > 0).then(pl.col("v1") / pl.col("V1")).otherwise(0.0).alias("s1"),
            pl.when(pl.col("v0") > 0)
            .then(pl.col("r0") / pl.col("v0"))
            .when(pl.col("v1") > 0)
            .then(pl.col("r1") / pl.col("v1"))
            .otherwise(0.0)
            .alias("p0"),
        )
        .with_columns(
            ((pl.col("V1") - pl.col("V0")) * pl.col("s0") * pl.col("p0")).alias("volume"),
            ((pl.col("s1") - pl.col("s0")) * pl.col("V1") * pl.col("p0")).alias("mix"),
        )
        .with_columns(
            (pl.col("r1") - pl.col("r0") - pl.col("volume") - pl.col("mix")).alias("price"),
        )
    )
    steps = frame.unpivot(index=[*keys, "family"], on=["volume", "mix", "price"], variable_name="step", value_name="value")
    ends = (
        frame.group_by(keys, maintain_order=True)
        .agg(pl.col("r0").sum().alias("start"), pl.col("r1").sum().alias("end"))
        .unpivot(index=keys, on=["start", "end"], variable_name="step", value_name="value")
        .with_columns(pl.lit(ALL).alias("family"))
    )
    order = {name: i for i, name in enumerate(BRIDGE_STEPS)}
    return pl.concat([steps, ends.select(steps.columns)], how="vertical").with_columns(
        pl.col("step").replace_strict(order, return_dtype=pl.Int32).alias("step_order")
    )


def plan_bridge(financial_plan: pl.DataFrame, budget: pl.DataFrame | None = None, last_plan: pl.DataFrame | None = None) -> pl.DataFrame:
    """planning.plan_bridge: revenue from the budget, and from last cycle's approved plan, to
    this cycle's plan, per scenario, in price / volume / mix steps (see `_pvm`).

    Rows: cycle, comparison ('budget_to_plan' | 'last_cycle_to_plan'), scenario, family, step
    ('start' | 'volume' | 'mix' | 'price' | 'end'), step_order, value. start and end carry
    family `ALL`; the effects are per family and their sum over families and steps is exactly
    end - start. budget_to_plan covers the months both the plan and the budget cover;
    last_cycle_to_plan the months both plans cover, starting from last cycle's baseline.
    """
    plan = financial_plan.select("cycle", "scenario", "family", "month", "volume", "revenue")
    keys = ["cycle", "comparison", "scenario"]
    parts = []
    if budget is not None and budget.height:
        wide = _plan_vs_budget(plan.with_columns(pl.lit(0.0).alias("gross_margin")), budget)
        agg = wide.group_by("cycle", "scenario", "family", maintain_order=True).agg(
            pl.col("plan_volume", "plan_revenue", "budget_volume", "budget_revenue").sum()
        )
        agg = agg.with_columns(pl.lit("budget_to_plan").alias("comparison"))
        parts.append(
            _pvm(
                agg.select(*keys, "family", pl.col("budget_volume").alias("volume"), pl.col("budget_revenue").alias("revenue")),
                agg.select(*keys, "family", pl.col("plan_volume").alias("volume"), pl.col("plan_revenue").alias("revenue")),
                keys,
            )
        )
    if last_plan is not None and last_plan.height:
        last = as_month(last_plan)
        if "scenario" in last.columns:
            last = last.filter(pl.col("scenario") == BASELINE)
        months = (
            plan.select("month").unique(maintain_order=True).join(last.select("month").unique(maintain_order=True), on="month", how="inner")
        )
        heads = plan.select("cycle", "scenario").unique(maintain_order=True).with_columns(pl.lit("last_cycle_to_plan").alias("comparison"))
        start = heads.join(
            last.join(months, on="month", how="semi").group_by("family", maintain_order=True).agg(pl.col("volume", "revenue").sum()),
            how="cross",
        )
        end = (
            plan.join(months, on="month", how="semi")
            .group_by("cycle", "scenario", "family", maintain_order=True)
            .agg(pl.col("volume", "revenue").sum())
            .with_columns(pl.lit("last_cycle_to_plan").alias("comparison"))
        )
        parts.append(_pvm(start.select(*keys, "family", "volume", "revenue"), end.select(*keys, "family", "volume", "revenue"), keys))
    if not parts:
        return pl.DataFrame(
            schema={
                "cycle": pl.String,
                "comparison": pl.String,
                "scenario": pl.String,
                "family": pl.String,
                "step": pl.String,
                "step_order": pl.Int32,
                "value": pl.Float64,
            }
        )
    return (
        pl.concat(parts, how="vertical")
        .select("cycle", "comparison", "scenario", "family", "step", "step_order", "value")
        .sort("comparison", "scenario", "step_order", "family")
    )
