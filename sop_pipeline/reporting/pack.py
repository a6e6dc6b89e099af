"""The executive review pack: a PDF with a title page and one page per review step.

Pages are matplotlib figures (object API, A4 landscape) with tables on the left and the step's
charts on the right; `review_pack` writes them to a temporary file and renames it, so a
reader never opens half a pack."""

from __future__ import annotations

import datetime as dt
import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from sop_pipeline.executive.exceptions import review_notes, with_scenario
from sop_pipeline.executive.governance import scenario_order
from sop_pipeline.executive.kpis import budget_rows, scenarios_of, window
from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.settings.gates import ExecutiveGates
from sop_pipeline.tempfiles import remove_leftovers, temp_path

PACK_STEPS = ("product", "demand", "supply", "financial", "executive")


# Which step's page a chart belongs to, by the start of its name.
_CHART_STEP = {
    "product": "product",
    "portfolio": "product",
    "demand": "demand",
    "forecast": "demand",
    "accuracy": "demand",
    "supply": "supply",
    "capacity": "supply",
    "inventory": "supply",
    "material": "supply",
    "financial": "financial",
    "budget": "financial",
    "executive": "executive",
    "kpi": "executive",
}


_PAGE = (11.69, 8.27)  # A4 landscape, inches


def _chart_step(name: str) -> str:
    for prefix, step in _CHART_STEP.items():
        if name.lower().startswith(prefix):
            return step
    return "executive"


def _fmt(value: Any, unit: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float | int) and not isinstance(value, bool):
        if unit == "ratio":
            return f"{100 * value:.1f}%"
        if unit == "ratio per cycle":
            return f"{100 * value:+.2f} pts/cycle"
        if isinstance(value, int) or unit == "units" or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.2f}"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, dt.date):
        return f"{value:%Y-%m}"
    return str(value)


@dataclass(frozen=True)
class _Block:
    """One table on a page: rows beyond `max_rows` are counted, not shown."""

    frame: pl.DataFrame
    title: str
    units: Mapping[str, str] | None = None
    max_rows: int = 12
    max_chars: int = 60


def _table(ax, block: _Block) -> None:
    ax.axis("off")
    ax.set_title(block.title, fontsize=10, loc="left")
    if block.frame.height == 0:
        ax.text(0, 0.8, "nothing to show", fontsize=9)
        return
    shown = block.frame.head(block.max_rows)

    def cell(column: str, value: Any) -> str:
        if isinstance(value, str):
            return value if len(value) <= block.max_chars else value[: block.max_chars - 3] + "..."
        return _fmt(value, (block.units or {}).get(column))

    cells = [[cell(c, v) for c, v in zip(shown.columns, row)] for row in shown.iter_rows()]
    table = ax.table(cellText=cells, colLabels=shown.columns, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(shown.columns))))
    if block.frame.height > block.max_rows:
        ax.text(0, 0, f"... {block.frame.height - block.max_rows} more rows in the warehouse", fontsize=7, transform=ax.transAxes)


def _page(title: str, subtitle: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=_PAGE)
    fig.suptitle(title, fontsize=15, x=0.03, ha="left", y=0.97)
    fig.text(0.03, 0.925, subtitle, fontsize=9, color="#555555")
    return fig


def _not_available(fig, what: str) -> None:
    fig.text(0.5, 0.5, f"{what}: not available this cycle", ha="center", va="center", fontsize=14, color="#888888")


def _layout(fig, blocks: list[_Block], charts: list[bytes]) -> None:
    """Tables stacked on the left (height by rows shown), charts stacked on the right (at most
    three); either takes the whole width when the other is absent."""
    import matplotlib.image as mpimg

    t_width = 0.94 if not charts else 0.45
    # Stacked from the top, each as tall as its rows (about 0.024 of the page per row), squeezed
    # only when they would not fit.
    heights = [0.024 * (min(b.frame.height, b.max_rows) + 3) for b in blocks]
    scale = min(1.0, 0.84 / sum(heights)) if heights else 1.0
    top = 0.88
    for block, height in zip(blocks, heights):
        height *= scale
        ax = fig.add_axes((0.03, top - height, t_width, height - 0.02))
        _table(ax, block)
        top -= height
    left = 0.03 if not blocks else 0.5
    shown = charts[:3]
    for k, png in enumerate(shown):
        height = 0.86 / len(shown)
        ax = fig.add_axes((left, 0.03 + (len(shown) - 1 - k) * height, 0.97 - left, height - 0.02))
        ax.imshow(mpimg.imread(io.BytesIO(png), format="png"))
        ax.axis("off")


def review_pack(
    out_dir: str | Path,
    cycle: str,
    frames: Mapping[str, pl.DataFrame | None],
    charts: Mapping[str, bytes] | None = None,
    plan_version: str | None = None,
    approval: Mapping[str, Any] | None = None,
    gates: ExecutiveGates | None = None,
) -> Path:
    """Write `review_pack_<cycle>.pdf` and every chart as `<name>.png` into `out_dir`.

    A title page (cycle, plan version, approval status, notes on skipped steps), then one page
    per review step: product, demand, supply, financial and executive (every scenario's KPIs
    side by side, and the top exceptions). `frames` are planning tables by name
    (`product_portfolio`, `product_segmentation`, `consensus_demand`, `forecast_accuracy`,
    `supply_plan`, `capacity_plan`, `financial_plan`, `budget_gap`, `executive_summary`,
    `executive_exceptions`); any may be absent, and its page then says so. Charts go on the page
    of the step their name starts with (`demand_...`, `capacity_...`). The PDF is written to a
    temporary file and renamed, so a reader never opens half a pack.
    """
    from matplotlib.backends.backend_pdf import PdfPages

    gates = gates or ExecutiveGates()
    label = cycle_label(cycle)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = dict(charts or {})
    for name, png in charts.items():
        (out / f"{Path(name).stem}.png").write_bytes(png)
    by_step: dict[str, list[bytes]] = {s: [] for s in PACK_STEPS}
    for name in sorted(charts):
        by_step[_chart_step(name)].append(charts[name])

    def frame(name: str) -> pl.DataFrame | None:
        f = frames.get(name)
        return f if f is not None and f.height else None

    pages = [
        _title_page(label, plan_version, approval, frames),
        _product_page(frame("product_portfolio"), frame("product_segmentation"), by_step["product"]),
        _demand_page(label, frame("consensus_demand"), frame("forecast_accuracy"), by_step["demand"]),
        _supply_page(frame("supply_plan"), frame("capacity_plan"), frame("executive_summary"), by_step["supply"]),
        _financial_page(frame("financial_plan"), frame("budget_gap"), frame("executive_summary"), by_step["financial"], gates),
        _executive_page(frame("executive_summary"), frame("executive_exceptions"), approval, by_step["executive"], gates),
    ]
    target = out / f"review_pack_{label}.pdf"
    remove_leftovers(target)
    tmp = temp_path(target)
    try:
        with PdfPages(tmp, metadata={"Title": f"S&OP review pack {label}", "Subject": f"plan version {plan_version or 'unknown'}"}) as pdf:
            for fig in pages:
                pdf.savefig(fig)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _page_images(out / "pages", label, pages)
    return target


def pack_pages(out_dir: str | Path, cycle: str) -> list[Path]:
    """The review pack's pages as PNG, in page order (written by `review_pack`)."""
    return sorted((Path(out_dir) / "pages").glob(f"review_pack_{cycle_label(cycle)}_p*.png"))


def _page_images(folder: Path, label: str, pages: list) -> None:
    """Every page also as a PNG: the Dagster UI (and any browser) shows an image inline, while
    a PDF on the server's disk is only a path to a planner in the UI. In their own folder so
    the charts folder's `*.png` stays the charts."""
    folder.mkdir(exist_ok=True)
    for old in folder.glob(f"review_pack_{label}_p*.png"):
        old.unlink()
    for number, fig in enumerate(pages, start=1):
        fig.savefig(folder / f"review_pack_{label}_p{number:02d}.png", dpi=90)  # sorts in page order


def _title_page(label, version, approval, frames):
    fig = _page(f"S&OP review pack: cycle {label}", "Sales & operations planning, monthly executive review")
    lines = [
        f"Plan version: {version or 'unknown'}",
        f"Approval: {(approval or {}).get('reason', 'unknown')}",
        f"Generated: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "Pages: 1 product review, 2 demand review, 3 supply review, 4 financial review, 5 executive review",
        "",
    ]
    notes = review_notes(frames)
    lines += (
        (["Not available this cycle:"] + [f"  - {n}" for n in notes]) if notes else ["Every review step produced its tables this cycle."]
    )
    fig.text(0.05, 0.82, "\n".join(lines), fontsize=11, va="top", family="DejaVu Sans", linespacing=1.6)
    return fig


def _product_page(portfolio, segmentation, charts):
    fig = _page("1. Product review", "Portfolio in the cycle month and segmentation")
    if portfolio is None and segmentation is None:
        _not_available(fig, "product review")
        return fig
    tables = []
    if portfolio is not None:
        first = portfolio.filter(pl.col("month") == pl.col("month").min())
        tables.append(
            _Block(
                first.group_by("lifecycle_status").agg(pl.len().alias("skus")).sort("lifecycle_status"),
                "SKUs by lifecycle status in the cycle month",
            )
        )
    if segmentation is not None and {"abc_class", "xyz_class"} <= set(segmentation.columns):
        revenue = [pl.col("revenue_12m").sum()] if "revenue_12m" in segmentation.columns else []
        seg = segmentation.group_by("abc_class", "xyz_class").agg(pl.len().alias("skus"), *revenue).sort("abc_class", "xyz_class")
        tables.append(_Block(seg, "ABC / XYZ segments (revenue of the last 12 months)", max_rows=9))
    _layout(fig, tables, charts)
    return fig


def _demand_page(label, consensus, accuracy, charts):
    fig = _page("2. Demand review", "Consensus demand, next 12 months by family; forecast accuracy of earlier cycles")
    if consensus is None and accuracy is None:
        _not_available(fig, "demand review")
        return fig
    tables = []
    if consensus is not None:
        start = cycle_month(label)
        fam = (
            window(consensus, start, add_months(start, 12))
            .group_by("family")
            .agg(pl.col("quantity").sum().alias("units_12m"), pl.col("p10").sum().alias("p10_12m"), pl.col("p90").sum().alias("p90_12m"))
            .sort("units_12m", descending=True)
        )
        tables.append(_Block(fam, "Consensus demand by family, next 12 months (units)", max_rows=12))
    if accuracy is not None:
        acc = (
            accuracy.filter((pl.col("lag") == 1) & (pl.col("family") == "ALL"))
            .group_by("layer")
            .agg(
                (pl.col("abs_error").sum() / pl.col("actual").sum()).alias("wape"),
                ((pl.col("forecast") - pl.col("actual")).sum() / pl.col("actual").sum()).alias("bias"),
                pl.col("forecast_cycle").n_unique().alias("cycles"),
            )
            .sort("layer")
        )
        tables.append(_Block(acc, "Lag-1 accuracy by layer (all families)", {"wape": "ratio", "bias": "ratio"}, max_rows=8))
    else:
        tables.append(
            _Block(pl.DataFrame({"forecast accuracy": ["not available this cycle: no earlier cycle scored yet"]}), "Forecast accuracy")
        )
    _layout(fig, tables, charts)
    return fig


def _pivot_kpis(summary: pl.DataFrame, kpis: list[str] | None = None) -> tuple[pl.DataFrame, list[str]]:
    """KPIs as rows, scenarios as columns, values formatted by unit."""
    rows = summary if kpis is None else summary.filter(pl.col("kpi").is_in(kpis))
    scenarios = scenario_order(rows["scenario"].unique().to_list())
    cells = rows.with_columns(
        pl.struct("value", "unit", "subject")
        .map_elements(lambda s: _fmt(s["value"], s["unit"]) + (f" ({s['subject']})" if s["subject"] else ""), return_dtype=pl.Utf8)
        .alias("cell")
    )
    order = cells.group_by("kpi").agg(pl.col("kpi_order").min()).sort("kpi_order")
    wide = order.join(cells.pivot(on="scenario", index="kpi", values="cell", aggregate_function="first"), on="kpi", how="left")
    return wide.select("kpi", *[s for s in scenarios if s in wide.columns]), scenarios


def _supply_page(supply, capacity, summary, charts):
    fig = _page("3. Supply review", "Service, inventory and bottlenecks per scenario")
    if supply is None and capacity is None:
        _not_available(fig, "supply review")
        return fig
    tables = []
    if summary is not None:
        wide, _ = _pivot_kpis(
            summary,
            ["fill_rate", "late_units", "days_of_supply"] + [k for k in summary["kpi"].unique().to_list() if k.startswith("bottleneck_")],
        )
        tables.append(_Block(wide, "Service and bottlenecks, scenarios side by side"))
    if capacity is not None:
        top = (
            with_scenario(capacity)
            .group_by("scenario", "resource")
            .agg(
                pl.col("utilization").max().alias("peak_utilization"),
                (pl.col("overtime_hours").sum() if "overtime_hours" in capacity.columns else pl.lit(0.0)).alias("overtime_hours"),
                (pl.col("shadow_price").max() if "shadow_price" in capacity.columns else pl.lit(0.0)).alias("max_shadow_price"),
            )
            .sort("peak_utilization", descending=True)
        )
        tables.append(_Block(top, "Busiest resources (whole horizon)", {"peak_utilization": "ratio"}, max_rows=10))
    _layout(fig, tables, charts)
    return fig


def _financial_page(financial, budget, summary, charts, gates):
    fig = _page("4. Financial review", "The plan in money and against the budget")
    if financial is None and budget is None:
        _not_available(fig, "financial review")
        return fig
    tables = []
    if summary is not None:
        money = [
            k
            for k in summary["kpi"].unique().to_list()
            if k in ("revenue", "gross_margin", "gross_margin_pct", "inventory_value") or k.startswith("budget_gap")
        ]
        wide, _ = _pivot_kpis(summary, money)
        tables.append(_Block(wide, "Money KPIs, scenarios side by side (KPI horizon)"))
    if budget is not None and {"measure", "plan", "budget"} <= set(budget.columns):
        rows = budget_rows(with_scenario(budget), gates).filter(
            (pl.col("scenario") == scenarios_of(budget)[0]) & pl.col("measure").is_in(["revenue", "gross_margin"])
        )
        by_family = (
            rows.group_by("family" if "family" in rows.columns else "measure", "measure")
            .agg(pl.col("plan").sum(), pl.col("budget").sum(), pl.col("gap").sum())
            .sort("gap")
        )
        tables.append(_Block(by_family, f"Plan vs budget by family ({scenarios_of(budget)[0]}, most below budget first)"))
    elif financial is not None:
        margin = [pl.col("gross_margin").sum()] if "gross_margin" in financial.columns else []
        fam = with_scenario(financial).group_by("scenario", "family").agg(pl.col("revenue").sum(), *margin).sort("revenue", descending=True)
        tables.append(_Block(fam, "Revenue and margin by family (whole horizon); budget not available this cycle"))
    _layout(fig, tables, charts)
    return fig


def _distinct_exceptions(excs: pl.DataFrame) -> pl.DataFrame:
    """Exceptions by money, each listed once: a scenario's exception identical to the
    baseline's (same kind, subject, period and money) is the baseline's, not news."""
    key = ["kind", "subject", "period_label", "money"]
    ranked = excs.with_columns((pl.col("scenario") != "baseline").alias("_not_baseline")).sort(
        ["money", "_not_baseline"], descending=[True, False]
    )
    return ranked.unique(subset=[c for c in key if c in ranked.columns], keep="first", maintain_order=True).drop("_not_baseline")


def _executive_page(summary, excs, approval, charts, gates):
    fig = _page(
        "5. Executive review", f"Scenarios side by side; exceptions above materiality, by money. {(approval or {}).get('reason', '')}"
    )
    if summary is None:
        _not_available(fig, "executive summary")
        return fig
    wide, _ = _pivot_kpis(summary)
    tables = [_Block(wide, "KPIs by scenario", max_rows=24)]
    if excs is not None:
        top = _distinct_exceptions(excs).head(gates.max_exceptions_in_pack).select("scenario", "kind", "money", "description")
        tables.append(
            _Block(top, f"Top exceptions (of {excs.height} above materiality)", max_rows=gates.max_exceptions_in_pack, max_chars=110)
        )
    else:
        tables.append(_Block(pl.DataFrame({"exceptions": ["none above the materiality thresholds"]}), "Exceptions"))
    _layout(fig, tables, charts)
    return fig
