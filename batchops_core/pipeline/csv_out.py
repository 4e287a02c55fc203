"""CSV export with Arrow's writer and formula-injection neutralization, streamed in batches.

Measured here (see bench/README_pipeline.md): pandas' `to_csv` formats floats at 12–15 MB/s while
`pyarrow.csv.write_csv` writes the same frame ~10× faster, so the writer is Arrow's. Text cells
beginning with `= + - @`, tab or CR get a leading apostrophe so that a spreadsheet opening the
export shows the text instead of running it as a formula (OWASP's CSV-injection advice); numeric
columns are typed and never touched.

The publish stage hands over the Arrow table it memory-mapped from the work directory, and
Arrow's writer streams it to the file in record batches: no pandas round trip and no second
copy of the dataset (only a column holding a neutralized cell is copied). The dangerous-first-
character test reads each cell's first byte straight from the Arrow buffers (the six characters
are ASCII, so a first byte is a first character in UTF-8): a regex kernel per column cost 0.3 s
on 900k rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from batchops_core.pipeline.standardize import ROW

DANGEROUS = r"^[=+\-@\t\r]"
BATCH_ROWS = 16 * 1024
_FIRST_BYTE = np.zeros(256, dtype=bool)
_FIRST_BYTE[[ord(c) for c in "=+-@\t\r"]] = True


def to_arrow(frame: pd.DataFrame | pa.Table, schema: dict[str, str] | None = None) -> pa.Table:
    """The table to export: without the row-number column, dates as dates."""
    if isinstance(frame, pa.Table):
        table = frame.drop_columns([ROW]) if ROW in frame.column_names else frame
    else:
        data = frame.drop(columns=[ROW], errors="ignore")
        table = pa.Table.from_pandas(data, preserve_index=False)
    columns = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        kind = (schema or {}).get(name)
        if kind == "date" and pa.types.is_timestamp(col.type):
            col = pc.cast(col, pa.date32())
        columns.append(col)
    return pa.table(columns, names=table.column_names)


def dangerous(arr: pa.Array) -> np.ndarray | None:
    """Which cells of one string array start with a formula character (None: none do)."""
    n = len(arr)
    bufs = arr.buffers()
    if n == 0 or bufs[2] is None or arr.null_count == n:
        return None
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(bufs[1], dtype=width, count=n + 1, offset=arr.offset * width(0).nbytes)
    data = np.frombuffer(bufs[2], dtype=np.uint8)
    starts = offsets[:-1]
    filled = offsets[1:] > starts
    if not filled.any():
        return None
    hit = np.zeros(n, dtype=bool)
    hit[filled] = _FIRST_BYTE[data[starts[filled]]]
    if arr.null_count and hit.any():
        hit &= np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return hit if hit.any() else None


def neutralize(table: pa.Table | pa.RecordBatch) -> tuple[pa.Table | pa.RecordBatch, int]:
    """Prefix dangerous text cells with an apostrophe; return the table and the count changed."""
    changed = 0
    columns = []
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
            out = []
            for chunk in chunks:
                hit = dangerous(chunk)
                if hit is not None:
                    changed += int(hit.sum())
                    prefixed = pc.binary_join_element_wise(
                        pa.scalar("'", chunk.type), chunk, pa.scalar("", chunk.type)
                    )
                    chunk = pc.if_else(pa.array(hit), prefixed, chunk)
                out.append(chunk)
            col = (
                pa.chunked_array(out, type=col.type) if isinstance(col, pa.ChunkedArray) else out[0]
            )
        columns.append(col)
    if isinstance(table, pa.RecordBatch):
        return pa.record_batch(columns, names=table.schema.names), changed
    return pa.table(columns, names=table.column_names), changed


def write_csv(
    frame: pd.DataFrame | pa.Table, path: Path, schema: dict[str, str] | None = None
) -> int:
    """Write `frame` (without the row-number column) as UTF-8 CSV; return cells neutralized.

    One call into Arrow's writer, which formats `BATCH_ROWS` rows at a time into the file and
    holds no lock Python needs meanwhile: publish writes the CSV on a second thread while the
    PDF is drawn, and a batch loop here would wait for the interpreter between batches."""
    table, changed = neutralize(to_arrow(frame, schema))
    options = pacsv.WriteOptions(include_header=True, batch_size=BATCH_ROWS)
    pacsv.write_csv(table, str(path), write_options=options)
    return changed
