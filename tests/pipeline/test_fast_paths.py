"""The #14 fast paths give the answers of the slow ones they replace (same rows, same counts)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from batchops_core.pipeline.csv_out import DANGEROUS, dangerous, write_csv
from batchops_core.pipeline.infer import _edges, clean_text
from batchops_core.pipeline.pdf_out import write_pdf
from batchops_core.pipeline.stats import column_stats, many_stats
from batchops_core.pipeline.summary import summarize
from batchops_core.pipeline.validate import _duplicated

CELLS = ["ok", "=1+1", None, "", "-3", " +x", "@a", "\tb", "\rc", "é=", "+"]


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_first_byte_check_matches_the_regex(kind: pa.DataType) -> None:
    arr = pa.array(CELLS * 3, type=kind)
    for part in (arr, arr.slice(4), arr.slice(3, 9)):
        regex = pc.fill_null(pc.match_substring_regex(part, DANGEROUS), False).to_pylist()
        hit = dangerous(part)
        assert (hit.tolist() if hit is not None else [False] * len(part)) == regex


def test_csv_from_arrow_streams_batches_and_neutralizes(tmp_path: Path) -> None:
    n = 300_000  # more than one record batch
    names = pa.array(["=cmd" if i % 100_000 == 7 else f"n{i}" for i in range(n)])
    table = pa.table({"name": names, "score": np.arange(n, dtype="float64"), "__row__": range(n)})
    changed = write_csv(table, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert changed == 3 and len(rows) == n and list(rows[0]) == ["name", "score"]
    assert rows[7]["name"] == "'=cmd" and rows[8]["name"] == "n8"


def test_edges_match_the_kernels() -> None:
    for cells in (["a", "b"], [" a", "b"], ["a\t", None], ["", "x"], [None, None], ["é ", "ü"]):
        arr = pa.chunked_array([pa.array(cells, pa.string())])
        blank = any(
            pc.any(f(arr, b)).as_py() for f in (pc.starts_with, pc.ends_with) for b in " \t"
        )
        assert _edges(arr) == (blank, bool(pc.any(pc.equal(arr, "")).as_py()))
        assert clean_text(arr).to_pylist() == [
            (c.strip(" \t\n\r\v\f") or None) if c is not None else None for c in cells
        ]


@pytest.mark.parametrize(
    "keys",
    [
        [f"S{i:05d}" for i in range(3000)],  # sorted: the neighbour comparison decides
        [f"S{i:05d}" for i in range(3000)] + ["S00010"],  # sorted, then a repeat
        ["b", "a", "b", None, "a"],
        ["a", None, "b", "b"],
    ],
)
def test_duplicates_sorted_or_not(keys: list[str | None]) -> None:
    col = pd.Series(keys, dtype="str")
    filled = col.notna().to_numpy()
    expected = col.duplicated(keep="first").to_numpy() & filled
    assert (_duplicated(col) & filled).tolist() == expected.tolist()


def test_summary_from_arrow_equals_summary_from_pandas() -> None:
    rng = np.random.default_rng(14)
    n = 250_000  # above the threshold where statistics run on threads
    frame = pd.DataFrame(
        {
            "id": pd.Series([f"S{i}" for i in range(n)], dtype="str"),
            "a": rng.uniform(0, 100, n),
            "b": pd.Series(rng.integers(0, 9, n)).astype("Int64"),
            "__row__": np.arange(2, n + 2),
        }
    )
    frame.loc[5, "a"] = np.nan
    frame.loc[9, "b"] = pd.NA
    schema = {"id": "text", "a": "number", "b": "integer"}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert summarize(table, schema, metadata=[]) == summarize(frame, schema, metadata=[])
    assert many_stats([frame["a"], frame["b"]]) == [
        column_stats(frame["a"]),
        column_stats(frame["b"]),
    ]


def test_pdf_from_arrow_slices_before_pandas(tmp_path: Path) -> None:
    table = pa.table({"student_id": [f"S{i}" for i in range(500)], "__row__": range(500)})
    info = write_pdf(tmp_path / "r.pdf", title="t", metadata=[], table=table, max_rows=20)
    assert info == {"pages": 1, "rows_shown": 20, "rows_total": 500, "capped": True}


def test_only_the_suspect_column_is_reread_as_text(tmp_path: Path) -> None:
    from batchops_core.pipeline.load_csv import load_csv
    from batchops_core.pipeline.standardize import standardize

    lines = ["student_id,score_a,score_b"] + [f"S{i:05d},{i % 90}.5,{i % 80}" for i in range(3000)]
    lines[2500] = "S02499,12.5,absent"  # past the head the plain-number guess was made on
    path = tmp_path / "late_text.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    loaded = load_csv(path, {})
    assert [str(c.type) for c in loaded.columns] == ["string", "double", "string"]
    std = standardize(path)
    assert std.schema == {"student_id": "text", "score_a": "number", "score_b": "integer"}
    assert [(e["row"], e["column"], e["value"]) for e in std.type_errors] == [
        (2501, "score_b", "absent")
    ]
