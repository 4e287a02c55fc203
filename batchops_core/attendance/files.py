"""Employee, punch and holiday files read through the pipeline's own loaders.

The loaders already solve encodings, delimiters, title rows above the header, spreadsheet
dates and identifiers typed as numbers; attendance only maps the normalized header names onto
its fields (with the aliases device exports use) and reads every cell as text.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from batchops_core.errors import ValidationFailed

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
XLSX_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}

PUNCH_COLUMNS = {
    "code": ("employee_code", "code", "emp_code", "empcode", "employee", "employee_id", "emp_id"),
    "timestamp": ("timestamp", "punched_at", "punch_time", "datetime", "date_time", "at"),
    "date": ("date", "punch_date"),
    "time": ("time", "punch_time_of_day"),
    "direction": ("direction", "dir", "in_out", "io", "type"),
    "device": ("device", "device_id", "terminal", "machine"),
}
EMPLOYEE_COLUMNS = {
    "code": ("code", "employee_code", "emp_code", "empcode", "employee_id", "emp_id"),
    "name": ("name", "employee_name", "full_name"),
    "shift": ("shift", "shift_name"),
    "department": ("department", "dept"),
    "joined": ("joined", "date_joined", "joining_date", "doj"),
    "left": ("left", "date_left", "leaving_date", "dol"),
}
HOLIDAY_COLUMNS = {
    "date": ("date", "day", "holiday_date"),
    "name": ("name", "holiday", "description"),
    "type": ("type", "kind"),
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def read_rows(path: Path) -> list[dict[str, str]]:
    """Every data row as {normalized header: text}, with `_row` the row number in the file."""
    from batchops_core.pipeline.columns import normalize_name
    from batchops_core.pipeline.errors import StageError

    suffix = path.suffix.lower()
    if not path.is_file():
        raise ValidationFailed(f"{path} is not a file.")
    try:
        if suffix in CSV_SUFFIXES:
            from batchops_core.pipeline.load_csv import load_csv

            loaded = load_csv(path, {})
        elif suffix in XLSX_SUFFIXES:
            from batchops_core.pipeline.load_xlsx import load_xlsx

            loaded = load_xlsx(path, {})
        else:
            raise ValidationFailed(f"{path.name}: give a .csv or .xlsx file, not '{suffix}'.")
    except StageError as exc:
        raise ValidationFailed(f"{path.name}: {exc.message}.") from None
    names = [normalize_name(h) for h in loaded.header]
    columns = [c.to_pylist() for c in loaded.columns]
    rows: list[dict[str, str]] = []
    for i, number in enumerate(loaded.row_numbers.tolist()):
        row = {name: _text(col[i]) for name, col in zip(names, columns, strict=False) if name}
        row["_row"] = str(number)
        rows.append(row)
    return rows


def pick(rows: list[dict[str, str]], wanted: dict[str, tuple[str, ...]]) -> list[dict[str, str]]:
    """Rename the first matching alias of each field to the field name; others dropped."""
    if not rows:
        return []
    present = set(rows[0])
    mapping = {}
    for field, aliases in wanted.items():
        for alias in aliases:
            if alias in present and alias not in mapping.values():
                mapping[field] = alias
                break
    return [
        {field: r.get(alias, "") for field, alias in mapping.items()} | {"_row": r["_row"]}
        for r in rows
    ]


def require_columns(rows: list[dict[str, str]], path: Path, *needed: str) -> None:
    if not rows:
        raise ValidationFailed(f"{path.name} has no data rows.")
    missing = [n for n in needed if n not in rows[0]]
    if missing:
        raise ValidationFailed(f"{path.name} has no {' or '.join(missing)} column.")
