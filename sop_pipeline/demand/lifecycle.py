"""The statistical forecast per portfolio SKU and month, with launches, phase-outs and
supersessions applied."""

from __future__ import annotations

import polars as pl

from sop_pipeline.settings.product import LifecycleSettings

# A predecessor's cut moves in the months it fades or is gone; a successor takes it in the
# months it sells (launched and not yet discontinued itself).
MOVING = ("phase_out", "discontinued")
NOT_SELLING = ("pre_launch", "discontinued")
QUANTILES = ("p10", "p50", "p90")


def _uncut(base: pl.DataFrame, portfolio: pl.DataFrame, settings: LifecycleSettings) -> pl.DataFrame:
    """Every portfolio SKU-month with the forecast it would have before the ramps (own, else
    the like-item's, else the launch volume with its stated band, else zero) and its model."""
    low, high = settings.launch_volume_band
    own = base.select("sku", "month", "model", *QUANTILES)
    like = base.select(
        pl.col("sku").alias("like_sku"),
        "month",
        pl.col("model").alias("like_model"),
        *[pl.col(q).alias(f"like_{q}") for q in QUANTILES],
    )
    frame = portfolio.join(own, on=["sku", "month"], how="left").join(like, on=["like_sku", "month"], how="left")
    has_own = pl.col("p50").is_not_null()
    has_like = pl.col("like_p50").is_not_null()
    has_volume = pl.col("launch_volume").is_not_null()

    def pick(q: str, volume_factor: float) -> pl.Expr:
        return (
            pl.when(has_own)
            .then(pl.col(q))
            .when(has_like)
            .then(pl.col(f"like_{q}"))
            .when(has_volume)
            .then(pl.col("launch_volume") * volume_factor)
            .otherwise(0.0)
        )

    model = (
        pl.when(has_own)
        .then(pl.col("model"))
        .when(has_like)
        .then(pl.format("like:{}:{}", pl.col("like_sku"), pl.col("like_model")))
        .when(has_volume)
        .then(pl.lit("launch_volume"))
        .otherwise(pl.lit("no_history"))
    )
    return frame.select(
        "cycle",
        "sku",
        "family",
        "month",
        "lifecycle_status",
        "successor_sku",
        "ramp_factor",
        model.alias("model"),
        pick("p10", low).alias("u10"),
        pick("p50", 1.0).alias("u50"),
        pick("p90", high).alias("u90"),
    )


def supersession_moves(uncut: pl.DataFrame) -> pl.DataFrame:
    """Per predecessor and month, what its phase-out cuts from the forecast and hands to its
    successor: the forecast before the cut times (1 - ramp factor), in the months it fades or
    is discontinued and its successor sells. In a month the successor does not sell yet the
    cut is not moved: that volume is lost, and the phase-out exception counts it."""
    selling = uncut.filter(~pl.col("lifecycle_status").is_in(NOT_SELLING)).select(
        pl.col("sku").alias("successor_sku"), pl.col("family").alias("successor_family"), "month"
    )
    cut = 1.0 - pl.col("ramp_factor")
    return (
        uncut.filter(pl.col("successor_sku").is_not_null() & pl.col("lifecycle_status").is_in(MOVING))
        .join(selling, on=["successor_sku", "month"], how="inner")
        .select(
            "cycle",
            "sku",
            "family",
            "successor_sku",
            "successor_family",
            "month",
            "lifecycle_status",
            pl.col("u50").alias("forecast_units"),
            (pl.col("u50") * pl.col("ramp_factor")).alias("kept_units"),
            (pl.col("u50") * cut).alias("moved_units"),
            (pl.col("u10") * cut).alias("moved_p10"),
            (pl.col("u90") * cut).alias("moved_p90"),
        )
        .sort("sku", "month")
    )


def apply_lifecycle(base: pl.DataFrame, portfolio: pl.DataFrame, settings: LifecycleSettings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The statistical forecast per portfolio SKU and month, lifecycle applied, and the
    supersession moves (`supersession_moves`, the rows of planning.supersession).

    `base` holds the forecasts of SKUs with history (sku, month, model, p10, p50, p90).
    A SKU with its own forecast keeps it; a new product takes its like-item's; without a
    like-item forecast, a `launch_volume` gives a flat forecast with the band of
    `launch_volume_band` (models/product.yaml); otherwise the SKU has no basis of its own
    (zero). Everything is multiplied by the portfolio's ramp factor, so launches ramp up and
    phase-outs reach zero at their discontinue month; what a phase-out with a `successor_sku`
    loses that way is added to the successor, band included (p10 to p10, p90 to p90), so the
    company's demand does not drop because a product changed its code. A successor with no
    basis of its own is labelled `supersedes:<predecessors>`.
    """
    uncut = _uncut(base, portfolio, settings)
    moves = supersession_moves(uncut)
    taken = moves.group_by("successor_sku", "month").agg(
        pl.col("moved_p10").sum(), pl.col("moved_units").sum().alias("moved_p50"), pl.col("moved_p90").sum()
    )
    predecessors = moves.group_by("successor_sku").agg(pl.col("sku").unique().sort().str.join(",").alias("predecessors"))
    frame = uncut.join(taken.rename({"successor_sku": "sku"}), on=["sku", "month"], how="left").join(
        predecessors.rename({"successor_sku": "sku"}), on="sku", how="left"
    )
    model = (
        pl.when((pl.col("model") == "no_history") & pl.col("predecessors").is_not_null())
        .then(pl.format("supersedes:{}", "predecessors"))
        .otherwise(pl.col("model"))
    )
    forecast = frame.select(
        "cycle",
        "sku",
        "family",
        "month",
        model.alias("model"),
        *[(pl.col(f"u{q[1:]}") * pl.col("ramp_factor") + pl.col(f"moved_{q}").fill_null(0.0)).alias(q) for q in QUANTILES],
    ).sort("sku", "month")
    return forecast, moves.drop("moved_p10", "moved_p90")


def supersession_pairs(moves: pl.DataFrame) -> pl.DataFrame:
    """One row per predecessor and successor: the months and units moved, what the demand
    review reports (a planner checks the pair, not 24 rows of it)."""
    return (
        moves.group_by("sku", "successor_sku")
        .agg(
            pl.col("month").min().alias("first_month"),
            pl.col("month").max().alias("last_month"),
            pl.col("moved_units").sum().round(1),
            pl.col("forecast_units").sum().round(1),
        )
        .rename({"sku": "predecessor"})
        .sort("moved_units", "predecessor", descending=[True, False])
    )
