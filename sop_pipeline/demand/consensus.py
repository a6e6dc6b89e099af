"""The consensus: sales and marketing layers on top of the statistical forecast, and the
checks that say whether it is usable."""

from __future__ import annotations

import polars as pl

from sop_pipeline.demand import STATISTICAL
from sop_pipeline.forecast.selection import FALLBACK
from sop_pipeline.periods import cycle_label, cycle_month
from sop_pipeline.settings.demand import ConsensusSettings


def _ordered_layers(inputs: pl.DataFrame, preferred: tuple[str, ...]) -> list[str]:
    present = inputs["layer"].unique(maintain_order=True).sort().to_list()
    return [layer for layer in preferred if layer in present] + [layer for layer in present if layer not in preferred]


def _apply_layer(plan: pl.DataFrame, layer_inputs: pl.DataFrame) -> pl.DataFrame:
    """Apply one layer's inputs to the running plan (sku, family, month, quantity).

    Family-level inputs come first and are split over the family's SKUs by their share of the
    running plan in that month (equally when the family's plan is zero); SKU-level inputs then
    act on the result. Returns the plan with `new_quantity`, `owner` and `reason` for the rows
    the layer touched.
    """
    family_inputs = layer_inputs.filter(pl.col("level") == "family").select(
        pl.col("key").alias("family"),
        "month",
        pl.col("adjustment_type").alias("f_type"),
        pl.col("value").alias("f_value"),
        pl.col("owner").alias("f_owner"),
        pl.col("reason").alias("f_reason"),
    )
    sku_inputs = layer_inputs.filter(pl.col("level") == "sku").select(
        pl.col("key").alias("sku"),
        "month",
        pl.col("adjustment_type").alias("s_type"),
        pl.col("value").alias("s_value"),
        pl.col("owner").alias("s_owner"),
        pl.col("reason").alias("s_reason"),
    )
    frame = plan.join(family_inputs, on=["family", "month"], how="left").with_columns(
        pl.col("quantity").sum().over("family", "month").alias("_family_total"),
        pl.len().over("family", "month").alias("_family_skus"),
    )
    share = pl.when(pl.col("_family_total") > 0).then(pl.col("quantity") / pl.col("_family_total")).otherwise(1.0 / pl.col("_family_skus"))
    after_family = (
        pl.when(pl.col("f_type") == "override")
        .then(pl.col("f_value") * share)
        .when(pl.col("f_type") == "uplift_pct")
        .then(pl.col("quantity") * (1 + pl.col("f_value") / 100))
        .when(pl.col("f_type") == "add")
        .then(pl.col("quantity") + pl.col("f_value") * share)
        .otherwise(pl.col("quantity"))
    )
    frame = frame.with_columns(after_family.alias("_after_family")).join(sku_inputs, on=["sku", "month"], how="left")
    after_sku = (
        pl.when(pl.col("s_type") == "override")
        .then(pl.col("s_value"))
        .when(pl.col("s_type") == "uplift_pct")
        .then(pl.col("_after_family") * (1 + pl.col("s_value") / 100))
        .when(pl.col("s_type") == "add")
        .then(pl.col("_after_family") + pl.col("s_value"))
        .otherwise(pl.col("_after_family"))
    )
    return frame.with_columns(
        # Demand cannot go negative, whatever an `add` says.
        after_sku.clip(lower_bound=0.0).alias("new_quantity"),
        (pl.col("s_type").is_not_null() | pl.col("f_type").is_not_null()).alias("touched"),
        pl.coalesce("s_owner", "f_owner").alias("owner"),
        pl.coalesce("s_reason", "f_reason").alias("reason"),
        pl.when(pl.col("s_type").is_not_null()).then(pl.lit("sku")).otherwise(pl.lit("family")).alias("input_level"),
    )


def build_consensus(
    statistical: pl.DataFrame, demand_inputs: pl.DataFrame, cycle: str, settings: ConsensusSettings
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Layer the sales/marketing inputs on the statistical forecast.

    Returns (`layers`, `consensus`). `layers` has the statistical layer for every SKU-month
    (owner `statistical model`, reason = the model) and, for each input layer, the SKU-months
    it touched with the plan after that layer (`quantity`), the change it made (`adjustment`),
    its owner and reason. `consensus` is the plan after the last layer, with p10/p90 scaled
    from the statistical band (a consensus twice the statistical forecast gets a band twice as
    wide); where the statistical forecast is zero the band is `band_without_statistical`
    (models/demand.yaml) around the consensus.
    """
    label = cycle_label(cycle)
    start = cycle_month(cycle)
    inputs = demand_inputs.filter(pl.col("month") >= pl.lit(start))
    known_months = statistical["month"].unique(maintain_order=True).implode()
    inputs = inputs.filter(pl.col("month").is_in(known_months))
    plan = statistical.select("sku", "family", "month", pl.col("p50").alias("quantity")).sort("sku", "month")
    layer_rows = [
        statistical.select(
            pl.lit(label).alias("cycle"),
            "sku",
            "month",
            pl.lit(STATISTICAL).alias("layer"),
            pl.lit(0).alias("layer_rank"),
            pl.col("p50").alias("quantity"),
            pl.lit(0.0).alias("adjustment"),
            pl.lit("statistical model").alias("owner"),
            pl.col("model").alias("reason"),
            pl.lit("sku").alias("input_level"),
        )
    ]
    for rank, layer in enumerate(_ordered_layers(inputs, settings.layer_order), start=1):
        applied = _apply_layer(plan, inputs.filter(pl.col("layer") == layer))
        layer_rows.append(
            applied.filter(pl.col("touched")).select(
                pl.lit(label).alias("cycle"),
                "sku",
                "month",
                pl.lit(layer).alias("layer"),
                pl.lit(rank).alias("layer_rank"),
                pl.col("new_quantity").alias("quantity"),
                (pl.col("new_quantity") - pl.col("quantity")).alias("adjustment"),
                "owner",
                "reason",
                "input_level",
            )
        )
        plan = applied.select("sku", "family", "month", pl.col("new_quantity").alias("quantity"))
    layers = pl.concat(layer_rows, how="vertical").sort("layer_rank", "sku", "month")
    stat = statistical.select("sku", "month", pl.col("p10").alias("s10"), pl.col("p50").alias("s50"), pl.col("p90").alias("s90"))
    ratio = pl.col("quantity") / pl.col("s50")
    low, high = settings.band_without_statistical
    consensus = (
        plan.join(stat, on=["sku", "month"], how="left")
        .select(
            pl.lit(label).alias("cycle"),
            "sku",
            "family",
            "month",
            "quantity",
            pl.when(pl.col("s50") > 0).then(pl.col("s10") * ratio).otherwise(pl.col("quantity") * low).alias("p10"),
            pl.when(pl.col("s50") > 0).then(pl.col("s90") * ratio).otherwise(pl.col("quantity") * high).alias("p90"),
        )
        .with_columns(
            pl.min_horizontal("p10", "quantity").alias("p10"),
            pl.max_horizontal("p90", "quantity").alias("p90"),
        )
        .sort("sku", "month")
    )
    return layers, consensus


def unexplained_overrides(layers: pl.DataFrame, statistical: pl.DataFrame, threshold_pct: float) -> pl.DataFrame:
    """SKU-months where an input moved the statistical forecast by more than the threshold
    without a reason: a big change nobody can explain later is how plans lose credibility."""
    stat = statistical.select("sku", "month", pl.col("p50").alias("statistical"))
    moved = (
        layers.filter(pl.col("layer") != STATISTICAL)
        .join(stat, on=["sku", "month"], how="left")
        .with_columns(
            (100 * (pl.col("quantity") - pl.col("statistical")).abs() / pl.max_horizontal(pl.col("statistical"), pl.lit(1.0))).alias(
                "change_pct"
            )
        )
    )
    return (
        moved.filter((pl.col("change_pct") > threshold_pct) & (pl.col("reason").is_null() | (pl.col("reason").str.strip_chars() == "")))
        .select("sku", "month", "layer", "owner", "statistical", "quantity", "change_pct")
        .sort("change_pct", descending=True)
    )


def consensus_problems(
    consensus: pl.DataFrame, portfolio: pl.DataFrame, statistical: pl.DataFrame | None = None, sold: pl.Series | None = None
) -> pl.DataFrame:
    """Rows that make the consensus unusable downstream: missing SKU-months, non-finite or
    negative quantities, a band that does not contain the quantity, and (given the
    statistical forecast and the SKUs that have `sold`) a month where a SKU with history got
    no forecast at all (`no_history`): a silent zero is not a forecast."""
    expected = portfolio.select("sku", "month")
    missing = expected.join(consensus.select("sku", "month"), on=["sku", "month"], how="anti").with_columns(
        pl.lit("missing SKU-month").alias("problem"), pl.lit(None, dtype=pl.Float64).alias("value")
    )
    values = consensus.unpivot(index=["sku", "month"], on=["quantity", "p10", "p90"], variable_name="column", value_name="value")
    bad_values = values.filter(~pl.col("value").is_finite() | (pl.col("value") < 0) | pl.col("value").is_null()).select(
        "sku", "month", pl.format("{} not finite and non-negative", pl.col("column")).alias("problem"), "value"
    )
    bad_band = consensus.filter((pl.col("p10") > pl.col("quantity") + 1e-9) | (pl.col("p90") < pl.col("quantity") - 1e-9)).select(
        "sku", "month", pl.lit("p10 <= quantity <= p90 violated").alias("problem"), pl.col("quantity").alias("value")
    )
    parts = [missing, bad_values, bad_band]
    if statistical is not None and sold is not None:
        parts.append(
            statistical.filter((pl.col("model") == "no_history") & pl.col("sku").is_in(sold.implode())).select(
                "sku", "month", pl.lit("SKU with sales history has no statistical forecast").alias("problem"), pl.col("p50").alias("value")
            )
        )
    return pl.concat(parts, how="vertical").sort("sku", "month")


def fallback_note(statistical: pl.DataFrame, limit: int = 5) -> str | None:
    """The SKUs whose history fits no model (a single month, no sales at all), forecast by a
    fallback instead, for the consensus checkpoint to report: such a SKU never stops the
    cycle, but the meeting should know its number is a rule of thumb."""
    odd = (
        statistical.filter((pl.col("model") == FALLBACK) | (pl.col("model") == "no_history"))
        .group_by("sku")
        .agg(pl.col("model").first())
        .sort("sku")
    )
    if odd.height == 0:
        return None
    shown = ", ".join(
        f"{r['sku']} ({'recent mean' if r['model'] == FALLBACK else 'no sales: zero'})" for r in odd.head(limit).iter_rows(named=True)
    )
    more = f" and {odd.height - limit} more" if odd.height > limit else ""
    return f"{odd.height} SKUs with too little history for a model are forecast by a fallback: {shown}{more}"
