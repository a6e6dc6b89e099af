"""Inventory targets: safety stock from the consensus band, plus cycle stock."""

from __future__ import annotations

import math

import polars as pl
from scipy.special import ndtri

from sop_pipeline.periods import cycle_label
from sop_pipeline.settings.supply import InventoryTargetSettings
from sop_pipeline.supply.common import P10_P90_SPAN
from sop_pipeline.supply.inputs import typed_frame


def compute_inventory_targets(
    demand: pl.DataFrame, segmentation: pl.DataFrame | None, settings: InventoryTargetSettings, cycle: str
) -> pl.DataFrame:
    """Safety stock and target inventory per SKU and month, sized on the forecast's own doubt.

    The demand review's p10-p90 band says how wrong the consensus may be: sigma is about
    (p90 - p10) / 2.563 for a normal error. Stock at the end of a month must protect the demand
    of the months until the next replenishment can arrive (`protection_months`: review period
    plus production lead time), so safety stock = z(service level) x sigma of next month's
    demand x sqrt(protection months). The service level comes from the SKU's segment: an
    'AX'-style entry first, then its ABC class, then the default. Target inventory adds cycle
    stock (`cycle_stock_months` of next month's demand): with monthly replenishment the average
    lot on hand. Targets are end-of-month targets; the last horizon month reuses its own month.
    Missing or inverted p10/p90 fall back to sigma = fallback_cv x quantity.
    """
    demand = typed_frame(demand, "demand")
    seg = typed_frame(segmentation, "segmentation")
    levels = seg.select(
        "sku",
        pl.col("abc_class").fill_null(""),
        (pl.col("abc_class").fill_null("") + pl.col("xyz_class").fill_null("")).alias("segment"),
    )
    by_segment = pl.DataFrame(
        {"segment": list(settings.service_level.segment), "sl_segment": list(settings.service_level.segment.values())},
        schema={"segment": pl.Utf8, "sl_segment": pl.Float64},
    )
    by_abc = pl.DataFrame(
        {"abc_class": list(settings.service_level.abc), "sl_abc": list(settings.service_level.abc.values())},
        schema={"abc_class": pl.Utf8, "sl_abc": pl.Float64},
    )
    service = (
        levels.join(by_segment, on="segment", how="left")
        .join(by_abc, on="abc_class", how="left")
        .select("sku", pl.coalesce("sl_segment", "sl_abc", pl.lit(settings.service_level.default)).alias("service_level"))
    )
    spread = (pl.col("p90") - pl.col("p10")) / P10_P90_SPAN
    sigma = pl.when(spread.is_not_null() & (spread >= 0)).then(spread).otherwise(settings.fallback_cv * pl.col("quantity"))
    frame = (
        demand.select("sku", "family", "month", "quantity", sigma.alias("sigma"))
        .join(service, on="sku", how="left")
        .with_columns(pl.col("service_level").fill_null(settings.service_level.default))
        .sort("sku", "month")
        .with_columns(
            pl.col("sigma").shift(-1).over("sku").fill_null(pl.col("sigma")).alias("sigma_next"),
            pl.col("quantity").shift(-1).over("sku").fill_null(pl.col("quantity")).alias("demand_next"),
        )
    )
    z = ndtri(frame.get_column("service_level").to_numpy())
    return (
        frame.with_columns(pl.Series("z", z))
        .select(
            pl.lit(cycle_label(cycle)).alias("cycle"),
            "sku",
            "family",
            "month",
            "service_level",
            (pl.col("z") * pl.col("sigma_next") * math.sqrt(settings.protection_months)).clip(lower_bound=0).alias("safety_stock"),
            (settings.cycle_stock_months * pl.col("demand_next")).clip(lower_bound=0).alias("cycle_stock"),
        )
        .with_columns((pl.col("safety_stock") + pl.col("cycle_stock")).alias("target_inventory"))
    )
