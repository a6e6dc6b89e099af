"""The demo company's executive meeting: the decisions a management team takes on a cycle's
exception list, so that `make demo`'s next cycle has decisions to follow up.

A real company records its decisions with `sop decide` in the meeting. The demo has no
meeting, and decisions written into the Makefile would name exceptions by id and go stale
whenever the demo company changes, so the decisions are taken here from the cycle's own list,
the way the demo's management team would: act on the largest capacity finding (its
recommendation, due next cycle), accept the largest supply shortfall of the baseline as a risk
for two cycles, and tell the owner of the largest demand-review finding to fix the practice
behind it. Each is an ordinary decision (`record_action`), indistinguishable from one typed in.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from sop_pipeline.executive.decisions import record_action
from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.warehouse import query, table_exists

# (kinds the decision answers, in preference order; decision kind; due in cycles after the meeting)
_AGENDA: tuple[tuple[tuple[str, ...], str, int], ...] = (
    (("capacity",), "action", 1),
    (("shortfall",), "accepted_risk", 2),
    (("override_without_reason", "layer_fva", "frozen_window_override", "forecast_bias"), "action", 1),
    (("budget_gap", "phase_out_loss"), "action", 2),
)


def _action(row: dict[str, Any], kind: str) -> str:
    if kind == "accepted_risk":
        bound = row["resource"] or row["material"] or "its constraint"
        return f"Accept the late {row['family']} units bound by {bound}: no expediting, reviewed when due"
    return row["recommendation"]


def hold_meeting(con: duckdb.DuckDBPyConnection, cycle: str, by: str) -> list[dict[str, Any]]:
    """Record one decision per agenda line whose kinds the cycle's exception list has (largest
    money first), and return the rows recorded. Nothing is recorded for a cycle without an
    exception list."""
    label = cycle_label(cycle)
    if not table_exists(con, "planning", "exceptions"):
        raise ValueError(f"cycle {label} has no exception list yet: run the cycle first")
    listed = query(con, "select * from planning.exceptions where cycle = ? order by rank", [label])
    if listed.height == 0:
        raise ValueError(f"cycle {label} has no exception list yet: run the cycle first")
    recorded: list[dict[str, Any]] = []
    for kinds, decision, due_in in _AGENDA:
        candidates = listed.filter(pl.col("kind").is_in(kinds) & pl.col("in_baseline"))
        if candidates.height == 0:
            continue
        row = candidates.row(0, named=True)
        recorded.append(
            record_action(
                con,
                label,
                _action(row, decision),
                row["owner"],
                cycle_label(add_months(cycle_month(label), due_in)),
                by,
                kind=decision,
                exception_id=row["exception_id"],
                note="Decided in the demo company's executive S&OP meeting",
            )
        )
    return recorded
