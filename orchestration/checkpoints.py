"""Every checkpoint's outcome is also kept in the warehouse (planning.checkpoints), so that
`sop status` and the plan of record's own check can read it without asking Dagster."""

from orchestration.resources import WarehouseResource
from sop_pipeline import executive_review

# The checkpoints every cycle must pass before its plan can become the plan of record.
CYCLE_GATES = ["portfolio_is_sound", "consensus_demand_is_sound", "supply_plan_is_feasible", "financial_plan_ties_out"]


def record_gate(warehouse: WarehouseResource, cycle: str, checkpoint: str, passed: bool, description: str, blocking: bool = True) -> None:
    with warehouse.connect() as con:
        executive_review.record_checkpoint(con, cycle, checkpoint, passed, description, blocking)
