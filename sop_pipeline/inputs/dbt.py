"""What dbt reads of the input contract: each source's read expression, and the source and
staging YAML, generated from `contract.py` so that dbt's columns, descriptions and tests are
the contract's (a test compares the committed YAML with `render_sources`/`render_staging`;
`python -m sop_pipeline.docs --write` regenerates them).
"""

from __future__ import annotations

from pathlib import Path

from sop_pipeline.inputs.contract import INPUT_FILES, INTEGER, MONTH, NONNEG, NUMBER, POSITIVE, InputFile

# contract kind -> the staging macro that types a text column (transforms/macros/typing.sql)
STAGING_CAST = {MONTH: "month", NUMBER: "number", NONNEG: "number", POSITIVE: "number", INTEGER: "integer"}
GENERATED = "# Generated from sop_pipeline/inputs/contract.py by `python -m sop_pipeline.docs --write`: edit the contract, not this file.\n"


def dbt_source_expressions(typed: dict[str, Path]) -> dict[str, str]:
    """The DuckDB table expression dbt reads each source from (the dbt var `inputs`): the typed
    Parquet file the validator wrote for it (`validate.write_typed_inputs`), never the
    company's own file, so that what dbt loads is exactly what was validated."""
    expressions = {name: f"read_parquet('{str(path.resolve()).replace(chr(39), chr(39) * 2)}')" for name, path in typed.items()}
    # dbt-duckdb formats external locations with str.format_map: literal braces must be doubled.
    return {name: expr.replace("{", "{{").replace("}", "}}") for name, expr in expressions.items()}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_sources() -> str:
    """`transforms/models/staging/_sources.yml`: one source table per contract file, its
    columns with descriptions and the kind the staging macro types them by."""
    lines = [
        GENERATED,
        "version: 2",
        "",
        "sources:",
        "  - name: inputs",
        "    description: >-",
        "      The company's input files as the validator read them: one typed Parquet file per contract",
        "      file, with `_row` (the data row in the company's file). The orchestration passes their",
        "      locations as the dbt var `inputs`; dbt never reads the company's files itself.",
        "    tables:",
    ]
    for spec in INPUT_FILES:
        lines += [
            f"      - name: {spec.name}",
            f"        description: {_q(spec.description)}",
            "        meta:",
            "          external_location: >-",
            f"            {{{{ var('inputs', {{}}).get('{spec.name}', 'inputs_var_not_given') }}}}",
            "        columns:",
        ]
        for column in spec.columns:
            lines += [
                f"          - name: {column.name}",
                f"            description: {_q(column.description)}",
                f"            meta: {{cast: {STAGING_CAST.get(column.kind, 'text')}}}",
            ]
    return "\n".join(lines) + "\n"


def _column_tests(spec: InputFile, column) -> list[str]:
    """The tests of one column that are not part of its model's grouped tests: a single-column
    key, an allowed list, a reference to another file."""
    tests = []
    if spec.key == (column.name,):
        tests.append("          - unique")
    if column.allowed:
        values = ", ".join(f"'{v}'" for v in column.allowed)
        tests += ["          - accepted_values:", "              arguments:", f"                values: [{values}]"]
    for ref in spec.references:
        if ref.column == column.name and ref.when is None:
            tests += [
                "          - relationships:",
                "              arguments:",
                f"                to: ref('stg_{ref.target}')",
                f"                field: {ref.target_column}",
            ]
    return tests


def _model_tests(spec: InputFile) -> list[str]:
    """A model's grain and, grouped into one query each, its required and its non-negative
    columns: one dbt test per column cost a query and dbt's per-node overhead each (215 tests
    took most of the ingestion's time on a small company) for rules the validator already
    enforced; grouped, the defence in depth stays and costs two queries per model."""
    required = [c.name for c in spec.columns if c.required]
    non_negative = [c.name for c in spec.columns if c.kind in (NONNEG, POSITIVE, INTEGER)]
    tests = []
    if len(spec.key) > 1:
        tests += ["      - unique_combination:", "          arguments:", f"            columns: [{', '.join(spec.key)}]"]
    if required:
        tests += ["      - not_null_columns:", "          arguments:", f"            columns: [{', '.join(required)}]"]
    if non_negative:
        tests += ["      - non_negative_columns:", "          arguments:", f"            columns: [{', '.join(non_negative)}]"]
    return tests


def render_staging() -> str:
    """`transforms/models/staging/_staging.yml`: every staging model with its columns and the
    contract's rules as dbt tests, run inside the ingestion before the marts are published."""
    lines = [GENERATED, "version: 2", "", "models:"]
    for spec in INPUT_FILES:
        lines += [
            f"  - name: stg_{spec.name}",
            f"    description: {_q(f'The validated {spec.name} input. {spec.description}')}",
        ]
        model_tests = _model_tests(spec)
        if model_tests:
            lines += ["    data_tests:", *model_tests]
        lines.append("    columns:")
        lines += ["      - name: _source_row", '        description: "The data row of the company\'s file this row came from."']
        for column in spec.columns:
            lines += [f"      - name: {column.name}", f"        description: {_q(column.description)}"]
            tests = _column_tests(spec, column)
            if tests:
                lines += ["        data_tests:", *tests]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# What a failed dbt build means for the person who exported the files


_TEST_RULES = {
    "not_null": "a value is required",
    "unique": "the value must be unique",
    "non_negative": "must not be negative",
    "accepted_values": "not an allowed value",
    "relationships": "refers to a value that does not exist",
    "unique_combination": "duplicate key",
    "not_null_columns": "a value is required",
    "non_negative_columns": "must not be negative",
}


def _offending(con, model: str, test: str, kwargs: dict, column: str | None) -> tuple[str | None, int | None]:
    """The column and first `_source_row` of a staging model that break a dbt test; a grouped
    test (`not_null_columns`, `non_negative_columns`) is resolved to the first of its columns
    that breaks it, so the message names one column as the validator's would."""
    if test in ("not_null_columns", "non_negative_columns"):
        single = test.removesuffix("_columns")
        for name in kwargs.get("columns", []):
            row = _offending_row(con, model, single, kwargs, name)
            if row is not None:
                return name, row
        return None, None
    return column, _offending_row(con, model, test, kwargs, column)


def _offending_row(con, model: str, test: str, kwargs: dict, column: str | None) -> int | None:
    """The first `_source_row` of a staging model that breaks a dbt test, by the test's own rule."""
    table = f"staging.{model}"
    col = f'"{column}"' if column else None
    where = {
        "not_null": f"{col} is null",
        "non_negative": f"{col} < 0",
        "accepted_values": f"{col} not in ({', '.join(repr(v) for v in kwargs.get('values', []))})",
        "unique": f"{col} in (select {col} from {table} group by 1 having count(*) > 1)",
    }.get(test)
    if test == "relationships":
        target = str(kwargs.get("to", "")).split("'")[1] if "'" in str(kwargs.get("to", "")) else None
        where = f'{col} is not null and {col} not in (select "{kwargs.get("field")}" from staging.{target})' if target else None
    if test == "unique_combination":
        keys = ", ".join(f'"{c}"' for c in kwargs.get("columns", []))
        where = f"({keys}) in (select ({keys}) from {table} group by all having count(*) > 1)"
    if where is None:
        return None
    try:
        found = con.execute(f"select min(_source_row) from {table} where {where}").fetchone()
    except Exception:  # noqa: BLE001 - no row to point at is still a clear message below
        return None
    return int(found[0]) if found and found[0] is not None else None


def explain_dbt_failures(run_results: dict, manifest: dict, con, file_labels: dict[str, str]) -> list[str]:
    """One line per failed dbt node, in the validator's form where the node is a test on a
    staging model (file, column, row, rule) and as the model or test that broke otherwise.

    `con` is the database dbt built (for the offending rows); `file_labels` maps contract file
    names to the company's file names.
    """
    lines = []
    for result in run_results.get("results", []):
        if result.get("status") not in ("fail", "error", "runtime error"):
            continue
        node = manifest.get("nodes", {}).get(result["unique_id"], {})
        if node.get("resource_type") != "test":
            message = (result.get("message") or "").strip().splitlines()
            lines.append(
                f"dbt could not build {node.get('schema', '?')}.{node.get('name', result['unique_id'])}: "
                f"{message[0] if message else 'error'}"
            )
            continue
        meta = node.get("test_metadata") or {}
        test, kwargs = meta.get("name", node.get("name")), meta.get("kwargs", {})
        column = node.get("column_name") or kwargs.get("column_name")
        parent = (node.get("depends_on", {}).get("nodes") or [""])[0].split(".")[-1]
        failures = result.get("failures")
        if parent.startswith("stg_"):
            source = parent.removeprefix("stg_")
            column, row = _offending(con, parent, test, kwargs, column)
            where = [file_labels.get(source, f"{source}.csv")]
            if column:
                where.append(f"column '{column}'")
            if row is not None:
                where.append(f"row {row}")
            lines.append(f"{', '.join(where)}: {_TEST_RULES.get(test, test)} (dbt test {node.get('name')}, {failures} rows)")
        else:
            lines.append(
                f"marts.{parent}: dbt test {node.get('name')} failed on {failures} rows: the transformation broke "
                "its own rule on these inputs (a defect to report; the full output is in the run's log)"
            )
    return lines
