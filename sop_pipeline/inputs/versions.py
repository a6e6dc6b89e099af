"""The content version of each input file, and whether the files changed since the ingestion.

A planner who fixes a file and reruns only the step that complained would plan from the marts
of the old file. The ingestion records each file's version next to the marts
(`marts.input_file_versions`, swapped in with them); a planning step compares it with the files
as they are now and, when one changed, stops with the step to rerun from instead of planning
from marts that no longer describe the files. The same versions are Dagster's data versions of
the `files/*` assets, so the UI shows a changed file's ingestion as unsynced.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from sop_pipeline.inputs.contract import INPUT_FILES

ABSENT = "absent"
VERSIONS_TABLE = "marts.input_file_versions"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_versions(data_dir: str | Path) -> dict[str, tuple[str, Path | None]]:
    """Each contract file's version (16 hex characters of the sha256 of its bytes, or `absent`)
    and its path."""
    folder = Path(data_dir)
    versions: dict[str, tuple[str, Path | None]] = {}
    for spec in INPUT_FILES:
        path = next((p for p in (folder / f"{spec.name}.csv", folder / f"{spec.name}.parquet") if p.is_file()), None)
        versions[spec.name] = (file_digest(path)[:16] if path else ABSENT, path)
    return versions


def record_versions(con: duckdb.DuckDBPyConnection, data_dir: str | Path) -> None:
    """Write the files' versions into the database dbt built (published with its marts)."""
    rows = [
        (name, str(Path(data_dir).resolve()), str(path) if path else None, version)
        for name, (version, path) in file_versions(data_dir).items()
    ]
    con.execute(f"create or replace table {VERSIONS_TABLE} (file varchar, folder varchar, path varchar, version varchar)")
    con.executemany(f"insert into {VERSIONS_TABLE} values (?, ?, ?, ?)", rows)
    con.execute(f"comment on table {VERSIONS_TABLE} is 'The version (sha256 prefix) of each input file the marts were built from.'")


def changed_since_ingestion(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The input files (names as in the folder) whose content differs from what the marts were
    built from; empty when they match or when the marts predate the record."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'input_file_versions'"
    ).fetchone()[0]
    if not exists:
        return []
    rows = con.execute(f"select file, folder, version from {VERSIONS_TABLE} order by file").fetchall()
    if not rows:
        return []
    now = file_versions(rows[0][1])
    return [(now[name][1].name if now[name][1] else f"{name}.csv") for name, _, version in rows if name in now and now[name][0] != version]
