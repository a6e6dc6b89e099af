"""Reading and validating the company's input folder before anything touches the warehouse.

A planning cycle that half-loads a broken file is worse than one that refuses it: earlier
cycles and the published plan must stay exactly as they were. So every file is checked here,
in memory, against the contract in `contract.py`, and the first broken value stops the run
with one message naming the file, the column, the row and the rule. Row numbers count data
rows from 1 (the header is line 1 of a CSV, so data row N is line N+1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from sop_pipeline.inputs.contract import (
    FILES_BY_NAME,
    INPUT_FILES,
    INTEGER,
    MONTH,
    NONNEG,
    NUMBER,
    POSITIVE,
    InputFile,
)

_MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])(-01)?$"
_NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


class InputError(ValueError):
    """A broken input file. The message is meant for the person who exported the file."""

    def __init__(self, file: str, rule: str, column: str | None = None, row: int | None = None, value: str | None = None):
        self.file, self.column, self.row, self.rule, self.value = file, column, row, rule, value
        where = [file]
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}")
        shown = f" (value {value!r})" if value is not None else ""
        super().__init__(f"{', '.join(where)}: {rule}{shown}")


@dataclass(frozen=True)
class InputFolder:
    """Where each present input file is, and its validated content (every column as text)."""

    data_dir: Path
    paths: dict[str, Path]
    frames: dict[str, pl.DataFrame]
    headers: dict[str, dict[str, str | None]]

    def row_counts(self) -> dict[str, int]:
        return {name: frame.height for name, frame in self.frames.items()}


def find_input_files(data_dir: str | Path) -> dict[str, Path]:
    """Map each contract file name to its CSV or Parquet file in `data_dir`, when present."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(str(data_dir), "the data folder does not exist (set --data or SOP_DATA_DIR)")
    found: dict[str, Path] = {}
    for spec in INPUT_FILES:
        candidates = [p for p in (data_dir / f"{spec.name}.csv", data_dir / f"{spec.name}.parquet") if p.exists()]
        if len(candidates) > 1:
            raise InputError(f"{spec.name}.csv", f"both {spec.name}.csv and {spec.name}.parquet exist; keep one")
        if candidates:
            found[spec.name] = candidates[0]
        elif spec.required:
            raise InputError(f"{spec.name}.csv", f"required file is missing from {data_dir}")
    return found


def _read_text_frame(path: Path) -> pl.DataFrame:
    """Read a file with every column as text, so that parsing rules are ours, not a sniffer's."""
    label = path.name
    if path.stat().st_size == 0:
        raise InputError(label, "the file is empty (no header, no rows)")
    if path.suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # polars raises several types for a corrupt file
            raise InputError(label, f"not a readable Parquet file: {exc}") from exc
        return frame.with_columns(pl.all().cast(pl.Utf8))
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = None
        header = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip().split(",")
        if line > 1:
            line_start = raw.rfind(b"\n", 0, exc.start) + 1
            column_index = raw.count(b",", line_start, exc.start)
            column = header[column_index] if column_index < len(header) else None
        raise InputError(
            label,
            f"bytes that are not UTF-8 at line {line} (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); save the file as UTF-8",
            column=column,
            row=line - 1 if line > 1 else None,
        ) from exc
    try:
        return pl.read_csv(raw, infer_schema=False, encoding="utf8", truncate_ragged_lines=False)
    except Exception as exc:
        raise InputError(label, f"not a readable CSV file: {exc}") from exc


def _check_columns(spec: InputFile, label: str, frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, str | None]]:
    """Match the file's header to the contract, forgiving case, spaces and a byte-order mark.

    Returns the frame with the contract's columns and, per contract column, the header it came
    from (None for an absent optional column), so that dbt reads the same columns.
    """
    by_clean_name = {c.strip().lstrip("\ufeff").lower(): c for c in frame.columns}
    sources: dict[str, str | None] = {}
    for column in spec.columns:
        raw = by_clean_name.get(column.name)
        if raw is None and column.required:
            raise InputError(label, f"required column is missing (columns found: {', '.join(frame.columns)})", column=column.name)
        sources[column.name] = raw
    # Extra columns are allowed (exports often carry more) and ignored downstream.
    frame = frame.select(
        [pl.col(raw).alias(name) if raw else pl.lit(None, dtype=pl.Utf8).alias(name) for name, raw in sources.items()]
    ).with_columns(pl.all().str.strip_chars())
    return frame, sources


def _first_offender(frame: pl.DataFrame, bad: pl.Expr, column: str) -> tuple[int, str | None] | None:
    hits = frame.with_row_index("_row", offset=1).filter(bad).select("_row", column).head(1)
    if hits.height == 0:
        return None
    return int(hits["_row"][0]), hits[column][0]


def _check_values(spec: InputFile, label: str, frame: pl.DataFrame) -> None:
    for column in spec.columns:
        values = pl.col(column.name)
        present = values.is_not_null() & (values != "")
        rules: list[tuple[pl.Expr, str]] = []
        if column.required:
            rules.append((~present, "a value is required"))
        if column.kind == MONTH:
            rules.append((present & ~values.str.contains(_MONTH_PATTERN), "not a month in YYYY-MM form"))
        if column.kind in (NUMBER, NONNEG, POSITIVE, INTEGER):
            is_number = values.str.contains(_NUMBER_PATTERN)
            rules.append((present & ~is_number, "not a number"))
            number = pl.when(present & is_number).then(values).cast(pl.Float64, strict=False)
            if column.kind in (NONNEG, INTEGER):
                rules.append((number < 0, "must not be negative"))
            if column.kind == POSITIVE:
                rules.append((number <= 0, "must be greater than zero"))
            if column.kind == INTEGER:
                rules.append((number != number.round(0), "must be a whole number"))
        if column.allowed:
            rules.append((present & ~values.is_in(list(column.allowed)), f"must be one of {', '.join(column.allowed)}"))
        for bad, rule in rules:
            hit = _first_offender(frame, bad.fill_null(False), column.name)
            if hit:
                raise InputError(label, rule, column=column.name, row=hit[0], value=hit[1])


def _check_key(spec: InputFile, label: str, frame: pl.DataFrame) -> None:
    key = list(spec.key)
    # Months written as 2026-11 and 2026-11-01 are the same month.
    normalised = frame.with_columns(
        [pl.col(c).str.slice(0, 7) for c in key if FILES_BY_NAME[spec.name].columns[spec.column_names.index(c)].kind == MONTH]
    )
    duplicated = normalised.with_row_index("_row", offset=1).filter(pl.struct(key).is_duplicated())
    if duplicated.height:
        first = duplicated.head(2)
        rows = first["_row"].to_list()
        value = ", ".join(f"{c}={first[c][0]}" for c in key)
        raise InputError(label, f"duplicate key ({', '.join(key)}) also on row {rows[0]}", column=", ".join(key), row=rows[-1], value=value)


def _check_references(spec: InputFile, label: str, frames: dict[str, pl.DataFrame], labels: dict[str, str]) -> None:
    frame = frames[spec.name]
    for column, target, target_column in spec.references:
        if target not in frames:
            raise InputError(label, f"refers to {target} but no {target} file was given", column=column)
        known = frames[target][target_column]
        hit = _first_offender(frame, ~pl.col(column).is_in(known.implode()), column)
        if hit:
            raise InputError(label, f"unknown {target_column}: not in {labels[target]}", column=column, row=hit[0], value=hit[1])
    if spec.name == "open_supply":
        for item_type, target, target_column in (("product", "products", "sku"), ("material", "materials", "material")):
            rows = pl.col("item_type") == item_type
            known = frames[target][target_column] if target in frames else pl.Series([], dtype=pl.Utf8)
            hit = _first_offender(frame, rows & ~pl.col("item").is_in(known.implode()), "item")
            if hit:
                raise InputError(label, f"unknown {item_type}: not in {target}", column="item", row=hit[0], value=hit[1])


def _check_lifecycle(label: str, products: pl.DataFrame) -> None:
    """Rules about a single product row that make the later steps meaningless if broken."""
    months = products.with_columns(
        pl.col("launch_month").str.slice(0, 7).alias("_launch"),
        pl.col("discontinue_month").str.slice(0, 7).alias("_end"),
    )
    for status, column in (("npi", "launch_month"), ("phase_out", "discontinue_month")):
        hit = _first_offender(months, (pl.col("status") == status) & pl.col(column).is_null(), column)
        if hit:
            raise InputError(label, f"a product with status {status} needs a {column}", column=column, row=hit[0])


def validate_inputs(data_dir: str | Path) -> InputFolder:
    """Check every input file against the contract; return the files as text frames.

    Raises `InputError` at the first broken value. Nothing is written anywhere.
    """
    paths = find_input_files(data_dir)
    frames: dict[str, pl.DataFrame] = {}
    headers: dict[str, dict[str, str | None]] = {}
    labels = {name: path.name for name, path in paths.items()}
    for name, path in paths.items():
        spec = FILES_BY_NAME[name]
        frame, headers[name] = _check_columns(spec, path.name, _read_text_frame(path))
        if frame.height == 0 and spec.required:
            raise InputError(path.name, "the file has a header but no rows")
        _check_values(spec, path.name, frame)
        _check_key(spec, path.name, frame)
        frames[name] = frame
    for name in frames:
        _check_references(FILES_BY_NAME[name], labels[name], frames, labels)
    _check_lifecycle(labels["products"], frames["products"])
    if "price_plan" in frames:
        hit = _first_offender(frames["price_plan"], pl.col("price_change_pct").cast(pl.Float64) <= -100, "price_change_pct")
        if hit:
            raise InputError(
                labels["price_plan"], "a price cannot fall by 100% or more", column="price_change_pct", row=hit[0], value=hit[1]
            )
    return InputFolder(Path(data_dir), paths, frames, headers)
