"""Tables of the executive review and the cycle's governance records."""

from sop_pipeline.registry.base import Col, Table
from sop_pipeline.registry.common import CYCLE, SCENARIO, money, text

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
        "Every approval (and later every decision) an executive recorded: the audit trail, never updated or deleted.",
        (),
        (
            CYCLE,
            SCENARIO,
            text("decision", "approved."),
            text("decided_by", "Who decided."),
            text("note", "Their note."),
            text("plan_version", "The plan version decided on."),
            Col("decided_at", "timestamp", "When (UTC)."),
        ),
        computed_by="sop_pipeline.executive.governance.record_decision",
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
