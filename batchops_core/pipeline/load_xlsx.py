"""Spreadsheet loading with python-calamine (8× faster than openpyxl read-only here).

Before the workbook is opened its container is checked: an OLE file carrying `EncryptedPackage`
is a password-protected workbook, and a zip whose members inflate past a ratio or an absolute cap
is a zip bomb — both refused before any decompression. The sheet is the one named in the read
options or the first non-empty one; the header is the first row filled at least half as wide as
the table (title and note rows above it are skipped); merged header cells are spread across their
range; footnote rows after the data (one filled cell in a wide table) are dropped. Numbers and
dates keep their spreadsheet types; formulas are read as cached values (files saved by tools that
never computed them have none — that is logged, not guessed).
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from batchops_core.enums import Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.loaded import Loaded, text_columns_from_rows

S = Stage.STANDARDIZE
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_RATIO = 200
MAX_INFLATED = 2 * 1024**3
HEADER_SCAN = 30


def check_container(path: Path, max_inflated: int = MAX_INFLATED) -> str:
    """Return "xlsx" or "xls", or raise XLSX_ENCRYPTED / XLSX_ZIP_BOMB / XLSX_CORRUPT."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head == OLE_MAGIC:
        data = path.read_bytes()
        if (
            "EncryptedPackage".encode("utf-16-le") in data
            or "EncryptionInfo".encode("utf-16-le") in data
        ):
            raise StageError(
                S,
                E.XLSX_ENCRYPTED,
                f"{path.name} is password-protected; its sheets cannot be read",
                hint="Ask the department to remove the password (File → Info → "
                "Protect Workbook) and send the file again.",
            )
        return "xls"
    if not zipfile.is_zipfile(path):
        raise StageError(
            S,
            E.XLSX_CORRUPT,
            f"{path.name} is not a valid XLSX workbook (not a zip container)",
            hint="Open it in Excel or LibreOffice and save it again as .xlsx.",
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise StageError(
            S,
            E.XLSX_CORRUPT,
            f"{path.name} is a damaged workbook: {exc}",
            hint="Open it in Excel or LibreOffice and save it again as .xlsx.",
        ) from None
    total = sum(i.file_size for i in infos)
    worst = (
        max(((i.file_size / max(i.compress_size, 1)), i.filename) for i in infos)
        if infos
        else (0, "")
    )
    if total > max_inflated or (worst[0] > MAX_RATIO and total > 50 * 1024**2):
        raise StageError(
            S,
            E.XLSX_ZIP_BOMB,
            f"{path.name} would inflate to {total / 1024**2:,.0f} MB "
            f"(member {worst[1]!r} compressed {worst[0]:,.0f}:1); refused as a zip bomb",
            hint="Send a workbook that holds the data itself, or a CSV export.",
            details={"inflated_bytes": total, "ratio": round(worst[0], 1)},
        )
    names = {i.filename for i in infos}
    if "[Content_Types].xml" not in names:
        raise StageError(
            S,
            E.XLSX_CORRUPT,
            f"{path.name} is a zip file but not an XLSX workbook",
            hint="Upload the .xlsx itself, not an archive containing it.",
        )
    return "xlsx"


def _nonempty(row: list[Any]) -> int:
    return sum(1 for v in row if v is not None and v != "")


def _pick_sheet(wb: Any, wanted: str | None, name: str) -> tuple[str, list[list[Any]], Any]:
    names = list(wb.sheet_names)
    if wanted is not None:
        if wanted not in names:
            raise StageError(
                S,
                E.XLSX_CORRUPT,
                f"sheet {wanted!r} not found in {name}; sheets: {', '.join(names)}",
                hint="Choose one of the listed sheets in the read options.",
                details={"sheets": names},
            )
        sheet = wb.get_sheet_by_name(wanted)
        return wanted, sheet.to_python(skip_empty_area=False), sheet
    for sheet_name in names:
        sheet = wb.get_sheet_by_name(sheet_name)
        rows = sheet.to_python(skip_empty_area=False)
        if any(_nonempty(r) for r in rows):
            return sheet_name, rows, sheet
    raise StageError(
        S,
        E.EMPTY_FILE,
        f"every sheet of {name} is empty ({', '.join(names)})",
        hint="Check that the right workbook was exported.",
    )


def find_header(rows: list[list[Any]]) -> int:
    """Index of the header row: the first row at least half as full as the widest early row."""
    scan = rows[: HEADER_SCAN + 20]
    widest = max((_nonempty(r) for r in scan), default=0)
    need = max(2, (widest + 1) // 2) if widest > 1 else 1
    for i, row in enumerate(rows[:HEADER_SCAN]):
        if _nonempty(row) >= need:
            return i
    return 0


def _spread_merged(rows: list[list[Any]], sheet: Any, header_at: int) -> int:
    merged = 0
    try:
        ranges = sheet.merged_cell_ranges or []
    except Exception:  # pragma: no cover - older calamine
        ranges = []
    for (r0, c0), (r1, c1) in ranges:
        if r0 <= header_at <= r1 and c1 > c0:
            value = rows[r0][c0]
            for c in range(c0, c1 + 1):
                if c < len(rows[header_at]) and rows[header_at][c] in ("", None):
                    rows[header_at][c] = value
                    merged += 1
    return merged


def load_xlsx(path: Path, options: dict[str, Any]) -> Loaded:
    kind = check_container(path)
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
    except Exception as exc:
        raise StageError(
            S,
            E.XLSX_CORRUPT,
            f"{path.name} cannot be read as a workbook: {str(exc)[:200]}",
            hint="Open it in Excel or LibreOffice and save it again as .xlsx.",
        ) from None
    sheet_name, rows, sheet = _pick_sheet(wb, options.get("sheet"), path.name)
    header_at = find_header(rows)
    merged = _spread_merged(rows, sheet, header_at)
    header_row = rows[header_at]
    width = max((i + 1 for i, v in enumerate(header_row) if v not in ("", None)), default=0)
    data = rows[header_at + 1 :]
    width = max(width, max((len(r) for r in data[:1]), default=0)) if width == 0 else width
    data, footers = _drop_footers(data, width)
    origin = sheet.start[0] if getattr(sheet, "start", None) else 0
    first_row = origin + header_at + 2
    row_numbers = np.arange(first_row, first_row + len(data), dtype=np.int64)
    keep = [i for i, r in enumerate(data) if _nonempty(r[:width])]
    if len(keep) != len(data):
        data = [data[i] for i in keep]
        row_numbers = row_numbers[keep]
    header = [_header_text(v) for v in header_row[:width]]
    native = _native_columns(data, width)
    columns = text_columns_from_rows([[_cell_text(v) for v in r[:width]] for r in data], width)
    log = [f"format: {kind}", f"sheet: {sheet_name}", f"header row: {origin + header_at + 1}"]
    if merged:
        log.append(f"merged header cells spread: {merged}")
    if footers:
        log.append(f"footnote rows after the data dropped: {footers}")
    return Loaded(
        header=header,
        columns=columns,
        row_numbers=row_numbers,
        log=log,
        meta={
            "format": kind,
            "sheet": sheet_name,
            "header_row": origin + header_at + 1,
            "sheets": list(wb.sheet_names),
        },
        native=native,
    )


def _drop_footers(data: list[list[Any]], width: int) -> tuple[list[list[Any]], int]:
    dropped = 0
    if width < 3:
        return data, 0
    while data and _nonempty(data[-1][:width]) <= 1:
        data = data[:-1]
        dropped += 1
    return data, dropped


def _header_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return " ".join(str(v).split())


def _cell_text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    return str(v)


def _native_columns(data: list[list[Any]], width: int) -> dict[str, Any]:
    """Columns whose every filled cell is a spreadsheet number or date keep that type."""
    native: dict[str, Any] = {}
    for j in range(width):
        values = [r[j] if j < len(r) else None for r in data]
        filled = [v for v in values if v is not None and v != ""]
        if not filled:
            continue
        if all(isinstance(v, dt.datetime) for v in filled) or all(
            isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in filled
        ):
            kind = "datetime" if isinstance(filled[0], dt.datetime) else "date"
            native[str(j)] = (
                kind,
                pd.Series(pd.to_datetime([None if v == "" else v for v in values])),
            )
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in filled):
            arr = np.array([np.nan if v is None or v == "" else float(v) for v in values])
            native[str(j)] = ("number", pd.Series(arr))
    return native
