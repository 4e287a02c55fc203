"""Spreadsheet loading with python-calamine (8× faster than openpyxl read-only here).

Before the workbook is opened its container is checked: an OLE file carrying `EncryptedPackage`
is a password-protected workbook, and a zip whose members inflate past a ratio or an absolute cap
is a zip bomb — both refused before any decompression. The sheet is the one named in the read
options or the first non-empty one; the header is the first row filled at least half as wide as
the table (title and note rows above it are skipped); merged header cells are spread across their
range; footnote rows after the data (one filled cell in a wide table) are dropped. Each sheet's
extent is measured from its XML before calamine builds it (`xlsx_extent.py`): a sheet past
`[pipeline].xlsx_max_cells` fails XLSX_TOO_LARGE instead of asking for hundreds of GiB. Numbers and
dates keep their spreadsheet types; formulas are read as cached values (files saved by tools that
never computed them have none — that is logged, not guessed).
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from batchops_core.enums import Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.limits import XLSX_TOO_LARGE, current
from batchops_core.pipeline.loaded import Loaded
from batchops_core.pipeline.xlsx_extent import Extent, measure, sheet_members

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
    if "[Content_Types].xml" not in names and "mimetype" not in names:  # XLSX or ODS
        raise StageError(
            S,
            E.XLSX_CORRUPT,
            f"{path.name} is a zip file but not an XLSX workbook",
            hint="Upload the .xlsx itself, not an archive containing it.",
        )
    return "xlsx"


_UNCACHED = re.compile(rb"<f[^>]*(?:/>|>[^<]*</f>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>")


def uncached_formulas(path: Path, limit: int = 20 * 1024 * 1024) -> int:
    """Count formula cells saved without a value (calamine and openpyxl both read them as
    empty); only for workbooks whose sheets inflate to at most `limit` bytes."""
    count = 0
    try:
        with zipfile.ZipFile(path) as zf:
            sheets = [i for i in zf.infolist() if i.filename.startswith("xl/worksheets/")]
            if sum(i.file_size for i in sheets) > limit:
                return 0
            for info in sheets:
                count += len(_UNCACHED.findall(zf.read(info)))
    except (zipfile.BadZipFile, OSError):
        return 0
    return count


def _nonempty(row: list[Any]) -> int:
    return sum(1 for v in row if v is not None and v != "")


def _human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}"
        n //= 1024
    return f"{n:,} TiB"  # pragma: no cover


def _too_large(name: str, sheet: str, extent: Extent, limit: int) -> StageError:
    far = extent.far_cell
    if extent.declared and extent.declared_area > limit:
        what = (
            f"the workbook declares a sheet of {extent.declared_columns:,} × "
            f"{extent.declared_rows:,} cells ({extent.declared})"
        )
    else:
        what = f"the workbook has a sheet of {extent.columns:,} × {extent.rows:,} cells (A1:{far})"
    return StageError(
        S,
        XLSX_TOO_LARGE,
        f"{what}: sheet {sheet!r} holds {extent.cells:,} cells, the farthest at {far}, and "
        f"reading it would take {_human_bytes(extent.bytes_needed)} of memory, over the limit of "
        f"{limit:,} cells",
        hint=f"In {name}, delete the rows and columns past the data (the stray cell at {far}) "
        "and save it again, or send a CSV export; a real sheet this large needs "
        "[pipeline].xlsx_max_cells raised.",
        details={
            "sheet": sheet,
            "rows": extent.rows,
            "columns": extent.columns,
            "cells": extent.cells,
            "declared": extent.declared,
            "limit_cells": limit,
        },
    )


def check_extent(path: Path, sheet: str, max_cells: int | None = None) -> None:
    """Refuse `sheet` when calamine would allocate more than `max_cells` cells for it.

    A damaged zip is left to calamine, which reports it as XLSX_CORRUPT (under the pool's memory
    cap); this check is only about size.
    """
    limit = max_cells or current().xlsx_max_cells
    try:
        with zipfile.ZipFile(path) as zf:
            members = sheet_members(zf)
            targets = (
                [members[sheet]]
                if sheet in members
                else [n for n in zf.namelist() if n.startswith("xl/worksheets/")]
            )
            for member in targets:
                if member not in zf.NameToInfo:
                    continue
                extent = measure(zf, member)
                if extent.area > limit:
                    extent = measure(zf, member, exact=True)
                if extent.area > limit:
                    raise _too_large(path.name, sheet, extent, limit)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError):
        return


def _sheet(wb: Any, sheet_name: str, path: Path, kind: str) -> tuple[Any, list[list[Any]]]:
    """Measure, then read one sheet; calamine's own errors (a malformed range, a broken cell
    reference) become XLSX_CORRUPT — found by fuzzing, an empty `<dimension ref="">` raised
    CalamineError past the stage."""
    if kind == "xlsx":
        check_extent(path, sheet_name)
    try:
        sheet = wb.get_sheet_by_name(sheet_name)
        return sheet, sheet.to_python(skip_empty_area=False)
    except Exception as exc:
        raise StageError(
            S,
            E.XLSX_CORRUPT,
            f"sheet {sheet_name!r} of {path.name} cannot be read: {str(exc)[:200]}",
            hint="Open it in Excel or LibreOffice and save it again as .xlsx.",
        ) from None


def _pick_sheet(
    wb: Any, wanted: str | None, path: Path, kind: str
) -> tuple[str, list[list[Any]], Any]:
    names = list(wb.sheet_names)
    if wanted is not None:
        if wanted not in names:
            raise StageError(
                S,
                E.XLSX_CORRUPT,
                f"sheet {wanted!r} not found in {path.name}; sheets: {', '.join(names)}",
                hint="Choose one of the listed sheets in the read options.",
                details={"sheets": names},
            )
        sheet, rows = _sheet(wb, wanted, path, kind)
        return wanted, rows, sheet
    for sheet_name in names:
        sheet, rows = _sheet(wb, sheet_name, path, kind)
        if any(_nonempty(r) for r in rows):
            return sheet_name, rows, sheet
    raise StageError(
        S,
        E.EMPTY_FILE,
        f"every sheet of {path.name} is empty ({', '.join(names)})",
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
    sheet_name, rows, sheet = _pick_sheet(wb, options.get("sheet"), path, kind)
    header_at = find_header(rows)
    merged = _spread_merged(rows, sheet, header_at)
    header_row = rows[header_at]
    width = max((i + 1 for i, v in enumerate(header_row) if v not in ("", None)), default=0)
    data = rows[header_at + 1 :]
    width = max(width, max((len(r) for r in data[:1]), default=0)) if width == 0 else width
    data, footers = _drop_footers(data, width)
    first_row = header_at + 2  # rows are read from A1 (skip_empty_area=False)
    row_numbers = np.arange(first_row, first_row + len(data), dtype=np.int64)
    header = [_header_text(v) for v in header_row[:width]]
    columns, native = _columns(data, width, header)
    uncached = uncached_formulas(path) if kind == "xlsx" else 0
    log = [f"format: {kind}", f"sheet: {sheet_name}", f"header row: {header_at + 1}"]
    if merged:
        log.append(f"merged header cells spread: {merged}")
    if footers:
        log.append(f"footnote rows after the data dropped: {footers}")
    if uncached:
        log.append(
            f"warning: {uncached} formula cells have no saved value (the file was written by a "
            "program that does not calculate formulas) and read as empty; open and save it in "
            "Excel or LibreOffice to fill them"
        )
    return Loaded(
        header=header,
        columns=columns,
        row_numbers=row_numbers,
        log=log,
        meta={
            "format": kind,
            "sheet": sheet_name,
            "header_row": header_at + 1,
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


def _columns(
    data: list[list[Any]], width: int, header: list[str]
) -> tuple[list[pa.ChunkedArray], dict[str, Any]]:
    """Column-wise conversion (one pass per column, not per cell where avoidable): numbers stay
    float64 for the typing step, text goes to Arrow as is, dates are kept as dates. Identifier
    columns typed as numbers in the sheet (student ids entered as numbers) become text without
    a trailing ".0"."""
    from batchops_core.pipeline.columns import normalize_name
    from batchops_core.pipeline.infer import is_identifier_name

    # calamine gives every row the sheet's full width, so one zip transposes in C
    if data and len({len(r) for r in data}) == 1 and len(data[0]) >= width:
        transposed = list(zip(*data, strict=True))[:width]
    else:
        transposed = list(zip(*([*r, *[""] * (width - len(r))][:width] for r in data), strict=True))
    if not transposed:
        transposed = [() for _ in range(width)]
    columns: list[pa.ChunkedArray] = []
    native: dict[str, Any] = {}
    for j in range(width):
        col = transposed[j] if j < len(transposed) else ()
        kinds = set(map(type, col)) - {type(None)}
        filled_kinds = set(kinds)
        if str in kinds and not any(type(v) is str and v != "" for v in col):
            filled_kinds.discard(str)  # strings here are only blank cells
        identifier = is_identifier_name(normalize_name(header[j] if j < len(header) else ""))
        if filled_kinds and filled_kinds <= {float, int} and not identifier:
            values = np.array(col, dtype=object)
            values[values == ""] = np.nan
            columns.append(pa.chunked_array([pa.array(values.astype("float64"), from_pandas=True)]))
            continue
        if filled_kinds and (filled_kinds <= {dt.datetime} or filled_kinds <= {dt.date}):
            kind = "datetime" if dt.datetime in filled_kinds else "date"
            native[str(j)] = (
                kind,
                pd.Series(pd.to_datetime([None if v == "" else v for v in col])),
            )
        if kinds <= {str}:
            columns.append(pa.chunked_array([pa.array(list(col), type=pa.string())]))
        else:
            columns.append(
                pa.chunked_array([pa.array([_cell_text(v) for v in col], type=pa.string())])
            )
    return columns, native
