"""Which record of a CSV is its header, decided so that a header is never silently dropped.

The old rule ("the first record as wide as most records") promoted the first *data* row to
header whenever data rows were wider than the header: a trailing delimiter on every row, a name
with an unquoted comma. The rule here reads the records the other way round (issue #16):

* A record's *width* ignores its trailing empty fields, so a title padded by a spreadsheet
  (`Exam results — Term 2;;;;`) is one field wide, and `1,30,` is as wide as `id,score`.
* The header is the first record that names at least two columns (mostly filled, mostly text,
  not numbers or dates) and is at least as wide as most records below it. Records above it are
  titles; the step log names them and says why the header was chosen.
* A trailing empty field on every data row becomes an empty column (dropped later); the header
  keeps its place. Data rows wider than the header with something in the extra fields are left
  to the reader, which sets them aside into the fix-list with their field counts.
* When no record qualifies, the load fails with CSV_HEADER and a sentence that shows the
  candidate rows, rather than publishing on a guess.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from batchops_core.enums import Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.errors import StageError

S = Stage.STANDARDIZE
MAX_PREAMBLE = 30
"""Records above the header that may be titles; a header further down is not looked for."""
_VALUE_LIKE = re.compile(r"^[\s$€£%+\-−(]*[\d][\d\s.,:/\-%)]*$")


@dataclass(frozen=True)
class Header:
    index: int
    """Position of the header among the parsed records."""
    line: int
    """0-based physical line the header starts on."""
    cells: list[str]
    width: int
    """Fields per data row the bulk reader expects (header cells padded or trimmed to it)."""
    reasons: list[str]


def width(cells: list[str]) -> int:
    """Fields up to the last non-empty one (at least 1)."""
    n = len(cells)
    while n > 1 and not cells[n - 1].strip():
        n -= 1
    return n


def _blank_or_comment(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#")


def _looks_like_names(cells: list[str], single_column: bool) -> bool:
    named = cells[: width(cells)]
    filled = [c.strip() for c in named if c.strip()]
    if len(named) < 2 and not single_column:
        return False
    if not filled or len(filled) * 2 < len(named):
        return False
    values = sum(1 for c in filled if _VALUE_LIKE.match(c))
    return values * 3 <= len(filled) and len(set(filled)) * 4 >= len(filled) * 3


def _show(cells: list[str]) -> str:
    text = ", ".join(c.strip() for c in cells[: width(cells)])
    return text if len(text) <= 80 else text[:77] + "..."


def find_header(records: list[tuple[int, list[str]]]) -> Header:
    """Choose the header among the sampled records; raise EMPTY_FILE or CSV_HEADER."""
    content = []
    for k, (line, cells) in enumerate(records):
        if not _blank_or_comment(cells):
            content.append((k, line, cells))
            if len(content) > MAX_PREAMBLE + 50:
                break
    if not content:
        raise StageError(
            S,
            E.EMPTY_FILE,
            "the file has no data lines (only blank or comment lines)",
            hint="Export the table again; the file that arrived is empty.",
        )
    widths = [width(c[2]) for c in content]
    single = Counter(widths).most_common(1)[0][0] == 1 and max(widths) <= 2
    for pos, (k, line, cells) in enumerate(content[:MAX_PREAMBLE]):
        below = widths[pos + 1 : pos + 51]
        typical = Counter(below).most_common(1)[0][0] if below else widths[pos]
        if not _looks_like_names(cells, single) or width(cells) < typical:
            continue
        reasons = [_why(cells, typical, len(below))]
        if pos:
            titles = "; ".join(repr(_show(c[2])) for c in content[:pos][:3])
            reasons.append(f"rows above it taken as titles: {titles}")
        data = [c[2] for c in content[pos + 1 : pos + 51]]
        return Header(k, line, *_fit(cells, data, reasons))
    raise _unsure(content, widths)


def _why(cells: list[str], typical: int, below: int) -> str:
    if not below:
        return f"the only row naming {width(cells)} columns"
    return (
        f"first row naming {width(cells)} columns in text, and the rows below it have "
        f"{typical} filled field{'s' if typical != 1 else ''} (or fewer)"
    )


def _fit(
    cells: list[str], data: list[list[str]], reasons: list[str]
) -> tuple[list[str], int, list[str]]:
    """The header cells and the reader's width: trailing empty fields every data row has are an
    empty column, and empty fields the header has beyond the data are not columns."""
    raw = Counter(len(r) for r in data).most_common(1)[0][0] if data else len(cells)
    if raw > len(cells) and all(width(r) <= len(cells) for r in data if len(r) == raw):
        extra = raw - len(cells)
        reasons.append(
            f"every row ends with {extra} empty field{'s' if extra > 1 else ''} after the last "
            "named column (a trailing delimiter): read as an empty column and dropped"
        )
        return cells + [""] * extra, raw, reasons
    if raw < len(cells) and width(cells) <= raw:
        return cells[:raw], raw, reasons
    return cells, len(cells), reasons


def _unsure(content: list[tuple[int, int, list[str]]], widths: list[int]) -> StageError:
    typical = Counter(widths[1:51] or widths).most_common(1)[0][0]
    shown = [
        f"row {line + 1}: {_show(cells)} ({width(cells)} fields)" for _, line, cells in content[:3]
    ]
    wider = sum(1 for w in widths[1:51] if w > width(content[0][2]))
    message = (
        "the loader cannot tell which row is the header, so nothing was published; "
        f"candidates: {'; '.join(shown)}"
    )
    if wider and _looks_like_names(content[0][2], False):
        message += (
            f". Row {content[0][1] + 1} looks like the header, but {wider} of the "
            f"{len(widths[1:51])} rows below it have more fields ({typical}) than it names"
        )
    return StageError(
        S,
        E.CSV_HEADER,
        message,
        hint="Put the column names in the first row and quote values that contain the "
        'delimiter ("Smith, J"), or export the file again.',
        details={"candidates": shown, "typical_fields": typical},
    )
