"""Stage 4: the numbers the reports print — counts, types, nulls, statistics, metadata rows.

The result is a small JSON-able dict stored on `Upload.summary`; the TUI and the PDF render it
without touching the dataset again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from batchops_core.pipeline.standardize import ROW
from batchops_core.pipeline.stats import column_stats, numeric_columns

MAX_COLUMNS_DETAILED = 200


def summarize(
    frame: pd.DataFrame,
    schema: dict[str, str],
    *,
    metadata: list[tuple[str, str]],
    cached_stats: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Describe the processed dataset; `cached_stats` from the transform stage saves work."""
    columns = [c for c in frame.columns if c != ROW]
    nulls = frame[columns].isna().sum()
    numeric: dict[str, dict[str, Any]] = {}
    for col in numeric_columns(frame, schema)[:MAX_COLUMNS_DETAILED]:
        numeric[col] = (cached_stats or {}).get(col) or column_stats(frame[col])
    return {
        "rows": len(frame),
        "columns": len(columns),
        "column_types": {c: schema.get(c, "text") for c in columns[:MAX_COLUMNS_DETAILED]},
        "nulls": {c: int(nulls[c]) for c in columns[:MAX_COLUMNS_DETAILED]},
        "numeric": numeric,
        "metadata": [[k, v] for k, v in metadata],
    }


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
