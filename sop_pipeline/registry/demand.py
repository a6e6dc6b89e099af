"""Tables of the demand review."""

import polars as pl

from sop_pipeline.registry.base import Col, FrameCheck, Table
from sop_pipeline.registry.common import CYCLE, FAMILY, MONTH, SKU, text, units

QUANTILES_ORDERED = FrameCheck(
    "quantiles_are_ordered",
    "p10 <= p50 <= p90 on every row",
    lambda: (pl.col("p10") <= pl.col("p50") + 1e-9) & (pl.col("p50") <= pl.col("p90") + 1e-9),
)
BAND_HOLDS_QUANTITY = FrameCheck(
    "band_holds_quantity",
    "p10 <= quantity <= p90 on every row",
    lambda: (pl.col("p10") <= pl.col("quantity") + 1e-9) & (pl.col("quantity") <= pl.col("p90") + 1e-9),
)

DEMAND_TABLES = (
    Table(
        "statistical_forecast",
        "demand_review",
        "Statistical forecast per cycle, portfolio SKU and horizon month with its 80% band, lifecycle applied "
        "(launches from their like-item or launch volume, phase-outs faded, what a phase-out's fade cuts added to its "
        "successor: planning.supersession).",
        ("cycle", "sku", "month"),
        (
            CYCLE,
            SKU,
            FAMILY,
            MONTH,
            text(
                "model",
                "Where the number came from: the published candidate or ensemble, like:SKU:model, launch_volume, "
                "supersedes:SKU (a successor with no basis of its own), no_history.",
            ),
            units("p10", "10th percentile of demand: 1 month in 10 should sell less."),
            units("p50", "Median forecast (the statistical plan)."),
            units("p90", "90th percentile of demand: 1 month in 10 should sell more."),
        ),
        checks=(QUANTILES_ORDERED,),
        computed_by="sop_pipeline.forecast.forecast_demand, sop_pipeline.demand.lifecycle.apply_lifecycle",
    ),
    Table(
        "supersession",
        "demand_review",
        "The demand a phase-out hands to its successor (products.csv successor_sku), per cycle, phasing-out SKU and "
        "month in which it fades or is discontinued while the successor sells: the forecast it would have had, what "
        "it keeps and what moves. The moved units are in the successor's planning.statistical_forecast.",
        ("cycle", "sku", "month"),
        (
            CYCLE,
            Col("sku", "text", "The phasing-out SKU (the predecessor)."),
            Col("family", "text", "The predecessor's product family."),
            text("successor_sku", "The SKU that takes the predecessor's demand over."),
            text("successor_family", "The successor's product family (volume moved across families leaves the predecessor's)."),
            MONTH,
            text(
                "lifecycle_status", "The predecessor's status in the month: phase_out or discontinued.", isin=("phase_out", "discontinued")
            ),
            units("forecast_units", "The predecessor's forecast p50 before the phase-out cut it: what it would have sold."),
            units("kept_units", "What the predecessor still sells after the cut (its statistical p50)."),
            units("moved_units", "forecast_units - kept_units: added to the successor's statistical p50."),
        ),
        checks=(
            FrameCheck(
                "moved_is_what_the_cut_takes",
                "forecast_units = kept_units + moved_units on every row",
                lambda: (pl.col("forecast_units") - pl.col("kept_units") - pl.col("moved_units")).abs() <= 1e-6,
            ),
        ),
        computed_by="sop_pipeline.demand.lifecycle.apply_lifecycle",
    ),
    Table(
        "family_forecast",
        "demand_review",
        "Statistical forecast per cycle, product family (ALL = every SKU) and horizon month. p50 is the sum of the "
        "family's SKU p50s in planning.statistical_forecast; p10 and p90 are the family's own 80% band, calibrated on "
        "the family's backtest errors (quantiles do not add: the sum of SKU p90s is not the family's p90).",
        ("cycle", "family", "month"),
        (
            CYCLE,
            Col("family", "text", "Product family, or ALL for every family together."),
            MONTH,
            units("p10", "10th percentile of the family's demand: 1 month in 10 should sell less."),
            units("p50", "Median forecast: the sum of the family's SKU p50s."),
            units("p90", "90th percentile of the family's demand: 1 month in 10 should sell more."),
        ),
        checks=(QUANTILES_ORDERED,),
        computed_by="sop_pipeline.forecast.hierarchy.family_forecast",
    ),
    Table(
        "family_forecast_backtest",
        "demand_review",
        "The family bands' evidence: per cycle, family (ALL = total), backtest origin and step, the sum of the SKUs' "
        "published backtest forecasts and actuals, with the family band fitted without that origin.",
        ("cycle", "family", "origin", "horizon_step"),
        (
            CYCLE,
            Col("family", "text", "Product family, or ALL for every family together."),
            Col("origin", "date", "First month the backtest forecast covers (history ends the month before)."),
            Col("horizon_step", "int", "Months ahead: 1 = the origin month.", unit="months", ge=1),
            Col("skus", "int", "SKUs added up at this point (both a forecast and an actual).", unit="count", ge=1),
            units("actual", "Sum of the SKUs' actual sales."),
            units("forecast", "Sum of the SKUs' published backtest forecasts."),
            units("p10", "Family p10 around the forecast, fitted leaving this origin out."),
            units("p90", "Family p90 around the forecast, fitted leaving this origin out."),
        ),
        computed_by="sop_pipeline.forecast.hierarchy.family_forecast",
    ),
    Table(
        "forecast_backtest",
        "demand_review",
        "Every candidate model's rolling-origin backtest per cycle and SKU, with sums so that errors aggregate "
        "volume-weighted over any group of SKUs; the row with model `published` is the published forecast's own "
        "nested backtest (weights and choice fitted at each origin on earlier months only: an honest error).",
        ("cycle", "sku", "model"),
        (
            CYCLE,
            SKU,
            text("model", "Candidate model, ensemble, or published (the published forecast's nested backtest)."),
            Col("published", "bool", "This row is the published forecast's nested backtest (model = published)."),
            Col("points", "int", "Backtest points scored (origin x step).", unit="count", ge=0),
            units("actual", "Sum of actuals over the points."),
            units("abs_error", "Sum of absolute errors over the points."),
            Col("wape", "float", "abs_error / actual.", unit="ratio", nullable=True, ge=0),
            Col("mase", "float", "Mean absolute error over the in-sample seasonal naive's (m = 12).", unit="ratio", nullable=True, ge=0),
            Col("smape", "float", "Symmetric MAPE, M-competition definition.", unit="percent", nullable=True, ge=0, le=200),
            Col("bias", "float", "(sum forecast - sum actual) / sum actual.", unit="ratio", nullable=True),
        ),
        computed_by="sop_pipeline.demand.backtest.backtest_table",
    ),
    Table(
        "demand_plan_layers",
        "demand_review",
        "The statistical layer for every SKU-month and each input layer (sales, marketing, ...) where it acted: the plan "
        "after the layer, the change it made, who owns it and why.",
        ("cycle", "sku", "month", "layer"),
        (
            CYCLE,
            SKU,
            MONTH,
            text("layer", "statistical or the input layer's name."),
            Col("layer_rank", "int", "Order the layer applied in (0 = statistical).", ge=0),
            units("quantity", "The plan after this layer."),
            units("adjustment", "Change this layer made to the plan.", ge=None),
            text("owner", "Person accountable for the input (statistical model for the statistical layer)."),
            text("reason", "Why the input was made; null when none was given.", nullable=True),
            text("input_level", "Level the input was given at: sku or family.", isin=("sku", "family")),
        ),
        computed_by="sop_pipeline.demand.consensus.build_consensus",
    ),
    Table(
        "consensus_demand",
        "demand_review",
        "Consensus demand per cycle, SKU and month: the statistical forecast with sales and marketing inputs layered on, with an 80% band.",
        ("cycle", "sku", "month"),
        (
            CYCLE,
            SKU,
            FAMILY,
            MONTH,
            units("quantity", "Consensus demand."),
            units("p10", "10th percentile of demand: 1 month in 10 should sell less."),
            units("p90", "90th percentile of demand: 1 month in 10 should sell more."),
        ),
        checks=(BAND_HOLDS_QUANTITY,),
        computed_by="sop_pipeline.demand.consensus.build_consensus",
    ),
    Table(
        "forecast_accuracy",
        "demand_review",
        "How earlier cycles' forecasts did against actuals, per scoring cycle, forecast cycle, layer, family (ALL = total) "
        "and lag, with each layer's forecast value added.",
        ("cycle", "forecast_cycle", "layer", "family", "lag"),
        (
            Col("cycle", "text", "Cycle that did the scoring (actuals known up to the month before it).", pattern=r"^\d{4}-\d{2}$"),
            Col("forecast_cycle", "text", "Cycle that made the forecast.", pattern=r"^\d{4}-\d{2}$"),
            text("layer", "statistical, an input layer (the cumulative plan after it, e.g. sales), or consensus."),
            Col("family", "text", "Product family, or ALL for every family together."),
            Col("lag", "int", "Months ahead: 1 = the forecast cycle's own first month.", unit="months", ge=1),
            Col("points", "int", "SKU-months scored.", unit="count", ge=0),
            units("actual", "Actual units."),
            units("forecast", "Forecast units."),
            units("abs_error", "Sum of absolute errors."),
            Col("wape", "float", "abs_error / actual.", unit="ratio", nullable=True, ge=0),
            Col("bias", "float", "(forecast - actual) / actual.", unit="ratio", nullable=True),
            Col(
                "mase",
                "float",
                "Absolute errors over those of the seasonal naive forecast made at the same cycle.",
                unit="ratio",
                nullable=True,
                ge=0,
            ),
            Col("naive_wape", "float", "WAPE of the seasonal naive forecast on the same points.", unit="ratio", nullable=True, ge=0),
            Col("fva_vs_naive", "float", "WAPE points gained over seasonal naive (positive = value added).", unit="ratio", nullable=True),
            Col(
                "fva_vs_statistical",
                "float",
                "WAPE points gained over the statistical layer (positive = value added).",
                unit="ratio",
                nullable=True,
            ),
        ),
        computed_by="sop_pipeline.demand.accuracy.score_accuracy",
    ),
)
