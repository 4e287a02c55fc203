"""CSV dialect and header detection: its cost on a 1 GB file, and its accuracy on the corpus.

Detection reads only the head (256 KiB, of which CleverCSV sees at most 12 KiB of whole lines),
so its time must not grow with the file: measured here on a 1 GB gradebook with quoted names,
against `csv.Sniffer` on the same sample in the same run. Goal: under 50 ms.

Accuracy is the corpus of `tests/pipeline/test_csv_dialect.py` (a case is right when the detected
dialect splits it into exactly the expected cells): BatchOps, `csv.Sniffer`, bare CleverCSV, and
the field-count vote over `, ; \\t |` that the loader used before issue #16.

    python -m bench.bench_dialect          # BENCH_DIALECT_MB=1024 by default
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._common import out_dir

SIZE_MB = int(os.environ.get("BENCH_DIALECT_MB", "1024"))
GOAL_MS = 50.0
REPEAT = 7


def data_path() -> Path:
    return out_dir() / f"dialect_{SIZE_MB}mb.csv"


def generate() -> Path:
    """A gradebook with quoted "Last, First" names, written as one 1 MiB block repeated."""
    path = data_path()
    if path.exists() and path.stat().st_size >= SIZE_MB << 20:
        return path
    rows = ["Student ID,Name,Class,Score,Date\n"]
    i = 0
    block: list[str] = []
    size = 0
    while size < 1 << 20:
        name = f'"Name{i % 97}, First{i % 13}"'
        line = f"S{i:07d},{name},{9 + i % 3}A,{i % 100}.5,2026-01-{1 + i % 28:02d}\n"
        block.append(line)
        size += len(line)
        i += 1
    chunk = "".join(block).encode()
    with path.open("wb") as fh:
        fh.write(rows[0].encode())
        for _ in range(SIZE_MB):
            fh.write(chunk)
    return path


def _best_ms(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def timing(path: Path) -> tuple[float, float, float]:
    """(BatchOps head inspection, csv.Sniffer on the same sample, CleverCSV alone) in ms."""
    from batchops_core.pipeline.dialect import sample_of
    from batchops_core.pipeline.load_csv import plan_read

    plan_read(path, {})  # warm imports (clevercsv, charset tables): pool workers start warm
    with path.open("rb") as fh:
        head = fh.read(256 * 1024).decode("utf-8", errors="replace")
    sample = sample_of(io.StringIO(head, newline="").readlines()[:-1])

    def sniff() -> None:
        csv.Sniffer().sniff(sample)

    def clever() -> None:
        from clevercsv.detect import Detector

        Detector().detect(sample)

    return _best_ms(lambda: plan_read(path, {})), _best_ms(sniff), _best_ms(clever)


def accuracy() -> dict[str, tuple[int, list[str]]]:
    from batchops_core.pipeline.dialect import Dialect, _vote, parse_lines
    from tests.pipeline import test_csv_dialect as corpus

    def old_vote(text: str) -> list[list[str]]:
        lines = io.StringIO(text, newline="").readlines()
        return [c for _, c in parse_lines(lines, Dialect(_vote(text)))]

    return {
        "BatchOps (CleverCSV + guards)": corpus.accuracy(corpus.split_batchops),
        "csv.Sniffer": corpus.accuracy(corpus.split_sniffer),
        "CleverCSV alone": corpus.accuracy(corpus.split_clevercsv),
        "old field-count vote": corpus.accuracy(old_vote),
    }


def main() -> int:
    from tests.pipeline.test_csv_dialect import CORPUS

    path = generate()
    ours, sniffer, clever = timing(path)
    size_gb = path.stat().st_size / 1024**3
    print(f"detection on a {size_gb:.2f} GB file (best of {REPEAT}):")
    print(f"  BatchOps head inspection (encoding, dialect, header): {ours:6.1f} ms")
    print(f"  csv.Sniffer on the same sample (baseline)          : {sniffer:6.1f} ms")
    print(f"  CleverCSV detector alone on the same sample        : {clever:6.1f} ms")
    print(f"  ratio BatchOps / Sniffer: {ours / sniffer:.1f}x   goal < {GOAL_MS:.0f} ms")
    print(f"accuracy on {len(CORPUS)} messy cases (exact cells):")
    for label, (right, wrong) in accuracy().items():
        missed = f"  missed: {', '.join(wrong)}" if wrong else ""
        print(f"  {label:<30}: {right}/{len(CORPUS)}{missed}")
    return 0 if ours < GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
