"""Stage 2: required columns, key fields, duplicates and type fit → a validation report.

Which columns are required (see `requirements()`):

* a list in `[pipeline.required_columns]` for the source is enforced exactly (a legacy override);
* otherwise the department's validation profile decides (`pipeline/profile.py`, edited with
  `batchops department edit`): its required columns plus its key column, and, for a gradebook,
  at least one numeric score column. A department that is not a gradebook (the Library's loans)
  is never held to the score rule;
* a named source with no department row gets the gradebook default: an identifier (`student_id`)
  and at least one numeric score column;
* an upload from `manual` / no department is not assumed to be a gradebook — a crosswalk, an
  attendance export or a PDF table is still publishable. Its key is `student_id` when present.

Problems are counted per kind with the first few places they occur (row numbers as in the original
file). Above `error_threshold` (fraction of rows) the stage fails; below it the rows in error are
quarantined, the rest go on, and the fix-list is built from the problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from batchops_core.enums import Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.profile import ValidationProfile
from batchops_core.pipeline.standardize import ROW

V = Stage.VALIDATE
KEY = "student_id"
FIRST_N = 5
MANUAL_SOURCES = {"", "manual", "unspecified", "none"}
_KEY_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-/.]*$")

HINTS = {
    "missing_key": "Fill in the identifier for this row, or remove the row if it is not a record.",
    "malformed_key": "Identifiers may hold letters, digits and - _ / . only; "
    "remove spaces or symbols.",
    "duplicate_key": "This identifier already appears on an earlier row; "
    "remove or correct the repeat.",
    "type": "Enter a value of the expected type (a plain number without words), or leave it empty.",
    "malformed_row": "This line has a different number of fields than the header; check its quotes "
    "and delimiters.",
}


@dataclass(frozen=True)
class Requirements:
    columns: tuple[str, ...] = ()
    gradebook: bool = False
    key: str | None = KEY


def requirements(
    source: str,
    *,
    configured: dict[str, list[str]] | None = None,
    department_columns: list[str] | None = None,
    key: str | None = None,
    profile: ValidationProfile | None = None,
) -> Requirements:
    """Resolve what a file from `source` must contain (see the module docstring)."""
    from batchops_core.pipeline.columns import normalize_name

    explicit = (configured or {}).get(source)
    if explicit is None:
        lowered = {k.lower(): v for k, v in (configured or {}).items()}
        explicit = lowered.get(source.lower())
    if explicit is None and profile is not None:
        key_name = normalize_name(key or profile.key_column) if key or profile.key_column else None
        columns = [normalize_name(c) for c in profile.required_columns]
        if key_name and key_name not in columns:
            columns.insert(0, key_name)
        return Requirements(tuple(columns), profile.gradebook, key_name)
    if explicit is None and department_columns:
        explicit = list(department_columns)
    key_name = normalize_name(key) if key else KEY
    if explicit is not None:
        return Requirements(tuple(normalize_name(c) for c in explicit), False, key_name)
    if source.strip().lower() in MANUAL_SOURCES:
        return Requirements((), False, key_name)
    return Requirements((key_name,), True, key_name)


@dataclass
class Validated:
    frame: pd.DataFrame
    report: dict[str, Any]
    problems: list[dict[str, Any]] = field(default_factory=list)
    quarantined: pd.DataFrame | None = None
    log: list[str] = field(default_factory=list)


def _missing_column(name: str, columns: list[str]) -> StageError:
    shown = ", ".join(columns[:30]) + (" …" if len(columns) > 30 else "")
    return StageError(
        V,
        E.MISSING_COLUMN,
        f"required column '{name}' not found; the file has: {shown}",
        hint=f"Rename the column holding {name} in the export, or add an alias under "
        "[pipeline.column_aliases].",
        column=name,
        details={"missing": name, "columns": columns},
    )


def check_columns(frame: pd.DataFrame, schema: dict[str, str], req: Requirements) -> None:
    columns = [c for c in frame.columns if c != ROW]
    for name in req.columns:
        if name not in columns:
            raise _missing_column(name, columns)
    if req.gradebook:
        scores = [c for c in columns if schema.get(c) in {"integer", "number"} and c != req.key]
        if not scores:
            raise StageError(
                V,
                E.MISSING_COLUMN,
                "required column 'score' not found: a gradebook needs at least one numeric score "
                f"column; the file has: {', '.join(columns[:30])}",
                hint="Check that score columns hold plain numbers; if this department's files are "
                "not gradebooks, say so: batchops department edit NAME --no-gradebook.",
                column="score",
                details={"columns": columns},
            )


def _well_formed(text: pd.Series) -> np.ndarray:
    """Key format check; letters and digits only (the usual case) pass a cheap kernel, and the
    regex runs on the rest."""
    ok = np.ones(len(text), dtype=bool)
    try:
        arrow = pa.chunked_array(pa.array(text.array))
        plain = np.asarray(
            pc.fill_null(pc.utf8_is_alnum(arrow), True).to_numpy(zero_copy_only=False)
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        plain = np.zeros(len(text), dtype=bool)
    rest = np.flatnonzero(~plain)
    if rest.size:
        subset = text.iloc[rest]
        ok[rest] = subset.str.fullmatch(_KEY_OK.pattern).fillna(True).to_numpy(dtype=bool)
    return ok


def _duplicated(col: pd.Series) -> np.ndarray:
    """Repeats of an earlier key. Counting distinct values first (Arrow's hash) is cheaper than
    marking duplicates row by row, and a clean gradebook has none to mark."""
    try:
        arrow = pa.chunked_array(pa.array(col.array))
        filled = arrow.drop_null()
        if _strictly_increasing(filled):
            return np.zeros(len(col), dtype=bool)
        distinct = len(pc.unique(filled))
        if distinct == len(filled):
            return np.zeros(len(col), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        pass
    return col.duplicated(keep="first").to_numpy()


def _strictly_increasing(keys: pa.ChunkedArray) -> bool:
    """Exports are usually sorted by their identifier; then "no repeats" is one comparison of
    neighbours (~15 ms on a million keys) instead of a hash of every key (~0.1-0.3 s). A sample
    of the head answers "not sorted" without the full pass."""
    n = len(keys)
    if n < 2:
        return True
    head = keys.slice(0, min(n, 1025))
    try:
        if not pc.all(pc.less(head.slice(0, len(head) - 1), head.slice(1))).as_py():
            return False
        return bool(pc.all(pc.less(keys.slice(0, n - 1), keys.slice(1))).as_py())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return False  # a type with no order (dictionary, nested): the hash decides


def _key_problems(frame: pd.DataFrame, key: str) -> list[dict[str, Any]]:
    col = frame[key]
    text = col.astype("str") if col.dtype != "str" else col
    rows = frame[ROW].to_numpy()
    out: list[dict[str, Any]] = []
    empty = col.isna().to_numpy()
    for i in np.flatnonzero(empty):
        out.append(
            {
                "row": int(rows[i]),
                "column": key,
                "value": "",
                "kind": "missing_key",
                "expected": "an identifier",
            }
        )
    filled = ~empty
    bad = filled & ~_well_formed(text)
    for i in np.flatnonzero(bad):
        out.append(
            {
                "row": int(rows[i]),
                "column": key,
                "value": str(text.iloc[i]),
                "kind": "malformed_key",
                "expected": "letters, digits, - _ / .",
            }
        )
    dup = filled & _duplicated(col)
    for i in np.flatnonzero(dup):
        out.append(
            {
                "row": int(rows[i]),
                "column": key,
                "value": str(text.iloc[i]),
                "kind": "duplicate_key",
                "expected": "an identifier not used on another row",
            }
        )
    return out


def validate(
    frame: pd.DataFrame,
    schema: dict[str, str],
    *,
    req: Requirements,
    type_errors: list[dict[str, Any]] | None = None,
    rejected: list[dict[str, Any]] | None = None,
    threshold: float = 0.05,
) -> Validated:
    """Check one standardized frame; raise StageError above the threshold, else quarantine."""
    check_columns(frame, schema, req)
    problems: list[dict[str, Any]] = [dict(p) for p in (type_errors or [])]
    if req.key and req.key in frame.columns:
        problems.extend(_key_problems(frame, req.key))
    for r in rejected or []:
        problems.append(
            {
                "row": r.get("row"),
                "column": "",
                "value": r.get("text", ""),
                "kind": "malformed_row",
                "expected": r.get("problem", ""),
            }
        )
    for p in problems:
        p.setdefault("hint", HINTS.get(p["kind"], ""))
    total = len(frame) + len(rejected or [])
    bad_rows = {p["row"] for p in problems if p["kind"] != "malformed_row"}
    bad_count = len(bad_rows) + len(rejected or [])
    report = _report(problems, total, bad_count)
    log = [f"rows checked: {total}", f"rows with problems: {bad_count}"]
    log += [f"{k}: {v['count']}" for k, v in report["by_kind"].items()]
    if total and bad_count / total > threshold:
        raise _threshold_error(report, bad_count, total, threshold, problems)
    keep = ~frame[ROW].isin(bad_rows).to_numpy() if bad_rows else None
    quarantined = frame[~keep] if keep is not None else frame.iloc[0:0]
    valid = frame[keep].reset_index(drop=True) if keep is not None else frame
    report["rows_quarantined"] = bad_count
    report["rows_valid"] = len(valid)
    return Validated(valid, report, problems, quarantined, log)


def _report(problems: list[dict[str, Any]], total: int, bad: int) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {}
    for p in problems:
        entry = by_kind.setdefault(p["kind"], {"count": 0, "first": []})
        entry["count"] += 1
        if len(entry["first"]) < FIRST_N:
            entry["first"].append({"row": p["row"], "column": p["column"], "value": p["value"]})
    return {
        "rows_checked": total,
        "rows_with_problems": bad,
        "problems": len(problems),
        "by_kind": by_kind,
    }


def _threshold_error(
    report: dict[str, Any], bad: int, total: int, threshold: float, problems: list[dict[str, Any]]
) -> StageError:
    kinds = report["by_kind"]
    top = max(kinds, key=lambda k: kinds[k]["count"]) if kinds else ""
    first = problems[0] if problems else {}
    pct = 100 * bad / total
    summary = ", ".join(f"{k} {v['count']}" for k, v in kinds.items())
    if top == "duplicate_key":
        dup = kinds[top]["first"][0]
        return StageError(
            V,
            E.DUPLICATE_KEYS,
            f"{kinds[top]['count']} rows repeat an identifier already used (first: "
            f"{dup['value']!r} on row {dup['row']}); {pct:.1f}% of rows have problems, over the "
            f"{threshold:.0%} threshold",
            hint="Remove the repeated rows in the source system and export again.",
            row=dup["row"],
            column=dup["column"],
            details={"report": report},
        )
    return StageError(
        V,
        E.VALIDATION_THRESHOLD,
        f"{bad} of {total} rows ({pct:.1f}%) have problems, over the {threshold:.0%} threshold "
        f"({summary}); first at row {first.get('row')}, column {first.get('column') or '-'}",
        hint="Open the validation report, correct the rows at the source and upload again.",
        row=first.get("row"),
        column=first.get("column") or None,
        details={"report": report},
    )
