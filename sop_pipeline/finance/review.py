"""The whole financial review of a cycle: every scenario priced, compared and checked."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import polars as pl

from sop_pipeline.finance.bridge import plan_bridge
from sop_pipeline.finance.budget import actuals_by_family, budget_gap, latest_estimate
from sop_pipeline.finance.checks import coverage_problems, reconciliation_problems, tie_out_problems
from sop_pipeline.finance.costs import unit_costs
from sop_pipeline.finance.plan import consensus_as_supply_plan, financial_plan
from sop_pipeline.finance.prices import price_by_sku_month
from sop_pipeline.finance.reconciliation import reconciliation
from sop_pipeline.finance.scenarios import scenario_comparison
from sop_pipeline.periods import cycle_month
from sop_pipeline.settings.gates import FinancialGates
from sop_pipeline.settings.scenarios import BASELINE, Scenario
from sop_pipeline.settings.supply import CostSettings
from sop_pipeline.supply.scenarios import scenario_price_plan

# Frames that carry a scenario column: a scenario's review sees only its own rows of them.
_PER_SCENARIO = ("supply_plan", "capacity_plan", "supply_exception_skus", "production_plan")
_EMPTY_BUDGET = {
    "month": pl.Date,
    "family": pl.String,
    "volume": pl.Float64,
    "revenue": pl.Float64,
    "gross_margin": pl.Float64,
    "cogs": pl.Float64,
}


@dataclass(frozen=True)
class FinanceInputs:
    """What the financial review reads: marts, the cycle's supply and demand tables, and last
    cycle's approved plan. Optional ones are None when the company does not have them."""

    products: pl.DataFrame
    consensus: pl.DataFrame
    supply_plan: pl.DataFrame | None = None
    budget: pl.DataFrame | None = None
    bom: pl.DataFrame | None = None
    materials: pl.DataFrame | None = None
    routings: pl.DataFrame | None = None
    resources: pl.DataFrame | None = None
    capacity_plan: pl.DataFrame | None = None
    supply_exception_skus: pl.DataFrame | None = None
    price_plan: pl.DataFrame | None = None
    last_plan: pl.DataFrame | None = None
    production_plan: pl.DataFrame | None = None
    inventory: pl.DataFrame | None = None
    sales: pl.DataFrame | None = None

    def for_scenario(self, name: str) -> FinanceInputs:
        return replace(
            self, **{k: getattr(self, k).filter(pl.col("scenario") == name) for k in _PER_SCENARIO if getattr(self, k) is not None}
        )

    def priced(self, cycle: str) -> FinanceInputs:
        """Without a supply plan (supply review skipped) the consensus is priced as the baseline."""
        if self.supply_plan is None or self.supply_plan.height == 0:
            return replace(self, supply_plan=consensus_as_supply_plan(self.consensus, cycle))
        return self

    def as_kwargs(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class FinancialReview:
    """The financial review's tables and the problems its checks found (empty = ties out)."""

    financial_plan: pl.DataFrame
    budget_gap: pl.DataFrame
    plan_bridge: pl.DataFrame
    reconciliation: pl.DataFrame
    scenario_comparison: pl.DataFrame
    latest_estimate: pl.DataFrame
    tie_out_problems: pl.DataFrame
    coverage_problems: pl.DataFrame
    reconciliation_problems: pl.DataFrame

    @property
    def ties_out(self) -> bool:
        return not (self.tie_out_problems.height or self.coverage_problems.height or self.reconciliation_problems.height)


def run_financial_review(
    cycle: str,
    products: pl.DataFrame,
    supply_plan: pl.DataFrame | None,
    consensus: pl.DataFrame,
    budget: pl.DataFrame | None = None,
    bom: pl.DataFrame | None = None,
    materials: pl.DataFrame | None = None,
    routings: pl.DataFrame | None = None,
    resources: pl.DataFrame | None = None,
    capacity_plan: pl.DataFrame | None = None,
    supply_exception_skus: pl.DataFrame | None = None,
    price_plan: pl.DataFrame | None = None,
    last_plan: pl.DataFrame | None = None,
    production_plan: pl.DataFrame | None = None,
    inventory: pl.DataFrame | None = None,
    sales: pl.DataFrame | None = None,
    gates: FinancialGates = FinancialGates(),
    shortfall_mode: str = "backorder",
    costs: CostSettings | None = None,
    scenarios: dict[str, Scenario] | None = None,
    fiscal_start_month: int = 1,
) -> FinancialReview:
    """Every table of the financial review and its checks, for one set of prices (the
    baseline's). Without a supply plan the consensus is priced as the baseline plan."""
    inputs = FinanceInputs(
        products,
        consensus,
        supply_plan,
        budget,
        bom,
        materials,
        routings,
        resources,
        capacity_plan,
        supply_exception_skus,
        price_plan,
        last_plan,
        production_plan,
        inventory,
        sales,
    ).priced(cycle)
    fp = financial_plan(
        cycle,
        inputs.products,
        inputs.supply_plan,
        consensus,
        bom,
        materials,
        routings,
        resources,
        capacity_plan,
        price_plan,
        shortfall_mode,
        costs,
        production_plan,
        inventory,
    )
    has_budget = budget is not None and budget.height > 0
    basis = (costs or CostSettings()).cost_basis
    closed = actuals_by_family(sales, unit_costs(products, bom, materials, routings, resources, basis), cycle_month(cycle))
    gap = budget_gap(fp, budget if has_budget else pl.DataFrame(schema=_EMPTY_BUDGET), gates, closed, fiscal_start_month)
    rec = reconciliation(
        fp, budget, inputs.supply_plan, consensus, products, supply_exception_skus, price_plan, gates, BASELINE, shortfall_mode, scenarios
    )
    return FinancialReview(
        financial_plan=fp,
        budget_gap=gap,
        plan_bridge=plan_bridge(fp, budget, last_plan),
        reconciliation=rec,
        scenario_comparison=scenario_comparison(fp, scenarios),
        latest_estimate=latest_estimate(gap, cycle, fiscal_start_month),
        tie_out_problems=tie_out_problems(
            fp,
            inputs.supply_plan,
            consensus,
            products,
            price_plan,
            capacity_plan,
            resources,
            gates,
            shortfall_mode,
            costs,
            {"bom": bom, "materials": materials, "routings": routings, "production_plan": production_plan, "inventory": inventory},
        ),
        coverage_problems=coverage_problems(fp, inputs.supply_plan, consensus, products),
        reconciliation_problems=reconciliation_problems(rec, gap, fp, gates, BASELINE),
    )


def _scenario_names(inputs: FinanceInputs) -> list[str]:
    return inputs.supply_plan["scenario"].unique(maintain_order=True).to_list()


def _prices(inputs: FinanceInputs, scenarios: dict[str, Scenario], name: str) -> pl.DataFrame | None:
    months = inputs.consensus["month"].unique().sort().to_list()
    return scenario_price_plan(inputs.price_plan, scenarios.get(name, Scenario(name=name)), months)


def scenario_prices(inputs: FinanceInputs, scenarios: dict[str, Scenario], name: str) -> pl.DataFrame:
    """sku, month, price of scenario `name` over the consensus months: the price list the
    financial plan valued that scenario at."""
    months = inputs.consensus["month"].unique().sort()
    return price_by_sku_month(inputs.products, _prices(inputs, scenarios, name), months)


def review_every_scenario(
    cycle: str,
    inputs: FinanceInputs,
    scenarios: dict[str, Scenario],
    gates: FinancialGates,
    shortfall_mode: str,
    costs: CostSettings | None = None,
    fiscal_start_month: int = 1,
) -> FinancialReview:
    """Price each scenario with its own price plan (the company's plus the scenario's
    `price_change` overlays), then compare all scenarios side by side.

    Budget gap, bridge, tie-out and coverage are per scenario and simply stack; the
    reconciliation is the baseline's; the side-by-side comparison is computed over all of them.
    """
    inputs = inputs.priced(cycle)
    reviews = {}
    for name in _scenario_names(inputs):
        only = inputs.for_scenario(name)
        reviews[name] = run_financial_review(
            cycle,
            **{**only.as_kwargs(), "price_plan": _prices(inputs, scenarios, name)},
            gates=gates,
            shortfall_mode=shortfall_mode,
            costs=costs,
            scenarios=scenarios,
            fiscal_start_month=fiscal_start_month,
        )

    def stack(attr: str) -> pl.DataFrame:
        return pl.concat([getattr(r, attr) for r in reviews.values()], how="vertical_relaxed")

    plan, gap = stack("financial_plan"), stack("budget_gap")
    # The reconciliation explains the baseline's gaps and prices every scenario as a lever.
    rec = reconciliation(
        plan,
        inputs.budget,
        inputs.supply_plan,
        inputs.consensus,
        inputs.products,
        inputs.supply_exception_skus,
        _prices(inputs, scenarios, BASELINE),
        gates,
        BASELINE,
        shortfall_mode,
        scenarios,
    )
    return FinancialReview(
        financial_plan=plan,
        budget_gap=gap,
        plan_bridge=stack("plan_bridge"),
        reconciliation=rec,
        scenario_comparison=scenario_comparison(plan, scenarios),
        latest_estimate=stack("latest_estimate"),
        tie_out_problems=stack("tie_out_problems"),
        coverage_problems=stack("coverage_problems"),
        reconciliation_problems=reconciliation_problems(rec, gap, plan, gates, BASELINE),
    )


def checkpoint_problems(
    cycle: str,
    inputs: FinanceInputs,
    plan: pl.DataFrame,
    gap: pl.DataFrame,
    rec: pl.DataFrame,
    scenarios: dict[str, Scenario],
    gates: FinancialGates,
    shortfall_mode: str,
    costs: CostSettings | None = None,
) -> dict[str, pl.DataFrame]:
    """The financial checkpoint re-checked from stored tables: per scenario (with its own
    prices) the tie-out and coverage, and the baseline's reconciliation."""
    inputs = inputs.priced(cycle)
    tie, cover = [], []
    for name in _scenario_names(inputs):
        only = inputs.for_scenario(name)
        fp = plan.filter(pl.col("scenario") == name)
        tie.append(
            tie_out_problems(
                fp,
                only.supply_plan,
                only.consensus,
                only.products,
                _prices(inputs, scenarios, name),
                only.capacity_plan,
                only.resources,
                gates,
                shortfall_mode,
                costs,
                {
                    "bom": only.bom,
                    "materials": only.materials,
                    "routings": only.routings,
                    "production_plan": only.production_plan,
                    "inventory": only.inventory,
                },
            )
        )
        cover.append(coverage_problems(fp, only.supply_plan, only.consensus, only.products))
    return {
        "tie_out": pl.concat(tie, how="vertical_relaxed"),
        "coverage": pl.concat(cover, how="vertical_relaxed"),
        "reconciliation": reconciliation_problems(rec, gap, plan, gates, BASELINE),
    }
