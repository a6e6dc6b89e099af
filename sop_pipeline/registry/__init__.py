"""The registry of planning tables: every table of the `planning` schema, declared once.

`TABLES[name]` gives a table's grain, columns (type, unit, description, ranges) and the
function that computes it. `validate` checks a step's output against it before it is written;
`sop_pipeline.warehouse` creates tables from it; `sop_pipeline.bi` comments the BI views from it
and `sop_pipeline.docs` renders the README's data dictionary from it.
"""

from __future__ import annotations

import polars as pl

from sop_pipeline.registry.base import Col, FrameCheck, Table, describe
from sop_pipeline.registry.common import CYCLE
from sop_pipeline.registry.demand import DEMAND_TABLES
from sop_pipeline.registry.executive import EXECUTIVE_TABLES
from sop_pipeline.registry.finance import FINANCE_TABLES
from sop_pipeline.registry.product import PRODUCT_TABLES
from sop_pipeline.registry.supply import SUPPLY_TABLES

__all__ = ["Col", "FrameCheck", "Table", "TABLES", "PLAN_OF_RECORD_SOURCES", "table", "validate", "describe", "conform"]

# The plan of record: target table -> the working table it copies (the approved scenario's rows).
PLAN_OF_RECORD_SOURCES = {
    "plan_of_record_demand": "consensus_demand",
    "plan_of_record_supply": "supply_plan",
    "plan_of_record_capacity": "capacity_plan",
    "plan_of_record_financial": "financial_plan",
}
_APPROVAL_COLUMNS = (
    Col("scenario", "text", "The approved scenario."),
    Col("plan_version", "text", "Hash of the plan tables the executive approved."),
    Col("approved_by", "text", "Executive who approved."),
    Col("approved_at", "timestamp", "When (UTC)."),
)


def _plan_of_record(name: str, source: Table) -> Table:
    rest = tuple(c for c in source.columns if c.name not in ("cycle", "scenario"))
    grain = ("cycle", "scenario", *[g for g in source.grain if g not in ("cycle", "scenario")])
    return Table(
        name,
        "executive_review",
        f"The approved plan's rows of planning.{source.name}, with the approved version and approver: "
        f"{source.description[0].lower()}{source.description[1:]}",
        grain,
        (CYCLE, *_APPROVAL_COLUMNS, *rest),
        checks=source.checks,
        computed_by="sop_pipeline.executive.governance.publish_plan_of_record",
        in_plan_version=False,
    )


_WORKING = PRODUCT_TABLES + DEMAND_TABLES + SUPPLY_TABLES + FINANCE_TABLES + EXECUTIVE_TABLES
TABLES: dict[str, Table] = {t.name: t for t in _WORKING}
TABLES.update({name: _plan_of_record(name, TABLES[source]) for name, source in PLAN_OF_RECORD_SOURCES.items()})
assert all(t.column_names[0] == "cycle" for t in TABLES.values()), "every planning table starts with cycle"
_SCHEMAS: dict[str, object] = {}


def table(name: str) -> Table:
    """The registered table `name` (with or without the `planning.` prefix)."""
    short = name.split(".")[-1]
    if short not in TABLES:
        raise KeyError(f"{name} is not a registered planning table (sop_pipeline.registry)")
    return TABLES[short]


def conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with exactly the registered columns in registry order (missing ones are an
    error, extra ones too: the registry is the table's definition)."""
    spec = table(name)
    missing = [c for c in spec.column_names if c not in frame.columns]
    extra = [c for c in frame.columns if c not in spec.column_names]
    if missing or extra:
        raise ValueError(
            f"planning.{spec.name}: "
            + (f"missing columns {missing} " if missing else "")
            + (f"columns not in the registry {extra}" if extra else "")
        )
    return frame.select(spec.column_names)


def validate(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Check a step's output against its registered table: columns, types (coerced), ranges,
    allowed values, grain uniqueness and cross-column rules, all problems reported at once."""
    spec = table(name)
    if spec.name not in _SCHEMAS:
        _SCHEMAS[spec.name] = spec.pandera_schema()
    return _SCHEMAS[spec.name].validate(conform(spec.name, frame), lazy=True)
