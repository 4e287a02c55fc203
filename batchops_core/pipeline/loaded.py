"""What every loader returns: raw header cells, text columns and original row numbers.

Loaders stop at text on purpose: typing is one shared step (`infer.py`), so the same value reads
the same way whatever file format it came in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa


@dataclass
class Loaded:
    header: list[str]
    columns: list[pa.ChunkedArray]
    row_numbers: np.ndarray
    """Row number in the original file for every data row (1-based, as a spreadsheet shows it)."""
    log: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """Rows the loader could not split into the header's columns: {row, text, problem}."""
    native: dict[str, Any] = field(default_factory=dict)
    """Columns the format already typed (spreadsheet numbers and dates), by position as str."""

    @property
    def row_count(self) -> int:
        return len(self.row_numbers)


def text_columns_from_rows(rows: list[list[Any]], width: int) -> list[pa.ChunkedArray]:
    """Transpose Python rows into Arrow string columns (None stays null, all else `str`)."""
    cols: list[pa.ChunkedArray] = []
    for j in range(width):
        values = [None if j >= len(r) or r[j] is None else str(r[j]) for r in rows]
        cols.append(pa.chunked_array([pa.array(values, type=pa.string())]))
    return cols
