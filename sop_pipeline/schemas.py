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
