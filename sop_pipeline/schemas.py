"""pandera schemas for every planning table a Python step writes.

A schema is the table's promise to its readers (the next review step, the BI views): column
types, ranges and keys. Each asset validates its output against its schema before writing, so
a bug shows up as a failed step with the offending column named, not as a wrong plan.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

LIFECYCLE_STATUSES = ["pre_launch", "ramp_up", "active", "phase_out", "discontinued"]
DEMAND_CLASSES = ["smooth", "erratic", "intermittent", "lumpy", "new", "no_demand"]


class ProductPortfolio(pa.DataFrameModel):
    """planning.product_portfolio: one row per cycle, SKU and horizon month."""

    cycle: str = pa.Field(str_matches=r"^\d{4}-\d{2}$")
    sku: str
    family: str
    month: pl.Date
    lifecycle_status: str = pa.Field(isin=LIFECYCLE_STATUSES)
    like_sku: str = pa.Field(nullable=True)
    launch_volume: float = pa.Field(nullable=True, ge=0)
    ramp_factor: float = pa.Field(ge=0, le=1)

    class Config:
        unique = ["cycle", "sku", "month"]
        strict = True


class ProductSegmentation(pa.DataFrameModel):
    """planning.product_segmentation: one row per cycle and SKU."""

    cycle: str = pa.Field(str_matches=r"^\d{4}-\d{2}$")
    sku: str = pa.Field(unique=True)
    family: str
    revenue_12m: float = pa.Field(ge=0)
    revenue_share: float = pa.Field(ge=0, le=1)
    abc_class: str = pa.Field(isin=["A", "B", "C"])
    demand_cv: float = pa.Field(nullable=True, ge=0)
    xyz_class: str = pa.Field(isin=["X", "Y", "Z"])
    adi: float = pa.Field(ge=1)
    cv2: float = pa.Field(ge=0)
    intermittent: bool
    demand_class: str = pa.Field(isin=DEMAND_CLASSES)
    history_months: int = pa.Field(ge=0)
    nonzero_months: int = pa.Field(ge=0)

    class Config:
        strict = True


def validate(frame: pl.DataFrame, schema: type[pa.DataFrameModel]) -> pl.DataFrame:
    """Validate lazily so that every broken column is reported at once."""
    return schema.validate(frame, lazy=True)


class StatisticalForecast(pa.DataFrameModel):
    """planning.statistical_forecast: one row per cycle, portfolio SKU and horizon month."""

    cycle: str = pa.Field(str_matches=r"^\d{4}-\d{2}$")
    sku: str
    family: str
    month: pl.Date
    model: str
    p10: float = pa.Field(ge=0)
    p50: float = pa.Field(ge=0)
    p90: float = pa.Field(ge=0)

    class Config:
        unique = ["cycle", "sku", "month"]
        strict = True

    @pa.dataframe_check
    def quantiles_are_ordered(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("p10") <= pl.col("p50") + 1e-9) & (pl.col("p50") <= pl.col("p90") + 1e-9))


class ForecastBacktest(pa.DataFrameModel):
    """planning.forecast_backtest: one row per cycle, SKU and candidate model."""

    cycle: str
    sku: str
    model: str
    published: bool
    points: int = pa.Field(ge=0)
    actual: float = pa.Field(ge=0)
    abs_error: float = pa.Field(ge=0)
    wape: float = pa.Field(nullable=True, ge=0)
    mase: float = pa.Field(nullable=True, ge=0)
    smape: float = pa.Field(nullable=True, ge=0, le=200)
    bias: float = pa.Field(nullable=True)

    class Config:
        unique = ["cycle", "sku", "model"]
        strict = True
        coerce = True


class DemandPlanLayers(pa.DataFrameModel):
    """planning.demand_plan_layers: the statistical layer in full, input layers where they act."""

    cycle: str
    sku: str
    month: pl.Date
    layer: str
    layer_rank: int = pa.Field(ge=0)
    quantity: float = pa.Field(ge=0)
    adjustment: float
    owner: str
    reason: str = pa.Field(nullable=True)
    input_level: str = pa.Field(isin=["sku", "family"])

    class Config:
        unique = ["cycle", "sku", "month", "layer"]
        strict = True
        coerce = True


class ConsensusDemand(pa.DataFrameModel):
    """planning.consensus_demand: the agreed demand per cycle, SKU and month, with its band."""

    cycle: str
    sku: str
    family: str
    month: pl.Date
    quantity: float = pa.Field(ge=0)
    p10: float = pa.Field(ge=0)
    p90: float = pa.Field(ge=0)

    class Config:
        unique = ["cycle", "sku", "month"]
        strict = True


class ForecastAccuracy(pa.DataFrameModel):
    """planning.forecast_accuracy: earlier cycles' layers scored in this cycle, by lag and family."""

    cycle: str
    forecast_cycle: str
    layer: str
    family: str
    lag: int = pa.Field(ge=1)
    points: int = pa.Field(ge=0)
    actual: float = pa.Field(ge=0)
    forecast: float = pa.Field(ge=0)
    abs_error: float = pa.Field(ge=0)
    wape: float = pa.Field(nullable=True, ge=0)
    bias: float = pa.Field(nullable=True)
    mase: float = pa.Field(nullable=True, ge=0)
    naive_wape: float = pa.Field(nullable=True, ge=0)
    fva_vs_naive: float = pa.Field(nullable=True)
    fva_vs_statistical: float = pa.Field(nullable=True)

    class Config:
        unique = ["cycle", "forecast_cycle", "layer", "family", "lag"]
        strict = True
        coerce = True


# --- supply review ---------------------------------------------------------------------------


class _Scenario(pa.DataFrameModel):
    cycle: str = pa.Field(str_matches=r"^\d{4}-\d{2}$")
    scenario: str

    class Config:
        coerce = True


class InventoryTargets(pa.DataFrameModel):
    """planning.inventory_targets: one row per cycle, SKU and month."""

    cycle: str = pa.Field(str_matches=r"^\d{4}-\d{2}$")
    sku: str
    month: pl.Date
    service_level: float = pa.Field(gt=0, lt=1)
    safety_stock: float = pa.Field(ge=0)
    target_inventory: float = pa.Field(ge=0)

    class Config:
        unique = ["cycle", "sku", "month"]
        coerce = True


class SupplyPlan(_Scenario):
    """planning.supply_plan: one row per cycle, scenario, SKU and month."""

    sku: str
    month: pl.Date
    demand: float = pa.Field(ge=0)
    production: float = pa.Field(ge=-1e-6)
    ending_inventory: float = pa.Field(ge=-1e-6)
    shortfall: float = pa.Field(ge=-1e-6)
    safety_stock: float = pa.Field(ge=0)

    class Config:
        unique = ["cycle", "scenario", "sku", "month"]


class CapacityPlan(_Scenario):
    """planning.capacity_plan: one row per cycle, scenario, resource and month."""

    resource: str
    plant: str
    month: pl.Date
    capacity_hours: float = pa.Field(ge=0)
    load_hours: float = pa.Field(ge=-1e-6)
    overtime_hours: float = pa.Field(ge=-1e-6)
    utilization: float = pa.Field(ge=-1e-6, nullable=True)
    shadow_price: float = pa.Field(ge=-1e-6)

    class Config:
        unique = ["cycle", "scenario", "resource", "month"]


class MaterialPlan(_Scenario):
    """planning.material_plan: one row per cycle, scenario, material and month."""

    material: str
    month: pl.Date
    requirement: float = pa.Field(ge=-1e-6)
    purchase: float = pa.Field(ge=-1e-6)
    ending_inventory: float = pa.Field(ge=-1e-6)

    class Config:
        unique = ["cycle", "scenario", "material", "month"]


class SupplyExceptions(_Scenario):
    """planning.supply_exceptions: each SKU-month short of demand or below target, explained."""

    sku: str
    month: pl.Date
    exception: str = pa.Field(isin=["shortfall", "below_target"])
    constraint_kind: str = pa.Field(nullable=True)
    constraint: str = pa.Field(nullable=True)
    shadow_price: float = pa.Field(nullable=True, ge=-1e-6)
    # null when no constraint could be identified: the supply checkpoint counts it as unexplained
    explanation: str = pa.Field(nullable=True)


# --- financial review ------------------------------------------------------------------------


class FinancialPlan(_Scenario):
    """planning.financial_plan: one row per cycle, scenario, family and month."""

    family: str
    month: pl.Date
    volume: float = pa.Field(ge=-1e-6)
    revenue: float = pa.Field(ge=-1e-6)
    cogs: float = pa.Field(ge=-1e-6)
    gross_margin: float
    inventory_value: float = pa.Field(ge=-1e-6)
    unconstrained_revenue: float = pa.Field(ge=-1e-6)

    class Config:
        unique = ["cycle", "scenario", "family", "month"]


class BudgetGap(_Scenario):
    """planning.budget_gap: plan against budget by family, period and measure."""

    family: str
    period: str = pa.Field(isin=["month", "quarter"])
    period_label: str
    measure: str = pa.Field(isin=["volume", "revenue", "gross_margin"])
    plan: float
    budget: float
    gap: float


class PlanBridge(pa.DataFrameModel):
    """planning.plan_bridge: price / volume / mix steps per comparison, scenario and family."""

    cycle: str
    comparison: str = pa.Field(isin=["budget_to_plan", "last_cycle_to_plan"])
    scenario: str
    family: str
    step: str = pa.Field(isin=["start", "volume", "mix", "price", "end"])
    value: float

    class Config:
        coerce = True


class Reconciliation(_Scenario):
    """planning.reconciliation: every gap above tolerance, with its cause."""

    family: str
    month: pl.Date
    measure: str
    # null in months the budget does not cover: the gap is then supply against demand only
    gap: float = pa.Field(nullable=True)
    cause: str
    amount: float


# --- executive review ------------------------------------------------------------------------


class ExecutiveSummary(_Scenario):
    """planning.executive_summary: KPIs per scenario, long format."""

    kpi: str
    value: float = pa.Field(nullable=True)
    unit: str = pa.Field(nullable=True)


class ExecutiveExceptions(_Scenario):
    """planning.executive_exceptions: exceptions above materiality, ranked by money."""

    rank: int = pa.Field(ge=1)
    kind: str
    subject: str
    money: float = pa.Field(ge=0)
    description: str


PLANNING_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "inventory_targets": InventoryTargets,
    "supply_plan": SupplyPlan,
    "capacity_plan": CapacityPlan,
    "material_plan": MaterialPlan,
    "supply_exceptions": SupplyExceptions,
    "financial_plan": FinancialPlan,
    "budget_gap": BudgetGap,
    "plan_bridge": PlanBridge,
    "reconciliation": Reconciliation,
    "executive_summary": ExecutiveSummary,
    "executive_exceptions": ExecutiveExceptions,
}


def validate_table(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Validate a planning table by name when it has a schema (tables without one pass as they are)."""
    schema = PLANNING_SCHEMAS.get(name)
    return validate(frame, schema) if schema is not None else frame
