"""Every bad input gets one clear answer; what spreadsheets and ERPs export is forgiven.

The validator cases break one file of a real demo company and check the message names the
file, column, row and rule the contract states (`sop_pipeline/inputs/contract.py`), in
milliseconds. The forgiven cases check the values really loaded are the original ones. The
end-to-end cases run the real cycle on a warehouse that already holds two cycles and check
that a refused input, and a failure inside dbt's tests, leave every table byte-for-byte as it
was.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CYCLE, q, warehouse_fingerprint

from sop_pipeline.inputs.validate import InputError, validate_inputs
from sop_pipeline.settings.inputs import InputSettings


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(), newline="")))


def _write(path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue())


def set_cell(file: str, row: int, column: str, value: str):
    """A breaker that puts `value` into data row `row` (1-based) of `column`."""

    def breaker(data: Path) -> None:
        rows = _rows(data / file)
        rows[row][rows[0].index(column)] = value
        _write(data / file, rows)

    return breaker


def replace_bytes(file: str, old: bytes, new: bytes, count: int = -1):
    def breaker(data: Path) -> None:
        raw = (data / file).read_bytes()
        assert old in raw, f"{old!r} not in {file}"
        (data / file).write_bytes(raw.replace(old, new, count))

    return breaker


def drop_column(data: Path) -> None:
    rows = _rows(data / "sales_history.csv")
    at = rows[0].index("quantity")
    _write(data / "sales_history.csv", [r[:at] + r[at + 1 :] for r in rows])


def duplicate_key(data: Path) -> None:
    rows = _rows(data / "products.csv")
    changed = rows[2][:]
    changed[rows[0].index("unit_price")] = "99.99"
    _write(data / "products.csv", [*rows, changed])


def unknown_sku(data: Path) -> None:
    rows = _rows(data / "sales_history.csv")
    ghost = rows[1][:]
    ghost[rows[0].index("sku")] = "GHOST-1"
    _write(data / "sales_history.csv", [*rows, ghost])


def empty_file(data: Path) -> None:
    (data / "products.csv").write_bytes(b"")


def latin1_after_quoted_comma(data: Path) -> None:
    """A description quoted because it holds a comma, then a latin-1 byte: the column must be
    counted with the quotes, not by commas."""
    raw = (data / "products.csv").read_bytes().split(b"\n")
    sku, description, rest = raw[2].split(b",", 2)
    raw[2] = sku + b',"' + description + b', Caf\xe9",' + rest
    (data / "products.csv").write_bytes(b"\n".join(raw))


def ragged_row(data: Path) -> None:
    raw = (data / "inventory.csv").read_bytes().split(b"\n")
    raw[4] = raw[4] + b",7"
    (data / "inventory.csv").write_bytes(b"\n".join(raw))


def unterminated_quote(data: Path) -> None:
    raw = (data / "products.csv").read_bytes().split(b"\n")
    sku, rest = raw[3].split(b",", 1)
    raw[3] = sku + b',"' + rest
    (data / "products.csv").write_bytes(b"\n".join(raw))


def semicolons(data: Path) -> None:
    rows = _rows(data / "budget.csv")
    (data / "budget.csv").write_text("\n".join(";".join(v.replace(".", ",") for v in r) for r in rows) + "\n")


def family_all(data: Path) -> None:
    """A family named ALL (the reports' total rows), set on every SKU of one family."""
    rows = _rows(data / "products.csv")
    at = rows[0].index("family")
    first = rows[1][at]
    _write(data / "products.csv", [rows[0]] + [r[:at] + (["ALL"] if r[at] == first else [r[at]]) + r[at + 1 :] for r in rows[1:]])


def _bad_key(file: str, row: int, column: str, value: str):
    return set_cell(file, row, column, value)


def negative_override(data: Path) -> None:
    rows = _rows(data / "demand_inputs.csv")
    at = next(i for i, r in enumerate(rows) if r[rows[0].index("adjustment_type")] == "override")
    rows[at][rows[0].index("value")] = "-5"
    _write(data / "demand_inputs.csv", rows)


def demand_input_row(data: Path, level: str) -> int:
    rows = _rows(data / "demand_inputs.csv")
    return next(i for i, r in enumerate(rows) if i and r[rows[0].index("level")] == level)


def unknown_demand_input_sku(data: Path) -> None:
    set_cell("demand_inputs.csv", demand_input_row(data, "sku"), "key", "COO-99999")(data)


CASES = {
    # case: (breaker, file, column, row, words of the rule)
    "missing column": (drop_column, "sales_history.csv", "quantity", None, "required column is missing"),
    "wrong type": (set_cell("products.csv", 3, "unit_price", "twelve"), "products.csv", "unit_price", 3, "not a number"),
    "unparseable month": (set_cell("sales_history.csv", 5, "month", "2026-13"), "sales_history.csv", "month", 5, "not a month"),
    "negative quantity": (set_cell("sales_history.csv", 7, "quantity", "-4"), "sales_history.csv", "quantity", 7, "must not be negative"),
    "duplicate key": (duplicate_key, "products.csv", "sku", None, "duplicate key"),
    "sales for unknown sku": (unknown_sku, "sales_history.csv", "sku", None, "unknown sku"),
    "empty file": (empty_file, "products.csv", None, None, "empty"),
    "non-utf8 after a quoted comma": (latin1_after_quoted_comma, "products.csv", "description", 2, "not UTF-8"),
    "ragged row": (ragged_row, "inventory.csv", None, 4, "3 values where the header has 2"),
    "unterminated quote": (unterminated_quote, "products.csv", None, 3, "never closed"),
    "semicolon file": (semicolons, "budget.csv", None, None, "separated by semicolons"),
    "quantity overflowing to infinity": (
        set_cell("sales_history.csv", 5, "quantity", "1e400"),
        "sales_history.csv",
        "quantity",
        5,
        "overflows to infinity",
    ),
    "budget revenue overflowing": (set_cell("budget.csv", 4, "revenue", "1e400"), "budget.csv", "revenue", 4, "overflows to infinity"),
    "NaN": (set_cell("sales_history.csv", 5, "quantity", "NaN"), "sales_history.csv", "quantity", 5, "NaN"),
    "infinity spelled out": (set_cell("sales_history.csv", 6, "net_price", "inf"), "sales_history.csv", "net_price", 6, "infinite"),
    "family named ALL": (family_all, "products.csv", "family", 1, "reserved"),
    "promotion share above 1": (set_cell("sales_history.csv", 8, "promotion", "5"), "sales_history.csv", "promotion", 8, "at most 1"),
    "budget family typo": (set_cell("budget.csv", 4, "family", "Gardn"), "budget.csv", "family", 4, "unknown family"),
    "price plan family typo": (set_cell("price_plan.csv", 1, "key", "Gardn"), "price_plan.csv", "key", 1, "unknown family"),
    "demand input for unknown sku": (unknown_demand_input_sku, "demand_inputs.csv", "key", None, "unknown sku"),
    "negative override": (negative_override, "demand_inputs.csv", "value", None, "cannot be negative"),
    "month 0000-01": (set_cell("sales_history.csv", 3, "month", "0000-01"), "sales_history.csv", "month", 3, "before 1901"),
    "Excel's zero date": (set_cell("sales_history.csv", 3, "month", "1900-01"), "sales_history.csv", "month", 3, "before 1901"),
    "sales in the future": (set_cell("sales_history.csv", 3, "month", "2099-03"), "sales_history.csv", "month", 3, "in the future"),
    "open order a century out": (set_cell("open_supply.csv", 3, "month", "2200-01"), "open_supply.csv", "month", 3, "years after"),
    "duplicate header": (replace_bytes("inventory.csv", b"sku,on_hand\n", b"sku,on_hand,sku\n", 1), "inventory.csv", "sku", None, "twice"),
    "integer beyond any lead time": (
        set_cell("materials.csv", 2, "lead_time_months", "3000000000"),
        "materials.csv",
        "lead_time_months",
        2,
        "at most 60",
    ),
    "fractional priority": (set_cell("routings.csv", 2, "priority", "1.5"), "routings.csv", "priority", 2, "whole number"),
    "like_sku typo": (set_cell("products.csv", 3, "like_sku", "ZZZ-1"), "products.csv", "like_sku", 3, "unknown sku"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_validator_names_file_column_row_and_rule(case, data_copy):
    breaker, file, column, row, rule = CASES[case]
    breaker(data_copy)
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        validate_inputs(data_copy, CYCLE)
    assert time.perf_counter() - started < 10, "a broken file is refused in seconds, not after a run"
    error = caught.value
    assert error.file == file, str(error)
    assert rule in error.rule, str(error)
    assert column is None or error.column == column, str(error)
    assert row is None or error.row == row, str(error)
    assert "\n" not in str(error) and "Traceback" not in str(error)


def test_an_exact_repeat_of_a_row_is_dropped_but_a_conflicting_one_is_a_duplicate_key(data_copy):
    rows = _rows(data_copy / "inventory.csv")
    _write(data_copy / "inventory.csv", [*rows, rows[1]])
    assert validate_inputs(data_copy, CYCLE).frames["inventory"].height == len(rows) - 1
    conflicting = rows[1][:-1] + [str(int(rows[1][-1]) + 1)]
    _write(data_copy / "inventory.csv", [*rows, conflicting])
    with pytest.raises(InputError, match=rf"row {len(rows)}: duplicate key \(sku\) also on row 1"):
        validate_inputs(data_copy, CYCLE)


def _loaded(folder) -> dict[str, pl.DataFrame]:
    return {name: frame.drop("_row", "_line") for name, frame in folder.frames.items()}


def _header_spaces(data: Path) -> None:
    rows = _rows(data / "bom.csv")
    _write(data / "bom.csv", [[f"  {name.upper()}\t" for name in rows[0]], *rows[1:]])


def _padded_values(data: Path) -> None:
    rows = _rows(data / "inventory.csv")
    _write(data / "inventory.csv", [rows[0]] + [[f"\t{v} " for v in r] for r in rows[1:]])


def _bom_crlf_blank_lines(data: Path) -> None:
    raw = (data / "products.csv").read_bytes()
    (data / "products.csv").write_bytes(b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n") + b"\r\n\r\n,,,,,,,,,\r\n")


def _quoted_everything(data: Path) -> None:
    rows = _rows(data / "routings.csv")
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    (data / "routings.csv").write_text(buffer.getvalue())


def _extra_columns(data: Path) -> None:
    rows = _rows(data / "materials.csv")
    _write(data / "materials.csv", [[*rows[0], "buyer", "notes"]] + [[*r, "Ana", "call, then mail"] for r in rows[1:]])


def _dates_for_months(data: Path) -> None:
    rows = _rows(data / "sales_history.csv")
    at = rows[0].index("month")
    _write(data / "sales_history.csv", [rows[0]] + [r[:at] + [r[at] + "-01"] + r[at + 1 :] for r in rows[1:]])


def _parquet_with_nested_columns(data: Path) -> None:
    frame = pl.read_csv(data / "resources.csv")
    table = (
        frame.to_arrow()
        .append_column("shifts", pa.array([[1, 2]] * frame.height))
        .append_column("site", pa.array([{"country": "ES"}] * frame.height))
    )
    pq.write_table(table, data / "resources.parquet")
    (data / "resources.csv").unlink()


FORGIVEN = {
    "spaces, tabs and case around headers": _header_spaces,
    "tabs and spaces around values": _padded_values,
    "a BOM, CRLF line ends and trailing blank lines": _bom_crlf_blank_lines,
    "every field quoted": _quoted_everything,
    "extra columns": _extra_columns,
    "dates where months are expected": _dates_for_months,
    "Parquet with extra nested columns": _parquet_with_nested_columns,
}


@pytest.mark.parametrize("case", list(FORGIVEN))
def test_what_exports_write_is_forgiven_and_loads_the_same_values(case, demo_dir, data_copy):
    expected = _loaded(validate_inputs(demo_dir, CYCLE))
    FORGIVEN[case](data_copy)
    loaded = _loaded(validate_inputs(data_copy, CYCLE))
    assert loaded.keys() == expected.keys()
    for name, frame in expected.items():
        assert loaded[name].equals(frame), name


def _to_european(path: Path) -> None:
    """What Excel writes where the decimal separator is a comma: `;` between fields, `,` in numbers."""
    rows = _rows(path)
    path.write_text(
        "\n".join(";".join(v.replace(".", ",") if v.replace(".", "").replace("-", "").isdigit() else v for v in r) for r in rows)
    )


def test_a_semicolon_file_with_decimal_commas_is_read_when_the_setting_says_so(demo_dir, data_copy):
    expected = _loaded(validate_inputs(demo_dir, CYCLE))
    for path in data_copy.glob("*.csv"):
        _to_european(path)
    european = InputSettings(delimiter=";", decimal=",")
    loaded = _loaded(validate_inputs(data_copy, CYCLE, european))
    for name, frame in expected.items():
        assert loaded[name].equals(frame), name
    # A thousands separator: 1.234,5 is 1234.5.
    rows = [line.split(";") for line in (data_copy / "budget.csv").read_text().splitlines()]
    rows[1][rows[0].index("revenue")] = "1.234,5"
    (data_copy / "budget.csv").write_text("\n".join(";".join(r) for r in rows))
    folder = validate_inputs(data_copy, CYCLE, european)
    assert folder.frames["budget"].filter(pl.col("_row") == 1)["revenue"][0] == pytest.approx(1234.5)


@pytest.mark.parametrize("case", ["wrong type", "sales for unknown sku", "non-utf8 after a quoted comma", "family named ALL"])
def test_broken_input_stops_the_cycle_and_leaves_the_warehouse_unchanged(case, data_copy, warehouse_copy):
    from orchestration.runner import run_cycle

    breaker, file, column, _row, rule = CASES[case]
    breaker(data_copy)
    before = warehouse_fingerprint(warehouse_copy)
    bi_before = (warehouse_copy.parent / "sop_bi.duckdb").read_bytes() if (warehouse_copy.parent / "sop_bi.duckdb").exists() else None
    assert any(t.startswith("planning.") for t in before) and "marts.fct_sales_monthly" in before
    lines: list[str] = []
    outcome = run_cycle(CYCLE, str(data_copy), str(warehouse_copy), printer=lines.append)
    assert not outcome.success
    message = outcome.explanation()
    assert file in message and rule in message
    assert column is None or column in message
    assert "Traceback" not in message and len(message.splitlines()) == 1
    assert "Nothing in the warehouse changed" in outcome.advice()
    assert warehouse_fingerprint(warehouse_copy) == before
    if bi_before is not None:
        assert (warehouse_copy.parent / "sop_bi.duckdb").read_bytes() == bi_before


def test_a_failure_in_dbts_tests_is_explained_by_file_column_and_row_and_changes_nothing(data_copy, warehouse_copy, monkeypatch):
    """Defence in depth: were the validator to miss a duplicate key, dbt's unique test stops the
    ingestion; its failure reaches the planner in the validator's form, and the marts dbt built
    are never swapped in."""
    from orchestration.runner import run_cycle
    from sop_pipeline.inputs import validate

    monkeypatch.setattr(validate, "_check_key", lambda spec, label, frame: frame)
    duplicate_key(data_copy)
    before = warehouse_fingerprint(warehouse_copy)
    outcome = run_cycle(CYCLE, str(data_copy), str(warehouse_copy), printer=lambda _: None)
    assert not outcome.success
    message = outcome.explanation()
    assert "products.csv, column 'sku', row " in message and "the value must be unique" in message, message
    assert "DagsterDbtCliRuntimeError" not in message and "Traceback" not in message
    assert warehouse_fingerprint(warehouse_copy) == before
    # The run's workspace (typed inputs, dbt's build and target folders) is gone.
    assert not any((warehouse_copy.parent / ".ingest").glob("*"))


def test_a_grouped_dbt_test_names_the_column_and_row_that_broke_it(data_copy, warehouse_copy, monkeypatch):
    """dbt checks a model's non-negative columns in one query (`non_negative_columns`); when it
    fails, the message still names the one column and row, as the validator would have."""
    from orchestration.runner import run_cycle
    from sop_pipeline.inputs import validate

    real = validate._column_rules

    def rules(spec, column, bounds, settings):
        return [] if spec.name == "resources" else real(spec, column, bounds, settings)

    monkeypatch.setattr(validate, "_column_rules", rules)
    rows = [line.split(",") for line in (data_copy / "resources.csv").read_text().splitlines()]
    rows[3][rows[0].index("overtime_hours")] = "-5"  # the third data row
    (data_copy / "resources.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    before = warehouse_fingerprint(warehouse_copy)
    outcome = run_cycle(CYCLE, str(data_copy), str(warehouse_copy), printer=lambda _: None)
    assert not outcome.success
    message = outcome.explanation()
    assert "resources.csv, column 'overtime_hours', row 3: must not be negative" in message, message
    assert warehouse_fingerprint(warehouse_copy) == before


def test_dbt_loads_exactly_the_values_the_validator_read(cycle_warehouse, demo_dir):
    folder = validate_inputs(demo_dir, CYCLE)
    for name in ("products", "budget", "routings"):
        expected = folder.frames[name].drop("_line").rename({"_row": "_source_row"}).sort("_source_row")
        staged = q(cycle_warehouse, f"select * from staging.stg_{name} order by _source_row")
        staged = staged.select(expected.columns).with_columns([pl.col(c).cast(t) for c, t in expected.schema.items()])
        assert staged.equals(expected), name


def test_good_demo_company_passes_validation(demo_dir):
    folder = validate_inputs(demo_dir, CYCLE)
    assert folder.row_counts()["products"] > 0 and folder.row_counts()["sales_history"] > 0
