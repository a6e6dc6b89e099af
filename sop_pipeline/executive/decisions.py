"""Decisions beyond approvals: actions and accepted risks with an owner and a due cycle, and
how later cycles follow them up.

An S&OP meeting does more than approve a scenario: it asks someone to qualify an alternate
routing, accepts a lead-time risk, tells sales to give reasons for its overrides. Such a
decision is only worth recording if the next meetings see whether it was done and whether it
worked, so each one may name the exception it answers (`planning.exceptions`, whose
`exception_id` is the same finding in every cycle): the follow-up then measures that
exception's money when the decision was taken and in the cycle being reviewed, and calls the
decision resolved once the finding is no longer above materiality. Decisions are appended to
`planning.decisions` (the audit trail, never updated): closing one is a row of its own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl

from sop_pipeline import registry
from sop_pipeline.executive.governance import append_decision, utc_naive
from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.warehouse import query, table_exists

KINDS = ("action", "accepted_risk")
CLOSED = "closed"
_COLUMNS = registry.table("decisions").column_names


def _decisions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    if not table_exists(con, "planning", "decisions"):
        return registry.table("decisions").empty()
    present = set(query(con, "select * from planning.decisions limit 0").columns)
    frame = query(con, "select * from planning.decisions order by decided_at, rowid")
    # A warehouse from before decisions had actions: the missing columns are empty.
    return frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c) for c in _COLUMNS if c not in present)


def _exception_ids(con: duckdb.DuckDBPyConnection, label: str) -> list[str]:
    if not table_exists(con, "planning", "exceptions"):
        return []
    return query(con, "select exception_id from planning.exceptions where cycle = ? order by rank", [label])["exception_id"].to_list()


def record_action(
    con: duckdb.DuckDBPyConnection,
    cycle: str,
    action: str,
    owner: str,
    due: str,
    by: str,
    *,
    kind: str = "action",
    exception_id: str | None = None,
    scenario: str | None = None,
    note: str = "",
    decided_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Append an action (or an accepted risk) decided in `cycle` and return its row, with its
    `decision_id` (D<cycle>-<n>).

    Refused, before anything is written, when the action, owner or decider is empty, the due
    cycle is before the cycle, or `exception_id` is not on the cycle's exception list: a
    decision that names a finding the cycle does not have could never be followed up.
    """
    label = cycle_label(cycle)
    if kind not in KINDS:
        raise ValueError(f"a decision is one of {', '.join(KINDS)} (got {kind!r}); approvals are `sop approve`")
    for name, value in (("action", action), ("owner", owner), ("by", by)):
        if not (value or "").strip():
            raise ValueError(f"a decision needs a non-empty {name}")
    try:
        due_label = cycle_label(due)
    except ValueError as exc:
        raise ValueError(f"due cycle {due!r}: {exc}") from None
    if cycle_month(due_label) < cycle_month(label):
        raise ValueError(f"due cycle {due_label} is before the cycle {label} the decision is taken in")
    if exception_id is not None:
        listed = _exception_ids(con, label)
        if not listed:
            raise ValueError(f"cycle {label} has no exception list yet: run the cycle before deciding on its exceptions")
        if exception_id not in listed:
            shown = ", ".join(listed[:8]) + (" ..." if len(listed) > 8 else "")
            raise ValueError(
                f"exception {exception_id!r} is not on cycle {label}'s list (`sop decisions --cycle {label}` lists them): {shown}"
            )
    earlier = _decisions(con)
    taken = earlier.filter((pl.col("cycle") == label) & pl.col("decision").is_in(KINDS)).height
    row = {
        "cycle": label,
        "scenario": scenario or "baseline",
        "decision": kind,
        "decided_by": by.strip(),
        "note": note or "",
        "plan_version": None,
        "decided_at": utc_naive(decided_at),
        "decision_id": f"D{label}-{taken + 1:02d}",
        "action": action.strip(),
        "owner": owner.strip(),
        "due_cycle": due_label,
        "exception_id": exception_id,
        "closes": None,
    }
    append_decision(con, row)
    return row


def close_decision(
    con: duckdb.DuckDBPyConnection,
    cycle: str,
    decision_id: str,
    by: str,
    note: str = "",
    decided_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Record, in `cycle`, that decision `decision_id` is done (or dropped: the note says which).
    Refused for an unknown or already closed decision, or one decided after `cycle`."""
    label = cycle_label(cycle)
    if not (by or "").strip():
        raise ValueError("closing a decision needs the name of who closes it (`by`)")
    earlier = _decisions(con)
    found = earlier.filter(pl.col("decision_id") == decision_id)
    if found.height == 0:
        known = earlier.filter(pl.col("decision").is_in(KINDS))["decision_id"].to_list()
        raise ValueError(f"no decision {decision_id!r} (recorded: {', '.join(known) or 'none'})")
    if cycle_month(found["cycle"][0]) > cycle_month(label):
        raise ValueError(f"decision {decision_id} was taken in {found['cycle'][0]}, after cycle {label}")
    closed = earlier.filter((pl.col("decision") == CLOSED) & (pl.col("closes") == decision_id))
    if closed.height:
        raise ValueError(f"decision {decision_id} was already closed in {closed['cycle'][0]} by {closed['decided_by'][0]}")
    row = {
        "cycle": label,
        "scenario": found["scenario"][0],
        "decision": CLOSED,
        "decided_by": by.strip(),
        "note": note or "",
        "plan_version": None,
        "decided_at": utc_naive(decided_at),
        "decision_id": None,
        "action": None,
        "owner": None,
        "due_cycle": None,
        "exception_id": None,
        "closes": decision_id,
    }
    append_decision(con, row)
    return row


def followup_inputs(con: duckdb.DuckDBPyConnection, cycle: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The decisions recorded so far and the exceptions of the cycles they were taken in: what
    `decision_followup` compares with the cycle's own exception list."""
    label = cycle_label(cycle)
    decisions = _decisions(con)
    raised = decisions.filter(pl.col("decision").is_in(KINDS) & (pl.col("cycle") < label))["cycle"].unique().to_list()
    if not raised or not table_exists(con, "planning", "exceptions"):
        return decisions, registry.table("exceptions").empty()
    marks = ", ".join("?" for _ in raised)
    then = query(con, f"select * from planning.exceptions where cycle in ({marks})", raised)
    return decisions, then


def decision_followup(cycle: str, decisions: pl.DataFrame, exceptions_then: pl.DataFrame, exceptions_now: pl.DataFrame) -> pl.DataFrame:
    """Every action and accepted risk decided before `cycle`, as `cycle` finds it (one row each).

    Status, in order: closed (a closing recorded in this cycle or before), resolved (it named an
    exception that is not on this cycle's list any more), overdue (this cycle is after its due
    cycle), else open. A closed decision is shown in the cycle after its closing and then
    dropped, so the list stays what a meeting still talks about. The money is the named
    exception's in the cycle of the decision and now: the outcome an executive can measure
    (shortage revenue after a capacity action, the revenue a bias moves after an override rule).
    """
    label = cycle_label(cycle)
    shape = registry.table("decision_followup")
    taken = decisions.filter(pl.col("decision").is_in(KINDS) & (pl.col("cycle") < label))
    if taken.height == 0:
        return shape.empty()
    closings = decisions.filter((pl.col("decision") == CLOSED) & (pl.col("cycle") <= label))
    closing = {r["closes"]: r for r in closings.iter_rows(named=True)}
    then = {(r["cycle"], r["exception_id"]): r["money"] for r in exceptions_then.iter_rows(named=True)}
    now = {r["exception_id"]: r["money"] for r in exceptions_now.iter_rows(named=True)}
    previous = cycle_label(add_months(cycle_month(label), -1))
    rows = []
    for d in taken.iter_rows(named=True):
        shut = closing.get(d["decision_id"])
        if shut is not None and shut["cycle"] < previous:
            continue
        exception = d["exception_id"]
        money_then = then.get((d["cycle"], exception)) if exception else None
        money_now = now.get(exception) if exception else None
        if shut is not None:
            status = "closed"
        elif exception and money_now is None:
            status = "resolved"
        elif d["due_cycle"] < label:
            status = "overdue"
        else:
            status = "open"
        rows.append(
            {
                "cycle": label,
                "decision_id": d["decision_id"],
                "raised_cycle": d["cycle"],
                "kind": d["decision"],
                "action": d["action"],
                "owner": d["owner"],
                "due_cycle": d["due_cycle"],
                "exception_id": exception,
                "status": status,
                "money_when_raised": money_then,
                "money_now": money_now,
                "outcome": _outcome(d, status, shut, money_then, money_now, label),
                "decided_by": d["decided_by"],
            }
        )
    if not rows:
        return shape.empty()
    return pl.DataFrame(rows, schema=shape.polars_schema()).sort("decision_id")


def _outcome(d: dict, status: str, shut: dict | None, then: float | None, now: float | None, label: str) -> str:
    exception = d["exception_id"]
    if not exception:
        measured = "Not tied to an exception, so nothing is measured: the owner reports in the meeting"
    elif now is None:
        was = f" (it stood at {then:,.0f} in {d['cycle']})" if then is not None else ""
        measured = f"Exception {exception} is no longer above materiality in {label}{was}"
    elif then:
        measured = f"Exception {exception}: {then:,.0f} in {d['cycle']}, {now:,.0f} in {label} ({now / then - 1:+.0%})"
    else:
        measured = f"Exception {exception}: {now:,.0f} at stake in {label}"
    if status == "closed":
        note = f": {shut['note']}" if shut["note"] else ""
        return f"Closed in {shut['cycle']} by {shut['decided_by']}{note}. {measured}."
    if status == "overdue":
        return f"Overdue: due {d['due_cycle']}. {measured}."
    if d["decision"] == "accepted_risk" and status == "open":
        return f"Risk accepted in {d['cycle']}. {measured}."
    return f"{measured}."


def decision_list(con: duckdb.DuckDBPyConnection, cycle: str | None = None) -> pl.DataFrame:
    """Actions and accepted risks (with whether and when each was closed), all or one cycle's."""
    decisions = _decisions(con)
    closings = decisions.filter(pl.col("decision") == CLOSED).select(
        pl.col("closes").alias("decision_id"), pl.col("cycle").alias("closed_in"), pl.col("note").alias("closing_note")
    )
    taken = decisions.filter(pl.col("decision").is_in(KINDS))
    if cycle is not None:
        taken = taken.filter(pl.col("cycle") == cycle_label(cycle))
    return taken.join(closings, on="decision_id", how="left").select(
        "decision_id", "cycle", "decision", "action", "owner", "due_cycle", "exception_id", "decided_by", "closed_in"
    )


def decisions_report(con: duckdb.DuckDBPyConnection, cycle: str, shown: int = 12) -> list[str]:
    """Lines for `sop decisions --cycle`: the exceptions a decision can answer (with the ids
    `sop decide --exception` takes), the decisions taken in the cycle, and the follow-up of
    earlier ones as the cycle's executive review found them."""
    label = cycle_label(cycle)
    lines = [f"cycle {label}"]
    if table_exists(con, "planning", "exceptions"):
        listed = query(
            con,
            "select rank, exception_id, money, money_basis, owner from planning.exceptions where cycle = ? order by rank",
            [label],
        )
    else:
        listed = pl.DataFrame()
    if listed.height:
        lines.append(f"exceptions ({listed.height}, largest money first; the id is what `sop decide --exception` takes):")
        for r in listed.head(shown).iter_rows(named=True):
            lines.append(f"  {r['rank']:>3}. {r['exception_id']:<48} {r['money']:>12,.0f}  {r['money_basis']} ({r['owner']})")
        if listed.height > shown:
            lines.append(f"  ... {listed.height - shown} more in planning.exceptions")
    else:
        lines.append("exceptions: none recorded for this cycle (run it first)")
    taken = decision_list(con, label)
    lines.append("decisions taken in this cycle:" if taken.height else "decisions taken in this cycle: none")
    for r in taken.iter_rows(named=True):
        about = f" [{r['exception_id']}]" if r["exception_id"] else ""
        closed = f"; closed in {r['closed_in']}" if r["closed_in"] else ""
        lines.append(f"  {r['decision_id']} {r['decision']}{about}: {r['action']} (owner {r['owner']}, due {r['due_cycle']}{closed})")
    follow = (
        query(con, "select * from planning.decision_followup where cycle = ? order by decision_id", [label])
        if table_exists(con, "planning", "decision_followup")
        else pl.DataFrame()
    )
    lines.append("earlier decisions, as this cycle's review found them:" if follow.height else "earlier decisions: none to follow up")
    for r in follow.iter_rows(named=True):
        head = f"  {r['decision_id']} {r['status'].upper()}: {r['action']} (owner {r['owner']}, due {r['due_cycle']})"
        lines.append(f"{head}. {r['outcome']}")
    return lines
