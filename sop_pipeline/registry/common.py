"""Columns many planning tables share, described once."""

from sop_pipeline.registry.base import Col

CYCLE = Col("cycle", "text", "Planning cycle, YYYY-MM: the month the plan was made in (its first plan month).", pattern=r"^\d{4}-\d{2}$")
SCENARIO = Col("scenario", "text", "Supply scenario: `baseline` or a what-if from models/scenarios.yaml.")
SKU = Col("sku", "text", "Stock-keeping unit.")
FAMILY = Col("family", "text", "Product family.")
MONTH = Col("month", "date", "Plan month (first day of the month).")
RESOURCE = Col("resource", "text", "Production resource (line, work centre).")
MATERIAL = Col("material", "text", "Purchased material.")


def units(name: str, description: str, *, nullable: bool = False, ge: float | None = 0.0) -> Col:
    return Col(name, "float", description, unit="units", nullable=nullable, ge=ge)


def money(name: str, description: str, *, nullable: bool = False, ge: float | None = None) -> Col:
    return Col(name, "float", description, unit="money", nullable=nullable, ge=ge)


def hours(name: str, description: str, *, ge: float | None = 0.0) -> Col:
    return Col(name, "float", description, unit="hours", ge=ge)


def text(name: str, description: str, *, nullable: bool = False, isin: tuple[str, ...] | None = None) -> Col:
    return Col(name, "text", description, nullable=nullable, isin=isin)
