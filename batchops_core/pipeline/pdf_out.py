"""PDF report with fpdf2: title block, metadata, statistics, then the table.

fpdf2's `table()` costs ~2.3 ms per row here; this module draws rows itself (a rectangle and text
per cell, ~10× faster), wraps long text inside its cell, repeats the header on every page, and
caps very large tables at `max_rows` with a note above and below the table — never a silent
truncation. The core fonts cover Latin-1 only, so text is folded to it (dashes and quotes become
their ASCII forms; other characters become '?').
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

FOLD = str.maketrans(
    {
        "–": "-",
        "—": "-",
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "…": "...",
        "≥": ">=",
        "≤": "<=",
        "•": "*",
        "\u00a0": " ",
        "\t": " ",
        "\r": " ",
    }
)
MARGIN = 10.0
DROPPED = ("__row__",)
"""Columns of the work dataset a report never shows (the original row numbers)."""
MAX_LINES = 6
SAMPLE = 300
ESCAPE = str.maketrans({"\\": "\\\\", "(": "\\(", ")": "\\)", "\r": "\\r"})
"""What fpdf2's `escape_parens` does to a string drawn in a PDF content stream, in one pass."""


def latin1(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ").removesuffix(" 00:00:00").removesuffix("T00:00:00")
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    text = str(value).translate(FOLD)
    return text.encode("latin-1", "replace").decode("latin-1")


class _Report:
    def __init__(self, landscape: bool, font_size: float) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(orientation="L" if landscape else "P", unit="mm", format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(MARGIN, MARGIN, MARGIN)
        self.pdf.set_creator("BatchOps")
        self.font_size = font_size
        self.line_h = font_size * 0.45
        self.width = self.pdf.w - 2 * MARGIN
        self.bottom = self.pdf.h - MARGIN - 6
        self.page_no = 0
        self.max_char = font_size * 0.3528 * 1.02
        self.block_top: float | None = None
        self.block_widths: list[float] = []
        self._columns_at: tuple[list[float], list[str], float] = ([], [], 0.0)

    def new_page(self) -> None:
        self.close_block()
        self.pdf.add_page()
        self.page_no += 1
        self.pdf.set_font("Helvetica", "", 7)
        self.pdf.text(MARGIN, self.pdf.h - MARGIN + 2, f"Page {self.page_no}")
        self.pdf.set_xy(MARGIN, MARGIN)

    def heading(self, text: str, size: float = 14) -> None:
        self.pdf.set_font("Helvetica", "B", size)
        self.lines(latin1(text), MARGIN, self.width, size * 0.5)
        self.pdf.ln(1)

    def paragraph(self, text: str, size: float = 9, style: str = "") -> None:
        self.ensure(size)
        self.pdf.set_font("Helvetica", style, size)
        self.lines(latin1(text), MARGIN, self.width, size * 0.45)

    def ensure(self, height: float) -> None:
        if self.pdf.get_y() + height > self.bottom:
            self.new_page()

    def pairs(self, rows: Sequence[Sequence[Any]]) -> None:
        label_w = 45.0
        for label, value in rows:
            self.ensure(5)
            self.pdf.set_font("Helvetica", "B", 9)
            self.lines(latin1(label), MARGIN, label_w, 4.5, advance=False)
            self.pdf.set_font("Helvetica", "", 9)
            self.lines(latin1(value), MARGIN + label_w, self.width - label_w, 4.5)

    def lines(
        self, text: str, x: float, width: float, line_h: float, *, advance: bool = True
    ) -> None:
        """`text` wrapped to `width` at the cursor's height, left-aligned in the current font,
        then (with `advance`) the cursor at the left margin below it: what fpdf2's `multi_cell`
        drew here, whose line breaker was 40 % of a small upload's report."""
        pdf = self.pdf
        pad = pdf.c_margin
        y = pdf.get_y()
        baseline = 0.5 * line_h + 0.3 * pdf.font_size
        for line in self.wrap_all(text, width - 2 * pad):
            if line:
                pdf.text(x + pad, y + baseline, line)
            y += line_h
        if advance:
            pdf.set_xy(MARGIN, y)

    def wrap_all(self, text: str, width: float) -> list[str]:
        """Every line of `text` (its own line breaks kept) wrapped at words to `width` in the
        current font; never shortened, unlike a table cell's `wrap`."""
        out: list[str] = []
        for part in text.split("\n"):
            out += self._words(part, width)
        return out

    def _words(self, text: str, width: float) -> list[str]:
        sw = self.measure
        if sw(text) <= width:
            return [text]
        lines: list[str] = []
        current = ""
        for word in text.split():
            candidate = f"{current} {word}".strip()
            if sw(candidate) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            while sw(word) > width and len(word) > 1:
                cut = max(1, int(len(word) * width / sw(word)))
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        if current:
            lines.append(current)
        return lines or [""]

    # -- tables -------------------------------------------------------------------------------

    def widths(self, header: list[str], rows: list[list[str]]) -> list[float]:
        """Column widths from the header's longest word (bold) and the 90th percentile of the
        first rows' text, scaled to the page width."""
        self.pdf.set_font("Helvetica", "B", self.font_size)
        heads = [max((self.measure(w) for w in h.split()), default=4.0) for h in header]
        self.pdf.set_font("Helvetica", "", self.font_size)
        self.bold = False
        natural = []
        for j, head in enumerate(heads):
            content = sorted(self.measure(r[j]) for r in rows[:SAMPLE]) or [0.0]
            typical = content[int(len(content) * 0.9)]
            natural.append(max(head, min(typical, 60.0), 6.0) + 2.4)
        total = sum(natural)
        return [w * self.width / total for w in natural]

    def measure(self, text: str) -> float:
        """Width in mm from the core font's glyph table: fpdf2's get_string_width copies its
        graphics state on every call and was 70 % of the report time."""
        cw = self.pdf.current_font.cw
        return sum(cw.get(c, 600) for c in text) * self.pdf.font_size_pt / 1000 / self.pdf.k

    def wrap(self, text: str, width: float) -> list[str]:
        if len(text) * self.max_char <= width:
            return [text]  # fits even if every glyph were the widest: skip measuring
        lines = self._words(text, width)
        if len(lines) > MAX_LINES:
            lines = lines[: MAX_LINES - 1] + [
                lines[MAX_LINES - 1][: max(1, len(lines[MAX_LINES - 1]) - 3)] + "..."
            ]
        return lines

    def close_block(self) -> None:
        """Draw the vertical rules of the table block on this page in one go (cheaper than a
        rectangle per cell)."""
        if self.block_top is None:
            return
        y0, y1 = self.block_top, self.pdf.get_y()
        x = MARGIN
        self.pdf.line(x, y0, x, y1)
        for w in self.block_widths:
            x += w
            self.pdf.line(x, y0, x, y1)
        self.block_top = None

    def row(self, cells: list[str], widths: list[float], bold: bool = False) -> None:
        pdf = self.pdf
        if bold or self.bold:
            pdf.set_font("Helvetica", "B" if bold else "", self.font_size)
            self.bold = bold
        wrapped = [self.wrap(c, w - 1.6) for c, w in zip(cells, widths, strict=True)]
        height = max(len(w) for w in wrapped) * self.line_h + 1.2
        if pdf.get_y() + height > self.bottom:
            return self._break_then(cells, widths, bold)
        x, y = MARGIN, pdf.get_y()
        if self.block_top is None:
            self.block_top, self.block_widths = y, widths
            pdf.line(MARGIN, y, MARGIN + sum(widths), y)
        x = self._text_row(wrapped, widths, x, y)
        pdf.line(MARGIN, y + height, x, y + height)
        pdf.set_y(y + height)
        return None

    def _text_row(self, wrapped: list[list[str]], widths: list[float], x: float, y: float) -> float:
        """All the row's text as one content-stream write: the operators `FPDF.text` emits per
        call (`BT x y Td (..) Tj ET` in the text colour), without its per-call checks, which were
        80 % of a 10,000-row report. Core fonts only (the text is already folded to Latin-1)."""
        pdf = self.pdf
        if not pdf.current_font_is_set_on_page:
            pdf.text(x, y, "")  # registers the font on this page the way fpdf2 does
        if self._columns_at[0] != widths:
            left, starts = x, []
            for w in widths:
                starts.append(f"BT {(left + 0.8) * pdf.k:.2f} ")
                left += w
            self._columns_at = (widths, starts, left)
        starts = self._columns_at[1]
        k, top, line_h = pdf.k, pdf.h, self.line_h
        baselines = [
            f"{(top - y - 0.6 - (n + 0.78) * line_h) * k:.2f} Td ("
            for n in range(max(len(lines) for lines in wrapped))
        ]
        parts = [
            f"{start}{baselines[n]}{line.translate(ESCAPE)}) Tj ET"
            for start, lines in zip(starts, wrapped, strict=True)
            for n, line in enumerate(lines)
            if line
        ]
        if parts:
            colour = pdf.text_color.serialize().lower() if pdf.fill_color != pdf.text_color else ""
            body = " ".join(parts)
            pdf._out(f"q {colour} {body} Q" if colour else body)
        return self._columns_at[2]

    def _break_then(self, cells: list[str], widths: list[float], bold: bool) -> None:
        self.new_page()
        self.bold = True
        self.row(self.header_cells, widths, bold=True)
        self.row(cells, widths, bold)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.header_cells = header
        widths = self.widths(header, rows)
        self.ensure(self.line_h * 3 + 3)
        self.pdf.set_fill_color(230, 230, 230)
        self.bold = True
        self.row(header, widths, bold=True)
        for r in rows:
            self.row(r, widths)
        self.close_block()


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    """Every shown value as Latin-1 text, formatted once per distinct value of a column (a
    gradebook repeats its names, classes and one-decimal scores thousands of times)."""
    columns = []
    for c in frame.columns:
        seen: dict[Any, str] = {}
        texts = []
        for v in frame[c].tolist():
            try:
                t = seen.get(v)
            except TypeError:  # unhashable (a list in an object column)
                t = latin1(v)
            if t is None:
                t = seen[v] = latin1(v)
            texts.append(t)
        columns.append(texts)
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def write_pdf(
    path: Path,
    *,
    title: str,
    metadata: list[tuple[str, str]],
    table: pd.DataFrame | pa.Table,
    max_rows: int,
    statistics: pd.DataFrame | None = None,
    notes: list[str] | None = None,
    table_title: str = "Data",
) -> dict[str, Any]:
    """Render the report; return {"pages", "rows_shown", "rows_total", "capped"}. An Arrow
    `table` is sliced before it becomes pandas: rows past the cap are never touched."""
    total = len(table)
    if isinstance(table, pa.Table):
        kept = table.slice(0, max_rows) if max_rows and total > max_rows else table
        shown = kept.drop_columns([c for c in DROPPED if c in kept.column_names]).to_pandas()
    else:
        shown = table.head(max_rows) if max_rows and total > max_rows else table
    capped = len(shown) < total
    columns = [str(c) for c in shown.columns]
    wide = len(columns) > 6 or (statistics is not None and len(statistics.columns) > 8)
    font = 7.0 if len(columns) <= 12 else 6.0 if len(columns) <= 24 else 5.0
    report = _Report(landscape=wide, font_size=font)
    report.new_page()
    report.heading(title)
    report.pairs(metadata)
    for note in notes or []:
        report.paragraph(note, 8, "I")
    if statistics is not None and len(statistics):
        report.pdf.ln(3)
        report.paragraph("Statistics", 11, "B")
        report.table([str(c) for c in statistics.columns], _cells(statistics))
    report.pdf.ln(3)
    cap_note = (
        f"Showing the first {len(shown):,} of {total:,} rows; "
        f"the CSV export holds all {total:,} rows."
        if capped
        else f"{total:,} rows."
    )
    report.paragraph(table_title, 11, "B")
    report.paragraph(cap_note, 8, "B" if capped else "")
    if columns:
        report.table(columns, _cells(shown))
    if capped:
        report.pdf.ln(2)
        report.paragraph(
            f"Table capped at {len(shown):,} rows: {total - len(shown):,} more rows "
            "are in the CSV export.",
            8,
            "B",
        )
    report.pdf.output(str(path))
    return {
        "pages": report.page_no,
        "rows_shown": len(shown),
        "rows_total": total,
        "capped": capped,
    }
