"""Shared fixtures: a small generated demo company and a warehouse holding one real cycle.

The integration tests run the real pipeline (validation, dbt, Dagster, DuckDB) on these; a
small company keeps a full cycle to seconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from sop_pipeline.demo import write_demo_company

SMALL_SKUS = 60
CYCLE = "2026-11"
EARLIER_CYCLE = "2026-10"


def run_ok(cycle: str, data_dir: Path, warehouse: Path, **kwargs):
    from orchestration.runner import run_cycle

    lines: list[str] = []
    outcome = run_cycle(cycle, str(data_dir), str(warehouse), printer=lines.append, **kwargs)
    assert outcome.success, outcome.explanation() + "\n" + "\n".join(lines)
    return outcome


def q(path: Path, sql: str):
    """Query a warehouse file read-only and return a polars frame."""
    from sop_pipeline.warehouse import query

    con = duckdb.connect(str(path), read_only=True)
    try:
        return query(con, sql)
    finally:
        con.close()


def warehouse_fingerprint(path: Path) -> dict[str, str]:
    """A content hash of every table, so a test can prove nothing changed."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' order by 1, 2"
        ).fetchall()
        prints = {}
        for schema, table in tables:
            rows = con.execute(f"select * from {schema}.{table} order by all").fetchall()
            prints[f"{schema}.{table}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return prints
    finally:
        con.close()


def warehouse_tables(path: Path) -> dict:
    """Every table of a warehouse as a polars frame, in a stable row order, without what says
    when and by which run a step or check ran and how long a solve took (not plan content)."""
    names = q(path, "select table_schema || '.' || table_name as t from information_schema.tables where table_type = 'BASE TABLE'")["t"]
    frames = {}
    for name in names:
        frame = q(path, f"select * from {name}")
        frame = frame.drop([c for c in frame.columns if c in ("evaluated_at", "finished_at", "run_id") or c.endswith("_seconds")])
        keys = [c for c, t in frame.schema.items() if not t.is_float()]
        frames[name] = frame.sort(keys) if keys else frame
    return frames


def assert_same_tables(after: dict, before: dict) -> None:
    """Same tables, same rows; numbers equal up to float summation order (parallel sums add in
    another order from run to run: 1e-9 relative)."""
    from polars.testing import assert_frame_equal

    assert after.keys() == before.keys()
    for name, frame in before.items():
        try:
            assert_frame_equal(after[name], frame, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


@pytest.fixture(scope="session", autouse=True)
def dagster_home(tmp_path_factory) -> Path:
    """Runs share one Dagster instance (DAGSTER_HOME, `orchestration.instance`): the tests' is
    their own, never the repo's `.dagster/`."""
    home = tmp_path_factory.mktemp("dagster_home")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder that `build(folder)` fills once per test session, however many xdist workers
    there are: the first worker to ask builds it under a lock in the session's shared temp
    folder, the others wait and reuse it. Each worker building its own copy of the two-cycle
    warehouse cost a whole cycle run per worker. Whatever is built here is only read by the
    tests (they copy it before changing anything)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    folder = tmp_path_factory.getbasetemp().parent / f"shared_{name}"
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = Path(f"{folder}.built")  # beside the folder: a company folder holds only its files
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "demo_company", lambda out: write_demo_company(out, skus=SMALL_SKUS, seed=11, cycle=CYCLE))


@pytest.fixture(scope="session")
def cycle_warehouse(tmp_path_factory, demo_dir) -> Path:
    """A warehouse after running cycle 2026-10 and then 2026-11 on the small demo company."""

    def build(folder: Path) -> None:
        run_ok(EARLIER_CYCLE, demo_dir, folder / "sop.duckdb")
        run_ok(CYCLE, demo_dir, folder / "sop.duckdb")

    return built_once(tmp_path_factory, "warehouse", build) / "sop.duckdb"


@pytest.fixture
def data_copy(tmp_path, demo_dir) -> Path:
    """A private copy of the demo company that a test may break."""
    target = tmp_path / "data"
    shutil.copytree(demo_dir, target)
    return target


@pytest.fixture
def warehouse_copy(tmp_path, cycle_warehouse) -> Path:
    target = tmp_path / "sop.duckdb"
    shutil.copy(cycle_warehouse, target)
    return target


def registered(name: str, frame, **values):
    """A hand-made planning frame completed to its registered columns: a test states the
    columns its rule is about; the others get `values`, else zero, false or null."""
    import polars as pl

    from sop_pipeline import registry

    spec = registry.table(name)
    filled = []
    for column in spec.columns:
        if column.name in frame.columns:
            filled.append(pl.col(column.name).cast(column.polars_type))
        elif column.name in values:
            filled.append(pl.lit(values[column.name], dtype=column.polars_type).alias(column.name))
        elif column.type in ("float", "int", "int32"):
            filled.append(pl.lit(0, dtype=column.polars_type).alias(column.name))
        elif column.type == "bool":
            filled.append(pl.lit(False).alias(column.name))
        else:
            filled.append(pl.lit(None, dtype=column.polars_type).alias(column.name))
    return frame.select(filled)


def write(con, name: str, frame, cycle: str, **values) -> None:
    """Write a hand-made planning frame the way a step does (validated against the registry)."""
    from sop_pipeline.warehouse import write_cycle

    write_cycle(con, name, registered(name, frame, **values), cycle)
