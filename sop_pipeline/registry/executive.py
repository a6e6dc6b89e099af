"""Tables of the executive review and the cycle's governance records."""

from sop_pipeline.registry.base import Col, Table
from sop_pipeline.registry.common import CYCLE, SCENARIO, money, text

DECISION_KINDS = ("approved", "action", "accepted_risk", "closed")
FOLLOWUP_STATUS = ("open", "overdue", "closed", "resolved")

EXECUTIVE_TABLES = (
    Table(
        "executive_summary",
        "executive_review",
        "Executive KPIs per cycle and scenario, one row per KPI (long format: pivot on scenario to compare).",
        ("cycle", "scenario", "kpi", "subject"),
        (
            CYCLE,
            SCENARIO,
            Col("kpi_order", "int32", "Display order.", ge=0),
            text("kpi", "KPI name, e.g. fill_rate, revenue."),
            text("subject", "What the KPI is about when not the company (a bottleneck resource).", nullable=True),
            Col("value", "float", "KPI value; null when its input was not available this cycle.", unit="see unit", nullable=True),
            text("unit", "ratio (0-1), currency, units, days, ...", nullable=True),
            text("detail", "How it was computed, or why it is missing."),
        ),
        computed_by="sop_pipeline.executive.kpis.executive_summary",
        in_plan_version=False,
    ),
    Table(
        "exceptions",
        "executive_review",
        "One list of the cycle's exceptions across the demand, supply and financial reviews, each once (with the "
        "scenarios it appears in), above the materiality thresholds of gates.yaml, ranked by the money at stake; the "
        "top max_exceptions_in_pack are the executive's list.",
        ("cycle", "exception_id"),
        (
            CYCLE,
            text("exception_id", "kind:subject, the same for the same finding in every cycle (decisions refer to it)."),
            Col("rank", "int32", "1 = the most money at stake.", ge=1),
            text("step", "Review step that found it.", isin=("demand_review", "supply_review", "financial_review")),
            text(
                "kind",
                "override_without_reason, frozen_window_override, forecast_bias, phase_out_loss, layer_fva (demand), "
                "shortfall, capacity (supply), budget_gap (finance).",
                isin=(
                    "override_without_reason",
                    "frozen_window_override",
                    "forecast_bias",
                    "phase_out_loss",
                    "layer_fva",
                    "shortfall",
                    "capacity",
                    "budget_gap",
                ),
            ),
            text("family", "Product family concerned.", nullable=True),
            text("sku", "SKU concerned.", nullable=True),
            text("resource", "Resource concerned (the binding one for a shortfall).", nullable=True),
            text("material", "Material concerned (the binding one for a shortfall).", nullable=True),
            Col("first_month", "date", "First month concerned; null for a fiscal year.", nullable=True),
            Col("last_month", "date", "Last month concerned; null for a fiscal year.", nullable=True),
            text("period_label", "The months or the fiscal year, as text."),
            money("money", "Amount at stake (what money_basis says), in the currency of the input files.", ge=0),
            text("money_basis", "What the money is: revenue delivered late, margin lost, revenue moved by an input, ..."),
            text("scenarios", "Scenarios it appears in, baseline first, comma-separated."),
            Col("in_baseline", "bool", "The baseline plan has it (false: only a what-if scenario shows it)."),
            text("owner", "Who answers for it: the input's owner, or the step's owner from gates.yaml."),
            text("description", "A sentence for the executive."),
            text("recommendation", "The recommended action."),
            Col("in_executive_list", "bool", "Among the top max_exceptions_in_pack by money: the executive's list."),
        ),
        computed_by="sop_pipeline.executive.exceptions.exception_list",
        in_plan_version=False,
    ),
    Table(
        "checkpoints",
        "governance",
        "Each checkpoint's latest outcome per cycle, so that `sop status` and the plan of record's check can read it "
        "without asking Dagster.",
        ("cycle", "checkpoint"),
        (
            CYCLE,
            text("checkpoint", "Checkpoint name (a Dagster asset check)."),
            Col("passed", "bool", "It passed."),
            text("description", "What it found."),
            Col("evaluated_at", "timestamp", "When it ran (UTC)."),
            Col("blocking", "bool", "A failure stops the cycle (false: a warning for the meeting)."),
            text("run_id", "The Dagster run that evaluated it.", nullable=True),
        ),
        computed_by="sop_pipeline.executive.governance.record_checkpoint",
        in_plan_version=False,
    ),
    Table(
        "step_runs",
        "governance",
        "When each step of the cycle last finished writing its tables, and in which run: written in the same "
        "transaction as the tables, so `sop status` and the approval can tell a complete cycle from one a stopped or "
        "partial rerun left mixed.",
        ("cycle", "step"),
        (
            CYCLE,
            text("step", "The Dagster step (op) that wrote."),
            text("run_id", "The Dagster run it belonged to.", nullable=True),
            Col("finished_at", "timestamp", "When its write committed (UTC)."),
        ),
        computed_by="orchestration.io.step_run",
        in_plan_version=False,
    ),
    Table(
        "decisions",
        "governance",
        "Every decision an executive recorded: approvals of a scenario (`sop approve`), actions and accepted risks with "
        "an owner and a due cycle, and their closing (`sop decide`). The audit trail, never updated or deleted.",
        (),
        (
            CYCLE,
            Col("scenario", "text", "The scenario approved, or the one an action is about (baseline unless given).", nullable=True),
            text("decision", "approved, action, accepted_risk, or closed (closes an earlier decision).", isin=DECISION_KINDS),
            text("decided_by", "Who decided."),
            text("note", "Their note."),
            text("plan_version", "The plan version decided on.", nullable=True),
            Col("decided_at", "timestamp", "When (UTC)."),
            text(
                "decision_id",
                "D<cycle>-<n> for an action or accepted risk (what a later closing names); null otherwise.",
                nullable=True,
            ),
            text("action", "What will be done (an action), or the risk accepted and why.", nullable=True),
            text("owner", "Who carries it out.", nullable=True),
            Col("due_cycle", "text", "The cycle by which it is done, YYYY-MM.", nullable=True, pattern=r"^\d{4}-\d{2}$"),
            text("exception_id", "The exception it answers (planning.exceptions), whose money later cycles measure.", nullable=True),
            text("closes", "For a closing: the decision_id it closes.", nullable=True),
        ),
        computed_by="sop_pipeline.executive.decisions.record_action",
        in_plan_version=False,
    ),
    Table(
        "decision_followup",
        "executive_review",
        "Each action and accepted risk decided in an earlier cycle, as this cycle finds it: open, overdue (past its due "
        "cycle), closed (by `sop decide --close`) or resolved (its exception is no longer on this cycle's list), with the "
        "exception's money when the decision was taken and now. A decision is followed until the cycle after it closes.",
        ("cycle", "decision_id"),
        (
            CYCLE,
            text("decision_id", "The decision (planning.decisions)."),
            Col("raised_cycle", "text", "The cycle it was decided in.", pattern=r"^\d{4}-\d{2}$"),
            text("kind", "action or accepted_risk.", isin=("action", "accepted_risk")),
            text("action", "What was decided."),
            text("owner", "Who carries it out."),
            Col("due_cycle", "text", "The cycle by which it is done.", pattern=r"^\d{4}-\d{2}$"),
            text("exception_id", "The exception it answers.", nullable=True),
            text("status", "open, overdue, closed or resolved.", isin=FOLLOWUP_STATUS),
            money("money_when_raised", "The exception's money in the cycle the decision was taken.", nullable=True, ge=0),
            money("money_now", "The exception's money this cycle; null when it is no longer above materiality.", nullable=True, ge=0),
            text("outcome", "A sentence: what was measured, or why nothing can be."),
            text("decided_by", "Who decided."),
        ),
        computed_by="sop_pipeline.executive.decisions.decision_followup",
        in_plan_version=False,
    ),
    Table(
        "settings_used",
        "governance",
        "The settings (models/*.yaml) each review step used in the cycle: part of the plan version, so a changed setting "
        "is a changed plan.",
        ("cycle", "step"),
        (
            CYCLE,
            text("step", "Review step (Dagster asset group)."),
            text("settings_hash", "sha256 of the settings' values (16 hex characters)."),
            text("settings", "The settings as JSON."),
        ),
        computed_by="orchestration.io.CycleStep.write",
    ),
)
