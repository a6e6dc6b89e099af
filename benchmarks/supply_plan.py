"""Benchmark of the supply review's planning engine on demo companies of growing size.

Prints figures, asserts nothing. Run from the repository root:

    .venv/bin/python benchmarks/supply_plan.py            # 1,000 / 5,000 / 20,000 SKUs
    .venv/bin/python benchmarks/supply_plan.py 1000 5000  # chosen sizes

The consensus demand is a PROXY, not the demand review's output (which needs the forecasting
step): per SKU, the average of the same calendar month over the last two years of history,
for 24 months from the cycle, with p10/p90 at -/+25%; phase-outs stop at their discontinue
month, launches take their like-SKU's proxy (or their launch volume) from the launch month.
Segmentation is a proxy too: ABC on the proxy's value, XYZ on the history's monthly CV.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sop_pipeline.demo import generate_demo_company
from sop_pipeline.periods import add_months, cycle_month
from sop_pipeline.settings import load_settings
from sop_pipeline.supply.feasibility import check_plan_feasibility, fill_rate
from sop_pipeline.supply.inputs import SupplyInputs
from sop_pipeline.supply.plan import evaluate_on_sku_detail, plan_supply
from sop_pipeline.supply.targets import compute_inventory_targets

ROOT = Path(__file__).resolve().parents[1]
CYCLE = "2026-11"
HORIZON = 24


def demand_proxy(frames: dict[str, pl.DataFrame], cycle: str = CYCLE, horizon: int = HORIZON) -> pl.DataFrame:
    """Seasonal-average consensus proxy (sku, family, month, quantity, p10, p90), month as date."""
    start = cycle_month(cycle)
    months = pl.DataFrame({"month": [add_months(start, i) for i in range(horizon)]}, schema={"month": pl.Date})
    first_hist = add_months(start, -24)
    hist = (
        frames["sales_history"]
        .with_columns((pl.col("month").str.slice(0, 7) + "-01").str.to_date().alias("month"))
        .filter(pl.col("month") >= first_hist)
        .group_by("sku", pl.col("month").dt.month().alias("moy"))
        .agg((pl.col("quantity").sum() / 2.0).alias("avg"))
    )
    products = frames["products"].with_columns(
        (pl.col(c).str.slice(0, 7) + "-01").str.to_date().alias(c) for c in ("launch_month", "discontinue_month")
    )
    grid = products.select("sku", "family", "status", "like_sku", "launch_volume", "launch_month", "discontinue_month").join(
        months, how="cross"
    )
    grid = grid.with_columns(pl.col("month").dt.month().alias("moy"))
    own = grid.join(hist, on=["sku", "moy"], how="left")
    like = hist.rename({"sku": "like_sku", "avg": "like_avg"})
    own = own.join(like, on=["like_sku", "moy"], how="left")
    qty = (
        pl.when(pl.col("status") == "npi")
        .then(pl.coalesce("like_avg", pl.col("launch_volume").cast(pl.Float64)).fill_null(0))
        .otherwise(pl.col("avg").fill_null(0))
    )
    alive = (pl.col("launch_month").is_null() | (pl.col("month") >= pl.col("launch_month"))) & (
        pl.col("discontinue_month").is_null() | (pl.col("month") < pl.col("discontinue_month"))
    )
    out = own.with_columns(pl.when(alive).then(qty).otherwise(0.0).round(1).alias("quantity"))
    active = out.group_by("sku").agg(pl.col("quantity").sum()).filter(pl.col("quantity") > 0).select("sku")
    return (
        out.join(active, on="sku")
        .select("sku", "family", "month", "quantity", (pl.col("quantity") * 0.75).alias("p10"), (pl.col("quantity") * 1.25).alias("p90"))
        .sort("sku", "month")
    )


def segmentation_proxy(frames: dict[str, pl.DataFrame], demand: pl.DataFrame) -> pl.DataFrame:
    """ABC on proxy revenue (80/95%), XYZ on the last 24 months' coefficient of variation (0.5/1.0)."""
    value = demand.group_by("sku").agg(pl.col("quantity").sum()).join(frames["products"].select("sku", "unit_price"), on="sku")
    value = value.with_columns((pl.col("quantity") * pl.col("unit_price")).alias("value")).sort("value", descending=True)
    value = value.with_columns((pl.col("value").cum_sum() / pl.col("value").sum()).alias("cum"))
    abc = value.select(
        "sku",
        pl.when(pl.col("cum") <= 0.8)
        .then(pl.lit("A"))
        .when(pl.col("cum") <= 0.95)
        .then(pl.lit("B"))
        .otherwise(pl.lit("C"))
        .alias("abc_class"),
    )
    hist = (
        frames["sales_history"]
        .group_by("sku")
        .agg((pl.col("quantity").std() / pl.col("quantity").mean()).alias("cv"), (pl.len() < 18).alias("intermittent"))
    )
    out = abc.join(hist, on="sku", how="left").with_columns(
        pl.when(pl.col("cv") <= 0.5)
        .then(pl.lit("X"))
        .when(pl.col("cv") <= 1.0)
        .then(pl.lit("Y"))
        .otherwise(pl.lit("Z"))
        .alias("xyz_class"),
        pl.col("intermittent").fill_null(True),
    )
    return out.select("sku", "abc_class", "xyz_class", "intermittent")


def company(skus: int, seed: int = 7) -> tuple[SupplyInputs, dict[str, pl.DataFrame]]:
    frames = generate_demo_company(skus=skus, seed=seed, cycle=CYCLE)
    demand = demand_proxy(frames)
    return SupplyInputs.from_frames(frames, demand, segmentation_proxy(frames, demand)), frames


def _fmt(seconds: float) -> str:
    return f"{seconds:6.2f}s"


def run(sizes: list[int]) -> None:
    settings = load_settings(ROOT / "models").supply
    print("Supply review benchmark (consensus demand = seasonal-average PROXY of history, p10/p90 = -/+25%)")
    print(f"planning level {settings.planning.level}, shortfall mode {settings.costs.shortfall_mode}, cycle {CYCLE}, {HORIZON} months\n")
    for skus in sizes:
        inputs, _ = company(skus)
        started = time.perf_counter()
        targets = compute_inventory_targets(inputs.demand, inputs.segmentation, settings.inventory_targets, CYCLE)
        t_targets = time.perf_counter() - started
        result = plan_supply(inputs, settings, "baseline", CYCLE, targets)
        t_check = time.perf_counter()
        violations = check_plan_feasibility(result.tables(), inputs)
        t_check = time.perf_counter() - t_check
        total = time.perf_counter() - started
        tm, size = result.timings, result.lp_size
        print(f"== {skus:,} SKUs ({inputs.demand['sku'].n_unique():,} with demand), {size['items']:,} planning items")
        print(f"   LP: {size['rows']:,} rows x {size['cols']:,} cols, {size['nonzeros']:,} nonzeros; status {result.status}")
        print(
            f"   targets {_fmt(t_targets)} | prepare {_fmt(tm['prepare'])} | LP build {_fmt(tm['build'])} | HiGHS solve {_fmt(tm['solve'])}"
            f" | disaggregate {_fmt(tm['disaggregate'])} | report {_fmt(tm['report'])} | feasibility check {_fmt(t_check)}"
        )
        print(
            f"   whole supply review (baseline) {_fmt(total)}; model build (prepare + LP build) / solve = "
            f"{(tm['prepare'] + tm['build']) / max(tm['solve'], 1e-9):.2f}"
        )
        print(
            f"   fill rate {fill_rate(result.supply_plan, result.shortfall_mode):.4f}; exceptions {result.supply_exceptions.height:,};"
            f" feasibility violations {len(violations)}; top bottleneck {result.bottlenecks['constraint'].head(1).to_list()}"
        )
        for v in violations[:5]:
            print("     ", v)
        if skus <= 1000:
            _compare_with_sku_level(inputs, settings, targets, result)
        print()


def _compare_with_sku_level(inputs, settings, targets, family_result) -> None:
    # The reference is the exact SKU-level optimum: every material in the LP, none treated as ample.
    sku_settings = settings.model_copy(
        update={"planning": settings.planning.model_copy(update={"level": "sku", "ample_material_margin": 0.0})}
    )
    sku_result = plan_supply(inputs, sku_settings, "baseline", CYCLE, targets)
    fam = evaluate_on_sku_detail(family_result, settings)
    sku = evaluate_on_sku_detail(sku_result, sku_settings)
    gap = fam["total"] / sku["total"] - 1
    print(
        f"   SKU-level LP: {sku_result.lp_size['rows']:,} x {sku_result.lp_size['cols']:,}, {sku_result.lp_size['nonzeros']:,} nz;"
        f" build {_fmt(sku_result.timings['prepare'] + sku_result.timings['build'])}, "
        f"solve {_fmt(sku_result.timings['solve'])}, {sku_result.status};"
        f" objective {sku_result.objective:,.0f} (evaluated {sku['total']:,.0f})"
    )
    print(f"   family plan on SKU detail {fam['total']:,.0f} vs SKU-level optimum {sku['total']:,.0f}: gap {gap:+.2%}")
    controllable = ("overtime_premium", "holding", "shortfall_penalty", "below_target_penalty")
    for k in ("conversion", "purchases", *controllable):
        print(f"      {k:22s} family {fam[k]:14,.0f}   sku {sku[k]:14,.0f}")
    f_ctrl, s_ctrl = sum(fam[k] for k in controllable), sum(sku[k] for k in controllable)
    print(
        f"      service/stock terms (overtime+holding+penalties): family {f_ctrl:,.0f} vs sku {s_ctrl:,.0f}"
        f" ({f_ctrl / max(s_ctrl, 1e-9) - 1:+.1%}); fill rate family "
        f"{fill_rate(family_result.supply_plan, settings.costs.shortfall_mode):.4f}"
        f" vs sku {fill_rate(sku_result.supply_plan, settings.costs.shortfall_mode):.4f}"
    )
    print(
        f"      family plan on SKU detail: {fam['production_below_lp_units']:,.0f} of the LP's units not made,"
        f" {fam['purchases_added_units']:,.0f} material units bought after the LP (ample materials, mix top-ups),"
        f" capacity overshoot {fam['capacity_excess_hours']:,.1f} h"
    )


if __name__ == "__main__":
    run([int(a) for a in sys.argv[1:]] or [1000, 5000, 20000])
