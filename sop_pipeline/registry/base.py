"""What a planning table is: its grain, its columns with type, unit and meaning.

A table is declared once (in this package) and everything else is derived from that
declaration: the pandera schema every step validates its output with, the DDL that creates
the warehouse table (with DuckDB column comments), the BI views' column comments and the
README's data dictionary. A column added here reaches all of them; a column a step writes
but the registry does not know fails validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandera.polars as pa
import polars as pl

# type name -> (polars dtype, DuckDB type, how the README shows it)
TYPES: dict[str, tuple[pl.DataType, str, str]] = {
    "text": (pl.String(), "VARCHAR", "text"),
    "date": (pl.Date(), "DATE", "date"),
    "float": (pl.Float64(), "DOUBLE", "number"),
    "int": (pl.Int64(), "BIGINT", "whole number"),
    "int32": (pl.Int32(), "INTEGER", "whole number"),
    "bool": (pl.Boolean(), "BOOLEAN", "true/false"),
    "timestamp": (pl.Datetime("us"), "TIMESTAMP", "timestamp (UTC)"),
}
# Solver output may be a millionth below zero; that is noise, not a negative quantity.
NOISE = -1e-6


@dataclass(frozen=True)
class Col:
    """One column: `unit` says what a number is measured in (units, money, hours, ratio ...)."""

    name: str
    type: str
    description: str
    unit: str = ""
    nullable: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    isin: tuple[str, ...] | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")

    @property
    def polars_type(self) -> pl.DataType:
        return TYPES[self.type][0]

    @property
    def duckdb_type(self) -> str:
        return TYPES[self.type][1]

    def checks(self) -> list[pa.Check]:
        out = []
        for bound, make in (("ge", pa.Check.ge), ("gt", pa.Check.gt), ("le", pa.Check.le), ("lt", pa.Check.lt)):
            value = getattr(self, bound)
            if value is not None:
                out.append(make(value))
        if self.isin is not None:
            out.append(pa.Check.isin(list(self.isin)))
        if self.pattern is not None:
            out.append(pa.Check.str_matches(self.pattern))
        return out

    def with_(self, **changes) -> Col:
        return Col(**{**self.__dict__, **changes})


@dataclass(frozen=True)
class FrameCheck:
    """A rule across columns (p10 <= p50 <= p90): a name, a sentence and a polars expression
    that is true on every valid row."""

    name: str
    description: str
    expr: Callable[[], pl.Expr]


@dataclass(frozen=True)
class Table:
    """A planning table: `grain` is its key (unique per row); every row carries `cycle`."""

    name: str
    step: str
    description: str
    grain: tuple[str, ...]
    columns: tuple[Col, ...]
    checks: tuple[FrameCheck, ...] = ()
    schema: str = "planning"
    # the function that computes the table, for readers who come from the UI or the README
    computed_by: str = ""
    # written only after an approval, or by the review's bookkeeping: not part of the plan
    # version (see executive.governance)
    in_plan_version: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate column names")
        missing = set(self.grain) - set(names)
        if missing:
            raise ValueError(f"{self.name}: grain columns {sorted(missing)} are not columns")

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Col:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.polars_type for c in self.columns}

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema())

    def pandera_schema(self) -> pa.DataFrameSchema:
        columns = {c.name: pa.Column(c.polars_type, checks=c.checks(), nullable=c.nullable, coerce=True) for c in self.columns}
        frame_checks = [pa.Check(lambda data, f=f: data.lazyframe.select(f.expr()), name=f.name, error=f.description) for f in self.checks]
        return pa.DataFrameSchema(columns, checks=frame_checks, unique=list(self.grain) or None, strict=True, name=self.qualified)

    def ddl(self) -> str:
        columns = ",\n    ".join(f'"{c.name}" {c.duckdb_type}' for c in self.columns)
        return f"create table if not exists {self.qualified} (\n    {columns}\n)"

    def comments(self) -> list[str]:
        """DuckDB COMMENT statements: the table's and every column's description and unit."""
        out = [f"comment on table {self.qualified} is {sql_string(self.description)}"]
        for c in self.columns:
            out.append(f'comment on column {self.qualified}."{c.name}" is {sql_string(describe(c))}')
        return out


def describe(col: Col) -> str:
    """The column's description with its unit, as BI tools and the README show it."""
    return f"{col.description} [{col.unit}]" if col.unit else col.description


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
