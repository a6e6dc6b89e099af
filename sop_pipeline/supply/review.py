"""The whole supply review of a cycle: targets once, then the baseline and every scenario."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl

from sop_pipeline.periods import cycle_label
from sop_pipeline.rules import late_units
from sop_pipeline.settings.scenarios import BASELINE, Scenario
from sop_pipeline.settings.supply import SupplySettings
from sop_pipeline.supply.common import QTY_TOL
from sop_pipeline.supply.feasibility import check_plan_feasibility, fill_rate
from sop_pipeline.supply.inputs import SupplyInputs
from sop_pipeline.supply.plan import SupplyResult, plan_supply
from sop_pipeline.supply.scenarios import apply_scenario
from sop_pipeline.supply.targets import compute_inventory_targets


@dataclass
class SupplyReview:
    """Every scenario of one cycle side by side: frames stacked with a `scenario` column."""

    cycle: str
    inventory_targets: pl.DataFrame
    results: dict[str, SupplyResult]
    scenario_summary: pl.DataFrame
    violations: dict[str, list[str]]

    def frame(self, name: str) -> pl.DataFrame:
        """One output table over all scenarios, e.g. `review.frame('capacity_plan')`."""
        return pl.concat([getattr(r, name) for r in self.results.values()], how="diagonal_relaxed")


def run_supply_review(
    inputs: SupplyInputs,
    settings: SupplySettings,
    scenarios: Mapping[str, Scenario] | None = None,
    cycle: str | None = None,
    check: bool = True,
    workers: int | None = None,
) -> SupplyReview:
    """Targets once, then the baseline and each scenario solved on the same cycle's data.

    Inventory targets are computed once from the consensus and kept for every scenario: the
    policy is the same, only the scenario's overlays differ. Each plan is checked by
    `check_plan_feasibility` (unless `check=False`); a scenario that is not optimal is reported
    in the summary, not raised, so that one broken what-if never hides the baseline.

    Scenarios are independent LPs, so they are solved in `workers` processes at once (default:
    `settings.execution.workers`, 0 = one per core). The results are gathered in scenario
    order and each is the same LP solved the same way as in one process, so the review does
    not depend on the number of workers.
    """
    inputs = inputs.typed()
    cycle = cycle_label(cycle or inputs.months[0])
    scenarios = dict(scenarios or {BASELINE: Scenario(name=BASELINE)})
    scenarios.setdefault(BASELINE, Scenario(name=BASELINE))
    order = [BASELINE] + [s for s in scenarios if s != BASELINE]
    targets = compute_inventory_targets(inputs.demand, inputs.segmentation, settings.inventory_targets, cycle)
    shared = (inputs, settings, cycle, targets, check)
    n = min(len(order), scenario_workers(settings, workers))
    if n <= 1:
        solved = [_solve_scenario(*shared, scenarios[name]) for name in order]
    else:
        # spawn, not fork: the parent may be a Dagster step with polars' thread pool running,
        # and a forked copy of a pool's locks can deadlock. The company's inputs go to each
        # worker once (initializer), not once per scenario.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=n, mp_context=context, initializer=_receive, initargs=shared) as pool:
            solved = list(pool.map(_solve_received, [scenarios[name] for name in order]))
    results = {name: result for name, (result, _) in zip(order, solved)}
    violations = {name: found for name, (_, found) in zip(order, solved) if found is not None}
    return SupplyReview(cycle, targets, results, scenario_summary(results.values(), violations), violations)


def scenario_workers(settings: SupplySettings, workers: int | None = None) -> int:
    """How many scenarios are solved at once: `workers`, else the setting, 0 meaning one per
    core this process may use."""
    wanted = settings.execution.workers if workers is None else workers
    return max(1, wanted or len(os.sched_getaffinity(0)))


_RECEIVED: tuple = ()  # a scenario worker's copy of what every scenario shares


def _receive(*shared) -> None:
    global _RECEIVED
    _RECEIVED = shared


def _solve_received(scenario: Scenario) -> tuple[SupplyResult, list[str] | None]:
    return _solve_scenario(*_RECEIVED, scenario)


def _solve_scenario(
    inputs: SupplyInputs, settings: SupplySettings, cycle: str, targets: pl.DataFrame, check: bool, scenario: Scenario
) -> tuple[SupplyResult, list[str] | None]:
    """One scenario's plan and its feasibility violations (None when not checked)."""
    scenario_inputs = apply_scenario(inputs, scenario) if scenario.name != BASELINE else inputs
    result = plan_supply(scenario_inputs, settings, scenario.name, cycle, targets)
    if not check:
        return result, None
    started = time.perf_counter()
    found = check_plan_feasibility(result.tables(), scenario_inputs) if result.objective is not None else [f"no plan: {result.status}"]
    result.timings["check"] = time.perf_counter() - started
    return result, found


def scenario_summary(results: Any, violations: Mapping[str, list[str]] | None = None) -> pl.DataFrame:
    """One row per scenario: solver status, cost, service, overtime, the top bottleneck and
    what planning.supply_exceptions leaves out as under `min_units` (so no unit or money of a
    shortfall goes unreported)."""
    rows = []
    for r in results:
        plan = r.supply_plan
        top = r.bottlenecks.head(1)
        rows.append(
            {
                "cycle": r.cycle,
                "scenario": r.scenario,
                "status": r.status,
                "optimal": r.optimal,
                "feasibility_violations": len((violations or {}).get(r.scenario, [])),
                "objective": r.objective,
                **{f"cost_{k}": v for k, v in r.cost_breakdown.items()},
                "demand": float(plan["demand"].sum()),
                "late_units": float(plan.select(late_units(r.shortfall_mode).sum()).item() or 0.0),
                "fill_rate": fill_rate(plan, r.shortfall_mode) if plan.height else None,
                "below_target_sku_months": int(plan.filter(pl.col("ending_inventory") < pl.col("target_inventory") - QTY_TOL).height),
                "exception_late_units_below_threshold": r.exceptions_left_out.get("late_units", 0.0),
                "exception_below_target_below_threshold": r.exceptions_left_out.get("below_target", 0.0),
                "exception_value_below_threshold": r.exceptions_left_out.get("value_lost", 0.0),
                "overtime_hours": float(r.capacity_plan["overtime_hours"].sum()),
                "top_bottleneck": top["constraint"][0] if top.height else None,
                "solve_seconds": r.timings.get("solve"),
                "total_seconds": r.timings.get("total"),
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)
