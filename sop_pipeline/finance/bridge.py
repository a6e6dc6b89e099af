"""Revenue bridges: from the budget to this plan by price, volume and mix; from last cycle's plan
of record to this plan by driver (statistical forecast, consensus inputs, portfolio, price,
supply)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from sop_pipeline.finance.budget import _plan_vs_budget
from sop_pipeline.finance.common import ALL, as_month, shipped_units
from sop_pipeline.settings.scenarios import BASELINE

PVM_STEPS = ("start", "volume", "mix", "price", "end")
DRIVER_STEPS = ("start", "statistical_forecast", "consensus_inputs", "portfolio", "price", "supply", "end")
_ORDER = {name: i for i, name in enumerate(dict.fromkeys(PVM_STEPS[:-1] + DRIVER_STEPS))}
_SCHEMA = {
    "cycle": pl.String,
    "comparison": pl.String,
    "scenario": pl.String,
    "family": pl.String,
    "step": pl.String,
    "step_order": pl.Int32,
    "value": pl.Float64,
    "months_from": pl.Date,
    "months_to": pl.Date,
    "months_covered": pl.Int32,
}


@dataclass(frozen=True)
class CycleDetail:
    """One plan at SKU level: statistical forecast, consensus and the scenario's supply plan
    (demand, shortfall). What the driver bridge compares between two cycles."""

    statistical: pl.DataFrame | None = None
    consensus: pl.DataFrame | None = None
    supply_plan: pl.DataFrame | None = None


def _pvm(start: pl.DataFrame, end: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Price / volume / mix at two levels, each adding up to its own revenue change.

    Per family f (index 0 = start, 1 = end; V units, R revenue, p = R / V):
      volume_f = (V1_f - V0_f) x p0_f, price_f = R1_f - R0_f - volume_f, mix_f = 0: the budget
      has no SKU split, so a shift between a family's SKUs moves its average price (price step).
    Company (family `ALL`), mix across families:
      volume = (V1 - V0) x P0 with P0 = R0 / V0 (the budget's average price),
      mix = sum_f V1_f x p0_f - V1 x P0 (more units of dearer families raise revenue),
      price = sum_f V1_f x (p1_f - p0_f) (= R1 - sum_f V1_f x p0_f).
    A family new on one side takes its end price as start price (all mix, at company level);
    a family with revenue but no units contributes its whole change as price.
    """
    s = start.select(*keys, "family", pl.col("volume").alias("v0"), pl.col("revenue").alias("r0"))
    e = end.select(*keys, "family", pl.col("volume").alias("v1"), pl.col("revenue").alias("r1"))
    frame = (
        s.join(e, on=[*keys, "family"], how="full", coalesce=True)
        .with_columns(pl.col("v0", "r0", "v1", "r1").fill_null(0.0))
        .with_columns(
            pl.when(pl.col("v0") > 0)
            .then(pl.col("r0") / pl.col("v0"))
            .when(pl.col("v1") > 0)
            .then(pl.col("r1") / pl.col("v1"))
            .otherwise(0.0)
            .alias("p0")
        )
        .with_columns(((pl.col("v1") - pl.col("v0")) * pl.col("p0")).alias("volume"), pl.lit(0.0).alias("mix"))
        .with_columns((pl.col("r1") - pl.col("r0") - pl.col("volume")).alias("price"))
    )
    family = frame.select(*keys, "family", pl.col("r0").alias("start"), "volume", "mix", "price", pl.col("r1").alias("end"))
    company = (
        frame.group_by(keys, maintain_order=True)
        .agg(
            pl.col("r0").sum().alias("start"),
            pl.col("r1").sum().alias("end"),
            pl.col("v0").sum().alias("V0"),
            pl.col("v1").sum().alias("V1"),
            (pl.col("v1") * pl.col("p0")).sum().alias("at_start_prices"),
        )
        .with_columns(pl.when(pl.col("V0") > 0).then(pl.col("start") / pl.col("V0")).otherwise(0.0).alias("P0"))
        .with_columns(((pl.col("V1") - pl.col("V0")) * pl.col("P0")).alias("volume"))
        .with_columns((pl.col("at_start_prices") - pl.col("start") - pl.col("volume")).alias("mix"))
        .with_columns((pl.col("end") - pl.col("at_start_prices")).alias("price"), pl.lit(ALL).alias("family"))
        .select(family.columns)
    )
    return pl.concat([family, company]).unpivot(index=[*keys, "family"], on=list(PVM_STEPS), variable_name="step", value_name="value")


def _units_by_sku(detail: CycleDetail, shortfall_mode: str, scenario: str | None) -> pl.DataFrame:
    """sku, month, stat, consensus, demand, shipped of one plan (zero where a side is absent)."""
    parts = []
    if detail.statistical is not None and detail.statistical.height:
        parts.append(as_month(detail.statistical).select("sku", "month", pl.col("p50").cast(pl.Float64).alias("stat")))
    if detail.consensus is not None and detail.consensus.height:
        parts.append(as_month(detail.consensus).select("sku", "month", pl.col("quantity").cast(pl.Float64).alias("consensus")))
    if detail.supply_plan is not None and detail.supply_plan.height:
        sp = as_month(detail.supply_plan)
        if scenario is not None and "scenario" in sp.columns:
            sp = sp.filter(pl.col("scenario") == scenario)
        sp = (
            sp.select(
                pl.lit("s").alias("scenario"), "sku", "month", pl.col("demand").cast(pl.Float64), pl.col("shortfall").cast(pl.Float64)
            )
            .sort("sku", "month")
            .with_columns(shipped_units(shortfall_mode).alias("shipped"))
        )
        parts.append(sp.select("sku", "month", "demand", "shipped"))
    frame = pl.DataFrame(schema={"sku": pl.String, "month": pl.Date})
    for part in parts:
        frame = frame.join(part, on=["sku", "month"], how="full", coalesce=True)
    for name in ("stat", "consensus", "demand", "shipped"):
        frame = frame.with_columns(pl.col(name).fill_null(0.0)) if name in frame.columns else frame.with_columns(pl.lit(0.0).alias(name))
    return frame


def driver_bridge(
    plan: pl.DataFrame,
    last_plan: pl.DataFrame,
    this: CycleDetail,
    last: CycleDetail,
    products: pl.DataFrame,
    prices: pl.DataFrame,
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """Revenue of last cycle's plan of record to this plan (one scenario), by driver, per family
    and in total (`ALL`), over the months both plans cover.

    With P this cycle's price per SKU-month (`prices`), st the statistical forecast, c the
    consensus, d the scenario's demand and q the shipped units, index 0 last cycle and 1 this:
      price = sum q0 x P - R0: last plan's units at today's prices against its own revenue;
      portfolio = sum (q1 - q0) x P over SKUs launching or phasing out (status npi or
        phase_out) or planned on one side only;
    and over the other SKUs, at today's prices:
      statistical_forecast = sum (st1 - st0) x P,
      consensus_inputs = sum ((d1 - st1) - (c0 - st0)) x P (sales and marketing layers, and a
        scenario's demand overlays),
      supply = sum ((q1 - d1) - (q0 - c0)) x P (what the supply plan cannot ship, then and now).
    The steps add up to R1 - R0 exactly, per family and in total.
    """
    plan = as_month(plan)
    last_plan = as_month(last_plan)
    months = plan.select("month").unique().join(last_plan.select("month").unique(), on="month", how="inner").sort("month")
    if months.height == 0 or plan.height == 0:
        return pl.DataFrame(schema=_SCHEMA)
    scenario = plan["scenario"][0]
    label = plan["cycle"][0]
    now = _units_by_sku(this, shortfall_mode, scenario).join(months, on="month", how="semi")
    then = _units_by_sku(last, shortfall_mode, None).join(months, on="month", how="semi")
    names = ["stat", "consensus", "demand", "shipped"]
    both = (
        now.rename({n: f"{n}1" for n in names})
        .join(then.rename({n: f"{n}0" for n in names}), on=["sku", "month"], how="full", coalesce=True)
        .with_columns(pl.col(f"{n}{i}").fill_null(0.0) for n in names for i in (0, 1))
        .join(products.select("sku", "family", "status"), on="sku", how="left")
        .join(prices, on=["sku", "month"], how="left")
        .with_columns(pl.col("price").fill_null(0.0))
        .sort("family", "sku", "month", nulls_last=True)
    )
    planned_now = (pl.col("shipped1").abs().sum().over("sku") > 0) | (pl.col("demand1").abs().sum().over("sku") > 0)
    planned_then = (pl.col("shipped0").abs().sum().over("sku") > 0) | (pl.col("consensus0").abs().sum().over("sku") > 0)
    one_side = planned_now != planned_then
    portfolio = pl.col("status").is_in(["npi", "phase_out"]).fill_null(False) | one_side
    P = pl.col("price")
    effects = both.with_columns(portfolio.alias("_portfolio")).select(
        "family",
        (pl.col("shipped0") * P).alias("at_today"),
        pl.when(pl.col("_portfolio")).then((pl.col("shipped1") - pl.col("shipped0")) * P).otherwise(0.0).alias("portfolio"),
        pl.when(~pl.col("_portfolio")).then((pl.col("stat1") - pl.col("stat0")) * P).otherwise(0.0).alias("statistical_forecast"),
        pl.when(~pl.col("_portfolio"))
        .then(((pl.col("demand1") - pl.col("stat1")) - (pl.col("consensus0") - pl.col("stat0"))) * P)
        .otherwise(0.0)
        .alias("consensus_inputs"),
        pl.when(~pl.col("_portfolio"))
        .then(((pl.col("shipped1") - pl.col("demand1")) - (pl.col("shipped0") - pl.col("consensus0"))) * P)
        .otherwise(0.0)
        .alias("supply"),
    )
    drivers = ["statistical_forecast", "consensus_inputs", "portfolio", "supply"]
    # sorted, order kept: float sums come out bit for bit the same on a rerun (the plan version)
    by_family = effects.sort("family", nulls_last=True).group_by("family", maintain_order=True).agg(pl.col("at_today", *drivers).sum())
    if then["shipped"].abs().sum() == 0:  # no SKU units of last cycle's plan: nothing to reprice
        by_family = by_family.with_columns(pl.lit(None, dtype=pl.Float64).alias("at_today"))
    start = (
        last_plan.join(months, on="month", how="semi")
        .sort("family", "month")
        .group_by("family", maintain_order=True)
        .agg(pl.col("revenue").sum().alias("start"))
    )
    end = (
        plan.join(months, on="month", how="semi")
        .sort("family", "month")
        .group_by("family", maintain_order=True)
        .agg(pl.col("revenue").sum().alias("end"))
    )
    fam = (
        start.join(end, on="family", how="full", coalesce=True)
        .join(by_family, on="family", how="full", coalesce=True)
        .with_columns(pl.col("start", "end", *drivers).fill_null(0.0))
        # without SKU units of last cycle's plan there is nothing to reprice: no price step
        .with_columns(pl.coalesce("at_today", "start").alias("at_today"))
        .with_columns((pl.col("at_today") - pl.col("start")).alias("price"))
    )
    # Units of a SKU the product master does not know (no family) have no money in either plan.
    fam = fam.filter(pl.col("family").is_not_null())
    # What the SKU-level walk does not reach (a family's revenue without SKU units, float
    # rounding) stays in supply, so every family adds up exactly.
    fam = fam.with_columns((pl.col("supply") + pl.col("end") - pl.col("start") - pl.sum_horizontal("price", *drivers)).alias("supply"))
    total = fam.select(pl.lit(ALL).alias("family"), *[pl.col(c).sum() for c in ("start", "end", "price", *drivers)])
    steps = list(DRIVER_STEPS)
    return (
        pl.concat([fam.select("family", *steps), total.select("family", *steps)])
        .unpivot(index="family", on=steps, variable_name="step", value_name="value")
        .with_columns(
            pl.lit(label).alias("cycle"),
            pl.lit("last_cycle_to_plan").alias("comparison"),
            pl.lit(scenario).alias("scenario"),
            pl.lit(months["month"].min()).alias("months_from"),
            pl.lit(months["month"].max()).alias("months_to"),
            pl.lit(months.height, dtype=pl.Int32).alias("months_covered"),
        )
    )


def plan_bridge(
    financial_plan: pl.DataFrame,
    budget: pl.DataFrame | None = None,
    last_plan: pl.DataFrame | None = None,
    this: CycleDetail | None = None,
    last: CycleDetail | None = None,
    products: pl.DataFrame | None = None,
    prices: dict[str, pl.DataFrame] | None = None,
    shortfall_mode: str = "backorder",
) -> pl.DataFrame:
    """planning.plan_bridge: revenue from the budget, and from last cycle's plan of record, to
    this cycle's plan, per scenario, per family and for the company (`ALL`).

    Rows: cycle, comparison, scenario, family, step, step_order, value, months_from, months_to,
    months_covered (the months the comparison covers: both sides have them). budget_to_plan
    steps start, volume, mix, price, end (`_pvm`); last_cycle_to_plan steps start,
    statistical_forecast, consensus_inputs, portfolio, price, supply, end (`driver_bridge`,
    when `this`, `last`, `products` and `prices` per scenario are given; without SKU detail
    the whole change of a family is one supply step). For every family and for ALL the
    effect steps add up to end - start exactly.
    """
    plan = as_month(financial_plan).select("cycle", "scenario", "family", "month", "volume", "revenue")
    keys = ["cycle", "comparison", "scenario"]
    parts = []
    if budget is not None and budget.height:
        wide = _plan_vs_budget(plan.with_columns(pl.lit(0.0).alias("gross_margin")), budget)
        covered = wide.group_by("cycle", "scenario").agg(
            pl.col("month").min().alias("months_from"),
            pl.col("month").max().alias("months_to"),
            pl.col("month").n_unique().cast(pl.Int32).alias("months_covered"),
        )
        agg = wide.group_by("cycle", "scenario", "family", maintain_order=True).agg(
            pl.col("plan_volume", "plan_revenue", "budget_volume", "budget_revenue").sum()
        )
        agg = agg.with_columns(pl.lit("budget_to_plan").alias("comparison"))
        pvm = _pvm(
            agg.select(*keys, "family", pl.col("budget_volume").alias("volume"), pl.col("budget_revenue").alias("revenue")),
            agg.select(*keys, "family", pl.col("plan_volume").alias("volume"), pl.col("plan_revenue").alias("revenue")),
            keys,
        )
        parts.append(pvm.join(covered, on=["cycle", "scenario"], how="left"))
    if last_plan is not None and last_plan.height:
        last_plan = as_month(last_plan)
        if "scenario" in last_plan.columns:
            approved = last_plan["scenario"].unique().to_list()
            last_plan = last_plan.filter(pl.col("scenario") == (BASELINE if BASELINE in approved else sorted(approved)[0]))
        for scenario in plan["scenario"].unique(maintain_order=True).to_list():
            mine = as_month(financial_plan).filter(pl.col("scenario") == scenario)
            price = (prices or {}).get(scenario)
            if price is None or products is None:
                price = pl.DataFrame(schema={"sku": pl.String, "month": pl.Date, "price": pl.Float64})
            parts.append(
                driver_bridge(
                    mine,
                    last_plan,
                    this or CycleDetail(),
                    last or CycleDetail(),
                    products if products is not None else _no_products(),
                    price,
                    shortfall_mode,
                )
            )
    if not parts:
        return pl.DataFrame(schema=_SCHEMA)
    return pl.concat(
        [
            p.with_columns(pl.col("step").replace_strict(_ORDER, return_dtype=pl.Int32).alias("step_order")).select(list(_SCHEMA))
            for p in parts
        ],
        how="vertical_relaxed",
    ).sort("comparison", "scenario", pl.col("family") == ALL, "family", "step_order")


def _no_products() -> pl.DataFrame:
    return pl.DataFrame(schema={"sku": pl.String, "family": pl.String, "status": pl.String})
