"""Reading and validating the company's input folder before anything touches the warehouse.

A planning cycle that half-loads a broken file is worse than one that refuses it: earlier
cycles and the published plan must stay exactly as they were. So every file is read here, once,
by one reader, and checked in memory against the contract in `contract.py`; the first broken
value stops the run with one message naming the file, the column, the row and the rule. What
passes is handed on typed (`write_typed_inputs`: one Parquet file per contract file), and dbt
reads those files, not the originals: dbt and the validator can never read a file differently.

What an ERP or a spreadsheet exports is forgiven: a UTF-8 byte-order mark, CRLF line ends,
spaces and tabs around headers and values, header case, blank lines, quoted fields, extra
columns of any type, exact repeats of a row, dates where months are expected. A semicolon-
delimited file (Excel in much of Europe) is read when `models/inputs.yaml` says so, and
otherwise gets a message saying what it is and what to do.

Rows count data rows from 1 (the header is line 1 of a CSV, so data row N is line N+1 when no
value spans lines; messages add the line when it differs).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sop_pipeline.inputs.contract import FILES_BY_NAME, INPUT_FILES, INTEGER, MONTH, NONNEG, NUMBER, POSITIVE, InputFile
from sop_pipeline.periods import add_months, cycle_month
from sop_pipeline.settings.inputs import InputSettings

_MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])(-\d{2})?( 00:00:00(\.0+)?)?$"
_NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
NUMERIC = (NUMBER, NONNEG, POSITIVE, INTEGER)
ROW = "_row"  # data row number in the file, kept next to the values for messages
FIRST_YEAR = 1901
# Months in files other than the sales history may lie in the future, but not beyond this.
FUTURE_MONTHS = 120


class InputError(ValueError):
    """A broken input file. The message is meant for the person who exported the file."""

    def __init__(
        self, file: str, rule: str, column: str | None = None, row: int | None = None, value: str | None = None, line: int | None = None
    ):
        self.file, self.column, self.row, self.rule, self.value = file, column, row, rule, value
        where = [file]
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None and line != row + 1 else ""))
        shown = f" (value {value!r})" if value is not None else ""
        super().__init__(f"{', '.join(where)}: {rule}{shown}")


@dataclass(frozen=True)
class InputFolder:
    """Where each present input file is, and its validated, typed content (with `_row`)."""

    data_dir: Path
    paths: dict[str, Path]
    frames: dict[str, pl.DataFrame]

    def row_counts(self) -> dict[str, int]:
        return {name: frame.height for name, frame in self.frames.items()}

    def typed(self, name: str) -> pl.DataFrame:
        """The file's typed rows, or an empty frame with the contract's types when absent."""
        return self.frames[name] if name in self.frames else _empty_typed(FILES_BY_NAME[name])


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


# ---------------------------------------------------------------------------------------------
# Reading: every file to text columns (the contract's, matched by cleaned header) plus `_row`


def _clean_header(name: str) -> str:
    return name.replace("\ufeff", "").strip().lower()


def _match_columns(spec: InputFile, label: str, found: list[str]) -> dict[str, int | None]:
    """Contract column -> position in the file (None for an absent optional column)."""
    positions: dict[str, int] = {}
    for i, name in enumerate(found):
        clean = _clean_header(name)
        if clean in positions and clean in spec.column_names:
            raise InputError(label, f"the header names column '{clean}' twice (columns {positions[clean] + 1} and {i + 1})", column=clean)
        positions.setdefault(clean, i)
    matched: dict[str, int | None] = {}
    for column in spec.columns:
        if column.name not in positions and column.required:
            raise InputError(
                label, f"required column is missing (columns found: {', '.join(n.strip() for n in found)})", column=column.name
            )
        matched[column.name] = positions.get(column.name)
    return matched


def _decode(raw: bytes, label: str, settings: InputSettings) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        header = next(csv.reader([raw.split(b"\n", 1)[0].decode("utf-8", "replace")], delimiter=settings.delimiter), [])
        column = None
        if line > 1:
            before = raw[line_start : exc.start].decode("utf-8", "replace")
            index = len(next(csv.reader([before], delimiter=settings.delimiter), [""])) - 1
            column = _clean_header(header[index]) if 0 <= index < len(header) else None
        raise InputError(
            label,
            f"bytes that are not UTF-8 at line {line} (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); save the file as UTF-8",
            column=column,
            row=line - 1 if line > 1 else None,
        ) from None


def _looks_semicolon(header_line: str) -> bool:
    fields = next(csv.reader([header_line]), [])
    return len(fields) == 1 and ";" in header_line


def _read_csv(path: Path, spec: InputFile, settings: InputSettings) -> pl.DataFrame:
    label = path.name
    text = _decode(path.read_bytes(), label, settings)
    if not text.strip():
        raise InputError(label, "the file is empty (no header, no rows)")
    first_line = text.splitlines()[0] if text.splitlines() else ""
    if settings.delimiter == "," and _looks_semicolon(first_line):
        raise InputError(
            label,
            "the file is separated by semicolons, not commas (Excel saves CSV this way where the decimal "
            "separator is a comma): save it as 'CSV UTF-8 (comma delimited)', or set `delimiter: \";\"` "
            'and `decimal: ","` in models/inputs.yaml',
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=settings.delimiter, strict=True)
    try:
        header = next(reader)
        positions = _match_columns(spec, label, header)
        columns: dict[str, list[str | None]] = {name: [] for name in positions}
        rows, lines = [], []
        row_number = 0
        for record in reader:
            if not any(field.strip() for field in record):
                continue  # a blank line, or a row of empty cells: nothing to load
            row_number += 1
            if len(record) != len(header):
                raise InputError(
                    label,
                    f"this row has {len(record)} values where the header has {len(header)} columns "
                    "(a stray or missing delimiter, or an unquoted comma in a value)",
                    row=row_number,
                    line=reader.line_num,
                )
            for name, position in positions.items():
                columns[name].append(record[position] if position is not None else None)
            rows.append(row_number)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise InputError(
            label, f"not readable as CSV: {exc} (a quote opened and never closed?)", row=row_number + 1, line=reader.line_num
        ) from None
    frame = pl.DataFrame({name: pl.Series(name, values, dtype=pl.String) for name, values in columns.items()})
    return frame.with_columns(pl.Series(ROW, rows, dtype=pl.Int64), pl.Series("_line", lines, dtype=pl.Int64))


def _read_parquet(path: Path, spec: InputFile) -> pl.DataFrame:
    label = path.name
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(label, f"not a readable Parquet file: {exc}") from None
    positions = _match_columns(spec, label, table.column_names)
    out = {}
    for name, position in positions.items():
        if position is None:
            out[name] = pl.Series(name, [None] * table.num_rows, dtype=pl.String)
            continue
        column = table.column(position)
        if pa.types.is_nested(column.type):
            raise InputError(label, f"holds {column.type} values (lists or records), where the contract expects single values", column=name)
        out[name] = pl.Series(name, column.cast(pa.string()).to_pylist(), dtype=pl.String)
    frame = pl.DataFrame(out) if out else pl.DataFrame()
    rows = pl.Series(ROW, range(1, table.num_rows + 1), dtype=pl.Int64)
    return frame.with_columns(rows, (rows + 1).alias("_line"))


def read_input(path: Path, spec: InputFile, settings: InputSettings) -> pl.DataFrame:
    """The file's contract columns as text (stripped; empty is null) and its data row numbers."""
    if path.stat().st_size == 0:
        raise InputError(path.name, "the file is empty (no header, no rows)")
    frame = _read_parquet(path, spec) if path.suffix == ".parquet" else _read_csv(path, spec, settings)
    return frame.with_columns([pl.col(c).str.strip_chars().replace("", None).alias(c) for c in spec.column_names])


# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class MonthBounds:
    """The months a file may name: from 1901, up to the current month for sales (later sales
    would be the future; sales after an earlier cycle are the history a backfill leaves out)
    or a decade past the cycle for plans (budget, open orders, inputs)."""

    earliest: dt.date
    latest_sales: dt.date
    latest_plan: dt.date

    @classmethod
    def for_cycle(cls, cycle: str | dt.date) -> MonthBounds:
        start = cycle_month(cycle)
        today = dt.date.today().replace(day=1)
        return cls(dt.date(FIRST_YEAR, 1, 1), max(start, today), add_months(start, FUTURE_MONTHS))


def _first_offender(frame: pl.DataFrame, bad: pl.Expr, column: str) -> tuple[int, str | None, int] | None:
    hits = frame.filter(bad.fill_null(False)).select(ROW, column, "_line").head(1)
    if hits.height == 0:
        return None
    value = hits[column][0]
    return int(hits[ROW][0]), None if value is None else str(value), int(hits["_line"][0])


def _raise_first(frame, label, column, rules) -> None:
    for bad, rule in rules:
        hit = _first_offender(frame, bad, column)
        if hit:
            raise InputError(label, rule, column=column, row=hit[0], value=hit[1], line=hit[2])


def _number_expr(values: pl.Expr, settings: InputSettings) -> pl.Expr:
    if settings.decimal == ",":
        values = values.str.replace_all(r"\.", "").str.replace(",", ".")
    return values


def _month_expr(values: pl.Expr) -> pl.Expr:
    return (values.str.slice(0, 7) + "-01").str.to_date("%Y-%m-%d", strict=False)


def _check_values(spec: InputFile, label: str, frame: pl.DataFrame, bounds: MonthBounds, settings: InputSettings) -> None:
    """Type, range, allowed and reserved values of every column, in contract order. All rules
    are evaluated in one pass; only a file that breaks one is searched for the first row."""
    checks = [(column.name, bad, rule) for column in spec.columns for bad, rule in _column_rules(spec, column, bounds, settings)]
    broken = frame.select([bad.fill_null(False).any().alias(str(i)) for i, (_, bad, _) in enumerate(checks)]).row(0) if checks else ()
    for (name, bad, rule), hit in zip(checks, broken):
        if hit:
            _raise_first(frame, label, name, [(bad, rule)])


def _column_rules(spec: InputFile, column, bounds: MonthBounds, settings: InputSettings) -> list[tuple[pl.Expr, str]]:
    """The rules of one column, in the order they are reported."""
    values = pl.col(column.name)
    present = values.is_not_null()
    rules: list[tuple[pl.Expr, str]] = []
    if column.required:
        rules.append((~present, "a value is required"))
    if column.kind == MONTH:
        month = _month_expr(values)
        latest = bounds.latest_sales if spec.name == "sales_history" else bounds.latest_plan
        rules += [
            (present & (~values.str.contains(_MONTH_PATTERN) | month.is_null()), "not a month in YYYY-MM form"),
            (
                present & (month < pl.lit(bounds.earliest)),
                f"a month before {FIRST_YEAR}: not a real date (1900-01 and 0000-01 are what spreadsheets write for an empty date)",
            ),
            (
                present & (month > pl.lit(latest)),
                f"a month after {latest:%Y-%m}"
                + (
                    ": sales cannot lie in the future"
                    if spec.name == "sales_history"
                    else f": more than {FUTURE_MONTHS // 12} years after the cycle"
                ),
            ),
        ]
    if column.kind in NUMERIC:
        text = _number_expr(values, settings)
        is_number = text.str.contains(_NUMBER_PATTERN)
        number = pl.when(present & is_number).then(text).cast(pl.Float64, strict=False)
        spelled = text.str.strip_chars("+-").str.to_lowercase()
        rules += [
            (
                present & spelled.is_in(["nan", "na", "n/a", "#n/a", "null", "none"]),
                "NaN / N/A is not a value: leave the cell empty where the column is optional, or fill in the number",
            ),
            (present & spelled.is_in(["inf", "infinity", "#div/0!"]), "an infinite number (a division by zero in the spreadsheet?)"),
            (
                present & ~is_number,
                "not a number" + (" (decimal separator is '.' unless models/inputs.yaml says ',')" if settings.decimal == "." else ""),
            ),
            (number.is_infinite(), "too large a number (it overflows to infinity)"),
        ]
        if column.kind in (NONNEG, INTEGER):
            rules.append((number < 0, "must not be negative"))
        if column.kind == POSITIVE:
            rules.append((number <= 0, "must be greater than zero"))
        if column.kind == INTEGER:
            rules.append((number != number.round(0), "must be a whole number"))
        if column.maximum is not None:
            rules.append((number > column.maximum, f"must be at most {column.maximum:g}"))
    if column.allowed:
        rules.append((present & ~values.is_in(list(column.allowed)), f"must be one of {', '.join(column.allowed)}"))
    if column.reserved:
        rules.append(
            (
                present & values.str.to_uppercase().is_in(list(column.reserved)),
                f"'{'/'.join(column.reserved)}' is reserved: the reports use it for every family together",
            )
        )
    return rules


def _typed_columns(spec: InputFile, settings: InputSettings) -> list[pl.Expr]:
    out = []
    for column in spec.columns:
        values = pl.col(column.name)
        if column.kind == MONTH:
            out.append(_month_expr(values).alias(column.name))
        elif column.kind == INTEGER:
            out.append(_number_expr(values, settings).cast(pl.Float64).cast(pl.Int64).alias(column.name))
        elif column.kind in NUMERIC:
            out.append(_number_expr(values, settings).cast(pl.Float64).alias(column.name))
        else:
            out.append(values.alias(column.name))
    return out


def _empty_typed(spec: InputFile) -> pl.DataFrame:
    types = {MONTH: pl.Date, INTEGER: pl.Int64, NUMBER: pl.Float64, NONNEG: pl.Float64, POSITIVE: pl.Float64}
    return pl.DataFrame(schema={**{c.name: types.get(c.kind, pl.String) for c in spec.columns}, ROW: pl.Int64, "_line": pl.Int64})


# ---------------------------------------------------------------------------------------------
# Keys, references and rules across rows and files


def _check_key(spec: InputFile, label: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Exact repeats of a row are dropped (an export run twice); two different rows with the
    same key are an error: which price is the real one is a question for the exporter."""
    frame = frame.unique(subset=spec.column_names, keep="first", maintain_order=True)
    key = list(spec.key)
    duplicated = frame.filter(pl.struct(key).is_duplicated())
    if duplicated.height:
        first = duplicated.head(2)
        value = ", ".join(f"{c}={first[c][0]}" for c in key)
        raise InputError(
            label,
            f"duplicate key ({', '.join(key)}) also on row {first[ROW][0]}",
            column=", ".join(key),
            row=int(first[ROW][-1]),
            value=value,
            line=int(first["_line"][-1]),
        )
    return frame


def _check_references(spec: InputFile, label: str, frames: dict[str, pl.DataFrame], labels: dict[str, str]) -> None:
    frame = frames[spec.name]
    for ref in spec.references:
        rows = pl.col(ref.column).is_not_null()
        what = ref.target_column
        if ref.when is not None:
            rows = rows & (pl.col(ref.when[0]) == ref.when[1])
            what = f"{ref.target_column} (for {ref.when[0]} {ref.when[1]})"
        if ref.target not in frames:
            if frame.filter(rows).height:
                raise InputError(label, f"refers to {ref.target} but no {ref.target} file was given", column=ref.column)
            continue
        known = frames[ref.target][ref.target_column].drop_nulls().unique()
        hit = _first_offender(frame, rows & ~pl.col(ref.column).is_in(known.implode()), ref.column)
        if hit:
            target_label = labels.get(ref.target, f"{ref.target}.csv")
            raise InputError(
                label, f"unknown {what}: not in {target_label} (a typo?)", column=ref.column, row=hit[0], value=hit[1], line=hit[2]
            )


def _row_rule(name: str, frames: dict[str, pl.DataFrame]) -> pl.Expr:
    """The rows a contract RowRule rejects, on typed columns."""
    if name == "npi_without_launch":
        return (pl.col("status") == "npi") & pl.col("launch_month").is_null()
    if name == "phase_out_without_end":
        return (pl.col("status") == "phase_out") & pl.col("discontinue_month").is_null()
    if name == "ends_before_launch":
        return pl.col("discontinue_month") <= pl.col("launch_month")
    if name == "launch_without_basis":
        sold = frames["sales_history"].filter(pl.col("quantity") > 0)["sku"].unique()
        succeeding = frames["products"]["successor_sku"].drop_nulls().unique()
        launching = (pl.col("status") == "npi") & ~pl.col("sku").is_in(succeeding.implode())
        return launching & ~pl.col("like_sku").is_in(sold.implode()).fill_null(False) & pl.col("launch_volume").is_null()
    if name.startswith("successor_"):
        return _successor_rule(name, frames["products"])
    if name == "negative_override":
        return (pl.col("adjustment_type") == "override") & (pl.col("value") < 0)
    if name == "uplift_below_minus_100":
        return (pl.col("adjustment_type") == "uplift_pct") & (pl.col("value") <= -100)
    if name == "price_below_minus_100":
        return pl.col("price_change_pct") <= -100
    raise KeyError(f"no row rule {name!r}")


def _successor_rule(name: str, products: pl.DataFrame) -> pl.Expr:
    """The supersession rules: a pair the demand transfer could not make sense of. They look up
    the successor's own row (its successor, discontinue month, like_sku); references ran first,
    so every successor named is a product (the first row of a SKU, should a key check be
    bypassed and leave it to dbt's tests)."""
    rows = products.unique("sku", keep="first", maintain_order=True)

    def successors(column: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col("successor_sku").replace_strict(rows["sku"], rows[column], default=None, return_dtype=dtype)

    named = pl.col("successor_sku").is_not_null()
    if name == "successor_is_itself":
        return named & (pl.col("successor_sku") == pl.col("sku"))
    if name == "successor_without_end":
        return named & pl.col("discontinue_month").is_null()
    if name == "successor_chain":
        return named & successors("successor_sku", pl.String).is_not_null()
    if name == "successor_ends_first":
        return named & (successors("discontinue_month", pl.Date) <= pl.col("discontinue_month"))
    if name == "successor_like_is_predecessor":
        return named & (successors("like_sku", pl.String) == pl.col("sku"))
    raise KeyError(f"no row rule {name!r}")


def _check_rows(spec: InputFile, label: str, frames: dict[str, pl.DataFrame]) -> None:
    for rule in spec.row_rules:
        hit = _first_offender(frames[spec.name], _row_rule(rule.bad, frames), rule.column)
        if hit:
            raise InputError(label, rule.rule, column=rule.column, row=hit[0], value=hit[1], line=hit[2])


def validate_inputs(data_dir: str | Path, cycle: str | dt.date, settings: InputSettings | None = None) -> InputFolder:
    """Read and check every input file against the contract; return the typed files.

    Raises `InputError` at the first broken value. Nothing is written anywhere.
    """
    settings = settings or InputSettings()
    bounds = MonthBounds.for_cycle(cycle)
    paths = find_input_files(data_dir)
    labels = {name: path.name for name, path in paths.items()}
    frames: dict[str, pl.DataFrame] = {}
    for name, path in paths.items():
        spec = FILES_BY_NAME[name]
        text = read_input(path, spec, settings)
        if text.height == 0 and spec.required:
            raise InputError(path.name, "the file has a header but no rows")
        _check_values(spec, path.name, text, bounds, settings)
        typed = text.select(*_typed_columns(spec, settings), ROW, "_line")
        frames[name] = _check_key(spec, path.name, typed)
    # Every file's references before any cross-file row rule: a sales row for an unknown SKU is
    # the error to fix, not the new product whose like_sku lost its history because of it.
    for name in frames:
        _check_references(FILES_BY_NAME[name], labels[name], frames, labels)
    for name in frames:
        _check_rows(FILES_BY_NAME[name], labels[name], frames)
    return InputFolder(Path(data_dir), paths, frames)


def write_typed_inputs(folder: InputFolder, out_dir: str | Path) -> dict[str, Path]:
    """One Parquet file per contract file (absent files as empty ones), typed, with `_row`:
    what dbt's sources read."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for spec in INPUT_FILES:
        path = out / f"{spec.name}.parquet"
        folder.typed(spec.name).select(*spec.column_names, ROW).write_parquet(path)
        written[spec.name] = path
    return written
