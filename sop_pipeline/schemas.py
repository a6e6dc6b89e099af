"""pandera schemas for every planning table a Python step writes.

A schema is the table's promise to its readers (the next review step, the BI views): column
types, ranges and keys. Each asset validates its output against its schema before writing, so
a bug shows up as a failed step with the offending column named, not as a wrong plan.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

LIFECYCLE_STATUSES = ["pre_launch", "ramp_up", "active", "phase_out", "discontinued"]
DEMAND_CLASSES = ["smooth", "erratic", "intermittent", "lumpy", "new", "no_demand"]


class ProductPortfolio(pa.DataFrameModel):
    """planning.product_portfolio: one row per cycle, SKU and horizon month."""

    cycle: str = pa.Field(str_matches=r"^\d{4}-\d{2}$")
    sku: str
    family: str
    month: pl.Date
    lifecycle_status: str = pa.Field(isin=LIFECYCLE_STATUSES)
    like_sku: str = pa.Field(nullable=True)
    launch_volume: float = pa.Field(nullable=True, ge=0)
    ramp_factor: float = pa.Field(ge=0, le=1)

    class Config:
        unique = ["cycle", "sku", "month"]
        strict = True


class ProductSegmentation(pa.DataFrameModel):
    """planning.product_segmentation: one row per cycle and SKU."""

    cycle: str = pa.Field(str_matches=r"^\d{4}-\d{2}$")
    sku: str = pa.Field(unique=True)
    family: str
    revenue_12m: float = pa.Field(ge=0)
    revenue_share: float = pa.Field(ge=0, le=1)
    abc_class: str = pa.Field(isin=["A", "B", "C"])
    demand_cv: float = pa.Field(nullable=True, ge=0)
    xyz_class: str = pa.Field(isin=["X", "Y", "Z"])
    adi: float = pa.Field(ge=1)
    cv2: float = pa.Field(ge=0)
    intermittent: bool
    demand_class: str = pa.Field(isin=DEMAND_CLASSES)
    history_months: int = pa.Field(ge=0)
    nonzero_months: int = pa.Field(ge=0)

    class Config:
        strict = True


def validate(frame: pl.DataFrame, schema: type[pa.DataFrameModel]) -> pl.DataFrame:
    """Validate lazily so that every broken column is reported at once."""
    return schema.validate(frame, lazy=True)


class StatisticalForecast(pa.DataFrameModel):
    """planning.statistical_forecast: one row per cycle, portfolio SKU and horizon month."""

    cycle: str = pa.Field(str_matches=r"^\d{4}-\d{2}$")
    sku: str
    family: str
    month: pl.Date
    model: str
    p10: float = pa.Field(ge=0)
    p50: float = pa.Field(ge=0)
    p90: float = pa.Field(ge=0)

    class Config:
        unique = ["cycle", "sku", "month"]
        strict = True

    @pa.dataframe_check
    def quantiles_are_ordered(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("p10") <= pl.col("p50") + 1e-9) & (pl.col("p50") <= pl.col("p90") + 1e-9))


class ForecastBacktest(pa.DataFrameModel):
    """planning.forecast_backtest: one row per cycle, SKU and candidate model."""

    cycle: str
    sku: str
    model: str
    published: bool
    points: int = pa.Field(ge=0)
    actual: float = pa.Field(ge=0)
    abs_error: float = pa.Field(ge=0)
    wape: float = pa.Field(nullable=True, ge=0)
    mase: float = pa.Field(nullable=True, ge=0)
    smape: float = pa.Field(nullable=True, ge=0, le=200)
    bias: float = pa.Field(nullable=True)

    class Config:
        unique = ["cycle", "sku", "model"]
        strict = True
        coerce = True


class DemandPlanLayers(pa.DataFrameModel):
    """planning.demand_plan_layers: the statistical layer in full, input layers where they act."""

    cycle: str
    sku: str
    month: pl.Date
    layer: str
    layer_rank: int = pa.Field(ge=0)
    quantity: float = pa.Field(ge=0)
    adjustment: float
    owner: str
    reason: str = pa.Field(nullable=True)
    input_level: str = pa.Field(isin=["sku", "family"])

    class Config:
        unique = ["cycle", "sku", "month", "layer"]
        strict = True
        coerce = True


class ConsensusDemand(pa.DataFrameModel):
    """planning.consensus_demand: the agreed demand per cycle, SKU and month, with its band."""

    cycle: str
    sku: str
    family: str
    month: pl.Date
    quantity: float = pa.Field(ge=0)
    p10: float = pa.Field(ge=0)
    p90: float = pa.Field(ge=0)

    class Config:
        unique = ["cycle", "sku", "month"]
        strict = True


class ForecastAccuracy(pa.DataFrameModel):
    """planning.forecast_accuracy: earlier cycles' layers scored in this cycle, by lag and family."""

    cycle: str
    forecast_cycle: str
    layer: str
    family: str
    lag: int = pa.Field(ge=1)
    points: int = pa.Field(ge=0)
    actual: float = pa.Field(ge=0)
    forecast: float = pa.Field(ge=0)
    abs_error: float = pa.Field(ge=0)
    wape: float = pa.Field(nullable=True, ge=0)
    bias: float = pa.Field(nullable=True)
    mase: float = pa.Field(nullable=True, ge=0)
    naive_wape: float = pa.Field(nullable=True, ge=0)
    fva_vs_naive: float = pa.Field(nullable=True)
    fva_vs_statistical: float = pa.Field(nullable=True)

    class Config:
        unique = ["cycle", "forecast_cycle", "layer", "family", "lag"]
        strict = True
        coerce = True
