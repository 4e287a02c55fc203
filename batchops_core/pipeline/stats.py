"""Numeric statistics shared by the transform plan and the summarize stage.

Computed once per dataset with NumPy (a partition-based quantile, not a sort) and cached in the
work directory, because the default plan's summary table and the report's statistics are the same
numbers: computing them twice would double the most expensive part of a large upload.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

PARALLEL_ROWS = 200_000
"""Below this a column's statistics take a few ms: threads would cost more than they save."""
STAT_FIELDS = ("count", "missing", "mean", "std", "min", "q1", "median", "q3", "max")


def numeric_columns(frame: pd.DataFrame, schema: dict[str, str]) -> list[str]:
    return [c for c in frame.columns if schema.get(c) in {"integer", "number"}]


def column_stats(series: pd.Series | pa.ChunkedArray) -> dict[str, Any]:
    if isinstance(series, pa.ChunkedArray):
        values = np.asarray(series.to_numpy(zero_copy_only=False), dtype="float64")
    else:
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    finite = values[~np.isnan(values)]
    n = int(finite.size)
    out: dict[str, Any] = {"count": n, "missing": int(values.size - n)}
    if n == 0:
        out.update({k: None for k in ("mean", "std", "min", "q1", "median", "q3", "max")})
        return out
    q1, med, q3 = np.quantile(finite, [0.25, 0.5, 0.75])
    out.update(
        {
            "mean": float(finite.mean()),
            "std": float(finite.std(ddof=1)) if n > 1 else None,
            "min": float(finite.min()),
            "q1": float(q1),
            "median": float(med),
            "q3": float(q3),
            "max": float(finite.max()),
        }
    )
    return out


def many_stats(columns: list[pd.Series | pa.ChunkedArray]) -> list[dict[str, Any]]:
    """`column_stats` of several columns, on both cores when they are large: NumPy's partition
    (the quantiles, most of the time) releases the GIL, so two columns run at once."""
    if len(columns) < 2 or max(len(c) for c in columns) < PARALLEL_ROWS:
        return [column_stats(c) for c in columns]
    with ThreadPoolExecutor(max_workers=min(len(columns), os.cpu_count() or 1)) as pool:
        return list(pool.map(column_stats, columns))


def band_counts(series: pd.Series, scale: list[tuple[str, float]]) -> dict[str, int]:
    """Count values per grade band; `scale` is (band, minimum) sorted by minimum descending."""
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    values = values[~np.isnan(values)]
    counts: dict[str, int] = {}
    upper = np.inf
    for band, minimum in scale:
        counts[band] = int(((values >= minimum) & (values < upper)).sum())
        upper = minimum
    return counts


def stats_table(
    frame: pd.DataFrame,
    columns: list[str],
    *,
    group_by: str | None = None,
    scale: list[tuple[str, float]] | None = None,
) -> pd.DataFrame:
    """One row per numeric column (per group when `group_by` is given)."""
    rows: list[dict[str, Any]] = []
    groups: list[tuple[Any, pd.DataFrame]] = (
        list(frame.groupby(group_by, dropna=False, sort=True)) if group_by else [(None, frame)]
    )
    for key, part in groups:
        computed = many_stats([part[col] for col in columns])
        for col, stats in zip(columns, computed, strict=True):
            row: dict[str, Any] = {}
            if group_by:
                row[group_by] = (
                    "(empty)" if key is None or (isinstance(key, float) and np.isnan(key)) else key
                )
            row["column"] = col
            row.update(stats)
            if scale:
                row.update({f"band_{b}": n for b, n in band_counts(part[col], scale).items()})
            rows.append(row)
    table = pd.DataFrame(rows)
    for f in ("mean", "std", "min", "q1", "median", "q3", "max"):
        if f in table:
            table[f] = table[f].astype("float64").round(4)
    return table


def profile_table(frame: pd.DataFrame, columns: list[str], schema: dict[str, str]) -> pd.DataFrame:
    """Per-column profile (type, filled, missing, distinct, commonest value) for data with no
    numeric column — a crosswalk or a roster still gets a meaningful summary table."""
    rows = []
    for col in columns:
        series = frame[col]
        filled = series.dropna()
        top = filled.value_counts().head(1)
        rows.append(
            {
                "column": col,
                "type": schema.get(col, "text"),
                "count": int(filled.size),
                "missing": int(series.size - filled.size),
                "distinct": int(filled.nunique()),
                "most_common": "" if top.empty else str(top.index[0]),
                "most_common_count": 0 if top.empty else int(top.iloc[0]),
            }
        )
    return pd.DataFrame(rows)
