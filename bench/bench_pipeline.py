"""End to end: a 1,000,000-row × 12-column gradebook CSV through the five stages.

Compared in the same run with the bare minimum pandas needs for the same work:

* default plan (`transform`): pandas reads the file, `describe()`s it and writes the summary CSV;
  BatchOps standardizes (detection, typing, identifiers as text), validates (keys, duplicates,
  types), computes the summary, writes the summary CSV and the PDF report. Goal ≤ 1.0× (#14).
* `delete` plan, whose output is the whole dataset: pandas reads, filters and writes with
  `to_csv` — and again with pyarrow's CSV writer, the one BatchOps chose by this measurement.
  Goal ≤ 1.5× the pyarrow-writer baseline (#14).

Peak memory is what a scenario adds to its process (imports excluded), as a multiple of the
DataFrame's in-memory size. Goal: the default plan ≤ 2.3× the frame, what pandas itself needs.

The last lines print the three figures of issue #14 with their goals, one line each.

    python -m bench.bench_pipeline          # BENCH_ROWS=1000000 by default
    BENCH_ROWS=200000 python -m bench.bench_pipeline   # a smaller file while iterating
    BENCH_REPEAT=3 python -m bench.bench_pipeline      # fastest of 3 runs per scenario
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._common import best, child_report, load_note, out_dir, ratio

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))
"""Child runs per scenario, the fastest kept: raise it on a loaded machine."""
MODULE = "bench.bench_pipeline"
GOALS = {"default": 1.0, "delete": 1.5, "memory": 2.3}
"""Issue #14's goals: wall-clock ratios to the same-run baselines, peak memory / frame size."""
DELETE_RULES = {"rules": [{"column": "score_1", "operator": "lt", "value": 10}]}


def data_path() -> Path:
    return out_dir() / f"gradebook_{ROWS}.csv"


def generate() -> Path:
    path = data_path()
    if path.exists():
        return path
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(2026)
    n = ROWS
    cols: dict[str, Any] = {
        "Student ID": pa.array([f"S{i:07d}" for i in range(n)]),
        "First Name": pa.array(rng.choice(["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima"], n)),
        "Last Name": pa.array(rng.choice(["Kim", "Okafor", "Novak", "Silva", "Rossi"], n)),
        "Class": pa.array(rng.choice(["9A", "9B", "10A", "10B", "11A"], n)),
        "Subject": pa.array(rng.choice(["Maths", "English", "Physics", "History"], n)),
        "Term": pa.array(rng.choice(["T1", "T2", "T3"], n)),
    }
    for k in range(1, 7):
        cols[f"score_{k}"] = pa.array(np.round(rng.uniform(0, 100, n), 1))
    pacsv.write_csv(pa.table(cols), str(path))
    return path


def _frame_mb(path: Path) -> float:
    import pandas as pd

    return float(pd.read_csv(path).memory_usage(deep=True).sum() / 1024**2)


# ------------------------------------------------------------------------------- child scenarios


def baseline_transform(path: Path, out: Path) -> dict[str, Any]:
    import pandas as pd

    frame = pd.read_csv(path)
    frame.describe().to_csv(out / "describe.csv")
    return {"frame_mb": float(frame.memory_usage(deep=True).sum() / 1024**2)}


def baseline_delete(path: Path, out: Path, writer: str) -> dict[str, Any]:
    import pandas as pd

    frame = pd.read_csv(path)
    kept = frame[~(frame["score_1"] < 10)]
    if writer == "pandas":
        kept.to_csv(out / "kept.csv", index=False)
    else:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        pacsv.write_csv(pa.Table.from_pandas(kept, preserve_index=False), str(out / "kept.csv"))
    return {"rows_out": len(kept)}


def batchops(path: Path, out: Path, mode: str) -> dict[str, Any]:
    from batchops_core.infra.config import Settings
    from batchops_core.pipeline.stages import make_context, run_all

    settings = Settings(data_dir=str(out))
    config = DELETE_RULES if mode == "delete" else {}
    ctx = make_context(
        settings, upload_id=1, stored_path=str(path), filename=path.name, mode=mode, config=config
    )
    outcomes = run_all(ctx)
    return {
        "stages_ms": {o.stage: o.duration_ms for o in outcomes},
        "rows_out": outcomes[-1].data["rows_out"],
    }


def child(scenario: str, path: str) -> None:
    from batchops_core.pipeline.stages import preload

    preload()  # imports are not the work measured: BatchOps' pool workers start warm

    with tempfile.TemporaryDirectory(dir=out_dir()) as tmp:
        out = Path(tmp)
        work = {
            "baseline_transform": lambda: baseline_transform(Path(path), out),
            "baseline_delete_pandas": lambda: baseline_delete(Path(path), out, "pandas"),
            "baseline_delete_arrow": lambda: baseline_delete(Path(path), out, "arrow"),
            "batchops_transform": lambda: batchops(Path(path), out, "transform"),
            "batchops_delete": lambda: batchops(Path(path), out, "delete"),
        }[scenario]
        child_report(work)


def _line(label: str, r: dict[str, Any], frame_mb: float) -> str:
    return (
        f"  {label:<38}: {r['seconds']:.2f} s warm ({r['cold_seconds']:.2f} s cold, "
        f"cpu {r['cpu_seconds']:.2f} s), peak +{r['peak_added_mb']:.0f} MB "
        f"({r['peak_added_mb'] / frame_mb:.1f}x frame)"
    )


def main() -> None:
    print(load_note())
    path = generate()
    size_mb = path.stat().st_size / 1024**2
    print(f"input: {path.name}, {ROWS:,} rows x 12 columns, {size_mb:.0f} MB")
    frame_mb = _frame_mb(path)
    print(f"DataFrame in memory (pandas default dtypes): {frame_mb:.0f} MB\n")
    base = best(MODULE, "baseline_transform", str(path), repeat=REPEAT)
    ours = best(MODULE, "batchops_transform", str(path), repeat=REPEAT)
    print("default plan (transform: summary statistics)")
    print(_line("pandas read_csv + describe + to_csv", base, frame_mb))
    print(_line("BatchOps five stages", ours, frame_mb))
    print(
        f"  ratio {ratio(ours['seconds'], base['seconds'])} wall, "
        f"{ratio(ours['cpu_seconds'], base['cpu_seconds'])} cpu (goal <= {GOALS['default']}x)"
    )
    print(f"  stages ms: {ours['stages_ms']}")
    pandas_w = best(MODULE, "baseline_delete_pandas", str(path), repeat=REPEAT)
    arrow_w = best(MODULE, "baseline_delete_arrow", str(path), repeat=REPEAT)
    ours_d = best(MODULE, "batchops_delete", str(path), repeat=REPEAT)
    print(f"\ndelete plan (score_1 < 10 removed; {ours_d['rows_out']:,} rows written)")
    print(_line("pandas read + filter + to_csv", pandas_w, frame_mb))
    print(_line("pandas read + filter + pyarrow write", arrow_w, frame_mb))
    print(_line("BatchOps five stages (CSV + PDF)", ours_d, frame_mb))
    print(
        f"  ratio vs to_csv baseline {ratio(ours_d['seconds'], pandas_w['seconds'])}, "
        f"vs pyarrow-writer baseline {ratio(ours_d['seconds'], arrow_w['seconds'])} wall"
    )
    print(f"  stages ms: {ours_d['stages_ms']}")
    _goals(base, ours, arrow_w, ours_d, frame_mb)


def _goals(
    base: dict[str, Any],
    ours: dict[str, Any],
    arrow_w: dict[str, Any],
    ours_d: dict[str, Any],
    frame_mb: float,
) -> None:
    """Issue #14's three figures, each beside its goal."""
    figures = [
        ("default plan, five stages vs pandas read+describe+to_csv", "default", ours, base),
        ("delete plan (CSV + PDF) vs pandas read+filter+pyarrow writer", "delete", ours_d, arrow_w),
    ]
    print(f"\nissue #14 goals ({load_note()}):")
    for label, key, mine, theirs in figures:
        value = mine["seconds"] / theirs["seconds"]
        cpu = mine["cpu_seconds"] / theirs["cpu_seconds"]
        print(
            f"  {label:<62} {value:5.2f}x  goal <= {GOALS[key]}x  {_verdict(value, key):<6}  "
            f"(cpu {cpu:.2f}x)"
        )
    value = ours["peak_added_mb"] / frame_mb
    theirs = base["peak_added_mb"] / frame_mb
    label = f"peak memory, default plan / frame (pandas: {theirs:.1f}x)"
    print(f"  {label:<62} {value:5.2f}x  goal <= {GOALS['memory']}x  {_verdict(value, 'memory')}")


def _verdict(value: float, key: str) -> str:
    return "met" if value <= GOALS[key] else "MISSED"


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
