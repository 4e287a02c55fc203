"""Stage 4: the numbers the reports print — counts, types, nulls, statistics, metadata rows.

The result is a small JSON-able dict stored on `Upload.summary`; the TUI and the PDF render it
without touching the dataset again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from batchops_core.pipeline.standardize import ROW
from batchops_core.pipeline.stats import many_stats, numeric_columns

MAX_COLUMNS_DETAILED = 200


def summarize(
    frame: pd.DataFrame | pa.Table,
    schema: dict[str, str],
    *,
    metadata: list[tuple[str, str]],
    cached_stats: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Describe the processed dataset; `cached_stats` from the transform stage saves work. An
    Arrow table (what the summarize stage memory-maps) is read column by column, never converted
    to pandas: null counts are in its metadata, numbers go straight to NumPy."""
    if isinstance(frame, pa.Table):
        columns = [c for c in frame.column_names if c != ROW]
        nulls = {c: _arrow_nulls(frame[c]) for c in columns[:MAX_COLUMNS_DETAILED]}
        wanted = [c for c in columns if schema.get(c) in {"integer", "number"}]
    else:
        columns = [c for c in frame.columns if c != ROW]
        counts = frame[columns].isna().sum()
        nulls = {c: int(counts[c]) for c in columns[:MAX_COLUMNS_DETAILED]}
        wanted = numeric_columns(frame, schema)
    wanted = wanted[:MAX_COLUMNS_DETAILED]
    cached = cached_stats or {}
    todo = [c for c in wanted if not cached.get(c)]
    fresh = dict(zip(todo, many_stats([frame[c] for c in todo]), strict=True))
    numeric = {c: cached.get(c) or fresh[c] for c in wanted}
    return {
        "rows": len(frame),
        "columns": len(columns),
        "column_types": {c: schema.get(c, "text") for c in columns[:MAX_COLUMNS_DETAILED]},
        "nulls": nulls,
        "numeric": numeric,
        "metadata": [[k, v] for k, v in metadata],
    }


def _arrow_nulls(col: pa.ChunkedArray) -> int:
    """Missing cells as pandas counts them: nulls, and NaN in a float column."""
    missing = col.null_count
    if pa.types.is_floating(col.type):
        missing += int(pc.sum(pc.is_nan(col)).as_py() or 0)
    return missing


def stats_from_table(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Reuse an ungrouped transform summary table as per-column statistics."""
    if "column" not in table.columns or len(table.columns) and table.columns[0] != "column":
        return {}
    fields = ("count", "missing", "mean", "std", "min", "q1", "median", "q3", "max")
    out: dict[str, dict[str, Any]] = {}
    for rec in table.to_dict("records"):
        out[str(rec["column"])] = {
            f: (None if pd.isna(rec.get(f)) else rec.get(f)) for f in fields if f in rec
        }
    return out
