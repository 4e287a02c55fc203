"""The fix-list a department gets back: one line per problem, as CSV and (for spreadsheets) XLSX.

The XLSX is a copy of the quarantined rows as the department sent them, with the bad cells filled
yellow and a comment saying what was expected, plus a "Problems" sheet with the same lines as the
CSV — so the person fixing the data works in the tool they already use.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from batchops_core.pipeline.standardize import ROW

FIELDS = ("row", "column", "value", "problem", "expected", "hint")
PROBLEM_TEXT = {
    "missing_key": "identifier is empty",
    "malformed_key": "identifier has characters that are not allowed",
    "duplicate_key": "identifier repeats an earlier row",
    "type": "value does not fit the column's type",
    "malformed_row": "row has the wrong number of fields",
}


def fix_lines(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = [
        {
            "row": p.get("row"),
            "column": p.get("column", ""),
            "value": _safe(p.get("value", "")),
            "problem": PROBLEM_TEXT.get(p["kind"], p["kind"]),
            "expected": p.get("expected", ""),
            "hint": p.get("hint", ""),
        }
        for p in problems
    ]
    lines.sort(key=lambda x: (x["row"] is None, x["row"] or 0, x["column"]))
    return lines


def _safe(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_fixlist_csv(path: Path, problems: list[dict[str, Any]]) -> int:
    lines = fix_lines(problems)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(lines)
    return len(lines)


def write_fixlist_xlsx(
    path: Path,
    problems: list[dict[str, Any]],
    quarantined: pd.DataFrame,
    header: dict[str, str] | None = None,
) -> None:
    """Quarantined rows with bad cells highlighted, plus a Problems sheet."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill

    fill = PatternFill("solid", start_color="FFFF00", end_color="FFFF00")
    bold = Font(bold=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "Rows to fix"
    columns = [c for c in quarantined.columns if c != ROW]
    ws.append(["row", *[(header or {}).get(c, c) for c in columns]])
    for cell in ws[1]:
        cell.font = bold
    by_cell: dict[tuple[int, str], dict[str, Any]] = {}
    by_row: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for p in problems:
        if p.get("row") is not None:
            by_cell[(int(p["row"]), p.get("column", ""))] = p
            by_row[int(p["row"])].append(p)
    for r, record in enumerate(quarantined.itertuples(index=False), start=2):
        values = dict(zip(quarantined.columns, record, strict=True))
        row_no = int(values[ROW])
        ws.cell(row=r, column=1, value=row_no)
        for j, col in enumerate(columns, start=2):
            problem = by_cell.get((row_no, col))
            value = problem["value"] if problem else values[col]
            cell = ws.cell(row=r, column=j, value=_excel_value(value))
            if problem:
                cell.fill = fill
                cell.comment = Comment(
                    f"{PROBLEM_TEXT.get(problem['kind'], problem['kind'])}; expected "
                    f"{problem.get('expected', '')}",
                    "BatchOps",
                )
    sheet = wb.create_sheet("Problems")
    sheet.append(list(FIELDS))
    for cell in sheet[1]:
        cell.font = bold
    for line in fix_lines(problems):
        sheet.append([line[f] for f in FIELDS])
    wb.save(path)


def _excel_value(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, str):
        return _safe(value)
    return value
