"""The executive review pack: a PDF whose first page says what to decide, then the pages of the
review steps (product, demand, supply, financial, executive).

Every page is laid out by measuring what it draws (text widths from the renderer), so that a
table never runs under a chart or off the page: a table too wide is split into column groups, a
table too long continues on the next page, and charts that would be too small next to the
tables get a page of their own. `pack_figures` returns exactly the figures `review_pack`
writes, so a test can check what an executive reads."""

from __future__ import annotations

import datetime as dt
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from sop_pipeline import registry
from sop_pipeline.executive.exceptions import review_notes, with_scenario
from sop_pipeline.executive.governance import scenario_order, short_version
from sop_pipeline.executive.kpis import budget_rows, scenarios_of, window
from sop_pipeline.periods import add_months, cycle_label, cycle_month
from sop_pipeline.settings.gates import ExecutiveGates
from sop_pipeline.tempfiles import remove_leftovers, temp_path

PACK_STEPS = ("product", "demand", "supply", "financial", "executive")
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

# Page geometry, inches: A4 landscape, margins, the footer band.
_W, _H = 11.69, 8.27
_MARGIN = 0.4
_FOOTER = 0.45  # content stops this far above the bottom edge; the footer line sits below
_GAP = 0.18
_DPI = 100
_FONTS = (8.0, 7.0)  # table font sizes tried before a table is split into column groups
_MIN_CHART_SCALE = 0.4  # a chart drawn smaller than this share of its size gets its own page


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
        if unit == "pct":
            return f"{value:+.1f}%"
        if unit == "ratio per cycle":
            return f"{100 * value:+.2f} pts/cycle"
        if isinstance(value, int) or unit in ("units", "currency") or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.2f}"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, dt.date):
        return f"{value:%Y-%m}"
    return str(value)


def _months(start: dt.date, end: dt.date) -> str:
    return f"{start:%Y-%m}..{end:%Y-%m}"


@dataclass(frozen=True)
class _Block:
    """One table: rows beyond `max_rows` are counted, not shown; `wrap` columns (at most that
    many inches wide) break into lines instead of being cut; the first `key_columns` repeat in
    every column group when the table is split."""

    frame: pl.DataFrame
    title: str
    units: Mapping[str, str] | None = None
    max_rows: int = 12
    max_chars: int = 60
    wrap: Mapping[str, float] = field(default_factory=dict)
    key_columns: int = 1


@dataclass(frozen=True)
class _Note:
    """A sentence or a few, wrapped to the column."""

    text: str
    size: float = 9.0
    color: str = "#333333"
    weight: str = "normal"


@dataclass
class _Spec:
    title: str
    subtitle: str
    items: list[_Block | _Note]
    charts: list[bytes] = field(default_factory=list)
    missing: str | None = None  # the step did not run: one centred sentence


# --- measuring -------------------------------------------------------------------------------


class _Ruler:
    """Text widths in inches, from the same Agg renderer the PNG pages are drawn with."""

    def __init__(self) -> None:
        fig = Figure(figsize=(_W, _H), dpi=_DPI)
        self._renderer = FigureCanvasAgg(fig).get_renderer()

    def width(self, text: str, size: float, weight: str = "normal") -> float:
        if not text:
            return 0.0
        lines = text.split("\n")
        prop = FontProperties(size=size, weight=weight)
        return max(self._renderer.get_text_width_height_descent(line, prop, ismath=False)[0] for line in lines) / _DPI

    def wrap(self, text: str, size: float, width: float, weight: str = "normal", max_lines: int | None = None) -> list[str]:
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if not line or self.width(candidate, size, weight) <= width:
                    line = candidate
                else:
                    lines.append(line)
                    line = word
            lines.append(line)
        lines = [self.clip(line, size, width, weight) for line in lines]
        if max_lines is not None and len(lines) > max_lines:
            lines = lines[:max_lines]
            lines[-1] = self.clip(lines[-1] + " ...", size, width, weight, force=True)
        return lines

    def clip(self, text: str, size: float, width: float, weight: str = "normal", force: bool = False) -> str:
        if not force and self.width(text, size, weight) <= width:
            return text
        body = text[:-4] if force else text
        while body and self.width(body + "...", size, weight) > width:
            body = body[:-1]
        return body.rstrip() + "..."


def _line_height(size: float) -> float:
    return size * 1.35 / 72


# --- tables ----------------------------------------------------------------------------------


@dataclass
class _Table:
    """A table ready to draw: cell strings (with line breaks), column widths and row heights,
    inches."""

    columns: list[str]
    rows: list[list[str]]
    widths: list[float]
    heights: list[float]
    size: float

    @property
    def width(self) -> float:
        return sum(self.widths)

    @property
    def height(self) -> float:
        return sum(self.heights)


def _cells(block: _Block) -> tuple[list[str], list[list[str]]]:
    shown = block.frame.head(block.max_rows)

    def cell(column: str, value: Any) -> str:
        if isinstance(value, str):
            if column in block.wrap or len(value) <= block.max_chars:
                return value
            return value[: block.max_chars - 3] + "..."
        return _fmt(value, (block.units or {}).get(column))

    header = [c.replace("_", " ") for c in shown.columns]
    return header, [[cell(c, v) for c, v in zip(shown.columns, row)] for row in shown.iter_rows()]


_PAD = 0.05  # inches of padding each side of a cell's text (matplotlib's is a share of the width)


def _column_width(ruler: _Ruler, texts: Sequence[str], size: float, header: str) -> float:
    widest = max([ruler.width(t, size) for t in texts] + [ruler.width(header, size, "bold")])
    return widest + 2 * _PAD + 0.04


def _fit(ruler: _Ruler, block: _Block, avail: float) -> list[_Table]:
    """The block as one table in `avail` inches, at the largest font that fits; else split
    into column groups (key columns repeated); a column wider than the page is cut."""
    header, rows = _cells(block)
    wrap = {header.index(c.replace("_", " ")): w for c, w in block.wrap.items() if c.replace("_", " ") in header}

    def measure(size: float, cap: float) -> tuple[list[list[str]], list[float]]:
        cells = [list(r) for r in rows]
        widths = []
        for j, name in enumerate(header):
            limit = min(wrap.get(j, cap), cap)
            inner = limit - 2 * _PAD - 0.04
            for r in cells:
                if j in wrap:
                    r[j] = "\n".join(ruler.wrap(r[j], size, inner, max_lines=3))
                else:
                    r[j] = ruler.clip(r[j], size, inner)
            label = ruler.clip(name, size, inner, "bold")
            widths.append(min(limit, _column_width(ruler, [r[j] for r in cells], size, label)))
        return cells, widths

    def table(size: float, cols: list[int], cells: list[list[str]], widths: list[float]) -> _Table:
        line = _line_height(size)
        heights = [line + 0.09] + [line * max(r[j].count("\n") + 1 for j in cols) + 0.09 for r in cells]
        return _Table([header[j] for j in cols], [[r[j] for j in cols] for r in cells], [widths[j] for j in cols], heights, size)

    every = list(range(len(header)))
    for size in _FONTS:
        cells, widths = measure(size, avail)
        if sum(widths) <= avail:
            return [table(size, every, cells, widths)]
    size = _FONTS[-1]
    keys = every[: min(block.key_columns, len(header) - 1)]
    key_width = sum(widths[j] for j in keys)
    cells, widths = measure(size, avail - key_width)  # any other column fits next to the keys
    groups: list[list[int]] = []
    for j in every[len(keys) :]:
        if groups and key_width + sum(widths[k] for k in groups[-1]) + widths[j] <= avail:
            groups[-1].append(j)
        else:
            groups.append([j])
    rest = every[len(keys) :]
    per = math.ceil(len(rest) / len(groups))  # as many groups, but even: 4 + 3 scenarios, not 6 + 1
    even = [rest[k : k + per] for k in range(0, len(rest), per)]
    if len(even) == len(groups) and all(key_width + sum(widths[k] for k in g) <= avail for g in even):
        groups = even
    return [table(size, keys + g, cells, widths) for g in groups]


def _draw_table(fig: Figure, t: _Table, left: float, top: float) -> None:
    """The table fills an axes of exactly its size, so its extent is what the layout reserved."""
    ax = fig.add_axes((left / _W, (top - t.height) / _H, t.width / _W, t.height / _H))
    ax.axis("off")
    table = ax.table(
        cellText=t.rows or None,
        colLabels=t.columns,
        colWidths=[w / t.width for w in t.widths],
        cellLoc="left",
        bbox=(0, 0, 1, 1),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(t.size)
    for (row, col), cell in table.get_celld().items():
        cell.PAD = _PAD / t.widths[col]
        cell.set_height(t.heights[row] / t.height)
        cell.set_linewidth(0.4)
        cell.set_edgecolor("#999999")
        if row == 0:
            cell.set_facecolor("#e8eef5")
            cell.get_text().set_fontweight("bold")


# --- pages -----------------------------------------------------------------------------------


class _Page:
    """One figure being filled from the top; `left`/`width` is the column in use."""

    def __init__(self, ruler: _Ruler, title: str, subtitle: str):
        self.ruler = ruler
        self.fig = Figure(figsize=(_W, _H), dpi=_DPI)
        FigureCanvasAgg(self.fig)
        top = _H - _MARGIN
        self._text(title, _MARGIN, top, 15, _W - 2 * _MARGIN, weight="bold")
        top -= _line_height(15) + 0.05
        if subtitle:
            top = self._text(subtitle, _MARGIN, top, 9, _W - 2 * _MARGIN, color="#555555")
        self.top = top - _GAP
        self.start = self.top
        self.bottom = _FOOTER
        self.used = False

    def _text(self, text: str, left: float, top: float, size: float, width: float, color: str = "black", weight: str = "normal"):
        lines = self.ruler.wrap(text, size, width, weight)
        self.fig.text(left / _W, top / _H, "\n".join(lines), fontsize=size, color=color, weight=weight, va="top", ha="left")
        return top - _line_height(size) * len(lines)

    def room(self) -> float:
        return self.top - self.bottom

    def note(self, note: _Note, left: float, width: float) -> None:
        self.top = self._text(note.text, left, self.top, note.size, width, note.color, note.weight) - _GAP
        self.used = True

    def note_height(self, note: _Note, width: float) -> float:
        return _line_height(note.size) * len(self.ruler.wrap(note.text, note.size, width, note.weight)) + _GAP

    def heading_height(self, title: str, width: float) -> float:
        return _line_height(9.5) * len(self.ruler.wrap(title, 9.5, width, "bold")) + 0.05

    def table(self, title: str, t: _Table, left: float, width: float, more: str | None) -> None:
        self.top = self._text(title, left, self.top, 9.5, width, weight="bold") - 0.05
        _draw_table(self.fig, t, left, self.top)
        self.top -= t.height + 0.04
        if more:
            self.top = self._text(more, left, self.top, 7, width, color="#555555")
        self.top -= _GAP
        self.used = True


def _image(png: bytes):
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png")


def _place_image(fig: Figure, img, left: float, bottom: float, width: float, height: float) -> None:
    """The image in the box, keeping its shape; the axes is exactly the image's size."""
    h_px, w_px = img.shape[:2]
    scale = min(width / w_px, height / h_px)
    w, h = w_px * scale, h_px * scale
    ax = fig.add_axes(((left + (width - w) / 2) / _W, (bottom + (height - h) / 2) / _H, w / _W, h / _H))
    ax.imshow(img, aspect="auto", interpolation="antialiased")
    ax.axis("off")


def _scale(img, width: float, height: float) -> float:
    """How large the chart is drawn against its own size (charts are rendered at _DPI)."""
    h_px, w_px = img.shape[:2]
    return min(width / (w_px / _DPI), height / (h_px / _DPI))


def _render(ruler: _Ruler, spec: _Spec) -> list[Figure]:
    """The spec as one page, or more when its tables or charts do not fit on one."""
    page = _Page(ruler, spec.title, spec.subtitle)
    content = _W - 2 * _MARGIN
    if spec.missing:
        page.fig.text(0.5, 0.5, spec.missing, ha="center", va="center", fontsize=14, color="#888888")
        return [page.fig]
    images = [_image(png) for png in spec.charts]
    fitted = [(item, _fit(ruler, item, content)) if isinstance(item, _Block) else (item, None) for item in spec.items]
    widest = max([t.width for _, ts in fitted if ts for t in ts] + [0.0])
    column = min(content, max(widest, 0.42 * content))
    chart_width = content - column - 0.3
    side = bool(images) and chart_width >= 0.4 * content
    if side:
        slot = page.room() / len(images)
        side = min(_scale(img, chart_width, slot) for img in images) >= _MIN_CHART_SCALE
    width = column if side else content
    if not side:
        fitted = [(item, _fit(ruler, item, content) if isinstance(item, _Block) else None) for item in spec.items]
    pages = [page]

    def next_page() -> _Page:
        pages.append(_Page(ruler, f"{spec.title} (continued)", ""))
        return pages[-1]

    for item, tables in fitted:
        if isinstance(item, _Note):
            if page.used and page.note_height(item, width) > page.room():
                page = next_page()
            page.note(item, _MARGIN, width)
            continue
        total = item.frame.height
        if total == 0:
            empty = _Note(f"{item.title}: nothing to show", 9)
            if page.used and page.note_height(empty, width) > page.room():
                page = next_page()
            page.note(empty, _MARGIN, width)
            continue
        for k, t in enumerate(tables):
            title = item.title + (f" (part {k + 1} of {len(tables)})" if len(tables) > 1 else "")
            start = 0
            while start < len(t.rows):
                need_head = page.heading_height(title, width) + t.heights[0] + _line_height(7) + _GAP
                room = page.room() - need_head
                rows = 0
                while start + rows < len(t.rows) and sum(t.heights[start + 1 : start + rows + 2]) <= room:
                    rows += 1
                left_over = len(t.rows) - start - rows
                if rows < min(3, len(t.rows) - start) and page.used:
                    page = next_page()
                    continue
                rows = max(rows, 1)
                part = _Table(
                    t.columns, t.rows[start : start + rows], t.widths, [t.heights[0]] + t.heights[start + 1 : start + rows + 1], t.size
                )
                hidden = total - len(t.rows)
                more = None
                if start + rows >= len(t.rows) and hidden > 0:
                    more = f"... {hidden} more rows in the warehouse"
                elif left_over > 0:
                    more = f"continued on the next page ({left_over} more rows)"
                page.table(title, part, _MARGIN, width, more)
                start += rows
    if images and side:
        slot = (pages[0].start - pages[0].bottom) / len(images)
        for k, img in enumerate(images):
            bottom = pages[0].start - (k + 1) * slot
            _place_image(pages[0].fig, img, _MARGIN + column + 0.3, bottom + 0.05, chart_width, slot - 0.1)
    elif images:
        for first in range(0, len(images), 2):
            pair = images[first : first + 2]
            page = pages[-1] if not pages[-1].used else next_page()
            room = page.room()
            beside = min(_scale(img, (content - 0.3) / len(pair), room) for img in pair)
            stacked = min(_scale(img, content, (room - 0.2) / len(pair)) for img in pair)
            for k, img in enumerate(pair):
                if beside >= stacked:
                    w = (content - 0.3 * (len(pair) - 1)) / len(pair)
                    _place_image(page.fig, img, _MARGIN + k * (w + 0.3), page.bottom, w, room)
                else:
                    h = (room - 0.2 * (len(pair) - 1)) / len(pair)
                    _place_image(page.fig, img, _MARGIN, page.top - (k + 1) * h - k * 0.2, content, h)
            page.used = True
    return [p.fig for p in pages]


def _footers(figures: list[Figure], label: str) -> None:
    for number, fig in enumerate(figures, start=1):
        fig.text(
            (_W - _MARGIN) / _W,
            0.22 / _H,
            f"S&OP review pack {label}, page {number} of {len(figures)}",
            ha="right",
            fontsize=7,
            color="#777777",
        )


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
    numbers, and earlier decisions still open. Then product, demand, supply, financial and
    executive review, each continued on further pages when it does not fit."""
    gates = gates or ExecutiveGates()
    label = cycle_label(cycle)
    charts = dict(charts or {})
    by_step: dict[str, list[bytes]] = {s: [] for s in PACK_STEPS}
    for name in sorted(charts):
        by_step[_chart_step(name)].append(charts[name])

    def frame(name: str) -> pl.DataFrame | None:
        f = frames.get(name)
        return f if f is not None and f.height else None

    start = cycle_month(label)
    kpi = f"next {gates.kpi_horizon_months} months ({_months(start, add_months(start, gates.kpi_horizon_months - 1))})"
    specs = [
        _decisions_page(label, plan_version, approval, frames, frame, gates, kpi),
        _product_page(label, frame("product_portfolio"), frame("product_segmentation"), by_step["product"]),
        _demand_page(label, frame("consensus_demand"), frame("forecast_accuracy"), by_step["demand"]),
        _supply_page(frame("supply_plan"), frame("capacity_plan"), frame("executive_summary"), by_step["supply"], kpi),
        _financial_page(frame("financial_plan"), frame("budget_gap"), frame("executive_summary"), by_step["financial"], gates, kpi),
        _executive_page(frame("executive_summary"), frame("executive_exceptions"), approval, by_step["executive"], gates, kpi),
    ]
    ruler = _Ruler()
    figures = [fig for spec in specs for fig in _render(ruler, spec)]
    _footers(figures, label)
    return figures


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
            names.map_elements(lambda s: _scenario_list([n for n in s.to_list() if n], every), return_dtype=pl.Utf8).alias("scenarios"),
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
            pl.col("_in").map_elements(lambda s: _scenario_list(s.to_list(), every), return_dtype=pl.Utf8).alias("scenarios"),
        )
    )
    return table, distinct.height


def _scenario_list(names: list[str], every: set[str]) -> str:
    """Baseline first; an exception found in every scenario says so instead of listing them."""
    if len(every) > 1 and set(names) >= every:
        return f"all {len(every)} scenarios"
    return ", ".join(scenario_order(names))


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


def _decisions_page(label, version, approval, frames, frame, gates, kpi) -> _Spec:
    published = published_version(frames)
    latest = (approval or {}).get("latest_approval")
    header, ask = _approval_lines(label, version, approval, published)
    items: list[_Block | _Note] = [ask]
    listed, total = _decision_exceptions(frames, gates)
    if listed is not None:
        shown = min(total, PAGE_ONE_EXCEPTIONS)
        rest = f"; {total - shown} more on the executive review page" if total > shown else ""
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
        still = followup.filter(pl.col("status").is_in(["open", "overdue"])).sort(
            [pl.col("status") != "overdue", "due_cycle", "decision_id"]
        )
        items.append(
            _Block(
                still.select("decision_id", "raised_cycle", "action", "owner", "due_cycle", "status"),
                "Earlier decisions still open (overdue first)",
                max_rows=10,
                wrap={"action": 4.0},
            )
        )
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
