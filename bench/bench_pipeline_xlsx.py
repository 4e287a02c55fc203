"""Spreadsheet in: a 50,000-row gradebook XLSX through BatchOps' loader against raw calamine.

Raw python-calamine (open the workbook, read the first sheet into Python rows) is the floor; the
BatchOps figure is the whole standardize stage's load: container checks (encryption, zip bomb),
header detection, footnote trimming, typing every column into a DataFrame. Goal ≤ 1.5×.

    python -m bench.bench_pipeline_xlsx      # BENCH_XLSX_ROWS=50000 by default
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from bench._common import best, child_report, load_note, out_dir, ratio

ROWS = int(os.environ.get("BENCH_XLSX_ROWS", "50000"))
MODULE = "bench.bench_pipeline_xlsx"


def generate() -> Path:
    path = out_dir() / f"gradebook_{ROWS}.xlsx"
    if path.exists():
        return path
    import random

    from openpyxl import Workbook

    rng = random.Random(2026)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Grades")
    ws.append(["Term 1 gradebook, exported by the SIS"])
    ws.append([])
    ws.append(
        [
            "Student ID",
            "First Name",
            "Last Name",
            "Class",
            "Subject",
            "Term",
            *[f"Score {k}" for k in range(1, 7)],
        ]
    )
    for i in range(ROWS):
        ws.append(
            [
                f"S{i:06d}",
                rng.choice(["Ana", "Ben", "Dev"]),
                rng.choice(["Kim", "Rossi"]),
                rng.choice(["9A", "9B", "10A"]),
                rng.choice(["Maths", "English"]),
                "T1",
                *[round(rng.uniform(0, 100), 1) for _ in range(6)],
            ]
        )
    wb.save(path)
    return path


def raw(path: Path) -> dict[str, Any]:
    from python_calamine import CalamineWorkbook

    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    return {"rows": len(rows)}


def ours(path: Path) -> dict[str, Any]:
    from batchops_core.pipeline.standardize import standardize

    std = standardize(path)
    return {"rows": len(std.frame), "schema": std.schema}


def child(scenario: str, path: str) -> None:
    from batchops_core.pipeline.stages import preload

    preload()
    child_report({"raw": lambda: raw(Path(path)), "ours": lambda: ours(Path(path))}[scenario])


def main() -> None:
    print(load_note())
    path = generate()
    print(f"input: {path.name}, {ROWS:,} rows x 12 columns, {path.stat().st_size / 1024**2:.1f} MB")
    base = best(MODULE, "raw", str(path), repeat=2)
    mine = best(MODULE, "ours", str(path), repeat=2)
    print(
        f"  raw python-calamine to_python : {base['seconds']:.2f} s (cpu {base['cpu_seconds']:.2f})"
    )
    print(
        f"  BatchOps load + typing        : {mine['seconds']:.2f} s "
        f"(cpu {mine['cpu_seconds']:.2f}), {mine['rows']:,} rows"
    )
    print(
        f"  ratio {ratio(mine['seconds'], base['seconds'])} wall, "
        f"{ratio(mine['cpu_seconds'], base['cpu_seconds'])} cpu (goal <= 1.5x)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
