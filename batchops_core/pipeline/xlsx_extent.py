"""How many cells a worksheet would make python-calamine allocate, read from the zip's XML first.

calamine builds a sheet as one dense range spanning its present cells (and `to_python` pads it
from A1), 32 bytes a cell: a 4.7 KB workbook whose only far cell is `XFD1048576` asks for
512 GiB and aborts the process. So before calamine sees a sheet, its XML is streamed (chunks of a
few MB, never inflated whole) and the extent of its cells is measured: the largest row and column
of any `<c r="…">` or `<row r="…">`, the number of cells, and the `<dimension>` it declares. A
declared dimension alone allocates nothing (calamine sizes from the cells), so it is reported, and
it names the problem in the sentence, but only present cells decide.
"""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK = 4 * 1024 * 1024
BYTES_PER_CELL = 32
"""calamine's `DataRef` (measured: 17,179,869,184 cells asked for 549,755,813,888 bytes)."""

_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\b[^>]*?\sref="([^"]{1,40})"')
_CELL_REF = re.compile(rb'<(?:\w+:)?c\b[^>]*?\sr="([A-Za-z]{1,4})([0-9]{1,8})"')
_CELL = re.compile(rb"<(?:\w+:)?c[\s/>]")
_MULTI_LETTER = re.compile(rb' r="([A-Za-z]{2,4})[0-9]')
_ROW = re.compile(rb'<(?:\w+:)?row\b[^>]*?\sr="([0-9]{1,8})"')
_A1 = re.compile(r"^\$?([A-Za-z]{1,4})\$?([0-9]{1,8})$")
_SHEET = re.compile(rb"<(?:\w+:)?sheet\b[^>]*>")
_ATTR = re.compile(rb'([\w:]+)="([^"]*)"')
_REL = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")


def column_index(letters: str | bytes) -> int:
    """1-based column number of spreadsheet letters (A → 1, XFD → 16,384)."""
    text = letters.decode("ascii") if isinstance(letters, bytes) else letters
    n = 0
    for ch in text.upper():
        n = n * 26 + (ord(ch) - 64)
    return n


def column_letters(index: int) -> str:
    out = ""
    while index > 0:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out or "A"


@dataclass(frozen=True)
class Extent:
    """What a sheet holds and what it asks for."""

    rows: int
    """Largest row number of any present cell or row (what calamine spans from A1)."""
    columns: int
    cells: int
    """Number of `<c>` elements in the sheet."""
    declared: str | None = None
    """The `<dimension ref>` as written, e.g. "A1:XFD1048576"."""
    declared_rows: int = 0
    declared_columns: int = 0
    exact: bool = True
    """False: `rows` and `columns` are upper bounds from the quick pass."""

    @property
    def area(self) -> int:
        return self.rows * self.columns

    @property
    def declared_area(self) -> int:
        return self.declared_rows * self.declared_columns

    @property
    def far_cell(self) -> str:
        return f"{column_letters(self.columns)}{self.rows}"

    @property
    def bytes_needed(self) -> int:
        return self.area * BYTES_PER_CELL


def _declared(ref: bytes) -> tuple[str, int, int]:
    text = ref.decode("ascii", "replace")
    last = text.split(":")[-1]
    found = _A1.match(last)
    if not found:
        return text, 0, 0
    return text, int(found.group(2)), column_index(found.group(1))


def measure(zf: zipfile.ZipFile, member: str, *, exact: bool = False) -> Extent:
    """Stream one worksheet's XML and measure it (see the module docstring).

    The quick pass (exact=False, ~0.1 s for 500k cells) reads the largest `<row r>`, whether any
    cell has a longer row number than that, and the multi-letter columns; it returns an *upper
    bound* (rows rounded up to the next power of ten, 26 columns when no cell is past Z), which is
    all a normal sheet needs. Only a sheet whose bound is over the limit is measured exactly.
    """
    rows = columns = cells = 0
    declared: tuple[str, int, int] | None = None
    suspicious = False
    for data in _chunks(zf, member):
        if declared is None and (found := _DIMENSION.search(data)):
            declared = _declared(found.group(1))
        row_numbers = _ROW.findall(data)
        if row_numbers:
            rows = max(rows, max(map(int, row_numbers)))
        if exact:
            refs = _CELL_REF.findall(data)
            if refs:
                columns = max(columns, max(map(column_index, {c for c, _ in refs})))
                rows = max(rows, max(map(int, {r for _, r in refs})))
            cells += len(_CELL.findall(data))
            continue
        wide = _MULTI_LETTER.findall(data)
        if wide:
            columns = max(columns, max(map(column_index, set(wide))))
        longer = re.compile(rb' r="[A-Za-z]{1,4}[0-9]{%d}' % (len(str(rows)) + 1))
        suspicious = suspicious or longer.search(data) is not None
    if not exact:
        if suspicious:
            return measure(zf, member, exact=True)
        rows = 10 ** len(str(rows)) - 1 if rows else 0
        columns = max(columns, 26)
    if declared is None:
        return Extent(rows, columns, cells, exact=exact)
    return Extent(rows, columns, cells, declared[0], declared[1], declared[2], exact=exact)


def _chunks(zf: zipfile.ZipFile, member: str) -> Iterator[bytes]:
    """The member's bytes in chunks that never cut a tag (each ends before its last `<`)."""
    carry = b""
    with zf.open(member) as fh:
        while chunk := fh.read(CHUNK):
            data = carry + chunk
            cut = data.rfind(b"<")
            data, carry = (data[:cut], data[cut:]) if cut > 0 else (data, b"")
            yield data
    if carry:
        yield carry


def sheet_members(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → worksheet member, from `xl/workbook.xml` and its relationships; empty when
    the workbook does not say (the caller then measures every worksheet)."""
    try:
        book = zf.read("xl/workbook.xml")
        rels = zf.read("xl/_rels/workbook.xml.rels")
    except (KeyError, zipfile.BadZipFile, OSError):
        return {}
    targets: dict[bytes, str] = {}
    for tag in _REL.findall(rels):
        attrs = dict(_ATTR.findall(tag))
        target = attrs.get(b"Target", b"").decode("utf-8", "replace").lstrip("/")
        if target and not target.startswith("xl/"):
            target = f"xl/{target}"
        targets[attrs.get(b"Id", b"")] = target
    out: dict[str, str] = {}
    for tag in _SHEET.findall(book):
        attrs = {k.split(b":")[-1]: v for k, v in _ATTR.findall(tag)}
        target = targets.get(attrs.get(b"id", b""))
        if target:
            out[html.unescape(attrs.get(b"name", b"").decode("utf-8", "replace"))] = target
    return out
