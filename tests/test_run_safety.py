"""A cycle run is a unit, one writer is said plainly, and faults leave the warehouse as it was.

Real processes throughout: `sop` as a user types it, killed with SIGKILL mid-run, a second
`sop` against the same warehouse, a DuckDB client holding the working file open, a warehouse on
a file system of a few MiB.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pytest
from conftest import CYCLE, EARLIER_CYCLE, q, warehouse_fingerprint

from orchestration.paths import DBT_PROJECT_DIR
from sop_pipeline import runlock

SOP = str(Path(sys.executable).parent / "sop")


def sop(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([SOP, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _paths(data: Path, warehouse: Path) -> list[str]:
    return ["--data", str(data), "--warehouse", str(warehouse)]


def _scale_sales(data: Path, factor: float) -> None:
    path = data / "sales_history.csv"
    rows = list(csv.DictReader(path.open()))
    for row in rows:
        row["quantity"] = str(round(float(row["quantity"]) * factor))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _decisions(warehouse: Path) -> int:
    exists = q(warehouse, "select count(*) as n from information_schema.tables where table_name = 'decisions'")["n"][0]
    return int(q(warehouse, "select count(*) as n from planning.decisions")["n"][0]) if exists else 0


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_second_run_is_refused_and_an_approval_of_a_run_in_progress_or_killed_is_refused(data_copy, warehouse_copy, tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster")}
    _scale_sales(data_copy, 1.5)  # the rerun plans other numbers than the cycle in the warehouse
    first = subprocess.Popen(
        [SOP, "run", "--cycle", CYCLE, *_paths(data_copy, warehouse_copy)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while runlock.current(warehouse_copy) is None:
            assert time.monotonic() < deadline and first.poll() is None, "the run never claimed the warehouse"
            time.sleep(0.1)
        holder = runlock.current(warehouse_copy)
        assert holder.pid == first.pid and holder.cycle == CYCLE

        second = sop("run", "--cycle", CYCLE, *_paths(data_copy, warehouse_copy), env=env)
        assert second.returncode == 2
        assert f"cycle {CYCLE} is being run by `sop`" in second.stderr and f"process {first.pid}" in second.stderr
        assert "since" in second.stderr and "Traceback" not in second.stderr and "Could not set lock" not in second.stderr

        during = sop("approve", "--cycle", CYCLE, "--by", "Dana", *_paths(data_copy, warehouse_copy), env=env)
        assert during.returncode == 2 and "approval refused" in during.stderr and "is being run by" in during.stderr

        # Kill the rerun as its financial step starts: demand and supply are the new plan's,
        # finance still the old one's.
        for line in first.stdout:
            if "... financial_plan" in line:
                first.kill()
                break
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert runlock.current(warehouse_copy) is None, "a killed run does not hold the warehouse"
    status = sop("status", "--cycle", CYCLE, *_paths(data_copy, warehouse_copy), env=env)
    assert status.returncode == 0
    assert "state: mixed" in status.stdout and "financial_plan ran before the latest run of" in status.stdout
    after = sop("approve", "--cycle", CYCLE, "--by", "Dana", *_paths(data_copy, warehouse_copy), env=env)
    assert after.returncode == 2 and "nothing to approve" in after.stderr and "rerun from financial_plan" in after.stderr
    assert _decisions(warehouse_copy) == 0


def _odd_histories(data: Path) -> dict[str, str]:
    """Give three SKUs (none a like_sku) a 30-month gap, a single month of sales, no sales at all."""
    liked = {r["like_sku"] for r in csv.DictReader((data / "products.csv").open())}
    path = data / "sales_history.csv"
    rows = list(csv.DictReader(path.open()))
    gap, single, zeros = [s for s in sorted({r["sku"] for r in rows}) if s not in liked][:3]
    months = sorted({r["month"] for r in rows})
    kept = []
    for row in rows:
        if (row["sku"] == gap and row["month"] in months[6:36]) or (row["sku"] == single and row["month"] != months[-1]):
            continue
        if row["sku"] == zeros:
            row["quantity"] = "0"
        kept.append(row)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return {"gap": gap, "single": single, "zeros": zeros}


def test_a_run_waits_for_the_owner_then_runs_and_cleans_up_what_interrupted_runs_left(data_copy, warehouse_copy, tmp_path):
    """Also: odd histories (a long gap, one month, all zeros) never stop the cycle; each is
    forecast by a method that fits it and the consensus checkpoint names the fallbacks."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster")}
    odd = _odd_histories(data_copy)
    folder = warehouse_copy.parent
    dead = _dead_pid()
    leftovers = [
        folder / f".sop_bi.duckdb.{dead}.0123456789ab.tmp",
        folder / f".sop_bi.duckdb.{dead}.0123456789ab.tmp.wal",
        folder / "charts" / CYCLE / f".review_pack_{CYCLE}.pdf.{dead}.0123456789ab.tmp",
        folder / ".ingest" / str(uuid.uuid4()) / "build.duckdb",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left by a killed run")
    # Another live run owns the warehouse until the test tells it to let go.
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from sop_pipeline import runlock; "
            f"runlock.claim({str(warehouse_copy)!r}, 'other-run', {CYCLE!r}, 'sop'); print('claimed', flush=True); "
            f"sys.stdin.readline(); runlock.release({str(warehouse_copy)!r}, 'other-run')",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout.readline().strip() == "claimed"
    targets = DBT_PROJECT_DIR / "target"
    targets_before = set(targets.glob("dbt_models-*"))
    waiting = subprocess.Popen(
        [SOP, "run", "--cycle", CYCLE, "--wait", "300", *_paths(data_copy, warehouse_copy)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    said = ""
    while "waiting:" not in said and len(said.splitlines()) < 5:
        said += waiting.stdout.readline()
    assert "waiting: cycle 2026-11 is being run by `sop` (run other-ru" in said, said
    time.sleep(2)
    assert waiting.poll() is None, "it waits while the owner lives"
    owner.communicate("done\n", timeout=30)
    out, err = waiting.communicate(timeout=1200)
    assert waiting.returncode == 0, err
    assert not any(path.exists() for path in leftovers)
    assert (folder / "sop_bi.duckdb").exists()
    assert not list(folder.glob(".sop_bi.duckdb.*")) and not list((folder / ".ingest").glob("*"))
    assert set(targets.glob("dbt_models-*")) == targets_before, "dbt's target folders do not accumulate in the repo"
    # Each run keeps its own log; the cycle's log name links to the latest.
    logs = sorted((folder / "logs").glob(f"cycle-{CYCLE}-*.log"))
    assert logs and (folder / "logs" / f"cycle-{CYCLE}.log").resolve() == logs[-1].resolve()

    models = dict(
        q(
            warehouse_copy, f"select sku, any_value(model) as model from planning.statistical_forecast where cycle = '{CYCLE}' group by sku"
        ).iter_rows()
    )
    assert models[odd["gap"]] not in ("fallback:recent_mean", "no_history"), "a SKU with a long gap still has a model"
    assert models[odd["single"]] == "fallback:recent_mean" and models[odd["zeros"]] == "no_history"
    gate = q(
        warehouse_copy,
        f"select passed, description from planning.checkpoints where cycle = '{CYCLE}' and checkpoint = 'consensus_demand_is_sound'",
    ).row(0)
    assert gate[0] and f"{odd['single']} (recent mean)" in gate[1] and f"{odd['zeros']} (no sales: zero)" in gate[1]


def test_approval_and_status_refuse_a_cycle_never_run_or_a_warehouse_that_does_not_exist(warehouse_copy, tmp_path, capsys):
    from orchestration.cli import main

    missing = tmp_path / "typo" / "sop.duckdb"
    assert main(["approve", "--cycle", CYCLE, "--by", "Dana", "--warehouse", str(missing)]) == 2
    assert main(["status", "--cycle", CYCLE, "--warehouse", str(missing)]) == 1
    err = capsys.readouterr().err
    assert "approval refused: no warehouse at" in err and "status refused: no warehouse at" in err
    assert not missing.parent.exists(), "nothing is created"

    before = warehouse_fingerprint(warehouse_copy)
    never = "2026-09"
    assert main(["approve", "--cycle", never, "--by", "Dana", "--warehouse", str(warehouse_copy)]) == 2
    assert f"cycle {never} has not been run yet" in capsys.readouterr().err
    assert main(["status", "--cycle", never, "--warehouse", str(warehouse_copy)]) == 0
    assert "state: never run" in capsys.readouterr().out
    assert warehouse_fingerprint(warehouse_copy) == before


@pytest.mark.parametrize("cycle", ["2026-1", "1900-01", "2099-01", "november"])
def test_a_cycle_that_is_not_a_plannable_month_is_refused_before_anything_runs(cycle, tmp_path):
    done = sop("run", "--cycle", cycle, "--warehouse", str(tmp_path / "w" / "sop.duckdb"), timeout=60)
    assert done.returncode == 2 and "argument --cycle" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "w").exists()


def test_a_client_holding_the_working_file_open_is_named_as_the_reason(data_copy, warehouse_copy, tmp_path):
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; con = duckdb.connect({str(warehouse_copy)!r}, read_only=True); "
            "print('open', flush=True); time.sleep(300)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "open"
        before = warehouse_fingerprint(warehouse_copy)  # a second reader may join a read-only one
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "SOP_LOCK_WAIT_SECONDS": "2"}
        done = sop("run", "--cycle", CYCLE, *_paths(data_copy, warehouse_copy), env=env)
    finally:
        reader.kill()
        reader.wait()
    assert done.returncode == 1
    assert "keeps it open" in done.stderr and "sop_bi.duckdb" in done.stderr and f"({reader.pid})" in done.stderr
    assert "Traceback" not in done.stderr
    assert warehouse_fingerprint(warehouse_copy) == before


def _mount_tmpfs(target: Path, size_bytes: int) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def small_filesystem(target: Path, size_bytes: int):
    if not _mount_tmpfs(target, size_bytes):
        pytest.skip("cannot mount a small file system here (needs root); test_a_write_failure_is_named_... simulates it")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_full_disk_stops_the_run_with_one_message_and_the_warehouse_as_it_was(data_copy, warehouse_copy, tmp_path):
    size = warehouse_copy.stat().st_size
    with small_filesystem(tmp_path / "small", size + 3 * 2**20) as small:
        warehouse = small / "sop.duckdb"
        shutil.copy(warehouse_copy, warehouse)
        before = warehouse_fingerprint(warehouse)
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster")}
        done = sop("run", "--cycle", CYCLE, *_paths(data_copy, warehouse), env=env)
        assert done.returncode in (1, 2)
        assert "the disk is full" in done.stderr and str(small) in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "cannot rollback" not in done.stderr
        assert warehouse_fingerprint(warehouse) == before


def test_a_read_only_folder_stops_the_run_with_one_message(data_copy, warehouse_copy, tmp_path):
    with small_filesystem(tmp_path / "ro", warehouse_copy.stat().st_size + 4 * 2**20) as folder:
        shutil.copy(warehouse_copy, folder / "sop.duckdb")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster")}
        done = sop("run", "--cycle", EARLIER_CYCLE, *_paths(data_copy, folder / "sop.duckdb"), env=env)
        assert done.returncode == 2
        assert "read-only" in done.stderr and str(folder) in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_write_failure_is_named_with_the_file_and_the_cause(tmp_path):
    """What DuckDB says when the disk fills during a write, and after it the failed rollback
    that used to hide it, become one sentence naming the file."""
    from sop_pipeline.warehouse import WarehouseError, connect

    path = tmp_path / "sop.duckdb"
    with pytest.raises(WarehouseError, match=r"cannot write the warehouse .*sop\.duckdb: the disk is full"):
        with connect(path) as con:
            con.execute("create table t as select 1 as x")
            raise duckdb.IOException('IO Error: Could not write file "sop.duckdb.wal": No space left on device')
    with pytest.raises(WarehouseError, match="the file system is read-only"):
        with connect(path):
            raise OSError(30, "Read-only file system")
