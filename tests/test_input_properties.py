"""Property: whatever a mutation does to a valid company, the validator either loads exactly
what the file says or refuses it with one line naming the file and the rule, in seconds.

Mutations are what hostile-but-realistic exports do: a cell replaced by text from a pool of
troublemakers (overflowing numbers, NaN, months in the wrong form or century, reserved words,
quotes, separators, tabs, unicode), a row deleted or duplicated, a column dropped or added, a
byte flipped, inserted or the file cut short. Nothing is written before validation passes, so
a refusal here is a refusal before the warehouse is touched (the end-to-end tests in
`test_bad_inputs.py` prove the warehouse stays byte-for-byte as it was).
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import time
from pathlib import Path

import pytest
from conftest import CYCLE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sop_pipeline.inputs.contract import FILES_BY_NAME, INTEGER, MONTH, NONNEG, NUMBER, POSITIVE
from sop_pipeline.inputs.validate import InputError, validate_inputs

FILES = ["products.csv", "sales_history.csv", "budget.csv", "routings.csv", "materials.csv", "demand_inputs.csv", "resources.csv"]
TROUBLE = [
    "",
    " ",
    "\t",
    "0",
    "-1",
    "1.5",
    "1e400",
    "-1e400",
    "NaN",
    "inf",
    "N/A",
    "1,5",
    "1.234,5",
    "3000000000",
    "ALL",
    "all",
    "2026-13",
    "0000-01",
    "1900-01",
    "2026-1",
    "2026-11-15",
    "2099-01",
    "2200-01",
    '"',
    "a,b",
    "x;y",
    "Gardn",
    "COO-99999",
    "  42  ",
    "\t7\t",
    "Caf\u00e9",
    "\u6f22\u5b57",
    "1" * 400,
]


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8", errors="replace"), newline="")))


def _write(path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue())


@st.composite
def mutations(draw):
    file = draw(st.sampled_from(FILES))
    kind = draw(st.sampled_from(["cell", "cell", "cell", "delete_row", "duplicate_row", "drop_column", "add_column", "byte", "truncate"]))
    return file, kind, draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6)), draw(st.sampled_from(TROUBLE))


def _apply(data: Path, file: str, kind: str, a: int, b: int, value: str) -> tuple[int, str] | None:
    """Mutate the file; for a cell mutation return (data row, column) of the changed cell."""
    path = data / file
    rows = _rows(path)
    header, body = rows[0], rows[1:]
    row, col = a % len(body), b % len(header)
    if kind == "cell":
        body[row][col] = value
        _write(path, [header, *body])
        return row + 1, header[col]
    if kind == "delete_row":
        _write(path, [header, *body[:row], *body[row + 1 :]])
    elif kind == "duplicate_row":
        _write(path, [header, *body, body[row]])
    elif kind == "drop_column":
        _write(path, [[r[i] for i in range(len(r)) if i != col] for r in rows])
    elif kind == "add_column":
        _write(path, [[*header, "extra"], *[[*r, value] for r in body]])
    else:
        raw = path.read_bytes()
        at = a % len(raw)
        if kind == "byte":
            raw = raw[:at] + bytes([b % 256]) + raw[at + (b % 2) :]
        else:
            raw = raw[:at]
        path.write_bytes(raw)
    return None


def _expected(kind: str, text: str):
    """What the cell should load as, parsed independently of the validator (None: empty)."""
    text = text.strip()
    if text == "":
        return None
    if kind == MONTH:
        return text[:7]
    if kind in (NUMBER, NONNEG, POSITIVE, INTEGER):
        return float(text)
    return text


@pytest.fixture(scope="module")
def valid_company(tmp_path_factory, demo_dir) -> Path:
    return demo_dir


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=mutations())
def test_a_mutated_company_is_loaded_as_written_or_refused_in_one_line(mutation, valid_company, tmp_path_factory):
    data = tmp_path_factory.mktemp("mutated")
    shutil.rmtree(data)
    shutil.copytree(valid_company, data)
    file, kind, a, b, value = mutation
    changed = _apply(data, file, kind, a, b, value)
    started = time.perf_counter()
    try:
        folder = validate_inputs(data, CYCLE)
    except InputError as error:
        message = str(error)
        assert error.file in {p.name for p in data.iterdir()} | {f"{name}.csv" for name in FILES_BY_NAME}, message
        assert message.startswith(error.file) and error.rule and "\n" not in message, message
        assert "Traceback" not in message
    else:
        if changed is not None:
            row, column = changed
            spec = FILES_BY_NAME[file.removesuffix(".csv")]
            kinds = {c.name: c.kind for c in spec.columns}
            name = column.strip().lower()
            if name in kinds:
                frame = folder.frames[spec.name]
                loaded = frame.filter(frame["_row"] == row)
                if loaded.height:  # an exact repeat of another row is dropped
                    got = loaded[name][0]
                    want = _expected(kinds[name], value)
                    if kinds[name] == MONTH and got is not None:
                        got = got.strftime("%Y-%m")
                    if isinstance(want, float):
                        assert got is not None and math.isclose(got, want, rel_tol=1e-12), (value, got)
                    else:
                        assert got == want, (value, got)
    assert time.perf_counter() - started < 10
