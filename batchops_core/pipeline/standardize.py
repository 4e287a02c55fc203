"""Stage 1: any supported file in, one typed DataFrame out.

The file kind comes from its first bytes, not only its name (a PDF renamed `.csv` is still read as
a PDF; binary garbage named `.csv` fails as NOT_TEXT). The loaders return text columns; here names
are normalized and aliased, cells trimmed, fully empty rows and columns dropped, and each column
typed by `infer.py`. The original row number of every row travels in the `__row__` column so that
validation and the fix-list can point at the row the department will recognise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from batchops_core.enums import Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.columns import DEFAULT_ALIASES, build_alias_map, normalize_columns
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.infer import (
    ColumnResult,
    clean_text,
    fast_numeric,
    infer_column,
    is_identifier_name,
)
from batchops_core.pipeline.loaded import Loaded

ROW = "__row__"
S = Stage.STANDARDIZE
CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".tab", ".psv", ".dat"}
XLSX_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}


@dataclass
class Standardized:
    frame: pd.DataFrame
    schema: dict[str, str]
    type_errors: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def detect_kind(path: Path) -> str:
    """ "csv", "xlsx" or "pdf" from magic bytes first, then the extension."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(
        (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
    ) and path.suffix.lower() in XLSX_SUFFIXES | {""}:
        return "xlsx"
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return "xlsx"
    if suffix == ".pdf":
        return "pdf"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise StageError(
        S,
        E.UNSUPPORTED_TYPE,
        f"{path.name}: files of type {suffix or '(none)'!r} are not supported",
        hint="Upload a CSV, XLSX or PDF export.",
    )


def check_file(path: Path, max_bytes: int) -> int:
    if not str(path) or path.is_dir():
        raise StageError(
            S,
            E.BAD_PATH,
            f"the upload has no stored file ({str(path) or 'no path recorded'})",
            hint="Upload the file again.",
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StageError(
            S,
            E.BAD_PATH,
            f"the stored file {path.name} cannot be opened: {exc.strerror}",
            hint="Upload the file again.",
        ) from None
    if size == 0:
        raise StageError(
            S,
            E.EMPTY_FILE,
            f"{path.name} is empty (0 bytes)",
            hint="Export the table again; the file that arrived is empty.",
        )
    if max_bytes and size > max_bytes:
        raise StageError(
            S,
            E.FILE_TOO_LARGE,
            f"{path.name} is {size / 1024**2:,.1f} MB, "
            f"over the {max_bytes / 1024**2:,.0f} MB limit",
            hint="Split the file by term or class, or raise [pipeline].max_upload_mb.",
            details={"size_bytes": size, "limit_bytes": max_bytes},
        )
    return size


def load(path: Path, options: dict[str, Any], pdf_processes: int = 1) -> Loaded:
    kind = detect_kind(path)
    if kind == "csv":
        from batchops_core.pipeline.load_csv import load_csv

        return load_csv(path, options)
    if kind == "xlsx":
        from batchops_core.pipeline.load_xlsx import load_xlsx

        return load_xlsx(path, options)
    from batchops_core.pipeline.load_pdf import load_pdf

    return load_pdf(path, options, processes=pdf_processes)


def standardize(
    path: Path,
    *,
    options: dict[str, Any] | None = None,
    aliases: dict[str, str] | None = None,
    max_bytes: int = 0,
    pdf_processes: int = 1,
) -> Standardized:
    """Load and type one file; `options` are `process_config["read_options"]` overrides."""
    options = dict(options or {})
    check_file(path, max_bytes)
    loaded = load(path, options, pdf_processes)
    # the reader's blocks are freed but kept by Arrow's allocator: hand them back before typing
    # allocates, or they add ~50 MB to the peak of a million-row file
    pa.default_memory_pool().release_unused()
    alias_map = build_alias_map(DEFAULT_ALIASES, aliases, options.get("column_aliases"))
    names, name_log = normalize_columns(loaded.header, alias_map)
    return build_frame(loaded, names, name_log)


Present = list[tuple[int, pa.ChunkedArray | None]]
"""(filled cells, which cells are filled when only some are) per column."""


def _first_pass(
    loaded: Loaded, names: list[str]
) -> tuple[dict[int, ColumnResult], list[pa.ChunkedArray | None], Present]:
    """Clean numeric columns cast straight from the reader's text (nothing to trim), which
    spares a million-row file one trim pass per numeric column; the rest is trimmed (typed
    later). The loader's columns are consumed: each is released once typed, so a million-row
    file never holds its numbers twice (Arrow's and NumPy's copy: 48 MB of the peak here)."""
    raws: list[pa.ChunkedArray | None] = list(loaded.columns)
    loaded.columns = []
    fast: dict[int, ColumnResult] = {}
    cleaned: list[pa.ChunkedArray | None] = []
    present: Present = []
    for j, raw in enumerate(raws):
        assert raw is not None
        result = None if str(j) in loaded.native else fast_numeric(names[j], raw)
        col = raw if result is not None else clean_text(raw)
        if result is not None:
            fast[j] = result
            cleaned.append(None)
        else:
            cleaned.append(col)
        filled = len(col) - col.null_count
        present.append((filled, pc.is_valid(col) if 0 < filled < len(col) else None))
        raws[j] = None  # the only other reference: freed as soon as this column is typed
    return fast, cleaned, present


def build_frame(loaded: Loaded, names: list[str], name_log: list[str]) -> Standardized:
    fast, cleaned, present = _first_pass(loaded, names)
    keep_cols = [j for j, (filled, _) in enumerate(present) if filled > 0]
    dropped_cols = [names[j] for j in range(len(names)) if j not in keep_cols]
    rows = loaded.row_numbers
    mask = None
    if keep_cols and all(present[j][1] is not None for j in keep_cols):
        for j in keep_cols:  # no column is filled on every row: look for fully empty rows
            filled_at = present[j][1]
            mask = filled_at if mask is None else pc.or_(mask, filled_at)
    dropped_rows = 0
    keep = None
    if mask is not None:
        keep = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
        dropped_rows = int((~keep).sum())
        if dropped_rows:
            flt = pa.chunked_array([pa.array(keep)])
            cleaned = [c if c is None else c.filter(flt) for c in cleaned]
            for result in fast.values():
                result.series = result.series[keep].reset_index(drop=True)
            rows = rows[keep]
    if not keep_cols or len(rows) == 0:
        raise StageError(
            S,
            E.NO_DATA,
            "the file has a header but no data rows",
            hint="Check that the export includes the data, not only the column titles.",
            details={"columns": names},
        )
    data: dict[str, Any] = {}
    schema: dict[str, str] = {}
    type_errors: list[dict[str, Any]] = []
    notes: list[str] = []
    for j in keep_cols:
        name = names[j]
        result = fast.get(j)
        if result is None:
            text = cleaned[j]
            assert text is not None
            result = _typed(name, text, loaded.native.get(str(j)), keep if dropped_rows else None)
        data[name] = result.series.reset_index(drop=True)
        schema[name] = result.kind
        notes.extend(result.notes)
        for pos, text in result.bad:
            type_errors.append(
                {
                    "row": int(rows[pos]),
                    "column": name,
                    "value": text,
                    "expected": "a number" if result.kind in {"integer", "number"} else result.kind,
                    "kind": "type",
                }
            )
    # copy=False: one block per column, so the 8 MB float columns are not stacked into one 2-D
    # block (a copy of every number, 0.16-0.25 s on a million rows) only to be split again by
    # the Arrow hand-off
    frame = pd.DataFrame(data, copy=False)
    frame[ROW] = rows
    log = list(loaded.log) + name_log + notes
    if dropped_cols:
        log.append(f"empty columns dropped: {', '.join(dropped_cols)}")
    if dropped_rows:
        log.append(f"empty rows dropped: {dropped_rows}")
    log.append("schema: " + ", ".join(f"{k}={v}" for k, v in schema.items()))
    return Standardized(
        frame=frame,
        schema=schema,
        type_errors=type_errors,
        rejected=loaded.rejected,
        log=log,
        meta=dict(loaded.meta),
    )


def _typed(name: str, arr: pa.ChunkedArray, native: Any, keep: np.ndarray | None) -> ColumnResult:
    if native is not None and not is_identifier_name(name):
        kind, series = native
        if keep is not None:
            series = series[keep]
        series = series.reset_index(drop=True)
        if kind == "number":
            finite = series.dropna()
            if (
                len(finite)
                and bool(((finite % 1) == 0).all())
                and bool((finite.abs() < 2**53).all())
            ):
                return ColumnResult(series.astype("Int64"), "integer")
            return ColumnResult(series.astype("float64"), "number")
        return ColumnResult(series, kind)
    return infer_column(name, arr)
