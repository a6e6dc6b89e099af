"""Governance of a cycle: its plan version, approvals, the plan of record and checkpoints.

An approval is bound to a *plan version*: a hash of the cycle's plan tables. If anyone reruns a
step after the approval and a single number changes, the version changes, the approval no
longer matches and the plan of record refuses to publish: executives approve numbers, not a
table name. The plan of record is the approved scenario's demand, supply, capacity and
financial rows, copied into `planning.plan_of_record_*` with the version and the approver, so BI
tools and later cycles can always say what was agreed, even after the working tables are rerun.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from sop_pipeline import registry
from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.settings.scenarios import BASELINE
from sop_pipeline.warehouse import ensure_table, query, read_cycle, table_exists, write_cycles

APPROVED = "approved"


VERSION_SHOWN = 12  # characters of the version hash shown in messages


def plan_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The planning tables that make up a cycle's plan and exist in this warehouse: every
    registered table marked `in_plan_version` (not the review's own records: decisions,
    checkpoints, KPIs, exceptions, the plan of record), the settings each step used included."""
    present = set(query(con, "select table_name from information_schema.tables where table_schema = 'planning'")["table_name"])
    return sorted(name for name, spec in registry.TABLES.items() if spec.in_plan_version and name in present)


def plan_version(con: duckdb.DuckDBPyConnection, cycle: str) -> str:
    """sha256 (hex) of the cycle's rows in every plan table: same content, same version.

    Each table contributes its name, its column names and types, its row count and two
    order-independent aggregates of DuckDB's 64-bit hash of each whole row (their sum and their
    xor). So the version does not depend on insertion order or threads, and any changed value,
    added or removed row changes it (barring a 64-bit hash collision). Floating-point numbers
    enter at `SIGNIFICANT_DIGITS` significant digits, magnitudes below `NEGLIGIBLE` as zero:
    parallel sums (DuckDB's threads, polars' groups, forecast chunks that finish in another
    order on a loaded machine) add in another order and differ in their last bits from run to
    run, and an approval must survive an unchanged rerun. A plan number that moves by more
    than one part in a million is a new version. It is computed inside DuckDB: 0.4 s for 5
    million rows on two cores, where sorting and rendering the rows as CSV took 14 s, so the
    approval sensor can afford it. DuckDB's row hash may change with a DuckDB upgrade: an
    approval given before the upgrade then needs renewing, which is the safe direction.
    """
    label = cycle_label(cycle)
    digest = hashlib.sha256(f"sop plan version 2\ncycle {label}\n".encode())
    for table in plan_tables(con):
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'planning' and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
        # Timings (`*_seconds`) change on every run without changing the plan.
        content = [name for name, _ in columns if not name.endswith("_seconds")]
        columns = [c for c in columns if c[0] in content]
        row = "row(" + ", ".join(_stable(name, kind) for name, kind in columns) + ")"
        rows, total, xor = con.execute(
            f"select count(*), coalesce(sum(hash({row})), 0), coalesce(bit_xor(hash({row})), 0) from planning.{table} where cycle = ?",
            [label],
        ).fetchall()[0]
        digest.update(f"table planning.{table}\n{columns}\n{rows} {total} {xor}\n".encode())
    return digest.hexdigest()


SIGNIFICANT_DIGITS = 6
NEGLIGIBLE = 1e-6


def _stable(name: str, kind: str) -> str:
    """A column as it enters the version: floats rounded to `SIGNIFICANT_DIGITS`, so that
    summation-order noise (about 1e-15 relative) cannot change the version."""
    column = f'"{name}"'
    if kind.upper() not in ("DOUBLE", "FLOAT", "REAL"):
        return column
    return (
        f"case when {column} is null or isnan({column}) or isinf({column}) then {column} "
        f"when abs({column}) < {NEGLIGIBLE} then 0.0 "
        f"else round({column}, {SIGNIFICANT_DIGITS - 1} - cast(floor(log10(abs({column}))) as integer)) end"
    )


_version_of = plan_version  # `record_decision` has a parameter of the same name


def utc_naive(moment: dt.datetime | None) -> dt.datetime:
    """Timestamps are stored as UTC without a time zone; a naive input is taken as UTC."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def short_version(version: str | None) -> str:
    return f"{version[:VERSION_SHOWN]}..." if version else "(none)"


class PlanNotApprovedError(RuntimeError):
    """The plan of record was asked for a plan version no executive approved."""


def cycle_scenarios(con: duckdb.DuckDBPyConnection, cycle: str) -> list[str]:
    """Scenarios present in the cycle's plan tables (baseline first), [] when none has one."""
    label = cycle_label(cycle)
    found: set[str] = set()
    tables = query(
        con,
        "select distinct table_name from information_schema.columns where table_schema = 'planning' and column_name = 'scenario'",
    )["table_name"].to_list()
    for table in sorted(set(tables) & set(plan_tables(con))):
        found |= set(query(con, f"select distinct scenario from planning.{table} where cycle = ?", [label])["scenario"].drop_nulls())
    return scenario_order(found)


def scenario_order(names) -> list[str]:
    names = set(names)
    return ([BASELINE] if BASELINE in names else []) + sorted(names - {BASELINE})


@dataclass(frozen=True)
class StepGraph:
    """The cycle's steps as the orchestration defines them: each step's upstream steps (within
    the cycle), which step each blocking checkpoint gates, and the steps a complete cycle has
    run. The code location derives it from its asset graph, so this module needs no Dagster."""

    upstream: Mapping[str, frozenset[str]]
    checkpoints: Mapping[str, str]
    order: tuple[str, ...]


@dataclass(frozen=True)
class CycleState:
    """`status`: never_run, incomplete, mixed, stopped or complete; `reason` a sentence;
    `rerun_from` the step a planner reruns from (None when complete)."""

    status: str
    reason: str
    rerun_from: str | None = None

    @property
    def complete(self) -> bool:
        return self.status == "complete"


def cycle_state(con: duckdb.DuckDBPyConnection, cycle: str, graph: StepGraph) -> CycleState:
    """Whether the cycle's tables form one plan: every step has run, none ran before a step it
    depends on ran again (a partial rerun or a run that stopped leaves such a mix), and every
    blocking checkpoint passed after its step's latest run."""
    label = cycle_label(cycle)
    runs = read_cycle(con, "step_runs", label) if table_exists(con, "planning", "step_runs") else registry.table("step_runs").empty()
    finished = dict(zip(runs["step"].to_list(), runs["finished_at"].to_list()))
    if not finished:
        return CycleState("never_run", f"cycle {label} has not been run yet (sop run --cycle {label})", graph.order[0])
    missing = [s for s in graph.order if s not in finished]
    if missing:
        return CycleState(
            "incomplete",
            f"cycle {label}: step(s) {', '.join(missing)} have not run since the cycle started; rerun from {missing[0]}",
            missing[0],
        )
    for step in graph.order:
        newer = sorted(u for u in graph.upstream.get(step, ()) if finished.get(u) and finished[u] > finished[step])
        if newer:
            return CycleState(
                "mixed",
                f"cycle {label}: {step} ran before the latest run of {', '.join(newer)}, so its tables "
                f"describe another plan; rerun from {step}",
                step,
            )
    checks = registry.table("checkpoints").empty()
    if table_exists(con, "planning", "checkpoints"):
        checks = read_cycle(con, "checkpoints", label)
    outcome = {r["checkpoint"]: r for r in checks.iter_rows(named=True)}
    for name, step in graph.checkpoints.items():
        row = outcome.get(name)
        if row is None or row["evaluated_at"] < finished[step]:
            return CycleState(
                "incomplete", f"cycle {label}: checkpoint {name} has not been evaluated since {step} ran; rerun from {step}", step
            )
        if not row["passed"]:
            return CycleState("stopped", f"cycle {label} stopped at checkpoint {name}: {row['description']}", step)
    return CycleState("complete", f"cycle {label}: every step ran and every checkpoint passed")


def record_decision(
    con: duckdb.DuckDBPyConnection,
    cycle: str,
    scenario: str,
    by: str,
    note: str = "",
    plan_version: str | None = None,
    decided_at: dt.datetime | None = None,
    graph: StepGraph | None = None,
) -> dict[str, Any]:
    """Append an approval of `scenario` to `planning.decisions` and return the row.

    With the cycle's `graph`, an approval of a cycle that is not complete (never run, stopped
    at a checkpoint, or mixing runs) is refused before anything is written.

    `plan_version` is the version the executive reviewed (page 1 of the review pack shows
    it); it defaults to the current one. An approval of an older version is still recorded (it
    is what happened) but `approval_status` will report it as not matching. `decided_at` is
    stored as a UTC timestamp without time zone. Decisions are never updated or deleted: the
    table is the audit trail.
    """
    label = cycle_label(cycle)
    if not (by or "").strip():
        raise ValueError("an approval needs the name of the executive who approves (`by`)")
    if graph is not None:
        state = cycle_state(con, label, graph)
        if not state.complete:
            raise ValueError(f"nothing to approve: {state.reason}")
    scenarios = cycle_scenarios(con, label) or [BASELINE]  # without a supply review there is only the baseline
    if scenario not in scenarios:
        raise ValueError(f"scenario {scenario!r} is not in cycle {label}'s plan (scenarios: {', '.join(scenarios)})")
    row = {
        "cycle": label,
        "scenario": scenario,
        "decision": APPROVED,
        "decided_by": by.strip(),
        "note": note or "",
        "plan_version": plan_version or _version_of(con, label),
        "decided_at": utc_naive(decided_at),
    }
    append_decision(con, row)
    return row


def append_decision(con: duckdb.DuckDBPyConnection, row: Mapping[str, Any]) -> None:
    """Append one row to `planning.decisions` (the audit trail, never updated): the registered
    columns `row` has, so an approval leaves an action's columns empty."""
    ensure_table(con, "decisions")
    names = [c for c in registry.table("decisions").column_names if c in row]
    con.execute(
        f"insert into planning.decisions ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
        [row[c] for c in names],
    )


def approval_status(con: duckdb.DuckDBPyConnection, cycle: str, graph: StepGraph | None = None) -> dict[str, Any]:
    """Does the latest approval of the cycle cover the plan as it is now?

    Returns `current_version`, `latest_approval` (the decisions row as a dict, or None),
    `matches` (True only when the latest approval is for the current version and, given the
    cycle's `graph`, the cycle is complete), `state` and `reason`, a sentence for the CLI, the
    review pack and the approval sensor.
    """
    label = cycle_label(cycle)
    current = plan_version(con, label)
    state = cycle_state(con, label, graph) if graph is not None else None
    status = _approval(con, label, current)
    if state is not None and not state.complete and status["matches"]:
        status = {**status, "matches": False, "reason": f"{status['reason']}, but {state.reason}"}
    return {**status, "state": state}


def _approval(con: duckdb.DuckDBPyConnection, label: str, current: str) -> dict[str, Any]:
    latest = None
    if table_exists(con, "planning", "decisions"):
        rows = query(
            con,
            "select * from planning.decisions where cycle = ? and decision = ? order by decided_at desc, rowid desc limit 1",
            [label, APPROVED],
        ).to_dicts()
        latest = rows[0] if rows else None
    if latest is None:
        return {"current_version": current, "latest_approval": None, "matches": False, "reason": "no approval yet"}
    if latest["plan_version"] == current:
        reason = (
            f"scenario {latest['scenario']} approved by {latest['decided_by']} at "
            f"{latest['decided_at']:%Y-%m-%d %H:%M} UTC for version {short_version(current)}"
        )
        return {"current_version": current, "latest_approval": latest, "matches": True, "reason": reason}
    reason = (
        f"plan changed after approval: approved version {short_version(latest['plan_version'])} != current "
        f"{short_version(current)} (scenario {latest['scenario']} approved by {latest['decided_by']} at "
        f"{latest['decided_at']:%Y-%m-%d %H:%M} UTC); the plan needs a new approval"
    )
    return {"current_version": current, "latest_approval": latest, "matches": False, "reason": reason}


def build_plan_of_record(con: duckdb.DuckDBPyConnection, cycle: str, scenario: str) -> dict[str, pl.DataFrame]:
    """The approved scenario's plan, keyed by target table (`planning.plan_of_record_*`).

    One table per grain (demand per SKU-month, supply per SKU-month, capacity per
    resource-month, financial per family-month), each the working table's columns for that
    scenario (consensus demand has no scenario: it is the same for all) with `scenario`,
    `plan_version`, `approved_by` and `approved_at` in front. Working tables that do not exist
    this cycle are left out. Raises PlanNotApprovedError unless the latest approval is for
    this scenario and for the plan as it is now.
    """
    label = cycle_label(cycle)
    status = approval_status(con, label)
    approval = status["latest_approval"]
    if approval is None or not status["matches"]:
        raise PlanNotApprovedError(f"cycle {label}: no plan of record without a matching approval: {status['reason']}")
    if approval["scenario"] != scenario:
        raise PlanNotApprovedError(
            f"cycle {label}: scenario {scenario} is not the approved one (approved: {approval['scenario']} by {approval['decided_by']})"
        )
    frames: dict[str, pl.DataFrame] = {}
    present = set(plan_tables(con))
    for target, source in registry.PLAN_OF_RECORD_SOURCES.items():
        if source not in present:
            continue
        rows = read_cycle(con, source, label)
        if "scenario" in rows.columns:
            rows = rows.filter(pl.col("scenario") == scenario)
        frames[target] = rows.select(
            pl.lit(label).alias("cycle"),
            pl.lit(scenario).alias("scenario"),
            pl.lit(status["current_version"]).alias("plan_version"),
            pl.lit(approval["decided_by"]).alias("approved_by"),
            pl.lit(approval["decided_at"], dtype=pl.Datetime("us")).alias("approved_at"),
            pl.exclude("cycle", "scenario"),
        )
    if not frames:
        raise PlanNotApprovedError(f"cycle {label}: there is no demand, supply, capacity or financial plan to publish")
    return frames


def publish_plan_of_record(con: duckdb.DuckDBPyConnection, cycle: str, scenario: str) -> dict[str, int]:
    """Build the plan of record and replace the cycle's rows of every `plan_of_record_*`
    table in one transaction: readers see the old plan of record or the new one, never a mix.
    A source table gone since the last publish leaves its plan-of-record table empty for the
    cycle. Returns rows written per table."""
    label = cycle_label(cycle)
    frames = build_plan_of_record(con, label, scenario)
    everything = {name: frames.get(name, registry.table(name).empty()) for name in registry.PLAN_OF_RECORD_SOURCES}
    write_cycles(con, everything, label)
    return {f"planning.{name}": frame.height for name, frame in frames.items()}


def plan_of_record_version(con: duckdb.DuckDBPyConnection, cycle: str) -> str | None:
    """The plan version the published plan of record of the cycle holds, or None."""
    label = cycle_label(cycle)
    versions: set[str] = set()
    for target in registry.PLAN_OF_RECORD_SOURCES:
        if table_exists(con, "planning", target):
            versions |= set(query(con, f"select distinct plan_version from planning.{target} where cycle = ?", [label])["plan_version"])
    return versions.pop() if len(versions) == 1 else None


def record_checkpoint(
    con: duckdb.DuckDBPyConnection,
    cycle: str,
    checkpoint: str,
    passed: bool,
    description: str,
    blocking: bool = True,
    run_id: str | None = None,
) -> None:
    """Record a checkpoint's latest outcome for the cycle (one row per cycle and checkpoint:
    a rerun replaces it), so `sop status` can tell without asking Dagster. A failed
    non-blocking check (a warning such as `overrides_have_reasons`) is shown, but the cycle
    does not wait for it."""
    label = cycle_label(cycle)
    row = pl.DataFrame(
        {
            "cycle": [label],
            "checkpoint": [checkpoint],
            "passed": [bool(passed)],
            "description": [description],
            "evaluated_at": [utc_naive(None)],
            "blocking": [bool(blocking)],
            "run_id": [run_id],
        },
        schema=registry.table("checkpoints").polars_schema(),
    )
    write_cycles(con, {}, label, keyed={"checkpoints": row})


def last_plan_of_record(con: duckdb.DuckDBPyConnection, cycle: str, lookback: int = 12) -> pl.DataFrame | None:
    """The financial plan the cycle is compared with: the latest plan of record of the
    `lookback` cycles before it; without one, the latest earlier cycle's baseline plan."""
    label = cycle_label(cycle)
    first = cycle_label(add_months(cycle_month(label), -lookback))
    for table in ("plan_of_record_financial", "financial_plan"):
        if not table_exists(con, "planning", table):
            continue
        frame = query(con, f"select * from planning.{table} where cycle < ? and cycle >= ? order by all", [label, first])
        if frame.height:
            frame = frame.filter(pl.col("cycle") == frame["cycle"].max())
            if table == "financial_plan":
                frame = frame.filter(pl.col("scenario") == BASELINE)
            return frame.select([c for c in frame.columns if c not in ("plan_version", "approved_by", "approved_at")])
    return None
