"""Column type inference from text, shared by the CSV, XLSX and PDF loaders.

Every loader produces text columns (so nothing ever passes through a float by accident); this
module decides per column whether it is an integer, a number, a date or text, and records the
cells that do not fit:

* Fast path for big files: Arrow's vectorized casts (`string → int64/float64`), which succeed for
  clean columns in milliseconds per million cells.
* Slow path only when the cast fails: suppression markers (`*`, `n/a`, `-`) become missing,
  thousands separators, currency and percent signs, one shared unit word ("78 students") and
  decimal commas are understood. A column where at least 90 % of the non-missing cells parse is
  numeric and the rest are *type errors* that validation quarantines; below that it stays text.
* Integer-looking identifiers stay text: a leading zero, 16+ digits, or an identifier-like name
  (`*_id`, `*_code`, `zip`, …). Integers with gaps use pandas' nullable `Int64` so `3400660`
  never prints as `3400660.0`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MISSING_MARKERS = frozenset(
    {"*", "**", "n/a", "na", "-", "--", "—", "–", "null", "none", "nan", "#n/a", "."}
)
NUMERIC_RATIO = 0.9
_ID_NAME = re.compile(r"(^|_)(id|ids|code|no|nr|num|number|zip|zipcode|postcode|key|phone|nces.*)$")
_NUMBERISH = re.compile(r"^[-+(]?[$€£₹]?\s*[-+]?[\d.,]+\s*%?\)?(\s*[A-Za-z]+)?$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+$")
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S")
_DATEISH = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}( \d\d:\d\d(:\d\d)?)?$")
TYPE_ERROR_CAP = 200_000


@dataclass
class ColumnResult:
    """One typed column plus what the inference learned about it."""

    series: pd.Series
    kind: str
    """text | integer | number | date | datetime | boolean"""
    bad: list[tuple[int, str]] = field(default_factory=list)
    """(row position, original text) of cells that do not fit the inferred type."""
    notes: list[str] = field(default_factory=list)


def is_identifier_name(name: str) -> bool:
    return bool(_ID_NAME.search(name))


def _to_text_series(arr: pa.ChunkedArray) -> pd.Series:
    if not len(arr):
        return pd.Series([], dtype="str")
    if pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.large_string())  # pandas' own type: offsets widened, text not copied
    return pd.Series(arr.to_pandas(), dtype="str")


def clean_text(arr: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Trim whitespace and turn empty cells into nulls."""
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    if arr.type != pa.string() and arr.type != pa.large_string():
        arr = pc.cast(arr, pa.string())
    blank_edge, empty = _edges(arr)
    if not blank_edge:
        # the CSV reader already turned empty cells into nulls; nothing to copy
        if not empty:
            return arr
        return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed)


_BLANK = np.zeros(256, dtype=bool)
_BLANK[[ord(" "), ord("\t")]] = True


def _edges(arr: pa.ChunkedArray) -> tuple[bool, bool]:
    """Whether any cell starts or ends with a space or tab, and whether any is "" — read from
    each cell's first and last byte in the Arrow buffers (one pass, no copy; four prefix/suffix
    kernels per column cost 0.13 s on a million-row file). A null's slot may hold bytes, so a
    hit there only sends the column down the careful path, which gives the same result."""
    blank = empty = False
    for chunk in arr.chunks:
        n = len(chunk)
        if n == 0 or chunk.null_count == n:
            continue
        bufs = chunk.buffers()
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(
            bufs[1], dtype=width, count=n + 1, offset=chunk.offset * width(0).nbytes
        )
        starts, ends = offsets[:-1], offsets[1:]
        filled = ends > starts
        everywhere = bool(filled.all())
        if everywhere:
            pass
        elif chunk.null_count:
            valid = np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            empty = empty or bool((valid & ~filled).any())
        else:
            empty = True
        if bufs[2] is None or not (everywhere or filled.any()):
            continue
        if not everywhere:
            starts, ends = starts[filled], ends[filled]
        data = np.frombuffer(bufs[2], dtype=np.uint8)
        first, last = data[starts], data[ends - 1]
        if _BLANK[first].any() or _BLANK[last].any():
            blank = True
        if blank and empty:
            break
    return blank, empty


def _missing_mask(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    lowered = pc.utf8_lower(arr)
    return pc.or_kleene(
        pc.is_null(arr), pc.is_in(lowered, value_set=pa.array(sorted(MISSING_MARKERS)))
    )


def infer_column(name: str, arr: pa.ChunkedArray) -> ColumnResult:
    """Type one cleaned text column (see `clean_text`)."""
    non_null = len(arr) - arr.null_count
    if non_null == 0:
        return ColumnResult(_to_text_series(arr), "text")
    fast = fast_numeric(name, arr)
    if fast is not None:
        return fast
    return _slow_path(name, arr)


def _casts(arr: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray | None:
    try:
        return pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def fast_numeric(name: str, arr: pa.ChunkedArray) -> ColumnResult | None:
    """Arrow's vectorized casts for clean numeric columns; None when the column needs the
    careful path (text, markers, separators, blanks around numbers)."""
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        return _from_numbers(arr)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    if arr.null_count == len(arr):
        return None
    head = arr.slice(0, 2000).drop_null()
    ints = _casts(arr, pa.int64()) if _casts(head, pa.int64()) is not None else None
    if ints is not None:
        if _looks_like_identifier(name, arr):
            note = f"{name}: digits kept as text"
            return ColumnResult(_to_text_series(arr), "text", notes=[note])
        if ints.null_count:
            series = ints.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        else:
            series = ints.to_pandas()
        return ColumnResult(series, "integer")
    if _casts(head, pa.float64()) is None:
        return None
    longest = pc.max(pc.utf8_length(arr)).as_py() or 0
    if longest >= 16 and pc.any(pc.match_substring_regex(arr, r"^[+-]?\d{16,}$")).as_py():
        # 16+ digit codes overflow int64 or lose digits as floats: they are identifiers
        note = f"{name}: long digits kept as text"
        return ColumnResult(_to_text_series(arr), "text", notes=[note])
    floats = _casts(arr, pa.float64())
    if floats is None:
        return None
    return ColumnResult(floats.to_pandas(), "number")


def _from_numbers(arr: pa.ChunkedArray) -> ColumnResult:
    """A column the reader already parsed as numbers: integers when every value is whole."""
    values = arr.to_numpy() if arr.null_count == 0 else arr.to_pandas().to_numpy(dtype="float64")
    if values.dtype.kind != "f":
        return ColumnResult(pd.Series(values), "integer")
    finite = values[~np.isnan(values)] if arr.null_count else values
    head = finite[:4096]  # scores with decimals show it at once: no full pass to find out
    whole = (
        finite.size > 0
        and bool(np.array_equal(np.floor(head), head))
        and bool(np.array_equal(np.floor(finite), finite))
        and bool(np.abs(finite).max() < 2**53)
    )
    if not whole:
        return ColumnResult(pd.Series(values, dtype="float64", copy=False), "number")
    if arr.null_count:
        return ColumnResult(pd.Series(values).astype("Int64"), "integer")
    return ColumnResult(pd.Series(values.astype("int64")), "integer")


def _looks_like_identifier(name: str, arr: pa.ChunkedArray) -> bool:
    if is_identifier_name(name):
        return True
    stripped = pc.utf8_ltrim(arr, characters="+-")
    if pc.any(
        pc.and_(pc.starts_with(stripped, "0"), pc.greater(pc.utf8_length(stripped), 1))
    ).as_py():
        return True
    return bool(pc.any(pc.greater_equal(pc.utf8_length(stripped), 16)).as_py())


def _sample_is_text(name: str, arr: pa.ChunkedArray) -> bool:
    """Decide on the first 2,000 filled cells that a big column is plainly text, so a million
    names or class codes ("9A") never go through the per-cell parsing below."""
    sample = arr.slice(0, 50_000).drop_null().to_pylist()[:2000]
    candidates = [(i, t) for i, t in enumerate(sample) if t.lower() not in MISSING_MARKERS]
    if not candidates:
        return False
    if _parse_numbers(name, candidates, len(sample)) is not None:
        return False
    return _try_dates(sample, np.array([t.lower() in MISSING_MARKERS for t in sample])) is None


def _slow_path(name: str, arr: pa.ChunkedArray) -> ColumnResult:
    if len(arr) > 5000 and _sample_is_text(name, arr):
        return ColumnResult(_to_text_series(arr), "text")
    missing = _missing_mask(arr).to_numpy(zero_copy_only=False).astype(bool)
    texts = arr.to_pylist()
    candidates = [(i, t) for i, t in enumerate(texts) if not missing[i]]
    notes: list[str] = []
    markers = int(missing.sum()) - arr.null_count
    if not candidates:
        return ColumnResult(_to_text_series(arr), "text")
    dates = _try_dates(texts, missing)
    if dates is not None:
        return dates
    numeric = _parse_numbers(name, candidates, len(texts))
    if numeric is None:
        return ColumnResult(_to_text_series(arr), "text")
    values, bad, kind, note = numeric
    if markers:
        notes.append(f"{name}: {markers} suppression/missing markers read as empty")
    if note:
        notes.append(note)
    return ColumnResult(values, kind, bad=bad[:TYPE_ERROR_CAP], notes=notes)


def _normalize_number(text: str, unit: str | None, decimal_comma: bool) -> str:
    t = text.strip()
    negative = t.startswith("(") and t.endswith(")")
    t = t.strip("()").replace("$", "").replace("€", "").replace("£", "").replace("₹", "").strip()
    if unit and t.endswith(unit):
        t = t[: -len(unit)].strip()
    t = t.rstrip("%").strip()
    if decimal_comma:
        t = t.replace(".", "").replace(",", ".")
    elif _THOUSANDS.match(t):
        t = t.replace(",", "")
    return f"-{t}" if negative else t


def _parse_numbers(
    name: str, candidates: list[tuple[int, str]], length: int
) -> tuple[pd.Series, list[tuple[int, str]], str, str] | None:
    shaped = [t for _, t in candidates if _NUMBERISH.match(t)]
    if len(shaped) < max(1, NUMERIC_RATIO * len(candidates)):
        return None
    units = {m.group(0).strip() for t in shaped if (m := re.search(r"[A-Za-z]+$", t))}
    unit = units.pop() if len(units) == 1 else None
    decimal_comma = any(_DECIMAL_COMMA.match(t) for t in shaped) and not any(
        _THOUSANDS.match(t) for t in shaped
    )
    out = np.full(length, np.nan)
    bad: list[tuple[int, str]] = []
    for i, t in candidates:
        try:
            out[i] = float(_normalize_number(t, unit, decimal_comma))
        except ValueError:
            bad.append((i, t))
    if len(bad) > (1 - NUMERIC_RATIO) * len(candidates):
        return None
    if any(
        t.lstrip("+-").startswith("0") and t.strip("+-").isdigit() and len(t) > 1
        for _, t in candidates
    ):
        return None
    finite = out[~np.isnan(out)]
    note = f"{name}: numbers read with unit '{unit}'" if unit else ""
    if decimal_comma:
        note = f"{name}: decimal commas read as decimal points"
    if finite.size and np.all(np.mod(finite, 1) == 0) and np.all(np.abs(finite) < 2**53):
        series = pd.Series(out).astype("Int64")
        if is_identifier_name(name):
            return None
        return series, bad, "integer", note
    return pd.Series(out), bad, "number", note


def _try_dates(texts: list[Any], missing: np.ndarray) -> ColumnResult | None:
    sample = [t for i, t in enumerate(texts[:500]) if not missing[i]]
    if not sample or sum(1 for t in sample if _DATEISH.match(t)) < NUMERIC_RATIO * len(sample):
        return None
    values = pd.Series([None if missing[i] else t for i, t in enumerate(texts)], dtype="object")
    present = int((~missing).sum())
    for fmt in _DATE_FORMATS:
        parsed = pd.to_datetime(values, format=fmt, errors="coerce")
        ok = int(parsed.notna().sum())
        if ok >= NUMERIC_RATIO * present:
            bad = [(i, texts[i]) for i in np.flatnonzero(parsed.isna().to_numpy() & ~missing)]
            kind = "datetime" if "%H" in fmt else "date"
            return ColumnResult(parsed, kind, bad=bad, notes=[f"dates read as {fmt}"])
    return None
