"""How a pack page is laid out: tables and notes filled from the top of an A4 landscape page,
measured with the renderer that draws them, so nothing is drawn over anything else or off the
page (a table too wide is split into column groups, one too long continues on the next page,
charts too small beside the tables get a page of their own)."""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

# Page geometry, inches: A4 landscape, margins, the footer band.
_W, _H = 11.69, 8.27
_MARGIN = 0.4
_FOOTER = 0.45  # content stops this far above the bottom edge; the footer line sits below
_GAP = 0.18
_DPI = 100
_FONTS = (8.0, 7.0)  # table font sizes tried before a table is split into column groups
_MIN_CHART_SCALE = 0.4  # a chart drawn smaller than this share of its size gets its own page


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
        # Laying out a pack measures the same cell texts many times (every column group, every
        # fit attempt), and each measurement lays the string out in FreeType: remembered.
        self._widths: dict[tuple[str, float, str], float] = {}

    def width(self, text: str, size: float, weight: str = "normal") -> float:
        if not text:
            return 0.0
        return max(self._line_width(line, size, weight) for line in text.split("\n"))

    def _line_width(self, line: str, size: float, weight: str) -> float:
        key = (line, size, weight)
        if key not in self._widths:
            prop = FontProperties(size=size, weight=weight)
            self._widths[key] = self._renderer.get_text_width_height_descent(line, prop, ismath=False)[0] / _DPI
        return self._widths[key]

    def wrap(self, text: str, size: float, width: float, weight: str = "normal", max_lines: int | None = None) -> list[str]:
        """Greedy word wrap. A candidate line's width is the line's so far plus a space and the
        word, each measured once: measuring every candidate from its start made wrapping
        quadratic in the paragraph. The words' kerning across a space is ignored (well under a
        point); each finished line is clipped by its measured width."""
        lines: list[str] = []
        space = self._line_width("a a", size, weight) - 2 * self._line_width("a", size, weight)
        for paragraph in text.split("\n"):
            line, line_width = "", 0.0
            for word in paragraph.split(" "):
                word_width = self._line_width(word, size, weight) if word else 0.0
                if not line:
                    line, line_width = word, word_width
                elif line_width + space + word_width <= width:
                    line, line_width = f"{line} {word}", line_width + space + word_width
                else:
                    lines.append(line)
                    line, line_width = word, word_width
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
