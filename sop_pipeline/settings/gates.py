"""`models/gates.yaml`: the thresholds of the review checkpoints and of what reaches the
executive meeting. A checkpoint blocks the cycle when the plan is unsound; these numbers
decide what counts as unsound, or only worth listing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sop_pipeline.settings.base import StrictModel


class DemandGates(StrictModel):
    # An input moving a SKU-month's statistical forecast by more than this needs a reason
    # (listed by the non-blocking check `overrides_have_reasons`).
    override_threshold_pct: float = Field(50.0, ge=0)
    # The published forecast's backtest WAPE may be at most this multiple of seasonal naive's.
    max_backtest_ratio_to_naive: float = Field(1.0, gt=0)
    # The first this-many months of the horizon are frozen: any input changing them is an
    # exception for the meeting (0 = no frozen window).
    frozen_months: int = Field(1, ge=0)
    # A family's forecast is biased when its tracking signal reaches this limit (Brown's +-4)
    # and its bias this percentage of actual units.
    tracking_signal_limit: float = Field(4.0, gt=0)
    bias_pct: float = Field(5.0, ge=0)
    # An input layer that lost this many WAPE points on the SKU-months it touched is listed.
    fva_loss_pts: float = Field(2.0, ge=0)


class SupplyGates(StrictModel):
    # Baseline volume fill rate; below it every missed SKU-month must be explained.
    fill_rate_target: float = Field(0.95, ge=0, le=1)


class FinancialGates(StrictModel):
    # A gap is material (listed in the reconciliation, flagged in budget_gap) when it reaches
    # this share of its reference ...
    gap_tolerance_pct: float = Field(10.0, ge=0)
    # ... and this amount in money (revenue, margin) or units (volume).
    gap_min_amount: float = Field(100_000.0, ge=0)
    gap_min_units: float = Field(2_000.0, ge=0)
    # A family-month's margin is also listed when its cost variance alone reaches
    # gap_tolerance_pct of the budgeted margin and this amount.
    variance_min_amount: float = Field(10_000.0, ge=0)
    # Tie-out tolerance: absolute amount, or this share of the value, whichever is larger.
    tie_out_tolerance: float = Field(0.01, ge=0)
    tie_out_tolerance_rel: float = Field(1.0e-9, ge=0)


class Materiality(StrictModel):
    shortfall_revenue: float = Field(10_000.0, ge=0)
    budget_gap_amount: float = Field(50_000.0, ge=0)
    budget_gap_pct: float = Field(5.0, ge=0)
    utilization: float = Field(0.95, ge=0)
    capacity_money: float = Field(0.0, ge=0)
    # Demand findings (overrides, frozen-window changes, bias, phase-outs) worth this much.
    demand_money: float = Field(5_000.0, ge=0)


DEFAULT_OWNERS = {
    "product_review": "Product management",
    "demand_review": "Demand planning",
    "supply_review": "Supply planning",
    "financial_review": "Finance",
}


class ExecutiveGates(StrictModel):
    kpi_horizon_months: int = Field(12, ge=1)
    top_bottlenecks: int = Field(3, ge=0)
    budget_gap_period: Literal["month", "quarter"] = "month"
    max_exceptions_in_pack: int = Field(15, ge=1)
    materiality: Materiality = Materiality()
    # Who owns an exception when its input names nobody (an override names its owner).
    owners: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_OWNERS))


class Gates(StrictModel):
    demand_review: DemandGates = DemandGates()
    supply_review: SupplyGates = SupplyGates()
    financial_review: FinancialGates = FinancialGates()
    executive_review: ExecutiveGates = ExecutiveGates()
