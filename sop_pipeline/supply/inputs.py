"""The typed mart frames the supply review reads, whatever shape they arrive in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "products": {"sku": pl.Utf8, "family": pl.Utf8, "unit_price": pl.Float64, "unit_cost": pl.Float64},
    "demand": {"sku": pl.Utf8, "month": pl.Date, "quantity": pl.Float64, "p10": pl.Float64, "p90": pl.Float64},
    "segmentation": {"sku": pl.Utf8, "abc_class": pl.Utf8, "xyz_class": pl.Utf8},
    "resources": {
        "resource": pl.Utf8,
        "plant": pl.Utf8,
        "capacity_hours": pl.Float64,
        "overtime_hours": pl.Float64,
        "cost_per_hour": pl.Float64,
        "overtime_cost_per_hour": pl.Float64,
    },
    "routings": {"sku": pl.Utf8, "resource": pl.Utf8, "hours_per_unit": pl.Float64, "priority": pl.Int64},
    "materials": {
        "material": pl.Utf8,
        "supplier": pl.Utf8,
        "unit_cost": pl.Float64,
        "lead_time_months": pl.Int64,
        "supplier_capacity": pl.Float64,
        "on_hand": pl.Float64,
    },
    "bom": {"sku": pl.Utf8, "material": pl.Utf8, "qty_per": pl.Float64},
    "inventory": {"sku": pl.Utf8, "on_hand": pl.Float64},
    "open_supply": {"item_type": pl.Utf8, "item": pl.Utf8, "month": pl.Date, "quantity": pl.Float64},
    "resource_calendar": {"resource": pl.Utf8, "month": pl.Date, "capacity_hours": pl.Float64, "overtime_hours": pl.Float64},
}


_SORT_KEYS: dict[str, list[str]] = {
    "products": ["sku"],
    "demand": ["sku", "month"],
    "segmentation": ["sku"],
    "resources": ["resource"],
    "routings": ["sku", "resource"],
    "materials": ["material"],
    "bom": ["sku", "material"],
    "inventory": ["sku"],
    "open_supply": ["item_type", "item", "month"],
    "resource_calendar": ["resource", "month"],
}


def as_month(column: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Date:
        return pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return pl.col(column).dt.date()
    return (pl.col(column).cast(pl.Utf8).str.slice(0, 7) + "-01").str.to_date("%Y-%m-%d")


def typed_frame(frame: pl.DataFrame | None, name: str) -> pl.DataFrame:
    """The frame with the columns this step reads, cast to their types (months as dates).

    Demo frames carry months as 'YYYY-MM' text and marts carry dates; both are accepted. An
    absent frame becomes an empty one with the right columns, so "no routings" is an empty
    frame, never a special case further down.
    """
    schema = _SCHEMAS[name]
    if frame is None or frame.height == 0:
        extra = {} if frame is None else {c: t for c, t in frame.schema.items() if c not in schema}
        return pl.DataFrame(schema={**schema, **extra})
    missing = [c for c in schema if c not in frame.columns and c not in ("p10", "p90", "xyz_class", "supplier", "plant", "priority")]
    if missing:
        raise ValueError(f"supply review: {name} lacks column(s) {missing}")
    exprs = []
    for column, dtype in schema.items():
        if column not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(column))
        elif dtype == pl.Date:
            exprs.append(as_month(column, frame.schema[column]).alias(column))
        else:
            exprs.append(pl.col(column).cast(dtype, strict=False))
    # A fixed row order makes the LP identical run after run: an LP with several optimal
    # plans would otherwise return another one, and an unchanged rerun would look like a new
    # plan version to the approval step.
    return frame.with_columns(exprs).sort(_SORT_KEYS[name])


@dataclass(frozen=True)
class SupplyInputs:
    """The typed mart frames the supply review reads, plus the scenario's capacity calendar.

    `resource_calendar` (resource, month, capacity_hours, overtime_hours) is only set by
    scenario overlays that change capacity in some months; without it every resource has its
    `resources` capacity in every month.
    """

    products: pl.DataFrame
    demand: pl.DataFrame
    segmentation: pl.DataFrame | None = None
    resources: pl.DataFrame | None = None
    routings: pl.DataFrame | None = None
    materials: pl.DataFrame | None = None
    bom: pl.DataFrame | None = None
    inventory: pl.DataFrame | None = None
    open_supply: pl.DataFrame | None = None
    resource_calendar: pl.DataFrame | None = None

    @classmethod
    def from_frames(
        cls, frames: Mapping[str, pl.DataFrame], demand: pl.DataFrame, segmentation: pl.DataFrame | None = None
    ) -> SupplyInputs:
        """Build from a dict of input frames (demo generator or marts) and the consensus demand."""
        names = ("products", "resources", "routings", "materials", "bom", "inventory", "open_supply")
        return cls(demand=demand, segmentation=segmentation, **{n: frames.get(n) for n in names}).typed()

    def typed(self) -> SupplyInputs:
        """Cast every frame to the columns and types the planner reads."""
        products = typed_frame(self.products, "products")
        demand = typed_frame(self.demand, "demand")
        if "family" not in demand.columns:
            demand = demand.join(products.select("sku", "family"), on="sku", how="left")
        return SupplyInputs(
            products=products,
            demand=demand,
            segmentation=typed_frame(self.segmentation, "segmentation"),
            resources=typed_frame(self.resources, "resources"),
            routings=typed_frame(self.routings, "routings"),
            materials=typed_frame(self.materials, "materials"),
            bom=typed_frame(self.bom, "bom"),
            inventory=typed_frame(self.inventory, "inventory"),
            open_supply=typed_frame(self.open_supply, "open_supply"),
            resource_calendar=None if self.resource_calendar is None else typed_frame(self.resource_calendar, "resource_calendar"),
        )

    @property
    def months(self) -> list[dt.date]:
        return sorted(self.demand.get_column("month").unique().to_list())

    def capacity_calendar(self) -> pl.DataFrame:
        """Capacity and overtime hours per resource and horizon month, overlays applied."""
        if self.resource_calendar is not None:
            return self.resource_calendar
        months = pl.DataFrame({"month": self.months}, schema={"month": pl.Date})
        return (
            self.resources.select("resource", "capacity_hours", "overtime_hours")
            .join(months, how="cross")
            .select("resource", "month", "capacity_hours", "overtime_hours")
        )
