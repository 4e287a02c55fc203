"""CSV loading: encoding and delimiter detection by hand, then Arrow's multi-threaded reader.

Why not `pandas.read_csv(sep=None)`: its sniffer fails on the UCI semicolon sample and reads
identifiers as floats. Here the first 256 KiB decide the encoding (BOM, UTF-8 validity,
charset-normalizer, cp1252) and the delimiter (the candidate giving the most consistent field
count over the first records), and the header line (the first record with that many fields, so
title, blank and `#` comment lines above it are skipped). Arrow then reads every column as text
from the header's byte offset; typing happens in `infer.py`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from batchops_core.enums import Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.loaded import Loaded

HEAD_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
S = Stage.STANDARDIZE


def delimiter_name(d: str) -> str:
    return _NAMES.get(d, repr(d))


def detect_encoding(head: bytes, forced: str | None = None) -> str:
    """Return a Python codec name for the file, or raise NOT_TEXT / CSV_ENCODING."""
    if forced:
        try:
            codecs.lookup(forced)
        except LookupError:
            raise StageError(
                S,
                E.CSV_ENCODING,
                f"unknown encoding {forced!r} in read options",
                hint="Use a Python codec name such as utf-8, cp1252 or utf-16.",
            ) from None
        _decode_or_fail(head, forced)
        return forced
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.count(b"\x00") > len(head) // 4:
        evens, odds = head[0::2].count(0), head[1::2].count(0)
        if odds > len(head) // 3 and evens < len(head) // 20:
            return "utf-16-le"
        if evens > len(head) // 3 and odds < len(head) // 20:
            return "utf-16-be"
    _reject_binary(head)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(head[:65536]).best()
        guess = best.encoding if best is not None else None
    except Exception:  # pragma: no cover - detector failure means we fall back below
        guess = None
    for candidate in ("cp1252", guess, "latin-1"):
        if candidate and _decodes(head, candidate):
            return (
                "cp1252"
                if candidate in {"ascii", "iso8859_1", "latin_1", "latin-1"}
                and _decodes(head, "cp1252")
                else candidate
            )
    raise StageError(
        S,
        E.CSV_ENCODING,
        "the file is not UTF-8 and no known encoding fits it",
        hint="Save the file as 'CSV UTF-8' and upload it again.",
    )


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


def _decode_or_fail(head: bytes, encoding: str) -> None:
    try:
        codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise StageError(
            S,
            E.CSV_ENCODING,
            f"the file cannot be read as {encoding}: byte {exc.start} is invalid",
            hint="Save the file as 'CSV UTF-8', or re-read it with another encoding.",
            details={"encoding": encoding, "byte_offset": exc.start},
        ) from None


def _reject_binary(head: bytes) -> None:
    if not head:
        return
    control = sum(1 for b in head[:65536] if b < 9 or 13 < b < 32 or b == 127)
    if b"\x00" in head or control > max(8, len(head[:65536]) // 100):
        raise StageError(
            S,
            E.NOT_TEXT,
            "the file is not text: it holds binary data, so it cannot be read as CSV",
            hint="Check that the right file was picked; export the data as CSV or XLSX.",
            details={"control_bytes": control},
        )


def _records(lines: list[str], delimiter: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    except csv.Error:
        return []


def sniff(text: str, forced: str | None = None) -> tuple[str, int, list[str], int]:
    """Return (delimiter, header line index, header cells, field count) from the decoded head."""
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    if len(lines) > 1:
        lines = lines[:-1]  # the head may cut the last line in half
    content = [
        (i, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")
    ][:200]
    if not content:
        raise StageError(
            S,
            E.EMPTY_FILE,
            "the file has no data lines (only blank or comment lines)",
            hint="Export the table again; the file that arrived is empty.",
        )
    best: tuple[float, str, int] | None = None
    for d in [forced] if forced else DELIMITERS:
        counts = [len(r) for r in _records([ln for _, ln in content[:60]], d)]
        if not counts:
            continue
        width, freq = Counter(counts).most_common(1)[0]
        score = (freq / len(counts)) * (width > 1) + (width / 1000)
        if best is None or score > best[0]:
            best = (score, d, width)
    delimiter, width = (best[1], best[2]) if best else (forced or ",", 1)
    header_at = content[0][0]
    for i, ln in content:
        rec = _records([ln], delimiter)
        if rec and len(rec[0]) >= width:
            header_at = i
            break
    header = (_records([lines[header_at]], delimiter) or [[""]])[0]
    return delimiter, header_at, header, max(width, len(header))


def _single_column_alternatives(text: str, used: str) -> dict[str, int]:
    lines = [ln for ln in text.split("\n")[:60] if ln.strip()]
    alt: dict[str, int] = {}
    for d in DELIMITERS:
        if d == used:
            continue
        counts = [len(r) for r in _records(lines, d)]
        if counts and Counter(counts).most_common(1)[0][0] > 1:
            alt[d] = Counter(counts).most_common(1)[0][0]
    return alt


def load_csv(path: Path, options: dict[str, Any]) -> Loaded:
    """Read a delimited text file into text columns; see the module docstring."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head.strip():
        raise StageError(
            S,
            E.EMPTY_FILE,
            f"{path.name} is empty (0 data bytes)",
            hint="Export the table again; the file that arrived is empty.",
        )
    encoding = detect_encoding(head, options.get("encoding"))
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    text = text.lstrip("\ufeff")
    forced = options.get("delimiter")
    if forced is not None and (not isinstance(forced, str) or len(forced) != 1):
        raise StageError(
            S, E.CSV_DELIMITER, f"read option delimiter must be one character, got {forced!r}"
        )
    delimiter, header_at, header, width = sniff(text, forced)
    if width == 1:
        alternatives = _single_column_alternatives(text, delimiter)
        if alternatives:
            d, n = max(alternatives.items(), key=lambda kv: kv[1])
            code = E.CSV_SINGLE_COLUMN if forced else E.CSV_DELIMITER
            raise StageError(
                S,
                code,
                f"every row landed in one column when split on {delimiter_name(delimiter)}; "
                f"the {delimiter_name(d)} delimiter would give {n} columns",
                hint=f"Re-read the file with delimiter {d!r}, or export it again with commas.",
                details={
                    "delimiter": delimiter,
                    "candidates": {k: v for k, v in alternatives.items()},
                },
            )
    offset, arrow_encoding = _header_offset(head, encoding, header_at)
    numeric = numeric_columns(text, delimiter, header_at, header)
    args = (path, arrow_encoding, encoding, delimiter, header, header_at, offset)
    if '"' not in text or len(header) == 1:
        return _read_arrow(*args, '"' in text, numeric)
    return _read_quoted(args, numeric)


def _read_quoted(args: tuple[Any, ...], numeric: set[int]) -> Loaded:
    """Read a file with quoted fields fast first, allowing newlines in values only if needed.

    Allowing them stops Arrow from splitting the file into blocks it parses in parallel (0.18 s
    more on a 1M-row gradebook). A value that does hold a newline splits its row into two rows
    of the wrong width (or a parse error) on the fast read, so then the file is read again the
    careful way; with one column a split row keeps its width, so the caller reads those carefully.
    """
    try:
        loaded = _read_arrow(*args, False, numeric)
    except StageError:
        return _read_arrow(*args, True, numeric)
    return _read_arrow(*args, True, numeric) if loaded.rejected else loaded


def _header_offset(head: bytes, encoding: str, header_at: int) -> tuple[int, str]:
    """Byte offset of the header line in the file and the codec to read from there.

    Counting raw newline bytes keeps CRLF files right; a UTF-16 file read from the middle loses
    its BOM, so it continues as explicit little/big endian.
    """
    if header_at == 0:
        return 0, encoding
    wide = encoding.startswith("utf-16")
    newline = b"\n\x00" if encoding in {"utf-16", "utf-16-le"} else b"\x00\n" if wide else b"\n"
    pos = 0
    for _ in range(header_at):
        nl = head.find(newline, pos)
        while wide and nl >= 0 and nl % 2:
            nl = head.find(newline, nl + 1)
        if nl < 0:
            break
        pos = nl + len(newline)
    if encoding == "utf-16":
        encoding = "utf-16-be" if head.startswith(codecs.BOM_UTF16_BE) else "utf-16-le"
    elif encoding == "utf-8-sig":
        encoding = "utf-8"
    return pos, encoding


def _read_arrow(
    path: Path,
    arrow_codec: str,
    encoding: str,
    delimiter: str,
    header: list[str],
    header_at: int,
    offset: int,
    quoted: bool,
    numeric: set[int] | None = None,
) -> Loaded:
    names = [f"c{i}" for i in range(len(header))]
    rejected: list[dict[str, Any]] = []
    numeric = numeric or set()
    types = {n: pa.float64() if i in numeric else pa.string() for i, n in enumerate(names)}

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

    arrow_encoding = "utf8" if arrow_codec in {"utf-8", "utf-8-sig", "ascii"} else arrow_codec
    read_opts = pacsv.ReadOptions(
        column_names=names, skip_rows=1, encoding=arrow_encoding, block_size=8 << 20
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=quoted, invalid_row_handler=on_invalid
    )
    convert_opts = pacsv.ConvertOptions(
        column_types=types,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    source = pa.memory_map(str(path))
    try:
        buffer = source.read_buffer()
        if offset:
            buffer = buffer.slice(offset)
        table = pacsv.read_csv(
            pa.BufferReader(buffer),
            read_options=read_opts,
            parse_options=parse_opts,
            convert_options=convert_opts,
        )
    except pa.ArrowInvalid as exc:
        if numeric and "conversion error to double" in str(exc):
            source.close()  # a column the head called numeric is not: read it all as text
            return _read_arrow(
                path, arrow_codec, encoding, delimiter, header, header_at, offset, quoted, None
            )
        raise _arrow_error(exc, encoding, header_at) from None
    except UnicodeDecodeError as exc:
        raise StageError(
            S,
            E.CSV_ENCODING,
            f"the file cannot be read as {encoding}: {exc.reason}",
            hint="Save the file as 'CSV UTF-8', or re-read it as cp1252.",
            details={"encoding": encoding},
        ) from None
    finally:
        source.close()
    if any(r["row"] is None for r in rejected):
        _locate_rejected(path, encoding, header_at, rejected)
    first = header_at + 2
    rows = np.arange(first, first + table.num_rows, dtype=np.int64)
    skipped = sorted(r["row"] for r in rejected if r["row"] is not None)
    if skipped:
        rows = _shift_for_skipped(rows, skipped)
    log = [
        f"encoding: {encoding}",
        f"delimiter: {delimiter_name(delimiter)}",
        f"header row: {header_at + 1}",
    ]
    if rejected:
        log.append(f"{len(rejected)} rows with the wrong number of fields set aside")
    return Loaded(
        header=header,
        columns=list(table.columns),
        row_numbers=rows,
        log=log,
        meta={
            "encoding": encoding,
            "delimiter": delimiter,
            "header_row": header_at + 1,
            "format": "csv",
        },
        rejected=rejected,
    )


def _shift_for_skipped(rows: np.ndarray, skipped: list[int]) -> np.ndarray:
    out = rows.copy()
    for s in skipped:
        out[out >= s] += 1
    return out


def _arrow_error(exc: Exception, encoding: str, header_at: int) -> StageError:
    text = str(exc)
    if "UTF8" in text or "utf8" in text.lower():
        return StageError(
            S,
            E.CSV_ENCODING,
            "the file is not valid UTF-8 further down (the start was); "
            "it was probably saved as cp1252/latin-1",
            hint="Save the file as 'CSV UTF-8', or re-read it as cp1252.",
            details={"encoding": encoding, "reader": text[:300]},
        )
    return StageError(
        S,
        E.CSV_DELIMITER,
        f"the CSV could not be split into rows: {text[:200]}",
        hint="Check quotes and delimiters around the row named, then export again.",
        details={"reader": text[:500], "header_row": header_at + 1},
    )


def _locate_rejected(
    path: Path, encoding: str, header_at: int, rejected: list[dict[str, Any]]
) -> None:
    """Arrow's multi-threaded reader does not know line numbers; find the rejected lines by
    their text (files up to 64 MiB; larger ones keep "row unknown")."""
    if path.stat().st_size > 64 * 1024 * 1024:
        return
    wanted: dict[str, list[dict[str, Any]]] = {}
    for r in rejected:
        if r["row"] is None:
            wanted.setdefault(r["text"].rstrip("\r\n"), []).append(r)
    with path.open(encoding=encoding, errors="replace", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if number <= header_at + 1:
                continue
            pending = wanted.get(line.rstrip("\r\n")[:200])
            if pending:
                pending.pop(0)["row"] = number


_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def numeric_columns(text: str, delimiter: str, header_at: int, header: list[str]) -> set[int]:
    """Columns whose every value in the sniffed head is a plain number (no leading zero, fewer
    than 16 digits, not an identifier-like name): Arrow's reader parses those as float64 directly,
    which is faster and leaner than text plus a cast. If a later value is not a number, the file
    is read again all as text (see `_read_arrow`), so nothing is lost, only time."""
    from batchops_core.pipeline.columns import normalize_name
    from batchops_core.pipeline.infer import is_identifier_name

    lines = text.split("\n")[header_at + 1 : -1][:5000]
    records = _records([ln.rstrip("\r") for ln in lines if ln.strip()], delimiter)
    if len(records) < 20:
        return set()
    out: set[int] = set()
    for j, name in enumerate(header):
        if is_identifier_name(normalize_name(name)):
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
