"""Unit costs on both bases (standard and rolled-up), the cost variances between them, and the
overtime premium allocated to the families that loaded it."""

from __future__ import annotations

import polars as pl

from sop_pipeline.finance.common import as_month
from sop_pipeline.rules import preferred_routings

COST_BASES = ("standard", "rolled_up")


def unit_costs(
    products: pl.DataFrame,
    bom: pl.DataFrame | None = None,
    materials: pl.DataFrame | None = None,
    routings: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
    cost_basis: str = "standard",
) -> pl.DataFrame:
    """Per SKU: the rolled-up cost, the standard cost and the cost the books value at.

    standard_cost is the product master's unit_cost (what finance books; the rolled-up cost
    where unit_cost is missing); rolled_up_cost = material + conversion of `rolled_up_costs`.
    valuation_cost is the one `cost_basis` names: COGS, opening and closing stock all use it.
    material_variance = rolled_up_cost - valuation_cost per unit shipped: under the standard
    basis the standard's conversion part is taken to be the preferred routing at the
    resource's rate, so the whole difference is material (BOM at today's material prices
    against the material the standard assumed). Columns: sku, family, material_cost,
    conversion_cost, rolled_up_cost, standard_cost, valuation_cost, material_variance.
    """
    if cost_basis not in COST_BASES:
        raise ValueError(f"cost_basis must be one of {COST_BASES}, got {cost_basis!r}")
    rolled = rolled_up_costs(products, bom, materials, routings, resources)
    std = products.select("sku", pl.col("unit_cost").cast(pl.Float64).alias("_unit_cost"))
    valuation = pl.col("standard_cost") if cost_basis == "standard" else pl.col("rolled_up_cost")
    return (
        rolled.join(std, on="sku", how="left")
        .with_columns(pl.coalesce("_unit_cost", "rolled_up_cost").alias("standard_cost"))
        .with_columns(valuation.alias("valuation_cost"))
        .with_columns((pl.col("rolled_up_cost") - pl.col("valuation_cost")).alias("material_variance"))
        .select(
            "sku",
            "family",
            "material_cost",
            "conversion_cost",
            "rolled_up_cost",
            "standard_cost",
            "valuation_cost",
            "material_variance",
            "primary_resource",
            "hours_per_unit",
        )
    )


def rolled_up_costs(
    products: pl.DataFrame,
    bom: pl.DataFrame | None = None,
    materials: pl.DataFrame | None = None,
    routings: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Rolled-up cost per unit of every product: material + conversion.

    Material = sum of BOM qty_per x material unit_cost. Conversion = hours_per_unit of the
    preferred routing (`sop_pipeline.rules.preferred_routings`, the supply plan's too) x its
    cost_per_hour, whichever alternate the supply plan uses in a month (the extra cost of an
    alternate is a conversion variance of the month, see `routing_variance`). A SKU with
    neither BOM nor routing has no known make cost, so its product-master unit_cost stands in
    as material (`cost_basis` = 'unit_cost').
    Columns: sku, family, material_cost, conversion_cost, rolled_up_cost, cost_basis,
    primary_resource, hours_per_unit.
    """
    base = products.select("sku", "family", pl.col("unit_cost").cast(pl.Float64))
    if bom is not None and materials is not None and bom.height:
        material = (
            bom.join(materials.select("material", pl.col("unit_cost").cast(pl.Float64).alias("m_cost")), on="material", how="left")
            .sort("sku", "material")
            .group_by("sku", maintain_order=True)
            .agg((pl.col("qty_per") * pl.col("m_cost").fill_null(0.0)).sum().alias("bom_cost"))
        )
    else:
        material = pl.DataFrame(schema={"sku": pl.String, "bom_cost": pl.Float64})
    if routings is not None and routings.height:
        rates = (
            resources.select("resource", pl.col("cost_per_hour").cast(pl.Float64))
            if resources is not None
            else pl.DataFrame(schema={"resource": pl.String, "cost_per_hour": pl.Float64})
        )
        primary = (
            preferred_routings(routings)
            .join(rates, on="resource", how="left")
            .select(
                "sku",
                pl.col("resource").alias("primary_resource"),
                pl.col("hours_per_unit").cast(pl.Float64),
                (pl.col("hours_per_unit") * pl.col("cost_per_hour").fill_null(0.0)).alias("route_cost"),
            )
        )
    else:
        primary = pl.DataFrame(
            schema={"sku": pl.String, "primary_resource": pl.String, "hours_per_unit": pl.Float64, "route_cost": pl.Float64}
        )
    frame = base.join(material, on="sku", how="left").join(primary, on="sku", how="left")
    made = pl.col("bom_cost").is_not_null() | pl.col("route_cost").is_not_null()
    return (
        frame.select(
            "sku",
            "family",
            pl.when(made).then(pl.col("bom_cost").fill_null(0.0)).otherwise(pl.col("unit_cost").fill_null(0.0)).alias("material_cost"),
            pl.when(made).then(pl.col("route_cost").fill_null(0.0)).otherwise(0.0).alias("conversion_cost"),
            pl.when(made).then(pl.lit("bom_routing")).otherwise(pl.lit("unit_cost")).alias("cost_basis"),
            "primary_resource",
            "hours_per_unit",
        )
        .with_columns((pl.col("material_cost") + pl.col("conversion_cost")).alias("rolled_up_cost"))
        .select("sku", "family", "material_cost", "conversion_cost", "rolled_up_cost", "cost_basis", "primary_resource", "hours_per_unit")
        .sort("sku")
    )


def overtime_allocation(
    capacity_plan: pl.DataFrame | None,
    resources: pl.DataFrame | None,
    routings: pl.DataFrame | None,
    supply_plan: pl.DataFrame,
    products: pl.DataFrame,
) -> pl.DataFrame:
    """Each resource's overtime premium of a month, split over the families that loaded it.

    Cost = overtime_hours x max(overtime_cost_per_hour - cost_per_hour, 0): standard conversion
    already pays the hour at the regular rate. Weights, first that is positive: the family's
    production x preferred-routing hours on the resource; production x hours over all its
    routings on the resource; the family's share of all production in the month. Overtime in a
    month without any production is left unallocated (the tie-out check reports it).
    Columns: scenario, resource, family, month, overtime_hours, overtime_cost.
    """
    schema = {
        "scenario": pl.String,
        "resource": pl.String,
        "family": pl.String,
        "month": pl.Date,
        "overtime_hours": pl.Float64,
        "overtime_cost": pl.Float64,
    }
    if capacity_plan is None or capacity_plan.height == 0 or resources is None:
        return pl.DataFrame(schema=schema)
    premium = resources.select(
        "resource", (pl.col("overtime_cost_per_hour") - pl.col("cost_per_hour")).cast(pl.Float64).clip(lower_bound=0.0).alias("premium")
    )
    ot = (
        as_month(capacity_plan)
        .filter(pl.col("overtime_hours") > 0)
        .join(premium, on="resource", how="left")
        .select(
            "scenario",
            "resource",
            "month",
            pl.col("overtime_hours").cast(pl.Float64).alias("ot_hours"),
            (pl.col("overtime_hours") * pl.col("premium").fill_null(0.0)).alias("ot_cost"),
        )
    )
    if ot.height == 0:
        return pl.DataFrame(schema=schema)
    prod = (
        as_month(supply_plan)
        .select("scenario", "sku", "month", pl.col("production").cast(pl.Float64))
        .join(products.select("sku", "family"), on="sku", how="left")
    )
    routes = (
        routings
        if routings is not None
        else pl.DataFrame(schema={"sku": pl.String, "resource": pl.String, "hours_per_unit": pl.Float64, "priority": pl.Int64})
    )
    preferred = preferred_routings(routes)

    def load(route_rows: pl.DataFrame, name: str) -> pl.DataFrame:
        return (
            prod.join(route_rows.select("sku", "resource", "hours_per_unit"), on="sku", how="inner")
            .group_by("scenario", "resource", "family", "month", maintain_order=True)
            .agg((pl.col("production") * pl.col("hours_per_unit")).sum().alias(name))
        )

    family_output = prod.group_by("scenario", "family", "month", maintain_order=True).agg(pl.col("production").sum().alias("w3"))
    keys = ["scenario", "resource", "family", "month"]
    frame = (
        ot.join(family_output, on=["scenario", "month"], how="inner")
        .join(load(preferred, "w1"), on=keys, how="left")
        .join(load(routes, "w2"), on=keys, how="left")
        .with_columns(pl.col("w1", "w2", "w3").fill_null(0.0).clip(lower_bound=0.0))
        .with_columns([pl.col(w).sum().over("scenario", "resource", "month").alias(f"{w}_total") for w in ("w1", "w2", "w3")])
    )
    share = (
        pl.when(pl.col("w1_total") > 0)
        .then(pl.col("w1") / pl.col("w1_total"))
        .when(pl.col("w2_total") > 0)
        .then(pl.col("w2") / pl.col("w2_total"))
        .when(pl.col("w3_total") > 0)
        .then(pl.col("w3") / pl.col("w3_total"))
        .otherwise(0.0)
    )
    return (
        frame.with_columns(share.alias("share"))
        .filter(pl.col("share") > 0)
        .select(
            "scenario",
            "resource",
            "family",
            "month",
            (pl.col("ot_hours") * pl.col("share")).alias("overtime_hours"),
            (pl.col("ot_cost") * pl.col("share")).alias("overtime_cost"),
        )
        .sort(keys)
    )


def routing_variance(
    production_plan: pl.DataFrame | None,
    supply_plan: pl.DataFrame,
    products: pl.DataFrame,
    routings: pl.DataFrame | None,
    resources: pl.DataFrame | None,
) -> pl.DataFrame:
    """Conversion variance of each family-month: what the plan's load costs at regular rates
    (production_plan load_hours x cost_per_hour, on whichever routing runs it) minus what its
    production would cost on the preferred routings. Positive where alternate lines are
    slower or dearer. A period cost of the month the units are made, like overtime.
    Columns: scenario, family, month, conversion_variance.
    """
    schema = {"scenario": pl.String, "family": pl.String, "month": pl.Date, "conversion_variance": pl.Float64}
    if production_plan is None or production_plan.height == 0 or routings is None or resources is None:
        return pl.DataFrame(schema=schema)
    rates = resources.select("resource", pl.col("cost_per_hour").cast(pl.Float64))
    actual = (
        as_month(production_plan)
        .filter(pl.col("resource").is_not_null())
        .join(rates, on="resource", how="left")
        .group_by("scenario", "family", "month", maintain_order=True)
        .agg((pl.col("load_hours") * pl.col("cost_per_hour").fill_null(0.0)).sum().alias("actual"))
    )
    preferred = preferred_routings(routings).join(rates, on="resource", how="left")
    standard = (
        as_month(supply_plan)
        .select("scenario", "sku", "month", pl.col("production").cast(pl.Float64))
        .join(products.select("sku", "family"), on="sku", how="left")
        .join(
            preferred.select("sku", (pl.col("hours_per_unit") * pl.col("cost_per_hour").fill_null(0.0)).alias("rate")),
            on="sku",
            how="inner",
        )
        .group_by("scenario", "family", "month", maintain_order=True)
        .agg((pl.col("production") * pl.col("rate")).sum().alias("standard"))
    )
    return (
        actual.join(standard, on=["scenario", "family", "month"], how="full", coalesce=True)
        .select(
            "scenario",
            "family",
            "month",
            (pl.col("actual").fill_null(0.0) - pl.col("standard").fill_null(0.0)).alias("conversion_variance"),
        )
        .sort("scenario", "family", "month")
    )
