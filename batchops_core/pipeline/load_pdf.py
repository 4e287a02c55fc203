"""PDF table extraction with pdfplumber, pages parsed in parallel processes.

pdfplumber spends ~80 % of its time in pdfminer's character parsing (~6 pages/s per core), so a
long PDF is cut into page ranges parsed by separate processes and stitched back in order.

Per page, a ruled table (pdfplumber's *lines* strategy) wins when one is found and is filled enough
to be data rather than a chart. Otherwise a table is rebuilt from text alignment: words are grouped
into lines, a line is split into cells at gaps wider than ~0.8 em, the commonest cell count (≥ 2)
defines the columns, lines with fewer cells are placed into those columns by x position, and the
lines just above the first data row name the columns. Pages with the same column count are joined
into one table; a header repeated on every page is kept once; a wrapped cell (text split over two
lines) is re-joined with a space.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from batchops_core.enums import Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.limits import PARSE_CRASHED, PDF_TOO_MANY_PAGES, current
from batchops_core.pipeline.loaded import Loaded, text_columns_from_rows

S = Stage.STANDARDIZE
PARALLEL_MIN_PAGES = 8
_NUMERIC = re.compile(r"^[-+(]?[$€£]?[\d.,]+%?\)?$")
_FILL_MIN = 0.4


def _open(path: Path) -> Any:
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfplumber.utils.exceptions import PdfminerException

    try:
        pdf = pdfplumber.open(str(path))
        _ = pdf.pages
        return pdf
    except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
        raise _encrypted(path) from exc
    except PdfminerException as exc:
        inner = exc.args[0] if exc.args else exc
        if (
            isinstance(inner, PDFPasswordIncorrect | PDFEncryptionError)
            or "password" in str(exc).lower()
        ):
            raise _encrypted(path) from None
        raise StageError(
            S,
            E.PDF_CORRUPT,
            f"{path.name} is not a readable PDF: {str(inner)[:200]}",
            hint="Export the report again as PDF, or send the CSV/XLSX it was made from.",
        ) from None
    except Exception as exc:  # pdfminer raises many unrelated types for damaged files
        raise StageError(
            S,
            E.PDF_CORRUPT,
            f"{path.name} is not a readable PDF: {str(exc)[:200]}",
            hint="Export the report again as PDF, or send the CSV/XLSX it was made from.",
        ) from None


def _encrypted(path: Path) -> StageError:
    return StageError(
        S,
        E.PDF_ENCRYPTED,
        f"{path.name} is encrypted with a password; its text cannot be read",
        hint="Ask the department to send the PDF without a password, or the CSV/XLSX export.",
    )


def page_count(path: Path) -> int:
    pdf = _open(path)
    try:
        return len(pdf.pages)
    finally:
        pdf.close()


def parse_pages(path: str, start: int, stop: int) -> list[dict[str, Any]]:
    """Parse pages [start, stop) (0-based) to plain dicts; runs in a worker process."""
    pdf = _open(Path(path))
    try:
        return [_parse_page(pdf.pages[i], i + 1) for i in range(start, min(stop, len(pdf.pages)))]
    finally:
        pdf.close()


def _parse_page(page: Any, number: int) -> dict[str, Any]:
    chars = len(page.chars)
    out: dict[str, Any] = {
        "page": number,
        "chars": chars,
        "images": len(page.images),
        "rows": [],
        "header": [],
        "method": "",
    }
    if not chars:
        return out
    if page.lines or page.rects:
        ruled = _ruled_table(page)
        if ruled:
            out.update(ruled)
            return out
    out.update(_text_table(page))
    page.flush_cache()
    return out


def _clean(cell: Any) -> str:
    return " ".join(str(cell).split()) if cell is not None else ""


def _ruled_table(page: Any) -> dict[str, Any] | None:
    best: list[list[str]] | None = None
    for table in page.extract_tables():
        rows = [[_clean(c) for c in r] for r in table]
        width = max((len(r) for r in rows), default=0)
        cells = sum(len(r) for r in rows) or 1
        fill = sum(1 for r in rows for c in r if c) / cells
        if (
            len(rows) >= 2
            and width >= 2
            and fill >= _FILL_MIN
            and (best is None or len(rows) > len(best))
        ):
            best = rows
    if best is None:
        return None
    header, body = best[0], best[1:]
    if all(not _NUMERIC.match(c) for c in header if c) and any(
        any(_NUMERIC.match(c) for c in r) for r in body
    ):
        return {"rows": body, "header": header, "method": "ruling lines"}
    return {"rows": best, "header": [], "method": "ruling lines"}


def _lines(page: Any) -> list[list[dict[str, Any]]]:
    words = page.extract_words(x_tolerance=1.5, y_tolerance=2, keep_blank_chars=False)
    words.sort(key=lambda w: (round(w["top"]), w["x0"]))
    lines: list[list[dict[str, Any]]] = []
    for w in words:
        if lines and abs(w["top"] - lines[-1][0]["top"]) <= 2.5:
            lines[-1].append(w)
        else:
            lines.append([w])
    for line in lines:
        line.sort(key=lambda w: w["x0"])
    return lines


def _cells(line: list[dict[str, Any]], gap: float) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = []
    for w in line:
        if cells and w["x0"] - cells[-1]["x1"] <= gap:
            cells[-1]["text"] += " " + w["text"]
            cells[-1]["x1"] = w["x1"]
        else:
            cells.append({"text": w["text"], "x0": w["x0"], "x1": w["x1"]})
    return cells


def _text_table(page: Any) -> dict[str, Any]:
    lines = _lines(page)
    if not lines:
        return {"method": "text alignment"}
    height = median(w["bottom"] - w["top"] for ln in lines for w in ln)
    split = [_cells(ln, 0.8 * height) for ln in lines]
    counts = Counter(len(c) for c in split if len(c) >= 2)
    if not counts:
        return {"method": "text alignment"}
    k, _ = max(counts.items(), key=lambda kv: (kv[1] * (kv[0] >= 2), kv[0]))
    full = [i for i, c in enumerate(split) if len(c) == k]
    if len(full) < 2:
        return {"method": "text alignment"}
    spans = [
        (min(split[i][j]["x0"] for i in full), max(split[i][j]["x1"] for i in full))
        for j in range(k)
    ]
    first, last = full[0], full[-1]
    rows: list[list[str]] = []
    for i in range(first, last + 1):
        placed = _place(lines[i], spans)
        if placed is not None and sum(1 for c in placed if c) >= 2:
            rows.append(placed)
    numeric_rows = sum(1 for r in rows if any(_NUMERIC.match(c) for c in r if c))
    if rows and numeric_rows >= 0.6 * len(rows):
        # captions and sub-headers between two tables of the same layout carry no numbers
        rows = [rows[0]] + [r for r in rows[1:] if any(_NUMERIC.match(c) for c in r if c)]
    header_cells = ["" for _ in range(k)]
    for i in range(max(0, first - 4), first):
        placed = _place(lines[i], spans)
        if placed is None or len(split[i]) < 2:
            header_cells = ["" for _ in range(k)]
            continue
        header_cells = [f"{h} {c}".strip() for h, c in zip(header_cells, placed, strict=True)]
    if (
        rows
        and all(not _NUMERIC.match(c) for c in rows[0] if c)
        and any(any(_NUMERIC.match(c) for c in r if c) for r in rows[1:])
    ):
        header_cells = [f"{h} {c}".strip() for h, c in zip(header_cells, rows[0], strict=True)]
        rows = rows[1:]
    return {
        "rows": rows,
        "header": header_cells if any(header_cells) else [],
        "method": "text alignment",
    }


def _place(words: list[dict[str, Any]], spans: list[tuple[float, float]]) -> list[str] | None:
    """Put each word into the column whose span it overlaps most (else the nearest one).

    Word level, not cell level, so a row whose numbers sit closer together than the usual column
    gap (bold totals) still splits into the right columns.
    """
    out: list[list[str]] = [[] for _ in spans]
    for w in words:
        overlaps = [min(w["x1"], b) - max(w["x0"], a) for a, b in spans]
        j = int(np.argmax(overlaps))
        if overlaps[j] <= 0:
            centre = (w["x0"] + w["x1"]) / 2
            j = int(np.argmin([min(abs(centre - a), abs(centre - b)) for a, b in spans]))
        out[j].append(w["text"])
    return [" ".join(ws) for ws in out]


def _page_context() -> multiprocessing.context.BaseContext:
    """Page workers fork from a clean server process (this process may hold Arrow's threads,
    and forking a threaded process can deadlock the child)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(
            ["pdfplumber", "batchops_core.pipeline.load_pdf", "batchops_core.pipeline.pool_child"]
        )
        return ctx
    return multiprocessing.get_context("spawn")


def _check_pages(path: Path, n: int) -> None:
    if n == 0:
        raise StageError(
            S, E.EMPTY_FILE, f"{path.name} has no pages", hint="Export the report again."
        )
    limit = current().pdf_max_pages
    if n > limit:
        raise StageError(
            S,
            PDF_TOO_MANY_PAGES,
            f"{path.name} has {n:,} pages, over the limit of {limit:,} pages",
            hint="Send the CSV/XLSX the report was made from, or raise [pipeline].pdf_max_pages.",
            details={"pages": n, "limit_pages": limit},
        )


def _parse_parallel(path: Path, n: int, processes: int) -> list[tuple[list[dict[str, Any]], float]]:
    """Page ranges in page processes that die with this one (a killed or timed-out stage must
    not leave them parsing); a page process that dies fails this upload alone."""
    from batchops_core.pipeline.pool_child import die_with_parent

    step = -(-n // (processes * 2))
    ranges = [(str(path), s, min(s + step, n)) for s in range(0, n, step)]
    try:
        with ProcessPoolExecutor(
            max_workers=processes,
            mp_context=_page_context(),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            return list(pool.map(_parse_range, *zip(*ranges, strict=True)))
    except BrokenProcessPool:
        raise StageError(
            S,
            PARSE_CRASHED,
            f"a process parsing pages of {path.name} died (out of memory or a parser crash)",
            hint="Send the CSV/XLSX the report was made from, or the PDF exported again.",
        ) from None


def load_pdf(path: Path, options: dict[str, Any], processes: int = 1) -> Loaded:
    n = page_count(path)
    _check_pages(path, n)
    parallel = processes > 1 and n >= PARALLEL_MIN_PAGES
    parts = _parse_parallel(path, n, processes) if parallel else [_parse_range(str(path), 0, n)]
    pages = [p for part, _ in parts for p in part]
    loaded = assemble(path.name, pages, processes if parallel else 1)
    loaded.meta["parse_cpu_seconds"] = round(sum(cpu for _, cpu in parts), 2)
    return loaded


def _parse_range(path: str, start: int, stop: int) -> tuple[list[dict[str, Any]], float]:
    """`parse_pages` plus the CPU time it took (the benchmark compares it with wall time)."""
    started = time.process_time()
    pages = parse_pages(path, start, stop)
    return pages, time.process_time() - started


def _page_list(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"{numbers[0]}–{numbers[-1]}"
    return ", ".join(str(x) for x in numbers)


_TOTAL = re.compile(r"\b(sub)?totals?\b", re.IGNORECASE)


def drop_total_rows(rows: list[list[str]], tail: int = 6) -> tuple[list[list[str]], int]:
    """Drop the totals block that ends many printed tables: from the first sparse row in the
    last few that says "total", everything after it, if all of it is sparse too (a report's
    totals are not records, and would double every sum)."""
    if len(rows) < 3:
        return rows, 0
    width = len(rows[0])

    def sparse(r: list[str]) -> bool:
        return sum(1 for c in r if c) <= max(2, width // 2)

    start = max(0, len(rows) - tail)
    for i in range(start, len(rows)):
        if any(_TOTAL.search(c) for c in rows[i]) and all(sparse(r) for r in rows[i:]):
            return rows[:i], len(rows) - i
    return rows, 0


def assemble(name: str, pages: list[dict[str, Any]], processes: int = 1) -> Loaded:
    """Join the per-page tables into one (see the module docstring)."""
    searched = [p["page"] for p in pages]
    if not any(p["chars"] for p in pages):
        images = sum(p["images"] for p in pages)
        raise StageError(
            S,
            E.PDF_NO_TEXT,
            f"{name} has no text on pages {_page_list(searched)}"
            + (f" ({images} images: a scanned document)" if images else ""),
            hint="Ask for the original CSV/XLSX export, or a PDF produced from it (not a scan).",
        )
    by_width: dict[int, list[dict[str, Any]]] = {}
    for p in pages:
        if p["rows"]:
            by_width.setdefault(len(p["rows"][0]), []).append(p)
    if not by_width:
        raise StageError(
            S,
            E.PDF_NO_TABLE,
            f"no table found on pages {_page_list(searched)}: no ruled table, and text "
            "alignment gave 0 consistent columns",
            hint="Ask the department for the CSV or XLSX export of the same report.",
            details={"pages": searched},
        )
    width, group = max(by_width.items(), key=lambda kv: sum(len(p["rows"]) for p in kv[1]))
    header = next((p["header"] for p in group if p["header"]), [])
    norm_header = [h.lower() for h in header]
    rows: list[list[str]] = []
    for p in group:
        for r in p["rows"]:
            if [c.lower() for c in r] == norm_header:
                continue
            rows.append(r)
    rows, totals = drop_total_rows(rows)
    header = header or [f"column_{j + 1}" for j in range(width)]
    used = [p["page"] for p in group]
    others = sorted({p["page"] for w, g in by_width.items() if w != width for p in g})
    methods = sorted({p["method"] for p in group})
    log = [
        f"pages: {len(pages)} searched, table rows from pages {_page_list(used)}",
        f"table detection: {', '.join(methods)}",
        f"processes: {processes}",
    ]
    if others:
        log.append(f"pages {_page_list(others)} hold tables with other columns; not joined")
    if totals:
        log.append(f"total rows at the end of the table dropped: {totals}")
    return Loaded(
        header=header,
        columns=text_columns_from_rows(rows, width),
        row_numbers=np.arange(1, len(rows) + 1, dtype=np.int64),
        log=log,
        meta={"format": "pdf", "pages": len(pages), "pages_used": used, "header_row": None},
    )
