"""The executive review pack: a PDF whose first page says what to decide, then the pages of the
review steps (product, demand, supply, financial, executive).

Every page is laid out by measuring what it draws (text widths from the renderer), so that a
table never runs under a chart or off the page: a table too wide is split into column groups, a
table too long continues on the next page, and charts that would be too small next to the
tables get a page of their own. `pack_figures` returns exactly the figures `review_pack`
writes, so a test can check what an executive reads."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from sop_pipeline import registry
from sop_pipeline.executive.exceptions import review_notes, with_scenario
from sop_pipeline.executive.governance import scenario_order, short_version
from sop_pipeline.executive.kpis import budget_rows, scenarios_of, window
from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.reporting import summary_pages
from sop_pipeline.reporting.layout import _Block, _fmt, _footers, _months, _Note, _render, _Ruler, _Spec
from sop_pipeline.reporting.summary_pages import scenario_list
from sop_pipeline.settings.gates import ExecutiveGates
from sop_pipeline.settings.scenarios import BASELINE
from sop_pipeline.tempfiles import remove_leftovers, temp_path

PACK_STEPS = ("product", "demand", "supply", "financial", "executive")
SUMMARY_PAGES = summary_pages.PAGES  # between page 1 and the review steps' pages
# Amounts are in the currency of the input files, which the pack does not know.
MONEY = "money (input currency)"
UNIT_LABEL = {"ratio": "%", "currency": "money", "units": "units", "days": "days", "ratio per cycle": "pts/cycle"}
PAGE_ONE_EXCEPTIONS = 6  # the rest of the executive list is on the executive review page

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


def _chart_step(name: str) -> str:
    for prefix, step in _CHART_STEP.items():
        if name.lower().startswith(prefix):
            return step
    return "executive"


# --- the pack --------------------------------------------------------------------------------


def pack_figures(
    cycle: str,
    frames: Mapping[str, pl.DataFrame | None],
    charts: Mapping[str, bytes] | None = None,
    plan_version: str | None = None,
    approval: Mapping[str, Any] | None = None,
    gates: ExecutiveGates | None = None,
) -> list[Figure]:
    """The pack's pages as matplotlib figures, in page order (what `review_pack` writes).

    Page 1, "Decisions needed": where the approval stands (who approved which scenario, when,
    which plan version, whether the plan of record is published: read from the frames'
    `plan_of_record_*` tables), the exceptions on the executive list, the scenarios in four
    numbers, and earlier decisions still open, on one page. Then the summary pages
    (`summary_pages`: demand vs supply vs budget by family, last month against the plan of
    record, assumptions, risks and opportunities, scenarios side by side, follow-up of earlier
    decisions; `pack_inputs` names the frames they read beyond the cycle's planning tables),
    and the review steps' detail: product, demand, supply, financial and executive review,
    each continued on further pages when it does not fit."""
    gates = gates or ExecutiveGates()
    label = cycle_label(cycle)
    charts = dict(charts or {})
    by_step: dict[str, list[bytes]] = {s: [] for s in PACK_STEPS}
    for name in sorted(charts):
        by_step[_chart_step(name)].append(charts[name])

    def frame(name: str) -> pl.DataFrame | None:
        f = frames.get(name)
        return f if f is not None and f.height else None

    h = summary_pages.Horizon(cycle_month(label), gates.kpi_horizon_months)
    kpi = h.text
    approved = approved_scenario(approval)
    financial = frame("financial_plan")
    plan_months = (financial["month"].min(), financial["month"].max()) if financial is not None else None
    specs = [
        summary_pages.family_page(frame, approved or BASELINE, h),
        summary_pages.last_month_page(frame, label),
        summary_pages.assumptions_page(frame, h, plan_months),
        summary_pages.risks_page(frame, h, approved or BASELINE),
        summary_pages.scenarios_page(frame, h, approved),
        summary_pages.followup_page(frame, label),
        _product_page(label, frame("product_portfolio"), frame("product_segmentation"), by_step["product"]),
        _demand_page(label, frame("consensus_demand"), frame("forecast_accuracy"), by_step["demand"]),
        _supply_page(frame("supply_plan"), frame("capacity_plan"), frame("executive_summary"), by_step["supply"], kpi),
        _financial_page(financial, frame("budget_gap"), frame("executive_summary"), by_step["financial"], gates, kpi),
        _executive_page(frame("executive_summary"), frame("executive_exceptions"), approval, by_step["executive"], gates, kpi),
    ]
    ruler = _Ruler()
    figures = _page_one(ruler, label, plan_version, approval, frames, frame, gates, kpi)
    figures += [fig for spec in specs for fig in _render(ruler, spec)]
    _footers(figures, label)
    return figures


def approved_scenario(approval: Mapping[str, Any] | None) -> str | None:
    """The scenario an approval of the current plan version chose (None before one)."""
    latest = (approval or {}).get("latest_approval")
    return latest["scenario"] if latest and (approval or {}).get("matches") else None


def review_pack(
    out_dir: str | Path,
    cycle: str,
    frames: Mapping[str, pl.DataFrame | None],
    charts: Mapping[str, bytes] | None = None,
    plan_version: str | None = None,
    approval: Mapping[str, Any] | None = None,
    gates: ExecutiveGates | None = None,
) -> Path:
    """Write `review_pack_<cycle>.pdf`, its pages as PNG (`pages/`) and every chart as
    `<name>.png` into `out_dir`.

    `frames` are planning tables by name (`product_portfolio`, `consensus_demand`,
    `supply_plan`, `executive_summary`, `exceptions` or else `executive_exceptions`,
    `decision_followup`, `plan_of_record_*`, ...); any may be absent, and its page then says
    so. Charts go on the page of the step their name starts with (`demand_...`,
    `capacity_...`). The PDF is written to a temporary file and renamed, so a reader never
    opens half a pack; its text is embedded as TrueType so that it can be searched and
    copied."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_pdf import PdfPages

    label = cycle_label(cycle)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, png in (charts or {}).items():
        (out / f"{Path(name).stem}.png").write_bytes(png)
    pages = pack_figures(cycle, frames, charts, plan_version, approval, gates)
    target = out / f"review_pack_{label}.pdf"
    remove_leftovers(target)
    tmp = temp_path(target)
    try:
        with rc_context({"pdf.fonttype": 42}):
            # The approval in the metadata too: a file browser or a script sees it without opening the pack.
            subject = f"plan version {plan_version or 'unknown'}; approval: {(approval or {}).get('reason', 'unknown')}"
            if published_version(frames) is not None and published_version(frames) == plan_version:
                subject += "; plan of record published"
            meta = {"Title": f"S&OP review pack {label}", "Subject": subject}
            with PdfPages(tmp, metadata=meta) as pdf:
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


# --- page 1: decisions needed ----------------------------------------------------------------


def published_version(frames: Mapping[str, pl.DataFrame | None]) -> str | None:
    """The plan version the cycle's published plan of record holds (None when not published)."""
    versions: set[str] = set()
    for name in registry.PLAN_OF_RECORD_SOURCES:
        f = frames.get(name)
        if f is not None and f.height and "plan_version" in f.columns:
            versions |= set(f["plan_version"].drop_nulls().to_list())
    return versions.pop() if len(versions) == 1 else None


def _approval_lines(label: str, version: str | None, approval: Mapping[str, Any] | None, published: str | None) -> tuple[str, _Note]:
    """The header line (version, approval, plan of record) and what is asked of the reader."""
    latest = (approval or {}).get("latest_approval")
    shown = short_version(version) if version else "unknown"
    header = f"Plan version {shown}, pack generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    if latest and (approval or {}).get("matches"):
        record = (
            "the plan of record is published."
            if published is not None and published == version
            else "the plan of record is not published yet (approval sensor, or sop run)."
        )
        text = (
            f"Approved: scenario {latest['scenario']} by {latest['decided_by']} on {latest['decided_at']:%Y-%m-%d %H:%M} UTC, "
            f"plan version {short_version(latest['plan_version'])}; {record}"
        )
        return header, _Note(text, 10.5, "#1b5e20", "bold")
    if latest:
        return header, _Note(f"To decide: approve again. {approval['reason']}.", 10.5, "#b71c1c", "bold")
    reason = (approval or {}).get("reason", "approval status unknown")
    return header, _Note(
        f"To decide: which scenario becomes the plan ({reason}): sop approve --cycle {label} --scenario <name> --by <who>.",
        10.5,
        "#b71c1c",
        "bold",
    )


_BASIS = {"shortfall": "revenue late", "budget_gap": "gap to budget", "capacity": "overtime + late units it binds"}


def _decision_exceptions(frames, gates: ExecutiveGates) -> tuple[pl.DataFrame | None, int]:
    """The executive list (rank, what, money, basis, scenarios, owner, recommendation): from
    `planning.exceptions` when present, else the older `planning.executive_exceptions`, each
    exception once with the scenarios it appears in."""
    new = frames.get("exceptions")
    if new is not None and new.height:
        listed = new.filter(pl.col("in_executive_list")) if "in_executive_list" in new.columns else new
        listed = listed.sort("rank")
        subject = pl.concat_str(
            [pl.col(c) for c in ("family", "sku", "resource", "material") if c in listed.columns], separator=" / ", ignore_nulls=True
        )
        what = pl.concat_str([pl.col("kind").str.replace_all("_", " "), subject, pl.col("period_label")], separator=", ", ignore_nulls=True)
        every = set(scenarios_of(frames.get("supply_plan"), frames.get("executive_summary")))
        names = pl.col("scenarios").fill_null("").str.split(",").list.eval(pl.element().str.strip_chars())
        table = listed.select(
            "rank",
            what.alias("what"),
            "money",
            pl.col("money_basis").alias("basis"),
            names.map_elements(lambda s: scenario_list([n for n in s.to_list() if n], every), return_dtype=pl.Utf8).alias("scenarios"),
            "owner",
            "recommendation",
        )
        return table, listed.height
    old = frames.get("executive_exceptions")
    if old is None or not old.height:
        return None, 0
    # Scenarios' copies of one exception differ in the cents of their money: one row, its scenarios listed.
    old = old.with_columns(pl.col("money").round(0))
    distinct = _distinct_exceptions(old).head(gates.max_exceptions_in_pack)
    key = [c for c in ("kind", "subject", "period_label", "money") if c in old.columns]
    seen = old.group_by(key).agg(pl.col("scenario").unique().alias("_in"))
    every = set(old["scenario"].unique().to_list()) if "scenario" in old.columns else set()
    what = pl.concat_str(
        [pl.col("kind").str.replace_all("_", " "), pl.col("subject"), pl.col("period_label")], separator=", ", ignore_nulls=True
    )
    table = (
        distinct.drop("rank", strict=False)
        .join(seen, on=key, how="left", maintain_order="left")
        .with_row_index("rank", offset=1)
        .select(
            pl.col("rank").cast(pl.Int64),
            what.alias("what"),
            "money",
            pl.col("kind").replace_strict(_BASIS, default="amount at stake").alias("basis"),
            pl.col("_in").map_elements(lambda s: scenario_list(s.to_list(), every), return_dtype=pl.Utf8).alias("scenarios"),
        )
    )
    return table, distinct.height


def _scenario_table(summary: pl.DataFrame, approved: str | None = None) -> pl.DataFrame:
    """Scenarios as rows, four numbers each: fill rate, revenue, gross margin %, late units;
    the approved scenario marked."""
    kpis = ["fill_rate", "revenue", "gross_margin_pct", "late_units"]
    wide = summary.filter(pl.col("kpi").is_in(kpis)).pivot(on="kpi", index="scenario", values="value", aggregate_function="first")
    order = {s: k for k, s in enumerate(scenario_order(wide["scenario"].to_list()))}
    wide = wide.sort(pl.col("scenario").replace_strict(order, default=len(order)))
    names = {"fill_rate": "fill rate %", "revenue": "revenue (money)", "gross_margin_pct": "gross margin %", "late_units": "late units"}
    mark = (
        pl.when(pl.col("scenario") == pl.lit(approved or "", dtype=pl.Utf8))
        .then(pl.col("scenario") + " (approved)")
        .otherwise(pl.col("scenario"))
    )
    return wide.select(mark.alias("scenario"), *[pl.col(k).alias(names[k]) for k in kpis if k in wide.columns])


PAGE_ONE_DECISIONS = 3  # open decisions on page 1; every decision is on the follow-up page
# (exceptions, open decisions) tried in turn until page 1 fits on one page: the exceptions to
# decide come first, but earlier decisions still open are not crowded off it altogether.
_PAGE_ONE_FITS = tuple((n, PAGE_ONE_DECISIONS) for n in range(PAGE_ONE_EXCEPTIONS, 2, -1)) + ((3, 2), (3, 1), (2, 1), (1, 1))


def _page_one(ruler: _Ruler, label, version, approval, frames, frame, gates, kpi) -> list[Figure]:
    """Page 1 on one page: the exception list and the open decisions are cut to what fits next
    to the scenarios (a reader acts on page 1; what is continued overleaf is not read there)."""
    figures: list[Figure] = []
    for exceptions, decisions in _PAGE_ONE_FITS:
        figures = _render(ruler, _decisions_page(label, version, approval, frames, frame, gates, kpi, exceptions, decisions))
        if len(figures) == 1:
            break
    return figures


def _open_decisions(followup: pl.DataFrame, most: int = PAGE_ONE_DECISIONS) -> _Block | _Note:
    still = followup.filter(pl.col("status").is_in(["open", "overdue"])).sort([pl.col("status") != "overdue", "due_cycle", "decision_id"])
    if not still.height:
        return _Note(f"Earlier decisions: none still open ({followup.height} on the follow-up page).", 9)
    shown = min(still.height, most)
    rest = f"; {still.height - shown} more on the follow-up page" if still.height > shown else ""
    return _Block(
        still.head(shown).select("decision_id", "action", "owner", "due_cycle", "status"),
        f"Earlier decisions still open, overdue first ({still.height}){rest}",
        max_rows=shown,
        wrap={"action": 4.0},
    )


def _decisions_page(
    label, version, approval, frames, frame, gates, kpi, most: int = PAGE_ONE_EXCEPTIONS, decisions: int = PAGE_ONE_DECISIONS
) -> _Spec:
    published = published_version(frames)
    latest = (approval or {}).get("latest_approval")
    header, ask = _approval_lines(label, version, approval, published)
    items: list[_Block | _Note] = [ask]
    listed, total = _decision_exceptions(frames, gates)
    if listed is not None:
        shown = min(total, most)
        rest = f"; {total - shown} more on the risks and opportunities page" if total > shown else ""
        items.append(
            _Block(
                listed.head(shown),
                f"Exceptions to decide, largest money first, whole horizon: {MONEY}{rest}",
                {"money": "currency"},
                max_rows=shown,
                wrap={"what": 2.1, "basis": 1.5, "scenarios": 1.7, "owner": 1.2, "recommendation": 2.6},
            )
        )
    else:
        items.append(_Note("Exceptions: none above the materiality thresholds this cycle.", 9.5))
    summary = frame("executive_summary")
    if summary is not None:
        items.append(
            _Block(
                _scenario_table(summary, latest["scenario"] if latest and (approval or {}).get("matches") else None),
                f"Scenarios, {kpi}: fill rate %, revenue in {MONEY}, gross margin %, late units",
                {"fill rate %": "ratio", "revenue (money)": "currency", "gross margin %": "ratio", "late units": "units"},
                max_rows=20,
            )
        )
    followup = frame("decision_followup")
    if followup is not None:
        items.append(_open_decisions(followup, decisions))
    notes = review_notes(frames)
    if notes:
        items.append(_Note("Not available this cycle: " + "; ".join(notes) + ".", 8, "#555555"))
    return _Spec(f"Decisions needed: S&OP review, cycle {label}", header, items)


# --- the review steps' pages -----------------------------------------------------------------


def _product_page(label, portfolio, segmentation, charts) -> _Spec:
    spec = _Spec("1. Product review", "Portfolio in the cycle month and segmentation", [], charts)
    if portfolio is None and segmentation is None:
        spec.missing = "product review: not available this cycle"
        return spec
    if portfolio is not None:
        first = portfolio.filter(pl.col("month") == pl.col("month").min())
        spec.items.append(
            _Block(
                first.group_by("lifecycle_status").agg(pl.len().alias("skus")).sort("lifecycle_status"),
                f"SKUs by lifecycle status, cycle month {label} (count of SKUs)",
            )
        )
    if segmentation is not None and {"abc_class", "xyz_class"} <= set(segmentation.columns):
        revenue = [pl.col("revenue_12m").sum()] if "revenue_12m" in segmentation.columns else []
        seg = segmentation.group_by("abc_class", "xyz_class").agg(pl.len().alias("skus"), *revenue).sort("abc_class", "xyz_class")
        spec.items.append(
            _Block(seg, f"ABC / XYZ segments: SKUs and revenue of the last 12 months, {MONEY}", {"revenue_12m": "currency"}, max_rows=9)
        )
    return spec


def _demand_page(label, consensus, accuracy, charts) -> _Spec:
    start = cycle_month(label)
    horizon = f"next 12 months ({_months(start, add_months(start, 11))})"
    spec = _Spec("2. Demand review", f"Consensus demand by family, {horizon}; forecast accuracy of earlier cycles", [], charts)
    if consensus is None and accuracy is None:
        spec.missing = "demand review: not available this cycle"
        return spec
    if consensus is not None:
        fam = (
            window(consensus, start, add_months(start, 12))
            .group_by("family")
            .agg(pl.col("quantity").sum().alias("units_12m"), pl.col("p10").sum().alias("p10_12m"), pl.col("p90").sum().alias("p90_12m"))
            .sort("units_12m", descending=True)
        )
        units = {c: "units" for c in ("units_12m", "p10_12m", "p90_12m")}
        spec.items.append(_Block(fam, f"Consensus demand by family, {horizon}, units", units, max_rows=12))
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
        spec.items.append(
            _Block(
                acc,
                "Lag-1 accuracy by layer, all families, every scored earlier cycle: WAPE and bias, %",
                {"wape": "ratio", "bias": "ratio"},
                max_rows=8,
            )
        )
    else:
        spec.items.append(_Note("Forecast accuracy: not available this cycle (no earlier cycle scored yet).", 9))
    return spec


def _pivot_kpis(summary: pl.DataFrame, kpis: list[str] | None = None) -> tuple[pl.DataFrame, list[str]]:
    """KPIs as rows (named with their unit), scenarios as columns, values formatted by unit."""
    rows = summary if kpis is None else summary.filter(pl.col("kpi").is_in(kpis))
    scenarios = scenario_order(rows["scenario"].unique().to_list())
    cells = rows.with_columns(
        pl.struct("value", "unit", "subject")
        .map_elements(lambda s: _fmt(s["value"], s["unit"]) + (f" ({s['subject']})" if s["subject"] else ""), return_dtype=pl.Utf8)
        .alias("cell"),
        (pl.col("kpi") + pl.lit(" (") + pl.col("unit").replace(UNIT_LABEL).fill_null("-") + pl.lit(")")).alias("label"),
    )
    order = cells.group_by("kpi").agg(pl.col("kpi_order").min(), pl.col("label").first()).sort("kpi_order")
    wide = order.join(cells.pivot(on="scenario", index="kpi", values="cell", aggregate_function="first"), on="kpi", how="left")
    return wide.select(pl.col("label").alias("kpi"), *[s for s in scenarios if s in wide.columns]), scenarios


def _whole_horizon(frame: pl.DataFrame) -> str:
    if "month" not in frame.columns or not frame.height:
        return "whole horizon"
    return f"whole horizon ({_months(frame['month'].min(), frame['month'].max())})"


def _supply_page(supply, capacity, summary, charts, kpi) -> _Spec:
    spec = _Spec("3. Supply review", "Service, inventory and bottlenecks per scenario", [], charts)
    if supply is None and capacity is None:
        spec.missing = "supply review: not available this cycle"
        return spec
    if summary is not None:
        wide, _ = _pivot_kpis(
            summary,
            ["fill_rate", "late_units", "days_of_supply"] + [k for k in summary["kpi"].unique().to_list() if k.startswith("bottleneck_")],
        )
        spec.items.append(
            _Block(wide, f"Service and bottlenecks by scenario, {kpi}: fill rate %, late units, days of supply, peak utilisation %")
        )
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
        spec.items.append(
            _Block(
                top,
                f"Busiest resources, {_whole_horizon(capacity)}: peak utilisation %, overtime hours, shadow price in {MONEY} per hour",
                {"peak_utilization": "ratio"},
                max_rows=10,
            )
        )
    return spec


def _financial_page(financial, budget, summary, charts, gates, kpi) -> _Spec:
    spec = _Spec("4. Financial review", "The plan in money and against the budget", [], charts)
    if financial is None and budget is None:
        spec.missing = "financial review: not available this cycle"
        return spec
    if summary is not None:
        money = [
            k
            for k in summary["kpi"].unique().to_list()
            if k in ("revenue", "gross_margin", "gross_margin_pct", "inventory_value") or k.startswith("budget_gap")
        ]
        wide, _ = _pivot_kpis(summary, money)
        spec.items.append(_Block(wide, f"Money KPIs by scenario, {kpi} (budget gaps: over the budgeted periods): {MONEY}, margin %"))
    if budget is not None and {"measure", "plan", "budget"} <= set(budget.columns):
        first = scenarios_of(budget)[0]
        rows = budget_rows(with_scenario(budget), gates).filter(
            (pl.col("scenario") == first) & pl.col("measure").is_in(["revenue", "gross_margin"])
        )
        by_family = (
            rows.group_by("family" if "family" in rows.columns else "measure", "measure")
            .agg(pl.col("plan").sum(), pl.col("budget").sum(), pl.col("gap").sum())
            .with_columns(pl.when(pl.col("budget").abs() > 0).then(100 * pl.col("gap") / pl.col("budget").abs()).alias("gap_pct"))
            .sort("gap")
        )
        spec.items.append(
            _Block(
                by_family,
                f"Plan vs budget by family, {first}, budgeted periods of the horizon, most below budget first: {MONEY}, gap %",
                {"plan": "currency", "budget": "currency", "gap": "currency", "gap_pct": "pct"},
            )
        )
    elif financial is not None:
        margin = [pl.col("gross_margin").sum()] if "gross_margin" in financial.columns else []
        fam = with_scenario(financial).group_by("scenario", "family").agg(pl.col("revenue").sum(), *margin).sort("revenue", descending=True)
        if margin:
            fam = fam.with_columns(
                pl.when(pl.col("revenue") > 0).then(pl.col("gross_margin") / pl.col("revenue")).alias("gross_margin_pct")
            )
        spec.items.append(
            _Block(
                fam,
                f"Revenue and gross margin by family, {_whole_horizon(financial)}: {MONEY}, margin %; budget not available this cycle",
                {"revenue": "currency", "gross_margin": "currency", "gross_margin_pct": "ratio"},
            )
        )
    return spec


def _distinct_exceptions(excs: pl.DataFrame) -> pl.DataFrame:
    """Exceptions by money, each listed once: a scenario's exception identical to the
    baseline's (same kind, subject, period and money) is the baseline's, not news."""
    key = ["kind", "subject", "period_label", "money"]
    ranked = excs.with_columns((pl.col("scenario") != "baseline").alias("_not_baseline")).sort(
        ["money", "_not_baseline"], descending=[True, False]
    )
    return ranked.unique(subset=[c for c in key if c in ranked.columns], keep="first", maintain_order=True).drop("_not_baseline")


def _executive_page(summary, excs, approval, charts, gates, kpi) -> _Spec:
    spec = _Spec(
        "5. Executive review",
        f"Scenarios side by side; exceptions above materiality, by money. {(approval or {}).get('reason', '')}",
        [],
        charts,
    )
    if summary is None:
        spec.missing = "executive summary: not available this cycle"
        return spec
    wide, _ = _pivot_kpis(summary)
    spec.items.append(_Block(wide, f"KPIs by scenario, {kpi} (accuracy: earlier cycles); {MONEY}", max_rows=24))
    if excs is not None:
        top = _distinct_exceptions(excs).head(gates.max_exceptions_in_pack).select("scenario", "kind", "money", "description")
        spec.items.append(
            _Block(
                top,
                f"Top exceptions (of {excs.height} above materiality), whole horizon: {MONEY}",
                {"money": "currency"},
                max_rows=gates.max_exceptions_in_pack,
                wrap={"description": 6.0},
            )
        )
    else:
        spec.items.append(_Note("Exceptions: none above the materiality thresholds.", 9))
    return spec
