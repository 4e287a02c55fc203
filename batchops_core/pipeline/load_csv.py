"""CSV loading: encoding, dialect and header decided on the head, then Arrow's parallel reader.

The first 256 KiB decide the encoding (`decode.py`: BOM, UTF-8 line by line, legacy code page),
the dialect (`dialect.py`: CleverCSV's detector on a bounded sample) and the header record
(`header.py`: never a data row promoted, never a guess published). Arrow then reads every column
as text (plain-number columns as float64) from the header's byte offset; typing happens in
`infer.py`. Two rarer shapes leave the fast path, each said in the step log: a file mixing UTF-8
and legacy lines is transcoded line by line first, and a file writing `a, "b"` (a space before
quoted values, which Arrow cannot skip) is read by Python's csv module.

Why not `pandas.read_csv(sep=None)`: its sniffer fails on the UCI semicolon sample and reads
identifiers as floats.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batchops_core.enums import Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.decode import (
    REPLACEMENT,
    REPLACEMENT_NOTE,
    TextEncoding,
    detect_encoding,
    head_lines,
    transcode_to_utf8,
)
from batchops_core.pipeline.dialect import Dialect, delimiter_name, detect_dialect, parse_lines
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.header import Header, find_header
from batchops_core.pipeline.loaded import Loaded, text_columns_from_rows

HEAD_BYTES = 256 * 1024
HEAD_LINES = 2000
"""Lines of the head parsed for the header and the plain-number columns (the time budget)."""
BLOCK_BYTES = 8 << 20
DELIMITERS = (",", ";", "\t", "|")
TEXT_REREADS = 2
"""Re-reads with one more column as text before the whole file is read as text."""
_COLUMN_NO = re.compile(r"CSV column #(\d+)")
S = Stage.STANDARDIZE

__all__ = ["delimiter_name", "load_csv", "numeric_columns", "plan_read"]


@dataclass
class _Plan:
    """Everything the head decided, handed to the bulk read."""

    path: Path
    enc: TextEncoding
    dialect: Dialect
    header: Header
    offset: int
    quoted: bool
    numeric: set[int]
    log: list[str]
    replacements: bool = False
    """The head holds U+FFFD, so the loaded values are searched for it."""
    rereads: int = 0
    """Columns the head called numeric that a read found text in (see `_retype_as_text`)."""


def load_csv(path: Path, options: dict[str, Any]) -> Loaded:
    """Read a delimited text file into text columns; see the module docstring."""
    plan = plan_read(path, options)
    loaded = _read(plan)
    _note_replacements(plan, loaded)
    return loaded


def plan_read(path: Path, options: dict[str, Any]) -> _Plan:
    """Everything decided from the head (encoding, dialect, header), without the bulk read:
    what `bench/bench_dialect.py` times, so its cost must not grow with the file."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head.strip():
        raise StageError(
            S,
            E.EMPTY_FILE,
            f"{path.name} is empty (0 data bytes)",
            hint="Export the table again; the file that arrived is empty.",
        )
    forced = options.get("delimiter")
    if forced is not None and (not isinstance(forced, str) or len(forced) != 1):
        raise StageError(
            S, E.CSV_DELIMITER, f"read option delimiter must be one character, got {forced!r}"
        )
    enc = detect_encoding(head, options.get("encoding"))
    whole = len(head) < HEAD_BYTES
    lines, sizes = head_lines(head[enc.bom :], enc, whole)
    content = [ln for ln in lines[:HEAD_LINES] if ln.strip() and not ln.lstrip().startswith("#")]
    dialect = detect_dialect(content, forced)
    records = parse_lines(lines[:HEAD_LINES], dialect)
    header = find_header(records)
    if header.width == 1:
        _refuse_single_column(content, dialect.delimiter, bool(forced))
    data = [cells for _, cells in records[header.index + 1 :] if any(c.strip() for c in cells)]
    if whole and not data and len(lines) <= HEAD_LINES:
        raise StageError(
            S,
            E.NO_DATA,
            f"the file has only its header row ({', '.join(header.cells)}) and no data rows",
            hint="Check that the export includes the data, not only the column titles.",
        )
    offset = enc.bom + sum(sizes[: header.line])
    quote = dialect.quotechar
    lines = lines[:HEAD_LINES]
    return _Plan(
        path,
        enc,
        dialect,
        header,
        offset,
        bool(quote) and any(quote in ln for ln in lines),
        numeric_columns(data, header.cells),
        _head_log(enc, dialect, header),
        any(REPLACEMENT in ln for ln in lines),
    )


def _head_log(enc: TextEncoding, dialect: Dialect, header: Header) -> list[str]:
    log = [
        f"encoding: {enc.label}",
        f"delimiter: {delimiter_name(dialect.delimiter)}",
        f"dialect: {dialect.describe()}",
        f"header row: {header.line + 1}",
        f"header row {header.line + 1} chosen: " + "; ".join(header.reasons),
    ]
    if enc.note:
        log.insert(1, enc.note)
    return log


def _refuse_single_column(content: list[str], used: str, forced: bool) -> None:
    alternatives: dict[str, int] = {}
    for d in DELIMITERS:
        if d == used:
            continue
        counts = [len(r) for _, r in parse_lines(content[:60], Dialect(d))]
        width = Counter(counts).most_common(1)[0][0] if counts else 1
        if width > 1:
            alternatives[d] = width
    if not alternatives:
        return
    d, n = max(alternatives.items(), key=lambda kv: kv[1])
    raise StageError(
        S,
        E.CSV_SINGLE_COLUMN if forced else E.CSV_DELIMITER,
        f"every row landed in one column when split on {delimiter_name(used)}; "
        f"the {delimiter_name(d)} delimiter would give {n} columns",
        hint=f"Re-read the file with delimiter {d!r}, or export it again with commas.",
        details={"delimiter": used, "candidates": alternatives},
    )


def _read(plan: _Plan) -> Loaded:
    """The bulk read: Arrow (fast, then careful when a quoted value holds a newline), the
    line-by-line transcoding when UTF-8 and legacy lines mix, or Python's csv module."""
    mixed = plan.enc.legacy is not None and plan.enc.label != "utf-8"
    if not plan.dialect.arrow_can_read:
        plan.log.append('values written as `a, "b"`: read with Python\'s csv module')
        return _read_python(plan, _source_bytes(plan, mixed))
    if mixed:
        return _read_arrow_quoted(plan, _source_bytes(plan, True))
    try:
        return _read_arrow_quoted(plan, None)
    except StageError as exc:
        if exc.code != E.CSV_ENCODING or plan.enc.legacy is None:
            raise
    return _read_arrow_quoted(plan, _source_bytes(plan, True))


def _source_bytes(plan: _Plan, transcode: bool) -> bytes:
    """The file from the header on, as UTF-8 when lines must be transcoded."""
    with plan.path.open("rb") as fh:
        fh.seek(plan.offset)
        data = fh.read()
    if not transcode or plan.enc.legacy is None:
        return data
    text, legacy_lines, replaced = transcode_to_utf8(data, plan.enc.legacy)
    if legacy_lines:
        first = plan.header.line
        shown = ", ".join(str(n + first) for n in legacy_lines[:10])
        more = f" and {len(legacy_lines) - 10} more" if len(legacy_lines) > 10 else ""
        plan.log.append(
            f"{len(legacy_lines)} lines are not UTF-8 and were read as {plan.enc.legacy} "
            f"(the rest as UTF-8): rows {shown}{more}"
        )
    if replaced:
        plan.log.append(f"{replaced} bytes no encoding could read became U+FFFD")
    return text


def _read_arrow_quoted(plan: _Plan, data: bytes | None) -> Loaded:
    """Read quoted files without newlines in values first: allowing them stops Arrow from
    splitting the file into blocks it parses in parallel (0.18 s more on a 1M-row gradebook).
    A value holding a newline splits its row into two of the wrong width (or a parse error), so
    then the file is read again the careful way; one-column files are always read carefully."""
    if not plan.quoted or plan.header.width == 1:
        return _read_arrow(plan, data, plan.quoted)
    try:
        loaded = _read_arrow(plan, data, False)
    except StageError as exc:
        if exc.code == E.CSV_ENCODING:
            raise
        return _read_arrow(plan, data, True)
    return _read_arrow(plan, data, True) if loaded.rejected else loaded


def _read_arrow(plan: _Plan, data: bytes | None, quoted: bool) -> Loaded:
    header, header_at = plan.header, plan.header.line
    names = [f"c{i}" for i in range(header.width)]
    rejected: list[dict[str, Any]] = []

    def on_invalid(row: Any) -> str:
        if len(rejected) < 10_000:
            rejected.append(
                {
                    "row": (row.number + header_at) if row.number is not None else None,
                    "text": (row.text or "")[:200],
                    "problem": f"{row.actual_columns} fields where the header has "
                    f"{row.expected_columns}",
                }
            )
        return "skip"

    codec = "utf-8" if data is not None else plan.enc.codec
    arrow_encoding = "utf8" if codec in {"utf-8", "ascii"} else codec
    d = plan.dialect
    types = {n: pa.float64() if i in plan.numeric else pa.string() for i, n in enumerate(names)}
    read_opts = pacsv.ReadOptions(
        column_names=names, skip_rows=1, encoding=arrow_encoding, block_size=BLOCK_BYTES
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=d.delimiter,
        quote_char=d.quotechar or False,
        escape_char=d.escapechar or False,
        newlines_in_values=quoted,
        invalid_row_handler=on_invalid,
    )
    convert_opts = pacsv.ConvertOptions(
        column_types=types,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    # A plain file, not a memory map: a mapped file's pages count against the worker's memory
    # (71 MB of a 71 MB file, a quarter of the peak), while the reader only needs its blocks.
    source = pa.OSFile(str(plan.path)) if data is None else None
    try:
        if source is not None:
            source.seek(plan.offset)
        table = pacsv.read_csv(
            source if source is not None else pa.BufferReader(pa.py_buffer(data)),
            read_options=read_opts,
            parse_options=parse_opts,
            convert_options=convert_opts,
        )
    except pa.ArrowInvalid as exc:
        if plan.numeric and "conversion error to double" in str(exc):
            _retype_as_text(plan, str(exc))
            return _read_arrow(plan, data, quoted)
        raise _arrow_error(exc, plan) from None
    except UnicodeDecodeError as exc:
        raise StageError(
            S,
            E.CSV_ENCODING,
            f"the file cannot be read as {plan.enc.label}: {exc.reason}",
            hint="Save the file as 'CSV UTF-8', or re-read it as cp1252.",
            details={"encoding": plan.enc.codec},
        ) from None
    finally:
        if source is not None:
            source.close()
    if any(r["row"] is None for r in rejected):
        _locate_rejected(plan, rejected)
    return _loaded(plan, list(table.columns), table.num_rows, rejected)


def _retype_as_text(plan: _Plan, message: str) -> None:
    """A column the head called numeric is not: read that one column as text next time (the
    others stay typed by the reader); after `TEXT_REREADS` such columns, read all as text."""
    found = _COLUMN_NO.search(message)
    suspect = int(found.group(1)) if found else None
    if suspect in plan.numeric and plan.rereads < TEXT_REREADS:
        plan.numeric.discard(suspect)
        plan.rereads += 1
    else:
        plan.numeric = set()


def _loaded(
    plan: _Plan, columns: list[pa.ChunkedArray], count: int, rejected: list[dict[str, Any]]
) -> Loaded:
    first = plan.header.line + 2
    rows = np.arange(first, first + count, dtype=np.int64)
    skipped = sorted(r["row"] for r in rejected if r["row"] is not None)
    if skipped:
        rows = _shift_for_skipped(rows, skipped)
    log = list(plan.log)
    if rejected:
        log.append(f"{len(rejected)} rows with the wrong number of fields set aside")
    return Loaded(
        header=list(plan.header.cells),
        columns=columns,
        row_numbers=rows,
        log=log,
        meta={
            "encoding": plan.enc.label,
            "delimiter": plan.dialect.delimiter,
            "quotechar": plan.dialect.quotechar,
            "header_row": plan.header.line + 1,
            "format": "csv",
        },
        rejected=rejected,
    )


def _read_python(plan: _Plan, data: bytes) -> Loaded:
    """Python's csv module for dialects Arrow cannot express; same rows, same rejections."""
    codec = "utf-8" if plan.enc.legacy is not None else plan.enc.codec
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=codec, errors="replace", newline="")
    reader = csv.reader(stream, **plan.dialect.reader_kwargs())
    width = plan.header.width
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    rejected: list[dict[str, Any]] = []
    start = reader.line_num
    for k, cells in enumerate(reader):
        line = plan.header.line + start + 1
        start = reader.line_num
        if k == 0 or not any(c.strip() for c in cells):
            continue
        if len(cells) != width:
            rejected.append(
                {
                    "row": line,
                    "text": plan.dialect.delimiter.join(cells)[:200],
                    "problem": f"{len(cells)} fields where the header has {width}",
                }
            )
            continue
        rows.append([c if c != "" else None for c in cells])
        numbers.append(line)
    loaded = _loaded(plan, text_columns_from_rows(rows, width), len(rows), rejected)
    loaded.row_numbers = np.asarray(numbers, dtype=np.int64)
    return loaded


def _shift_for_skipped(rows: np.ndarray, skipped: list[int]) -> np.ndarray:
    out = rows.copy()
    for s in skipped:
        out[out >= s] += 1
    return out


def _arrow_error(exc: Exception, plan: _Plan) -> StageError:
    """The reader's failure in the user's terms; its own words stay in `details` only."""
    text = str(exc)
    where = {"reader": text[:500], "header_row": plan.header.line + 1}
    if "UTF8" in text or "utf8" in text.lower():
        return StageError(
            S,
            E.CSV_ENCODING,
            "the file is not valid UTF-8 further down (the start was); "
            "it was probably saved as cp1252/latin-1",
            hint="Save the file as 'CSV UTF-8', or re-read it as cp1252.",
            details={"encoding": plan.enc.codec, **where},
        )
    if "straddl" in text or "block size" in text:
        return StageError(
            S,
            E.CSV_VALUE_TOO_LARGE,
            f"one value in the file is longer than {BLOCK_BYTES >> 20} MB, so its row cannot "
            "be read: most often a quote that opens a value and never closes, so the rest of "
            "the file runs into one cell, or a document pasted into a cell",
            hint="Find the value (search for a lone quote character), fix or remove it, "
            "and export again.",
            details={"limit_bytes": BLOCK_BYTES, **where},
        )
    quote = plan.dialect.quotechar
    return StageError(
        S,
        E.CSV_DELIMITER,
        f"the file could not be split into rows with {delimiter_name(plan.dialect.delimiter)} "
        f"between values{f' and {quote} around them' if quote else ''}: a quote or delimiter "
        "is out of place",
        hint="Check quotes and delimiters around the row named, then export again.",
        details=where,
    )


def _locate_rejected(plan: _Plan, rejected: list[dict[str, Any]]) -> None:
    """Arrow's multi-threaded reader does not know line numbers; find the rejected lines by
    their text (files up to 64 MiB; larger ones keep "row unknown")."""
    if plan.path.stat().st_size > 64 * 1024 * 1024:
        return
    wanted: dict[str, list[dict[str, Any]]] = {}
    for r in rejected:
        if r["row"] is None:
            wanted.setdefault(r["text"].rstrip("\r\n"), []).append(r)
    codec = plan.enc.codec
    with plan.path.open(encoding=codec, errors="replace", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if number <= plan.header.line + 1:
                continue
            pending = wanted.get(line.rstrip("\r\n")[:200])
            if pending:
                pending.pop(0)["row"] = number


def _note_replacements(plan: _Plan, loaded: Loaded) -> None:
    """Name the columns whose values hold U+FFFD, the mark of bytes nobody could read.

    Looked for when the line-by-line decoding made some, or the head already holds one: a
    search of the whole file cost 75 ms per 74 MB (1 GB/s), too much for every clean upload,
    so a U+FFFD written into the file only past its first 256 KiB goes unnamed."""
    if not plan.replacements and not any("U+FFFD" in line for line in plan.log):
        return
    found: dict[str, int] = {}
    for j, col in enumerate(loaded.columns):
        if not pa.types.is_string(col.type):
            continue
        hits = pc.sum(pc.match_substring(col, REPLACEMENT)).as_py() or 0
        if hits:
            found[loaded.header[j] or f"column {j + 1}"] = int(hits)
    if found:
        total = sum(found.values())
        where = ", ".join(f"{name} ({n})" for name, n in found.items())
        loaded.log.append(
            f"{REPLACEMENT_NOTE} {total} values hold U+FFFD (text that was unreadable in the "
            f"file): {where}"
        )
        loaded.meta["replacement_values"] = total


_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def numeric_columns(records: list[list[str]], header: list[str]) -> set[int]:
    """Columns whose every value in the sniffed head is a plain number (no leading zero, fewer
    than 16 digits, not an identifier-like name): Arrow's reader parses those as float64 directly,
    which is faster and leaner than text plus a cast. If a later value is not a number, the file
    is read again all as text (see `_read_arrow`), so nothing is lost, only time."""
    from batchops_core.pipeline.columns import normalize_name
    from batchops_core.pipeline.infer import is_identifier_name

    if len(records) < 20:
        return set()
    out: set[int] = set()
    for j, name in enumerate(header):
        if not name.strip() or is_identifier_name(normalize_name(name)):
            continue
        values = [r[j].strip() for r in records if j < len(r) and r[j].strip()]
        if values and all(
            _PLAIN_NUMBER.match(v)
            and not (len(v) > 1 and v.lstrip("+-")[:1] == "0" and v.lstrip("+-")[1:2].isdigit())
            and len(v) < 16
            for v in values
        ):
            out.add(j)
    return out
