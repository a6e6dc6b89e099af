"""The README's data dictionary and dbt's input YAML, generated from their declarations.

The input contract (`inputs.contract`), the planning tables (`registry`) and the BI views
(`registry.bi`) are each declared once; this module renders them into the README (between
`<!-- generated: NAME -->` markers) and into dbt's source and staging YAML.

    python -m sop_pipeline.docs --write   # after editing a declaration
    python -m sop_pipeline.docs --check   # exit 1 when a generated file is out of date (the tests run this)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from sop_pipeline import registry
from sop_pipeline.inputs.contract import INPUT_FILES, INTEGER, MONTH, NONNEG, NUMBER, POSITIVE, STRING
from sop_pipeline.inputs.dbt import render_sources, render_staging
from sop_pipeline.registry.base import TYPES
from sop_pipeline.registry.bi import bi_views

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
STAGING = REPO / "transforms" / "models" / "staging"
_KIND = {
    STRING: "text",
    MONTH: "month YYYY-MM",
    NUMBER: "number",
    NONNEG: "number >= 0",
    POSITIVE: "number > 0",
    INTEGER: "whole number >= 0",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _column_rules(spec, column) -> str:
    """The rules the validator enforces on a column beyond its type, as a sentence."""
    rules = []
    if column.allowed:
        rules.append("One of: " + ", ".join(column.allowed) + ".")
    if column.maximum is not None:
        rules.append(f"At most {column.maximum:g}.")
    if column.reserved:
        rules.append("Not " + "/".join(column.reserved) + " (reserved for totals).")
    for ref in spec.references:
        if ref.column == column.name:
            when = f" where {ref.when[0]} is {ref.when[1]}" if ref.when else ""
            rules.append(f"Must exist in {ref.target}.{ref.target_column}{when}.")
    for rule in spec.row_rules:
        if rule.column == column.name:
            rules.append(rule.rule[0].upper() + rule.rule[1:] + ".")
    return " ".join(rules)


def render_inputs() -> str:
    parts = []
    for spec in INPUT_FILES:
        rows = [
            f"| `{c.name}` | {_KIND[c.kind]} | {'yes' if c.required else 'no'} | "
            f"{_cell((c.description + ' ' + _column_rules(spec, c)).strip())} |"
            for c in spec.columns
        ]
        parts.append(
            "\n".join(
                [
                    f"#### `{spec.name}.csv` ({'required' if spec.required else 'optional'})",
                    "",
                    f"{spec.description} Key: `{', '.join(spec.key)}`.",
                    "",
                    "| column | type | required | meaning and rules |",
                    "|---|---|---|---|",
                    *rows,
                ]
            )
        )
    return "\n\n".join(parts)


def _columns_table(columns) -> list[str]:
    rows = [
        f"| `{c.name}` | {TYPES[c.type][2]}{'' if not c.nullable else ', may be null'} | {c.unit or ''} | {_cell(c.description)} |"
        for c in columns
    ]
    return ["| column | type | unit | meaning |", "|---|---|---|---|", *rows]


def render_planning_tables() -> str:
    parts = []
    for spec in registry.TABLES.values():
        grain = f" Grain: `{', '.join(spec.grain)}`." if spec.grain else " An append-only log (no key)."
        parts.append(
            "\n".join(
                [
                    f"#### `planning.{spec.name}`",
                    "",
                    f"{spec.description}{grain} Written by `{spec.computed_by}`.",
                    "",
                    *_columns_table(spec.columns),
                ]
            )
        )
    return "\n\n".join(parts)


def render_bi_views() -> str:
    return "\n\n".join("\n".join([f"#### `bi.{v.name}`", "", v.description, "", *_columns_table(v.columns)]) for v in bi_views())


SECTIONS = {"inputs": render_inputs, "planning tables": render_planning_tables, "bi views": render_bi_views}


def render_readme(text: str) -> str:
    """`text` with every generated section replaced by its current rendering."""
    for name, render in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n).*?(<!-- end generated: {name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md has no '<!-- generated: {name} -->' ... '<!-- end generated: {name} -->' section")
        rendered = render()
        text = pattern.sub(lambda m, r=rendered: m.group(1) + r + "\n" + m.group(2), text)
    return text


def generated_files() -> dict[Path, str]:
    return {
        README: render_readme(README.read_text()),
        STAGING / "_sources.yml": render_sources(),
        STAGING / "_staging.yml": render_staging(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sop_pipeline.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the generated files")
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is out of date")
    args = parser.parse_args(argv)
    stale = [path for path, content in generated_files().items() if path.read_text() != content]
    if args.write:
        for path, content in generated_files().items():
            path.write_text(content)
        print(f"wrote {', '.join(str(p.relative_to(REPO)) for p in generated_files())}")
        return 0
    for path in stale:
        print(f"{path.relative_to(REPO)} is out of date: run `python -m sop_pipeline.docs --write`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
