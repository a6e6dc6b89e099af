"""A broken input file stops the cycle before anything is written, with one clear message.

Each case breaks one file of a real demo company, runs the real cycle on a warehouse that
already holds two cycles, and checks the message (file, column, row, rule) and that every
table of the warehouse is exactly as before.
"""

from pathlib import Path

import polars as pl
import pytest
from conftest import CYCLE, warehouse_fingerprint

from sop_pipeline.inputs.validate import InputError, validate_inputs


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def _set_cell(data: Path, file: str, column: str, row: int, value: str) -> None:
    frame = _read(data / file)
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == row - 1).then(pl.lit(value)).otherwise(pl.col(column)).alias(column))
    frame.write_csv(data / file)


def drop_column(data: Path) -> None:
    _read(data / "sales_history.csv").drop("quantity").write_csv(data / "sales_history.csv")


def wrong_type(data: Path) -> None:
    _set_cell(data, "products.csv", "unit_price", 3, "twelve")


def bad_month(data: Path) -> None:
    _set_cell(data, "sales_history.csv", "month", 5, "2026-13")


def negative_quantity(data: Path) -> None:
    _set_cell(data, "sales_history.csv", "quantity", 7, "-4")


def duplicate_key(data: Path) -> None:
    frame = _read(data / "products.csv")
    pl.concat([frame, frame.slice(1, 1)]).write_csv(data / "products.csv")


def unknown_sku(data: Path) -> None:
    frame = _read(data / "sales_history.csv")
    extra = frame.slice(0, 1).with_columns(pl.lit("GHOST-1").alias("sku"))
    pl.concat([frame, extra]).write_csv(data / "sales_history.csv")


def empty_file(data: Path) -> None:
    (data / "products.csv").write_bytes(b"")


def not_utf8(data: Path) -> None:
    lines = (data / "products.csv").read_bytes().split(b"\n")
    first_field, rest = lines[2].split(b",", 1)
    lines[2] = first_field + b"," + b"Caf\xe9 " + rest  # latin-1 e-acute in the description column
    (data / "products.csv").write_bytes(b"\n".join(lines))


CASES = {
    # case: (breaker, file, column, row, words of the rule)
    "missing column": (drop_column, "sales_history.csv", "quantity", None, "required column is missing"),
    "wrong type": (wrong_type, "products.csv", "unit_price", 3, "not a number"),
    "unparseable month": (bad_month, "sales_history.csv", "month", 5, "not a month"),
    "negative quantity": (negative_quantity, "sales_history.csv", "quantity", 7, "must not be negative"),
    "duplicate key": (duplicate_key, "products.csv", "sku", None, "duplicate key"),
    "sales for unknown sku": (unknown_sku, "sales_history.csv", "sku", None, "unknown sku"),
    "empty file": (empty_file, "products.csv", None, None, "empty"),
    "non-utf8 bytes": (not_utf8, "products.csv", "description", 2, "not UTF-8"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_validator_names_file_column_row_and_rule(case, data_copy):
    breaker, file, column, row, rule = CASES[case]
    breaker(data_copy)
    with pytest.raises(InputError) as caught:
        validate_inputs(data_copy)
    error = caught.value
    assert error.file == file
    assert rule in error.rule
    if column is not None:
        assert error.column == column
    if row is not None:
        assert error.row == row
    else:
        assert case in ("missing column", "empty file") or error.row is not None


@pytest.mark.parametrize("case", ["wrong type", "sales for unknown sku", "non-utf8 bytes", "empty file"])
def test_broken_input_stops_the_cycle_and_leaves_the_warehouse_unchanged(case, data_copy, warehouse_copy):
    from orchestration.runner import run_cycle

    breaker, file, column, _row, rule = CASES[case]
    breaker(data_copy)
    before = warehouse_fingerprint(warehouse_copy)
    assert any(t.startswith("planning.") for t in before) and "marts.fct_sales_monthly" in before
    lines: list[str] = []
    outcome = run_cycle(CYCLE, str(data_copy), str(warehouse_copy), printer=lines.append)
    assert not outcome.success
    message = outcome.explanation()
    assert file in message and rule in message
    if column:
        assert column in message
    assert warehouse_fingerprint(warehouse_copy) == before


def test_good_demo_company_passes_validation(demo_dir):
    folder = validate_inputs(demo_dir)
    assert folder.row_counts()["products"] > 0 and folder.row_counts()["sales_history"] > 0
