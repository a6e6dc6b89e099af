"""The review steps' charts, each a function of planning tables returning a matplotlib Figure.

Each chart says in its title what it shows and in which unit; the same figure goes into the
asset's metadata and onto the review pack's page.
"""

from __future__ import annotations

import polars as pl
from matplotlib.figure import Figure

from sop_pipeline.finance.budget import budget_by_family_month
from sop_pipeline.reporting import style
from sop_pipeline.settings.scenarios import BASELINE


def top_families(consensus: pl.DataFrame, products: pl.DataFrame, n: int = 4) -> list[str]:
    """Families with the largest consensus revenue: the ones an executive looks at first."""
    revenue = (
        consensus.join(products.select("sku", "unit_price"), on="sku", how="left")
        .group_by("family", maintain_order=True)
        .agg((pl.col("quantity") * pl.col("unit_price").fill_null(0)).sum().alias("revenue"))
    )
    return revenue.sort(["revenue", "family"], descending=[True, False]).head(n)["family"].to_list()


def demand_chart(
    history: pl.DataFrame, statistical: pl.DataFrame, consensus: pl.DataFrame, families: list[str], history_months: int = 36
) -> Figure:
    """Per family: actuals, the statistical forecast's p10-p90 band and the consensus (units).

    The family band is the sum of SKU quantiles, which overstates the family's uncertainty
    (SKU errors partly cancel); it shows where the plan could land, not a family quantile.
    """
    fig, axes = style.panels(len(families))
    start = statistical["month"].min()
    hist = history.filter(pl.col("month") >= pl.lit(start).dt.offset_by(f"-{history_months}mo"))
    for ax, family in zip(axes, families):
        h = hist.filter(pl.col("family") == family).group_by("month", maintain_order=True).agg(pl.col("quantity").sum()).sort("month")
        s = (
            statistical.filter(pl.col("family") == family)
            .group_by("month", maintain_order=True)
            .agg(pl.col("p10", "p50", "p90").sum())
            .sort("month")
        )
        c = consensus.filter(pl.col("family") == family).group_by("month", maintain_order=True).agg(pl.col("quantity").sum()).sort("month")
        ax.plot(h["month"].to_list(), h["quantity"].to_numpy(), color=style.ACTUAL, lw=1.2, label="actuals")
        ax.fill_between(
            s["month"].to_list(),
            s["p10"].to_numpy(),
            s["p90"].to_numpy(),
            color=style.PLAN,
            alpha=style.BAND_ALPHA,
            label="p10-p90 (sum of SKUs)",
        )
        ax.plot(s["month"].to_list(), s["p50"].to_numpy(), color=style.PLAN, lw=1, ls="--", label="statistical")
        ax.plot(c["month"].to_list(), c["quantity"].to_numpy(), color=style.CONSENSUS, lw=1.5, label="consensus")
        ax.set_title(f"{family}: demand (units)", fontsize=style.TITLE_SIZE, loc="left")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=style.LEGEND_SIZE, ncol=4, loc="upper left")
    return fig


def capacity_chart(capacity_plan: pl.DataFrame, bottlenecks: pl.DataFrame, top_n: int = 4, scenario: str = BASELINE) -> Figure:
    """Load against capacity and capacity + overtime for the top bottleneck resources (hours)."""
    plan = capacity_plan.filter(pl.col("scenario") == scenario)
    ranked = bottlenecks.filter((pl.col("scenario") == scenario) & (pl.col("kind") == "capacity"))["constraint"].to_list()
    busiest = plan.group_by("resource").agg(pl.col("utilization").max()).sort("utilization", descending=True)["resource"].to_list()
    chosen = list(dict.fromkeys(ranked + busiest))[:top_n]
    fig, axes = style.panels(len(chosen))
    for ax, resource in zip(axes, chosen):
        rows = plan.filter(pl.col("resource") == resource).sort("month")
        months = rows["month"].to_list()
        ax.bar(months, rows["load_hours"].to_list(), width=20, color=style.PLAN, label="load")
        ax.step(months, rows["capacity_hours"].to_list(), where="mid", color=style.ACTUAL, label="capacity")
        ax.step(
            months,
            (rows["capacity_hours"] + rows["overtime_available"]).to_list(),
            where="mid",
            color=style.CONSENSUS,
            linestyle="--",
            label="capacity + overtime",
        )
        ax.set_title(f"{resource}: load vs capacity, hours ({scenario})", fontsize=style.TITLE_SIZE)
        ax.set_ylabel("hours")
        ax.legend(fontsize=style.LEGEND_SIZE, loc="upper right")
    if not chosen:
        axes[0].text(0.5, 0.5, "no resources", ha="center")
    return fig


def inventory_chart(supply_plan: pl.DataFrame, top_n: int = 4, scenario: str = BASELINE) -> Figure:
    """Projected inventory against target, with shortfall, for the families most at risk (units)."""
    plan = supply_plan.filter(pl.col("scenario") == scenario)
    fam = plan.group_by("family", "month").agg(pl.col("ending_inventory", "target_inventory", "shortfall", "demand").sum())
    risk = (
        fam.group_by("family")
        .agg(
            ((pl.col("target_inventory") - pl.col("ending_inventory")).clip(lower_bound=0) + pl.col("shortfall")).sum().alias("risk"),
            pl.col("demand").sum(),
        )
        .sort("risk", "demand", descending=True)
    )
    chosen = risk["family"].head(top_n).to_list()
    fig, axes = style.panels(len(chosen))
    for ax, family in zip(axes, chosen):
        rows = fam.filter(pl.col("family") == family).sort("month")
        months = rows["month"].to_list()
        ax.plot(months, rows["ending_inventory"].to_list(), color=style.PLAN, label="projected inventory")
        ax.plot(months, rows["target_inventory"].to_list(), color=style.ACTUAL, linestyle="--", label="target")
        ax.bar(months, rows["shortfall"].to_list(), width=20, color=style.CONSENSUS, alpha=0.6, label="shortfall")
        ax.set_title(f"{family}: inventory vs target, units ({scenario})", fontsize=style.TITLE_SIZE)
        ax.set_ylabel("units")
        ax.legend(fontsize=style.LEGEND_SIZE, loc="upper right")
    if not chosen:
        axes[0].text(0.5, 0.5, "no families", ha="center")
    return fig


def revenue_margin_chart(financial_plan: pl.DataFrame, budget: pl.DataFrame | None = None, scenario: str = BASELINE) -> Figure:
    """Revenue and gross margin by month (money): plan (bars) against budget (line), with the
    unconstrained revenue (dashed) showing what supply leaves on the table."""
    plan = (
        financial_plan.filter(pl.col("scenario") == scenario)
        .group_by("month", maintain_order=True)
        .agg(pl.col("revenue", "gross_margin", "unconstrained_revenue").sum())
        .sort("month")
    )
    bud = (
        budget_by_family_month(budget)
        .group_by("month", maintain_order=True)
        .agg(pl.col("revenue", "gross_margin").sum())
        .join(plan.select("month"), on="month", how="semi")
        .sort("month")
        if budget is not None and budget.height
        else None
    )
    fig = Figure(figsize=(style.WIDTH, 6), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    position = {m: i for i, m in enumerate(plan["month"].to_list())}  # months as categories: even bars
    x = list(position.values())
    for ax, column, title in ((axes[0], "revenue", "Revenue"), (axes[1], "gross_margin", "Gross margin")):
        ax.bar(x, plan[column].to_list(), width=0.7, color=style.PLAN, label=f"plan ({scenario})")
        if column == "revenue":
            ax.plot(
                x,
                plan["unconstrained_revenue"].to_list(),
                color=style.ALTERNATIVE,
                linestyle="--",
                marker=".",
                label="unconstrained demand",
            )
        if bud is not None and bud.height:
            ax.plot([position[m] for m in bud["month"].to_list()], bud[column].to_list(), color=style.CONSENSUS, marker="o", label="budget")
        ax.set_title(f"{title}: plan vs budget (money per month)", fontsize=style.TITLE_SIZE, loc="left")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=style.LEGEND_SIZE, loc="lower left")
    axes[1].set_xticks(x, [m.strftime("%Y-%m") for m in position], rotation=90 if len(x) > 12 else 0, fontsize=8)
    return fig


def bridge_chart(plan_bridge: pl.DataFrame, comparison: str = "budget_to_plan", scenario: str = BASELINE) -> Figure:
    """The company's revenue bridge as a waterfall, start -> effects -> end (money, the `ALL` rows;
    green raises revenue, red lowers it)."""
    steps = (
        plan_bridge.filter((pl.col("comparison") == comparison) & (pl.col("scenario") == scenario) & (pl.col("family") == "ALL"))
        .group_by("step", "step_order", maintain_order=True)
        .agg(pl.col("value").sum())
        .sort("step_order")
    )
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    names, values = steps["step"].to_list(), steps["value"].to_list()
    running = 0.0
    for i, (name, value) in enumerate(zip(names, values)):
        if name in ("start", "end"):
            ax.bar(i, value, color=style.PLAN)
            running = value
            bottom, height = 0.0, value
        else:
            bottom, height = running, value
            ax.bar(i, value, bottom=running, color=style.UP if value >= 0 else style.DOWN)
            running += value
        ax.annotate(f"{value:,.0f}", (i, bottom + height), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.margins(y=0.12)
    ax.set_title(f"Revenue bridge: {comparison.replace('_', ' ')} ({scenario}, money)", fontsize=style.TITLE_SIZE, loc="left")
    ax.grid(axis="y", alpha=0.3)
    return fig
