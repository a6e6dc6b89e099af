"""Supply exceptions where a decision is taken: per family, binding constraint and month."""

from __future__ import annotations

import polars as pl

from sop_pipeline import registry

# constraint_kind without a resource or material: the label the family row carries instead.
NO_CONSTRAINT = {"mix": "SKU mix", "cost": "cost trade-off"}
TOP_SKUS = 3
GROUP = ["cycle", "scenario", "family", "constraint_kind", "constraint", "month"]


def _large(frame: pl.DataFrame, min_units: float) -> pl.Expr:
    units = [c for c in ("late_units", "shortfall", "below_target") if c in frame.columns]
    return pl.max_horizontal(*units) >= min_units


def sku_exceptions(detail: pl.DataFrame, min_units: float) -> pl.DataFrame:
    """The SKU detail a planner drills into: SKU-months with at least `min_units` short,
    late or below target. The rest are remainders of the fair-share split and solver noise;
    their units stay in the family rows' totals (`units_below_threshold`)."""
    return detail.filter(_large(detail, min_units))


def family_exceptions(detail: pl.DataFrame, min_units: float) -> tuple[pl.DataFrame, dict[str, float]]:
    """Every SKU-month of `detail` (all of them, not only the large ones, so that the units
    add up to the plan's) summed per family, binding constraint and month, and the totals of
    the family rows left out because all their units stay under `min_units`.

    `value_per_unit` is the value lost per late unit; where nothing is late, the SKUs'
    below-target value weighted by units. Each SKU's value is capped at its price, so the
    row's is at most the largest price among its SKUs.
    """
    schema = registry.table("supply_exceptions").polars_schema()
    left_out = {"late_units": 0.0, "below_target": 0.0, "value_lost": 0.0}
    if detail.height == 0:
        return pl.DataFrame(schema=schema), left_out
    large = _large(detail, min_units)
    rows = (
        detail.with_columns(
            pl.col("constraint").fill_null(pl.col("constraint_kind").replace_strict(NO_CONSTRAINT, default=None, return_dtype=pl.Utf8)),
            large.alias("_listed"),
            (pl.col("late_units") + pl.col("below_target")).alias("_units"),
            _sku_label().alias("_label"),
        )
        .sort("_units", "late_units", descending=True)
        .group_by(GROUP, maintain_order=True)
        .agg(
            pl.col("constraint_month").min(),
            pl.len().cast(pl.Int64).alias("skus"),
            pl.col("demand", "late_units", "shortfall", "below_target", "value_lost").sum(),
            (pl.col("value_per_unit") * pl.col("below_target")).sum().alias("_below_value"),
            pl.col("shadow_price").max(),
            pl.col("_units").filter(~pl.col("_listed")).sum().alias("units_below_threshold"),
            pl.col("_label").head(TOP_SKUS).str.join(", ").alias("_top"),
        )
    )
    rows = rows.with_columns(
        pl.when(pl.col("late_units") > 0)
        .then(pl.col("value_lost") / pl.col("late_units"))
        .when(pl.col("below_target") > 0)
        .then(pl.col("_below_value") / pl.col("below_target"))
        .otherwise(0.0)
        .alias("value_per_unit"),
        pl.when(pl.col("skus") > TOP_SKUS)
        .then(pl.format("{} and {} more", "_top", pl.col("skus") - TOP_SKUS))
        .otherwise(pl.col("_top"))
        .alias("top_skus"),
    )
    keep = _large(rows, min_units)
    dropped = rows.filter(~keep)
    left_out = {k: float(dropped[k].sum()) for k in left_out}
    kept = rows.filter(keep).with_columns(_family_explanation().alias("explanation"))
    return kept.sort(GROUP).select(list(schema)), left_out


def _sku_label() -> pl.Expr:
    late = pl.col("late_units").round(1)
    below = pl.col("below_target").round(1)
    return (
        pl.when((pl.col("late_units") >= 0.05) & (pl.col("below_target") >= 0.05))
        .then(pl.format("{} ({} late, {} below target)", "sku", late, below))
        .when(pl.col("late_units") >= 0.05)
        .then(pl.format("{} ({} late)", "sku", late))
        .otherwise(pl.format("{} ({} below target)", "sku", below))
    )


def _family_explanation() -> pl.Expr:
    """What binds, how much it holds back and what that is worth, in one sentence."""
    kind = pl.col("constraint_kind")
    since = pl.col("constraint_month").dt.strftime("%Y-%m")
    cause = (
        pl.when((kind == "capacity") & pl.col("shadow_price").is_null())
        .then(pl.format("{} capacity runs out for these SKUs' own mix (from {})", "constraint", since))
        .when(kind == "capacity")
        .then(pl.format("{} capacity binds (from {}, up to {} per extra hour)", "constraint", since, pl.col("shadow_price").round(2)))
        .when(kind == "material")
        .then(pl.format("material {} runs short (from {}: lead time or supplier capacity)", "constraint", since))
        .when(kind == "mix")
        .then(
            pl.lit("the family plan covers the family, but not these SKUs: their stock sits on other SKUs or their fair share fell short")
        )
        .otherwise(pl.lit("nothing binds: the plan leaves these SKUs short or below target as the cheaper option under models/supply.yaml"))
    )
    late = pl.col("late_units") >= 0.05
    amount = (
        pl.when(late)
        .then(
            pl.format(
                "{} units late and {} below target, {} lost at {} per late unit",
                pl.col("late_units").round(1),
                pl.col("below_target").round(1),
                pl.col("value_lost").round(2),
                pl.col("value_per_unit").round(2),
            )
        )
        .otherwise(pl.format("{} units below target, none late", pl.col("below_target").round(1)))
    )
    return pl.format(
        "{}: in {}, {} over {} SKU(s): {}; each SKU in supply_exception_skus",
        cause,
        pl.col("month").dt.strftime("%Y-%m"),
        amount,
        pl.col("skus"),
        "top_skus",
    )
