"""The review pack as an executive reads it: nothing drawn over anything else or off the page,
page 1 something to act on, and the approval on page 1 once the plan of record is published."""

import datetime as dt
import io
import itertools
import os
import re
import shutil
import subprocess

import duckdb
import polars as pl
import pytest
from conftest import CYCLE, q
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from orchestration.cli import main as sop
from sop_pipeline.executive import governance
from sop_pipeline.executive.status import load_cycle_frames
from sop_pipeline.reporting import pack
from sop_pipeline.reporting.pack_inputs import pack_inputs
from sop_pipeline.settings import load_settings

TOLERANCE = 0.5  # pixels: anti-aliasing, not layout


def drawn_elements(fig: Figure) -> list[tuple[str, Bbox]]:
    """What a reader sees as one thing, with its extent on the rendered page: each free text
    (titles, subtitles, notes), each table as a whole (every cell and every cell's text), each
    image axes, each chart axes with its labels. Cells of one table are one element."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    elements: list[tuple[str, Bbox]] = []

    def text(label: str, artist) -> None:
        if artist.get_visible() and artist.get_text().strip():
            elements.append((f"{label} {artist.get_text()[:50]!r}", artist.get_window_extent(renderer)))

    for artist in fig.texts:
        text("text", artist)
    for ax in fig.axes:
        for table in ax.tables:
            cells = table.get_celld().values()
            boxes = [c.get_window_extent(renderer) for c in cells]
            boxes += [c.get_text().get_window_extent(renderer) for c in cells if c.get_text().get_text()]
            first = table.get_celld()[0, 0].get_text().get_text()
            elements.append((f"table starting {first!r}", Bbox.union(boxes)))
        for artist in [*ax.texts, ax.title, ax._left_title, ax._right_title]:
            text("axes text", artist)
        if ax.images:
            elements.append(("image", ax.get_window_extent(renderer)))
        elif not ax.tables and ax.axison:
            elements.append(("chart", ax.get_tightbbox(renderer)))
    return elements


def layout_problems(fig: Figure) -> list[str]:
    """Every pair of drawn elements that overlap, and every element beyond the page's edge."""
    page = fig.bbox
    elements = drawn_elements(fig)
    problems = []
    for name, box in elements:
        if box.x0 < page.x0 - TOLERANCE or box.y0 < page.y0 - TOLERANCE or box.x1 > page.x1 + TOLERANCE or box.y1 > page.y1 + TOLERANCE:
            problems.append(f"{name} extends beyond the page")
    for (a, box_a), (b, box_b) in itertools.combinations(elements, 2):
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if width > TOLERANCE and height > TOLERANCE:
            problems.append(f"{a} overlaps {b}")
    return problems


def _page_texts(fig: Figure) -> list[str]:
    texts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        for table in ax.tables:
            texts += [c.get_text().get_text() for c in table.get_celld().values()]
    return texts


def _tables(fig: Figure) -> list[list[list[str]]]:
    """Each table's cells as rows of text, header first."""
    out = []
    for ax in fig.axes:
        for table in ax.tables:
            cells = table.get_celld()
            n_rows, n_cols = max(r for r, _ in cells) + 1, max(c for _, c in cells) + 1
            out.append([[cells[r, c].get_text().get_text() for c in range(n_cols)] for r in range(n_rows)])
    return out


def _png(width: float, height: float) -> bytes:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([1, 2, 3], [3, 1, 2])
    ax.set_title("a chart")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def test_the_layout_check_finds_a_chart_over_a_table_and_text_off_the_page():
    import matplotlib.image as mpimg

    fig = Figure(figsize=(8, 6))
    table_ax = fig.add_axes((0.05, 0.5, 0.5, 0.4))
    table_ax.axis("off")
    table_ax.table(cellText=[["a", "1"], ["b", "2"]], colLabels=["name", "value"], bbox=(0, 0, 1, 1))
    image_ax = fig.add_axes((0.4, 0.3, 0.5, 0.4))  # over the table's right half
    image_ax.imshow(mpimg.imread(io.BytesIO(_png(4, 3)), format="png"))
    image_ax.axis("off")
    fig.text(0.9, 0.05, "a note that runs past the right edge of the page")
    problems = layout_problems(fig)
    assert any("table starting 'name'" in p and "image" in p for p in problems), problems
    assert any("a note that runs past" in p and "beyond the page" in p for p in problems), problems
    clean = Figure(figsize=(8, 6))
    clean.text(0.05, 0.9, "title")
    ax = clean.add_axes((0.05, 0.1, 0.4, 0.6))
    ax.axis("off")
    ax.table(cellText=[["a", "1"]], colLabels=["name", "value"], bbox=(0, 0, 1, 1))
    assert layout_problems(clean) == []


def test_a_table_wider_than_the_page_is_split_and_nothing_overlaps():
    wide = pl.DataFrame(
        {"kpi": ["fill_rate (%)", "revenue (money)"], **{f"scenario_with_a_long_name_{k}": ["99.9%", "3,739,775"] for k in range(9)}}
    )
    spec = pack._Spec("wide", "a table of nine scenarios next to two charts", [pack._Block(wide, "KPIs")], [_png(10, 6), _png(8, 4.5)])
    figures = pack._render(pack._Ruler(), spec)
    for fig in figures:
        assert layout_problems(fig) == []
    headers = [t[0] for fig in figures for t in _tables(fig)]
    assert len(headers) >= 2 and all(h[0] == "kpi" for h in headers)  # column groups, the KPI column repeated
    shown = {h for header in headers for h in header[1:]}
    assert shown == {f"scenario with a long name {k}" for k in range(9)}  # every scenario, once


@pytest.fixture
def cycle_frames(warehouse_copy):
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    try:
        frames = {**load_cycle_frames(con, CYCLE), **pack_inputs(con, CYCLE, load_settings().scenarios.named())}
        version = governance.plan_version(con, CYCLE)
        status = governance.approval_status(con, CYCLE)
    finally:
        con.close()
    return frames, version, status


def _charts(cycle_warehouse) -> dict[str, bytes]:
    folder = cycle_warehouse.parent / "charts" / CYCLE
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_no_page_of_a_real_cycles_pack_has_overlapping_elements_or_runs_off_the_page(cycle_frames, cycle_warehouse, tmp_path):
    frames, version, status = cycle_frames
    charts = _charts(cycle_warehouse)
    assert len(charts) >= 5 and frames["executive_summary"]["scenario"].n_unique() >= 5  # wide scenario tables, every chart
    figures = pack.pack_figures(CYCLE, frames, charts, version, status)
    problems = {n: layout_problems(fig) for n, fig in enumerate(figures, start=1)}
    assert not any(problems.values()), {n: p for n, p in problems.items() if p}
    pdf = pack.review_pack(tmp_path, CYCLE, frames, charts, version, status)
    assert len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes())) == len(figures)  # the test checked what is written
    assert len(pack.pack_pages(tmp_path, CYCLE)) == len(figures)


def test_page_one_asks_for_the_decision_and_shows_the_top_exception_and_the_scenarios(cycle_frames, cycle_warehouse):
    frames, version, status = cycle_frames
    first = pack.pack_figures(CYCLE, frames, _charts(cycle_warehouse), version, status)[0]
    texts = "\n".join(_page_texts(first))
    assert "Decisions needed" in texts and f"sop approve --cycle {CYCLE}" in texts
    assert "next 12 months (2026-11..2027-10)" in texts and "money (input currency)" in texts
    tables = _tables(first)
    exceptions = next(t for t in tables if t[0][:3] == ["rank", "what", "money"])
    biggest = frames["exceptions"].filter(pl.col("in_executive_list"))["money"].max()
    assert exceptions[1][0] == "1" and exceptions[1][2] == f"{biggest:,.0f}"
    # Gross margin % of the baseline over the KPI horizon, from the financial plan itself.
    fin = frames["financial_plan"].filter(
        (pl.col("scenario") == "baseline") & (pl.col("month") >= dt.date(2026, 11, 1)) & (pl.col("month") < dt.date(2027, 11, 1))
    )
    margin = fin["gross_margin"].sum() / fin["revenue"].sum()
    scenarios = next(t for t in tables if "gross margin %" in t[0])
    baseline = next(row for row in scenarios if row[0] == "baseline")
    assert baseline[scenarios[0].index("gross margin %")] == f"{100 * margin:.1f}%"
    assert baseline[scenarios[0].index("revenue (money)")] == f"{fin['revenue'].sum():,.0f}"
    assert [row[0] for row in scenarios[1:]][0] == "baseline" and len(scenarios) - 1 == frames["executive_summary"]["scenario"].n_unique()


def test_page_one_reads_the_exception_list_and_the_open_decisions_when_they_exist(cycle_frames, cycle_warehouse):
    frames, version, status = cycle_frames
    exception = {
        "cycle": CYCLE,
        "step": "supply_review",
        "family": None,
        "sku": None,
        "resource": "POZ-L03",
        "material": None,
        "first_month": dt.date(2027, 9, 1),
        "last_month": dt.date(2027, 12, 1),
        "period_label": "2027-09..2027-12",
        "money_basis": "overtime premium + late units it binds",
        "in_baseline": True,
        "owner": "Plant manager Poznan",
        "description": "POZ-L03 above 95% utilisation",
    }
    frames["exceptions"] = pl.DataFrame(
        [
            {
                **exception,
                "exception_id": "E1",
                "rank": 1,
                "kind": "capacity",
                "money": 90000.0,
                "scenarios": "baseline, heating_downturn",
                "recommendation": "Add a Saturday shift on POZ-L03",
                "in_executive_list": True,
            },
            {
                **exception,
                "exception_id": "E2",
                "rank": 2,
                "kind": "shortfall",
                "money": 40000.0,
                "scenarios": "baseline",
                "recommendation": "Expedite the Kitchen launch stock",
                "in_executive_list": True,
            },
            {
                **exception,
                "exception_id": "E3",
                "rank": 3,
                "kind": "forecast_bias",
                "money": 50.0,
                "scenarios": "baseline",
                "recommendation": "Review the sales layer bias",
                "in_executive_list": False,
            },
        ]
    )
    frames["decision_followup"] = pl.DataFrame(
        {
            "cycle": [CYCLE] * 3,
            "decision_id": ["D-2026-09-1", "D-2026-10-1", "D-2026-10-2"],
            "raised_cycle": ["2026-09", "2026-10", "2026-10"],
            "action": ["Qualify a second supplier for M-ALU", "Raise the Garden safety stock", "Close the old Poznan line"],
            "owner": ["Procurement", "Supply planning", "Operations"],
            "due_cycle": ["2026-10", "2026-12", "2026-11"],
            "status": ["overdue", "open", "done"],
            "outcome": [None, None, "closed"],
        }
    )
    figures = pack.pack_figures(CYCLE, frames, _charts(cycle_warehouse), version, status)
    first = figures[0]
    assert layout_problems(first) == []
    tables = _tables(first)
    listed = next(t for t in tables if t[0][:3] == ["rank", "what", "money"])
    assert [row[0] for row in listed[1:]] == ["1", "2"]  # only the executive list, by rank
    assert listed[1][listed[0].index("recommendation")].replace("\n", " ") == "Add a Saturday shift on POZ-L03"
    assert listed[1][listed[0].index("owner")].replace("\n", " ") == "Plant manager Poznan" and listed[1][2] == "90,000"
    assert listed[1][1].replace("\n", " ") == "capacity, POZ-L03, 2027-09..2027-12"
    followup = next(t for t in tables if t[0][0] == "decision id")
    assert [row[0] for row in followup[1:]] == ["D-2026-09-1", "D-2026-10-1"]  # overdue first, done left out


def _pdf_text(path) -> str:
    if shutil.which("pdftotext") is None:
        if os.environ.get("CI"):  # .ci/run installs it: a CI run must not skip this check
            pytest.fail("pdftotext (poppler-utils) is not installed")
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", "-l", "1", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_publishing_the_plan_of_record_rewrites_the_pack_with_who_approved(warehouse_copy, cycle_warehouse, demo_dir):
    shutil.copytree(cycle_warehouse.parent / "charts", warehouse_copy.parent / "charts")
    folder = warehouse_copy.parent / "charts" / CYCLE
    pdf, first_png = folder / f"review_pack_{CYCLE}.pdf", pack.pack_pages(folder, CYCLE)[0]
    before, png_before = pdf.stat().st_mtime_ns, first_png.stat().st_mtime_ns
    assert "no approval yet" in _pdf_text(pdf)
    paths = ["--data", str(demo_dir), "--warehouse", str(warehouse_copy)]
    assert sop(["approve", "--cycle", CYCLE, "--scenario", "baseline", "--by", "Dana (CEO)"] + paths) == 0
    assert pdf.stat().st_mtime_ns > before and first_png.stat().st_mtime_ns > png_before
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    decision = q(warehouse_copy, "select decided_at, plan_version from planning.decisions").row(0, named=True)
    page_one = " ".join(_pdf_text(pdf).split())
    assert (
        f"Approved: scenario baseline by Dana (CEO) on {decision['decided_at']:%Y-%m-%d %H:%M} UTC, "
        f"plan version {governance.short_version(decision['plan_version'])}" in page_one
    )
    assert "the plan of record is published." in page_one
    assert b"plan of record published" in pdf.read_bytes()  # the PDF's Subject says so too
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    try:
        assert governance.approval_status(con, CYCLE)["matches"]  # the rewritten pack did not change the plan version
    finally:
        con.close()


# --- the summary pages after page 1 ------------------------------------------------------------

HORIZON = (dt.date(2026, 11, 1), dt.date(2027, 11, 1))  # the KPI horizon: next 12 months of cycle 2026-11


def _titled(figures: list[Figure], title: str) -> list[Figure]:
    """The pages whose title starts with `title` (its continuation pages included)."""
    return [fig for fig in figures if fig.texts and fig.texts[0].get_text().startswith(title)]


def _table_with(figures: list[Figure], header: str) -> list[list[str]]:
    """The first table on these pages with `header` among its column names, its rows joined
    across continuation pages (header first, once)."""
    rows: list[list[str]] = []
    for fig in figures:
        for t in _tables(fig):
            if header in t[0]:
                rows += t if not rows else t[1:]
    assert rows, f"no table with column {header!r}"
    return rows


def _number(cell: str) -> float:
    return float(cell.replace(",", "").replace("%", "").replace(" pts", ""))


def _column(table: list[list[str]], name: str, row: str) -> str:
    return next(r for r in table[1:] if r[0] == row)[table[0].index(name)]


def test_the_family_page_adds_up_demand_supply_and_budget_over_the_horizon(cycle_frames, cycle_warehouse, warehouse_copy):
    frames, version, status = cycle_frames
    figures = pack.pack_figures(CYCLE, frames, _charts(cycle_warehouse), version, status)
    assert figures[1].texts[0].get_text() == "Demand vs supply vs budget by family"  # right after page 1
    page = _titled(figures, "Demand vs supply vs budget by family")
    assert "next 12 months (2026-11..2027-10)" in "\n".join(_page_texts(page[0]))
    table = _table_with(page, "consensus demand (units)")
    window = f"month >= '{HORIZON[0]}' and month < '{HORIZON[1]}'"
    demand = q(
        warehouse_copy,
        f"select family, sum(quantity) as units from planning.consensus_demand where cycle = '{CYCLE}' and {window} group by 1",
    )
    assert _number(_column(table, "consensus demand (units)", "TOTAL")) == pytest.approx(demand["units"].sum(), abs=0.5)
    for family, units in demand.rows():
        assert _number(_column(table, "consensus demand (units)", family)) == pytest.approx(units, abs=0.5)
    shipped = q(
        warehouse_copy, f"select sum(shipped) as u from planning.supply_plan where cycle = '{CYCLE}' and scenario = 'baseline' and {window}"
    )["u"][0]
    assert _number(_column(table, "supplied (units)", "TOTAL")) == pytest.approx(shipped, abs=0.5)
    # The budget from the budget file itself (marts), not from the budget gap table the page reads.
    budget = q(warehouse_copy, f"select sum(volume) as units, sum(revenue) as revenue from marts.fct_budget where {window}").row(
        0, named=True
    )
    assert _number(_column(table, "budget (units)", "TOTAL")) == pytest.approx(budget["units"], abs=0.5)
    revenue = q(
        warehouse_copy,
        f"select sum(revenue) as r from planning.financial_plan where cycle = '{CYCLE}' and scenario = 'baseline' and {window}",
    )["r"][0]
    assert _number(_column(table, "revenue at plan price", "TOTAL")) == pytest.approx(revenue, abs=0.5)
    assert _number(_column(table, "revenue - budget", "TOTAL")) == pytest.approx(revenue - budget["revenue"], abs=1)
    for fig in page:
        assert layout_problems(fig) == []


def test_the_scenarios_page_shows_every_scenario_and_its_difference_to_the_baseline(cycle_frames, cycle_warehouse, warehouse_copy):
    frames, version, status = cycle_frames
    page = _titled(pack.pack_figures(CYCLE, frames, _charts(cycle_warehouse), version, status), "Scenarios side by side")
    table = _table_with(page, "baseline")
    money = q(
        warehouse_copy,
        f"select scenario, sum(revenue) as revenue, sum(overtime_hours) as hours from planning.financial_plan "
        f"where cycle = '{CYCLE}' and month >= '{HORIZON[0]}' and month < '{HORIZON[1]}' group by 1",
    )
    assert set(table[0][1:]) == {s.replace("_", " ") for s in money["scenario"]}
    rows = {r[0]: r for r in table[1:]}
    labels = [r[0] for r in table[1:]]
    vs = table[labels.index("revenue") + 2]  # the revenue row, then its difference to the baseline
    assert vs[0].strip() == "vs baseline"
    base = money.filter(pl.col("scenario") == "baseline").row(0, named=True)
    for scenario, revenue, hours in money.rows():
        col = table[0].index(scenario.replace("_", " "))
        assert _number(rows["revenue"][col]) == pytest.approx(revenue, abs=0.5)
        assert _number(rows["overtime hours"][col]) == pytest.approx(hours, abs=0.5)
        if scenario != "baseline":
            assert _number(vs[col]) == pytest.approx(revenue - base["revenue"], abs=1)
    kinds = {n: s.kind for n, s in load_settings().scenarios.named().items()}
    assert all(rows["kind"][table[0].index(n.replace("_", " "))] == k for n, k in kinds.items())


def test_the_assumptions_page_lists_the_scenarios_prices_and_the_largest_consensus_input(cycle_frames, cycle_warehouse, warehouse_copy):
    frames, version, status = cycle_frames
    page = _titled(pack.pack_figures(CYCLE, frames, _charts(cycle_warehouse), version, status), "Assumptions")
    scenarios = _table_with(page, "description")
    assert [r[0] for r in scenarios[1:]] == list(load_settings().scenarios.named())
    prices = _table_with(page, "price change %")
    last = q(warehouse_copy, f"select max(month) as m from planning.financial_plan where cycle = '{CYCLE}'")["m"][0]
    plan = q(warehouse_copy, f"select * from marts.fct_price_plan where month <= '{last}'")
    assert len(prices) - 1 == plan.height > 0
    inputs = _table_with(page, "units change")
    # The largest single input: one layer's change on one key and month, by one owner for one
    # reason; family inputs are spread over the family's SKUs and count once.
    largest = q(
        warehouse_copy,
        f"""
        select sum(l.adjustment) as units
        from planning.demand_plan_layers l
        join (select distinct sku, family from planning.consensus_demand where cycle = '{CYCLE}') c using (sku)
        where l.cycle = '{CYCLE}' and l.layer <> 'statistical' and l.adjustment <> 0
        group by l.layer, l.owner, coalesce(l.reason, ''), l.month, case when l.input_level = 'family' then c.family else l.sku end
        order by abs(sum(l.adjustment)) desc limit 1
        """,
    )["units"][0]
    assert _number(inputs[1][inputs[0].index("units change")]) == pytest.approx(largest, abs=0.5)
    assert len(inputs) - 1 == 10


def test_the_risks_page_splits_the_exceptions_and_values_the_demand_upside(cycle_frames, cycle_warehouse, warehouse_copy):
    frames, version, status = cycle_frames
    page = _titled(pack.pack_figures(CYCLE, frames, _charts(cycle_warehouse), version, status), "Risks and opportunities in money")
    risks = _table_with(page, "money at risk")
    excs = q(
        warehouse_copy, f"select rank, money, money_basis, in_executive_list from planning.exceptions where cycle = '{CYCLE}' order by rank"
    )
    below = excs.filter(~pl.col("money_basis").str.contains("(above)", literal=True))
    n = max(8, below["in_executive_list"].sum())  # at least the executive list, that page 1 points to
    assert [int(r[0]) for r in risks[1:]] == below["rank"].head(n).to_list()
    assert [_number(r[risks[0].index("money at risk")]) for r in risks[1:]] == pytest.approx(
        below["money"].head(n).round(0).to_list(), abs=0.5
    )
    upside = _table_with(page, "upside revenue")
    family = upside[1][0]
    window = f"month >= '{HORIZON[0]}' and month < '{HORIZON[1]}'"
    units = q(
        warehouse_copy,
        f"select sum(p90 - p50) as u from planning.family_forecast where cycle = '{CYCLE}' and family = '{family}' and {window}",
    )["u"][0]
    fin = q(
        warehouse_copy,
        f"select sum(revenue) as r, sum(volume) as v from planning.financial_plan "
        f"where cycle = '{CYCLE}' and scenario = 'baseline' and family = '{family}' and {window}",
    ).row(0, named=True)
    assert _number(upside[1][upside[0].index("upside revenue")]) == pytest.approx(units * fin["r"] / fin["v"], abs=1)
    for fig in page:
        assert layout_problems(fig) == []


def _followup(n: int) -> pl.DataFrame:
    statuses = ["overdue", "open", "open", "closed", "open", "resolved", "open", "open"][:n]
    return pl.DataFrame(
        {
            "cycle": [CYCLE] * n,
            "decision_id": [f"D2026-10-{k:02d}" for k in range(1, n + 1)],
            "raised_cycle": ["2026-10"] * n,
            "kind": ["action"] * n,
            "action": [f"Action number {k} on the Garden plan" for k in range(1, n + 1)],
            "owner": ["Supply planning"] * n,
            "due_cycle": (["2026-10"] + ["2026-12"] * 7)[:n],
            "exception_id": [None] * n,
            "status": statuses,
            "money_when_raised": [1000.0 * k for k in range(1, n + 1)],
            "money_now": [None] * n,
            "outcome": [f"{s}: outcome {k}" for k, s in enumerate(statuses, start=1)],
            "decided_by": ["Dana (CEO)"] * n,
        }
    )


def test_the_follow_up_page_lists_every_decision_and_page_one_the_first_open_ones(cycle_frames, cycle_warehouse):
    frames, version, status = cycle_frames
    frames = {**frames, "decision_followup": _followup(8)}
    figures = pack.pack_figures(CYCLE, frames, _charts(cycle_warehouse), version, status)
    open_ids = ["D2026-10-01", "D2026-10-02", "D2026-10-03", "D2026-10-05", "D2026-10-07", "D2026-10-08"]  # overdue first
    first = next(t for t in _tables(figures[0]) if t[0][0] == "decision id")
    shown = len(first) - 1
    assert 1 <= shown <= 3 and [r[0] for r in first[1:]] == open_ids[:shown]
    assert f"Earlier decisions still open, overdue first (6); {6 - shown} more on the follow-up page" in _page_texts(figures[0])
    page = _titled(figures, "Follow-up of earlier decisions")
    table = _table_with(page, "decision id")
    listed = {r[0]: r[table[0].index("status")] for r in table[1:]}
    assert listed == dict(zip(_followup(8)["decision_id"], _followup(8)["status"]))
    assert "1 overdue, 5 open, 1 resolved, 1 closed." in _page_texts(page[-1])
    for fig in [figures[0], *page]:
        assert layout_problems(fig) == []
    empty = pack.pack_figures(CYCLE, {**frames, "decision_followup": _followup(0)}, None, version, status)
    assert any("No earlier decisions to follow up" in t for t in _page_texts(_titled(empty, "Follow-up of earlier decisions")[0]))


def test_last_month_is_compared_with_the_earlier_cycles_plan_of_record(warehouse_copy, demo_dir):
    paths = ["--data", str(demo_dir), "--warehouse", str(warehouse_copy)]
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    try:
        before = pack_inputs(con, CYCLE)
        frames = {**load_cycle_frames(con, CYCLE), **before}
    finally:
        con.close()
    page = _titled(pack.pack_figures(CYCLE, frames), "Last month: actual vs plan of record, 2026-10")
    assert "No earlier plan of record planned 2026-10" in "\n".join(_page_texts(page[0]))
    assert sop(["approve", "--cycle", "2026-10", "--scenario", "baseline", "--by", "Dana (CEO)"] + paths) == 0
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    try:
        frames = {**load_cycle_frames(con, CYCLE), **pack_inputs(con, CYCLE)}
    finally:
        con.close()
    page = _titled(pack.pack_figures(CYCLE, frames), "Last month: actual vs plan of record, 2026-10")
    assert "plan of record of cycle 2026-10 (scenario baseline, approved by Dana (CEO)" in "\n".join(_page_texts(page[0]))
    table = _table_with(page, "planned units")
    planned = dict(
        q(
            warehouse_copy,
            "select family, sum(quantity) from planning.plan_of_record_demand where cycle = '2026-10' and month = '2026-10-01' group by 1",
        ).rows()
    )
    actual = dict(
        q(warehouse_copy, "select family, sum(quantity) from marts.fct_sales_monthly where month = '2026-10-01' group by 1").rows()
    )
    assert planned and set(planned) == set(actual) == {r[0] for r in table[1:]} - {"TOTAL"}
    for family in planned:
        row = next(r for r in table[1:] if r[0] == family)
        assert _number(row[table[0].index("planned units")]) == pytest.approx(planned[family], abs=0.5)
        assert _number(row[table[0].index("actual units")]) == pytest.approx(actual[family], abs=0.5)
        diff = actual[family] - planned[family]
        assert _number(row[table[0].index("units difference")]) == pytest.approx(diff, abs=0.5)
        assert _number(row[table[0].index("units difference %")]) == pytest.approx(100 * diff / planned[family], abs=0.05)
    total = next(r for r in table[1:] if r[0] == "TOTAL")
    assert _number(total[table[0].index("actual units")]) == pytest.approx(sum(actual.values()), abs=0.5)
    for fig in page:
        assert layout_problems(fig) == []
