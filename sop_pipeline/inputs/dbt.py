"""What dbt reads of the input contract: each source's read expression, and the source and
staging YAML, generated from `contract.py` so that dbt's columns, descriptions and tests are
the contract's (a test compares the committed YAML with `render_sources`/`render_staging`;
`python -m sop_pipeline.docs --write` regenerates them).
"""

from __future__ import annotations

from sop_pipeline.inputs.contract import INPUT_FILES, INTEGER, MONTH, NONNEG, NUMBER, POSITIVE, InputFile
from sop_pipeline.inputs.validate import InputFolder

# contract kind -> the staging macro that types a text column (transforms/macros/typing.sql)
STAGING_CAST = {MONTH: "month", NUMBER: "number", NONNEG: "number", POSITIVE: "number", INTEGER: "integer"}
GENERATED = "# Generated from sop_pipeline/inputs/contract.py by `python -m sop_pipeline.docs --write`: edit the contract, not this file.\n"


def dbt_source_expressions(folder: InputFolder) -> dict[str, str]:
    """The DuckDB table expression dbt reads each source from (the dbt var `inputs`).

    Each expression selects the contract's columns from the file under the header names the
    validator matched, with absent optional columns as nulls. Files that are absent become an
    empty relation with the contract's columns, so that a company with only products and sales
    still builds every mart (empty ones included).
    """
    expressions = {}
    for spec in INPUT_FILES:
        path = folder.paths.get(spec.name)
        headers = folder.headers.get(spec.name, {})
        columns = ", ".join(
            f'{_sql_identifier(headers[c])} as "{c}"' if headers.get(c) else f'cast(null as varchar) as "{c}"' for c in spec.column_names
        )
        if path is None:
            expressions[spec.name] = f"(select {columns} where false)"
            continue
        location = _sql_literal(str(path.resolve()))
        reader = f"read_parquet({location})" if path.suffix == ".parquet" else f"read_csv({location}, header = true, all_varchar = true)"
        expressions[spec.name] = f"(select {columns} from {reader})"
    # dbt-duckdb formats external locations with str.format_map: literal braces must be doubled.
    return {name: expr.replace("{", "{{").replace("}", "}}") for name, expr in expressions.items()}


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


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
        "      The company's input files, read from SOP_DATA_DIR (CSV or Parquet). Every column arrives as",
        "      text and is typed in staging; the orchestration validates the files first and passes each",
        "      file's read expression as the dbt var `inputs`.",
        "    tables:",
    ]
    for spec in INPUT_FILES:
        default = f"read_csv('\" ~ env_var('SOP_DATA_DIR', 'demo_data') ~ \"/{spec.name}.csv', all_varchar = true)"
        lines += [
            f"      - name: {spec.name}",
            f"        description: {_q(spec.description)}",
            "        meta:",
            "          external_location: >-",
            f"            {{{{ var('inputs', {{}}).get('{spec.name}', \"{default}\") }}}}",
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
    tests = []
    if column.required:
        tests.append("          - not_null")
    if spec.key == (column.name,):
        tests.append("          - unique")
    if column.kind in (NONNEG, POSITIVE, INTEGER):
        tests.append("          - non_negative")
    if column.allowed:
        values = ", ".join(f"'{v}'" for v in column.allowed)
        tests += ["          - accepted_values:", "              arguments:", f"                values: [{values}]"]
    for name, target, field in spec.references:
        if name == column.name:
            tests += [
                "          - relationships:",
                "              arguments:",
                f"                to: ref('stg_{target}')",
                f"                field: {field}",
            ]
    return tests


def render_staging() -> str:
    """`transforms/models/staging/_staging.yml`: every staging model with its columns and the
    contract's rules as dbt tests (they become Dagster asset checks)."""
    lines = [GENERATED, "version: 2", "", "models:"]
    for spec in INPUT_FILES:
        lines += [
            f"  - name: stg_{spec.name}",
            f"    description: {_q(f'Typed, trimmed and deduplicated {spec.name} input. {spec.description}')}",
        ]
        if len(spec.key) > 1:
            lines += [
                "    data_tests:",
                "      - unique_combination:",
                "          arguments:",
                f"            columns: [{', '.join(spec.key)}]",
            ]
        lines.append("    columns:")
        for column in spec.columns:
            lines += [f"      - name: {column.name}", f"        description: {_q(column.description)}"]
            tests = _column_tests(spec, column)
            if tests:
                lines += ["        data_tests:", *tests]
    return "\n".join(lines) + "\n"
