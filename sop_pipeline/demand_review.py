"""Demand review: from a statistical forecast to the consensus demand plan, and its accuracy.

The statistical forecast (`forecasting.py`) knows only history. This step adds what history
cannot know: launches borrow a like-item's forecast scaled by the launch ramp, phase-outs fade
to zero, and the sales and marketing teams' inputs are layered on top, each layer kept with
its owner and reason. Keeping every cycle's layers is what makes forecast value added
measurable: when actuals arrive, each layer is scored against the statistical forecast and a
seasonal naive forecast, so the organisation learns which inputs improve the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from sop_pipeline.warehouse import cycle_label, cycle_month

STATISTICAL = "statistical"
CONSENSUS = "consensus"
NAIVE = "seasonal_naive"


@dataclass(frozen=True)
class DemandGates:
    """Thresholds of the demand review's checkpoint (models/gates.yaml, `demand_review`)."""

    override_threshold_pct: float = 50.0
    max_backtest_ratio_to_naive: float = 1.0
    layer_order: tuple[str, ...] = ("sales", "marketing")


def load_demand_gates(path: str | Path) -> DemandGates:
    raw = (yaml.safe_load(Path(path).read_text()) or {}).get("demand_review", {})
    return DemandGates(
        override_threshold_pct=float(raw.get("override_threshold_pct", 50.0)),
        max_backtest_ratio_to_naive=float(raw.get("max_backtest_ratio_to_naive", 1.0)),
        layer_order=tuple(raw.get("layer_order", ("sales", "marketing"))),
    )


def apply_lifecycle(base: pl.DataFrame, portfolio: pl.DataFrame) -> pl.DataFrame:
    """The statistical forecast per portfolio SKU and month, lifecycle applied.

    `base` holds the forecasts of SKUs with history (sku, month, model, p10, p50, p90).
    A SKU with its own forecast keeps it; a new product takes its like-item's; without a
    like-item forecast, a `launch_volume` gives a flat forecast with a +-30% band; otherwise
    the SKU has no basis (zero). Everything is multiplied by the portfolio's ramp factor, so
    launches ramp up and phase-outs reach zero at their discontinue month.
    """
    own = base.select("sku", "month", "model", "p10", "p50", "p90")
    like = base.select(
        pl.col("sku").alias("like_sku"),
        "month",
        pl.col("model").alias("like_model"),
        pl.col("p10").alias("like_p10"),
        pl.col("p50").alias("like_p50"),
        pl.col("p90").alias("like_p90"),
    )
    frame = portfolio.join(own, on=["sku", "month"], how="left").join(like, on=["like_sku", "month"], how="left")
    has_own = pl.col("p50").is_not_null()
    has_like = pl.col("like_p50").is_not_null()
    has_volume = pl.col("launch_volume").is_not_null()

    def pick(own_col: str, like_col: str, volume_factor: float) -> pl.Expr:
        return (
            pl.when(has_own).then(pl.col(own_col))
            .when(has_like).then(pl.col(like_col))
            .when(has_volume).then(pl.col("launch_volume") * volume_factor)
            .otherwise(0.0)
            * pl.col("ramp_factor")
        )

    model = (
        pl.when(has_own).then(pl.col("model"))
        .when(has_like).then(pl.format("like:{}:{}", pl.col("like_sku"), pl.col("like_model")))
        .when(has_volume).then(pl.lit("launch_volume"))
        .otherwise(pl.lit("no_history"))
    )
    return frame.select(
        "cycle", "sku", "family", "month",
        model.alias("model"),
        pick("p10", "like_p10", 0.7).alias("p10"),
        pick("p50", "like_p50", 1.0).alias("p50"),
        pick("p90", "like_p90", 1.3).alias("p90"),
    ).sort("sku", "month")


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
        pl.col("key").alias("family"), "month",
        pl.col("adjustment_type").alias("f_type"), pl.col("value").alias("f_value"),
        pl.col("owner").alias("f_owner"), pl.col("reason").alias("f_reason"),
    )
    sku_inputs = layer_inputs.filter(pl.col("level") == "sku").select(
        pl.col("key").alias("sku"), "month",
        pl.col("adjustment_type").alias("s_type"), pl.col("value").alias("s_value"),
        pl.col("owner").alias("s_owner"), pl.col("reason").alias("s_reason"),
    )
    frame = plan.join(family_inputs, on=["family", "month"], how="left").with_columns(
        pl.col("quantity").sum().over("family", "month").alias("_family_total"),
        pl.len().over("family", "month").alias("_family_skus"),
    )
    share = pl.when(pl.col("_family_total") > 0).then(pl.col("quantity") / pl.col("_family_total")).otherwise(
        1.0 / pl.col("_family_skus")
    )
    after_family = (
        pl.when(pl.col("f_type") == "override").then(pl.col("f_value") * share)
        .when(pl.col("f_type") == "uplift_pct").then(pl.col("quantity") * (1 + pl.col("f_value") / 100))
        .when(pl.col("f_type") == "add").then(pl.col("quantity") + pl.col("f_value") * share)
        .otherwise(pl.col("quantity"))
    )
    frame = frame.with_columns(after_family.alias("_after_family")).join(sku_inputs, on=["sku", "month"], how="left")
    after_sku = (
        pl.when(pl.col("s_type") == "override").then(pl.col("s_value"))
        .when(pl.col("s_type") == "uplift_pct").then(pl.col("_after_family") * (1 + pl.col("s_value") / 100))
        .when(pl.col("s_type") == "add").then(pl.col("_after_family") + pl.col("s_value"))
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


def build_consensus(statistical: pl.DataFrame, demand_inputs: pl.DataFrame, cycle: str, gates: DemandGates) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Layer the sales/marketing inputs on the statistical forecast.

    Returns (`layers`, `consensus`). `layers` has the statistical layer for every SKU-month
    (owner `statistical model`, reason = the model) and, for each input layer, the SKU-months
    it touched with the plan after that layer (`quantity`), the change it made (`adjustment`),
    its owner and reason. `consensus` is the plan after the last layer, with p10/p90 scaled
    from the statistical band (a consensus twice the statistical forecast gets a band twice as
    wide); where the statistical forecast is zero the band is +-50% of the consensus.
    """
    label = cycle_label(cycle)
    start = cycle_month(cycle)
    inputs = demand_inputs.filter(pl.col("month") >= pl.lit(start))
    known_months = statistical["month"].unique(maintain_order=True).implode()
    inputs = inputs.filter(pl.col("month").is_in(known_months))
    plan = statistical.select("sku", "family", "month", pl.col("p50").alias("quantity")).sort("sku", "month")
    layer_rows = [
        statistical.select(
            pl.lit(label).alias("cycle"), "sku", "month", pl.lit(STATISTICAL).alias("layer"), pl.lit(0).alias("layer_rank"),
            pl.col("p50").alias("quantity"), pl.lit(0.0).alias("adjustment"),
            pl.lit("statistical model").alias("owner"), pl.col("model").alias("reason"), pl.lit("sku").alias("input_level"),
        )
    ]
    for rank, layer in enumerate(_ordered_layers(inputs, gates.layer_order), start=1):
        applied = _apply_layer(plan, inputs.filter(pl.col("layer") == layer))
        layer_rows.append(
            applied.filter(pl.col("touched")).select(
                pl.lit(label).alias("cycle"), "sku", "month", pl.lit(layer).alias("layer"), pl.lit(rank).alias("layer_rank"),
                pl.col("new_quantity").alias("quantity"), (pl.col("new_quantity") - pl.col("quantity")).alias("adjustment"),
                "owner", "reason", "input_level",
            )
        )
        plan = applied.select("sku", "family", "month", pl.col("new_quantity").alias("quantity"))
    layers = pl.concat(layer_rows, how="vertical").sort("layer_rank", "sku", "month")
    stat = statistical.select("sku", "month", pl.col("p10").alias("s10"), pl.col("p50").alias("s50"), pl.col("p90").alias("s90"))
    ratio = pl.col("quantity") / pl.col("s50")
    consensus = plan.join(stat, on=["sku", "month"], how="left").select(
        pl.lit(label).alias("cycle"), "sku", "family", "month", "quantity",
        pl.when(pl.col("s50") > 0).then(pl.col("s10") * ratio).otherwise(pl.col("quantity") * 0.5).alias("p10"),
        pl.when(pl.col("s50") > 0).then(pl.col("s90") * ratio).otherwise(pl.col("quantity") * 1.5).alias("p90"),
    ).with_columns(
        pl.min_horizontal("p10", "quantity").alias("p10"),
        pl.max_horizontal("p90", "quantity").alias("p90"),
    ).sort("sku", "month")
    return layers, consensus


def unexplained_overrides(layers: pl.DataFrame, statistical: pl.DataFrame, threshold_pct: float) -> pl.DataFrame:
    """SKU-months where an input moved the statistical forecast by more than the threshold
    without a reason: a big change nobody can explain later is how plans lose credibility."""
    stat = statistical.select("sku", "month", pl.col("p50").alias("statistical"))
    moved = layers.filter(pl.col("layer") != STATISTICAL).join(stat, on=["sku", "month"], how="left").with_columns(
        (100 * (pl.col("quantity") - pl.col("statistical")).abs() / pl.max_horizontal(pl.col("statistical"), pl.lit(1.0))).alias("change_pct")
    )
    return moved.filter(
        (pl.col("change_pct") > threshold_pct) & (pl.col("reason").is_null() | (pl.col("reason").str.strip_chars() == ""))
    ).select("sku", "month", "layer", "owner", "statistical", "quantity", "change_pct").sort("change_pct", descending=True)


def consensus_problems(consensus: pl.DataFrame, portfolio: pl.DataFrame) -> pl.DataFrame:
    """Rows that make the consensus unusable downstream: missing SKU-months, non-finite or
    negative quantities, or a band that does not contain the quantity."""
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
    return pl.concat([missing, bad_values, bad_band], how="vertical").sort("sku", "month")


def _layer_vectors(layers: pl.DataFrame) -> pl.DataFrame:
    """Expand the stored layers (statistical in full, inputs only where they touched) into the
    complete plan after each layer, plus `consensus` = the plan after the last layer."""
    stat = layers.filter(pl.col("layer") == STATISTICAL).select("cycle", "sku", "month", pl.col("quantity").alias("statistical"))
    inputs = layers.filter(pl.col("layer") != STATISTICAL)
    ranks = layers.select("cycle", "layer", "layer_rank").unique(maintain_order=True)
    vectors = [stat.select("cycle", "sku", "month", pl.lit(STATISTICAL).alias("layer"), pl.col("statistical").alias("forecast"))]
    for cycle, layer, rank in ranks.filter(pl.col("layer") != STATISTICAL).iter_rows():
        latest = (
            inputs.filter((pl.col("cycle") == cycle) & (pl.col("layer_rank") <= rank))
            .sort("layer_rank")
            .group_by("cycle", "sku", "month", maintain_order=True)
            .agg(pl.col("quantity").last().alias("touched"))
        )
        vectors.append(
            stat.filter(pl.col("cycle") == cycle).join(latest, on=["cycle", "sku", "month"], how="left").select(
                "cycle", "sku", "month", pl.lit(layer).alias("layer"), pl.coalesce("touched", "statistical").alias("forecast")
            )
        )
    latest_all = (
        inputs.sort("layer_rank").group_by("cycle", "sku", "month", maintain_order=True).agg(pl.col("quantity").last().alias("touched"))
    )
    vectors.append(
        stat.join(latest_all, on=["cycle", "sku", "month"], how="left").select(
            "cycle", "sku", "month", pl.lit(CONSENSUS).alias("layer"), pl.coalesce("touched", "statistical").alias("forecast")
        )
    )
    return pl.concat(vectors, how="vertical")


def _months_apart(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    return (later.dt.year() * 12 + later.dt.month()) - (earlier.dt.year() * 12 + earlier.dt.month())


def score_accuracy(layers: pl.DataFrame, actuals: pl.DataFrame, products: pl.DataFrame, cycle: str, max_lag: int = 12) -> pl.DataFrame:
    """Score earlier cycles' forecasts, layer by layer, against the actuals now known.

    `layers`: demand_plan_layers of earlier cycles; `actuals`: sku, month, quantity before
    `cycle`. Lag 1 is the forecast for the cycle's own first month (made with actuals up to the
    month before). Per forecast cycle, layer, family (and `ALL`) and lag: WAPE, bias, MASE
    against the seasonal naive forecast made at the same cycle (sum of absolute errors over the
    naive's), and forecast value added: the WAPE points a layer gained over the statistical
    forecast and over the naive forecast (positive = the layer helped).
    """
    start = cycle_month(cycle)
    vectors = _layer_vectors(layers.with_columns(pl.col("month").cast(pl.Date)))
    vectors = vectors.with_columns(
        pl.col("cycle").str.strptime(pl.Date, "%Y-%m").alias("cycle_month"),
    ).with_columns((_months_apart(pl.col("month"), pl.col("cycle_month")) + 1).alias("lag")).filter(
        (pl.col("month") < pl.lit(start)) & (pl.col("lag") >= 1) & (pl.col("lag") <= max_lag)
    )
    if vectors.height == 0:
        return _empty_accuracy()
    actual = actuals.select("sku", "month", pl.col("quantity").alias("actual"))
    # Seasonal naive at the forecast cycle: the same month one year earlier (two years for
    # lags beyond 12, so that it only uses what was known at the cycle).
    naive = actuals.select(
        "sku", pl.col("month").dt.offset_by("12mo").alias("month"), pl.col("quantity").alias("naive")
    )
    scored = (
        vectors.join(actual, on=["sku", "month"], how="left")
        .join(naive, on=["sku", "month"], how="left")
        .join(products.select("sku", "family"), on="sku", how="left")
        .with_columns(
            pl.col("actual").fill_null(0.0), pl.col("naive").fill_null(0.0), pl.col("family").fill_null("(unknown)"),
        )
    )
    by = ["cycle", "layer", "family", "lag"]
    both = pl.concat([scored, scored.with_columns(pl.lit("ALL").alias("family"))], how="vertical")
    agg = both.group_by(by, maintain_order=True).agg(
        pl.len().alias("points"),
        pl.col("actual").sum().alias("actual"),
        pl.col("forecast").sum().alias("forecast"),
        (pl.col("forecast") - pl.col("actual")).abs().sum().alias("abs_error"),
        (pl.col("naive") - pl.col("actual")).abs().sum().alias("naive_abs_error"),
    )
    safe_actual = pl.when(pl.col("actual") > 0).then(pl.col("actual")).otherwise(None)
    agg = agg.with_columns(
        (pl.col("abs_error") / safe_actual).alias("wape"),
        ((pl.col("forecast") - pl.col("actual")) / safe_actual).alias("bias"),
        (pl.col("abs_error") / pl.when(pl.col("naive_abs_error") > 0).then(pl.col("naive_abs_error")).otherwise(None)).alias("mase"),
        (pl.col("naive_abs_error") / safe_actual).alias("naive_wape"),
    )
    stat_wape = agg.filter(pl.col("layer") == STATISTICAL).select("cycle", "family", "lag", pl.col("wape").alias("statistical_wape"))
    return (
        agg.join(stat_wape, on=["cycle", "family", "lag"], how="left")
        .with_columns(
            (pl.col("naive_wape") - pl.col("wape")).alias("fva_vs_naive"),
            (pl.col("statistical_wape") - pl.col("wape")).alias("fva_vs_statistical"),
            pl.lit(cycle_label(cycle)).alias("scored_in_cycle"),
        )
        .rename({"cycle": "forecast_cycle"})
        .rename({"scored_in_cycle": "cycle"})
        .select(
            "cycle", "forecast_cycle", "layer", "family", "lag", "points", "actual", "forecast", "abs_error",
            "wape", "bias", "mase", "naive_wape", "fva_vs_naive", "fva_vs_statistical",
        )
        .sort("forecast_cycle", "layer", "family", "lag")
    )


def _empty_accuracy() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "cycle": pl.Utf8, "forecast_cycle": pl.Utf8, "layer": pl.Utf8, "family": pl.Utf8, "lag": pl.Int64,
            "points": pl.UInt32, "actual": pl.Float64, "forecast": pl.Float64, "abs_error": pl.Float64,
            "wape": pl.Float64, "bias": pl.Float64, "mase": pl.Float64, "naive_wape": pl.Float64,
            "fva_vs_naive": pl.Float64, "fva_vs_statistical": pl.Float64,
        }
    )


def accuracy_summary(accuracy: pl.DataFrame) -> pl.DataFrame:
    """Accuracy by layer and lag over all scored cycles (family `ALL`): the table a demand
    planner reads first."""
    overall = accuracy.filter(pl.col("family") == "ALL")
    return overall.group_by("layer", "lag", maintain_order=True).agg(
        pl.col("points").sum(),
        (pl.col("abs_error").sum() / pl.col("actual").sum()).alias("wape"),
        ((pl.col("forecast").sum() - pl.col("actual").sum()) / pl.col("actual").sum()).alias("bias"),
        (pl.col("naive_wape") * pl.col("actual")).sum().truediv(pl.col("actual").sum()).alias("naive_wape"),
    ).sort("lag", "layer")


def family_chart(history: pl.DataFrame, statistical: pl.DataFrame, consensus: pl.DataFrame, families: list[str], history_months: int = 36) -> bytes:
    """PNG: per family, actuals, the statistical forecast's p10-p90 band and the consensus.

    The family band is the sum of SKU quantiles, which overstates the family's uncertainty
    (SKU errors partly cancel); it shows where the plan could land, not a family quantile.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(families), 1)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.6 * n), squeeze=False)
    start = statistical["month"].min()
    hist = history.filter(pl.col("month") >= pl.lit(start).dt.offset_by(f"-{history_months}mo"))
    for ax, family in zip(axes[:, 0], families):
        h = hist.filter(pl.col("family") == family).group_by("month", maintain_order=True).agg(pl.col("quantity").sum()).sort("month")
        s = statistical.filter(pl.col("family") == family).group_by("month", maintain_order=True).agg(pl.col("p10", "p50", "p90").sum()).sort("month")
        c = consensus.filter(pl.col("family") == family).group_by("month", maintain_order=True).agg(pl.col("quantity").sum()).sort("month")
        ax.plot(h["month"].to_list(), h["quantity"].to_numpy(), color="black", lw=1.2, label="actuals")
        ax.fill_between(s["month"].to_list(), s["p10"].to_numpy(), s["p90"].to_numpy(), color="tab:blue", alpha=0.2, label="p10-p90 (sum of SKUs)")
        ax.plot(s["month"].to_list(), s["p50"].to_numpy(), color="tab:blue", lw=1, ls="--", label="statistical")
        ax.plot(c["month"].to_list(), c["quantity"].to_numpy(), color="tab:red", lw=1.5, label="consensus")
        ax.set_title(f"{family}: demand (units)", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=4, loc="upper left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def top_families(consensus: pl.DataFrame, products: pl.DataFrame, n: int = 4) -> list[str]:
    """Families with the largest consensus revenue: the ones an executive looks at first."""
    revenue = consensus.join(products.select("sku", "unit_price"), on="sku", how="left").group_by("family", maintain_order=True).agg(
        (pl.col("quantity") * pl.col("unit_price").fill_null(0)).sum().alias("revenue")
    )
    return revenue.sort(["revenue", "family"], descending=[True, False]).head(n)["family"].to_list()



def backtest_table(result, cycle: str) -> pl.DataFrame:
    """Every candidate's backtest error per SKU (planning.forecast_backtest).

    Sums of actuals and absolute errors sit next to the ratios so that errors can be
    aggregated correctly (volume-weighted) over any group of SKUs; `published` marks the model
    whose forecast the SKU got.
    """
    sums = result.backtest.group_by("sku", "model", maintain_order=True).agg(
        pl.len().alias("points"),
        pl.col("actual").sum().alias("actual"),
        (pl.col("forecast") - pl.col("actual")).abs().sum().alias("abs_error"),
    )
    published = result.selection.select("sku", pl.col("model").alias("published_model"))
    return (
        result.backtest_errors.select("sku", "model", "wape", "mase", "smape", "bias")
        .join(sums, on=["sku", "model"], how="inner")
        .join(published, on="sku", how="left")
        .with_columns(
            pl.lit(cycle_label(cycle)).alias("cycle"),
            (
                (pl.col("model") == pl.col("published_model"))
                | (pl.col("published_model").str.starts_with("ensemble") & (pl.col("model") == "ensemble"))
            ).fill_null(False).alias("published"),
        )
        .select("cycle", "sku", "model", "published", "points", "actual", "abs_error", "wape", "mase", "smape", "bias")
        .sort("sku", "model")
    )


def backtest_versus_naive(backtest: pl.DataFrame) -> dict[str, float | None]:
    """Volume-weighted backtest WAPE of the published models and of seasonal naive, over the
    SKUs where both were scored: the demand review's promise that statistics beat a naive rule."""
    naive = backtest.filter(pl.col("model") == NAIVE).select("sku", pl.col("abs_error").alias("naive_error"), pl.col("actual").alias("naive_actual"))
    chosen = backtest.filter(pl.col("published")).join(naive, on="sku", how="inner")
    if chosen.height == 0 or chosen["naive_actual"].sum() <= 0 or chosen["actual"].sum() <= 0:
        return {"published_wape": None, "naive_wape": None, "ratio": None}
    published_wape = chosen["abs_error"].sum() / chosen["actual"].sum()
    naive_wape = chosen["naive_error"].sum() / chosen["naive_actual"].sum()
    return {"published_wape": published_wape, "naive_wape": naive_wape, "ratio": published_wape / naive_wape if naive_wape > 0 else None}
