"""`models/supply.yaml`: how the supply plan is built, which stock it aims for and what every
unit of cost, shortage and missed target is worth."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sop_pipeline.settings.base import StrictModel


class PlanningLevel(StrictModel):
    # family: rough-cut plan per family and primary resource, then a fair-share split to SKUs;
    # sku: every SKU in the LP (exact, but does not scale beyond about a thousand SKUs).
    level: Literal["family", "sku"] = "family"
    # A material whose supply cannot cover this multiple of the unconstrained requirement is
    # critical: the SKUs using it are planned as items of their own.
    critical_material_margin: float = Field(1.0, ge=0)
    # Materials with at least this multiple of headroom get no rows in the LP (cost only);
    # 0 keeps every material in the LP.
    ample_material_margin: float = Field(1.2, ge=0)


class ServiceLevels(StrictModel):
    default: float = 0.95
    abc: dict[str, float] = {"A": 0.98, "B": 0.95, "C": 0.90}
    segment: dict[str, float] = {}

    @model_validator(mode="after")
    def _levels_are_probabilities(self):
        levels = [self.default, *self.abc.values(), *self.segment.values()]
        if any(not 0.5 <= level < 1.0 for level in levels):
            raise ValueError(f"service levels must be in [0.5, 1), got {levels}")
        return self


class InventoryTargetSettings(StrictModel):
    # Months of demand the end-of-month stock protects: review period plus production lead time.
    protection_months: float = Field(1.0, gt=0)
    # Cycle stock on top of safety stock, in months of next month's demand.
    cycle_stock_months: float = Field(0.5, ge=0)
    # sigma as a share of the forecast when the consensus has no p10/p90.
    fallback_cv: float = Field(0.3, ge=0)
    service_level: ServiceLevels = ServiceLevels()


class CostSettings(StrictModel):
    """Money per unit that the LP minimises and the financial plan books: one set of figures.

    A late unit costs `late_cost_rate_per_month` x max(unit price, unit cost) per month it is in
    backlog (backorders: expedite freight, penalty clauses, discounts); a lost unit (lost sales)
    loses its revenue plus `lost_sale_cost_rate` x max(unit price, unit cost). The LP adds the
    revenue the horizon loses (a lost unit, or a backlog still open in the last month) to its
    cost, so minimising cost is maximising margin with the same prices and costs as finance.
    """

    # standard: COGS and inventory at the product master's unit_cost (what finance books);
    # rolled_up: at BOM x material cost + preferred routing hours x rate.
    cost_basis: Literal["standard", "rolled_up"] = "standard"
    shortfall_mode: Literal["backorder", "lost_sales"] = "backorder"
    late_cost_rate_per_month: float = Field(0.5, ge=0)
    lost_sale_cost_rate: float = Field(0.5, ge=0)
    below_target_penalty_factor: float = Field(0.25, ge=0)
    end_target_penalty_factor: float = Field(1.25, ge=0)
    holding_rate_per_month: float = Field(0.015, ge=0)
    material_holding_rate_per_month: float = Field(0.01, ge=0)

    @model_validator(mode="after")
    def _targets_are_worth_holding(self):
        if self.holding_rate_per_month >= self.below_target_penalty_factor:
            raise ValueError("below_target_penalty_factor must exceed holding_rate_per_month, or targets are never held")
        if self.late_cost_rate_per_month <= self.below_target_penalty_factor:
            raise ValueError(
                "late_cost_rate_per_month must exceed below_target_penalty_factor: safety stock exists to serve demand, "
                "so a late unit must cost more than a unit of stock below target"
            )
        if self.end_target_penalty_factor >= 1 + min(self.late_cost_rate_per_month, self.lost_sale_cost_rate):
            raise ValueError(
                "end_target_penalty_factor must stay below 1 + late_cost_rate_per_month (and 1 + lost_sale_cost_rate): "
                "otherwise the last month's plan prefers missing demand to ending below target"
            )
        return self


class SolverSettings(StrictModel):
    method: Literal["ipm", "simplex", "choose"] = "ipm"
    crossover: bool = False
    time_limit_seconds: float = Field(600.0, gt=0)


class ExceptionSettings(StrictModel):
    # A SKU-month, or a family x constraint x month, whose late, backlog and below-target units
    # are all below this is solver and split noise, not a decision: it is left out of
    # planning.supply_exceptions (its units and money are reported in planning.supply_scenarios).
    # 0.5 keeps every quantity that rounds to at least one unit.
    min_units: float = Field(0.5, gt=0)


class ExecutionSettings(StrictModel):
    # Scenarios solved at once, each in a process of its own (0 = one per core).
    workers: int = Field(0, ge=0)


class SupplySettings(StrictModel):
    planning: PlanningLevel = PlanningLevel()
    inventory_targets: InventoryTargetSettings = InventoryTargetSettings()
    costs: CostSettings = CostSettings()
    solver: SolverSettings = SolverSettings()
    exceptions: ExceptionSettings = ExceptionSettings()
    execution: ExecutionSettings = ExecutionSettings()
