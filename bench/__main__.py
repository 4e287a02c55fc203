"""Run every benchmark module (`bench_*.py`) in its own process, or those named on the command line.

Each benchmark measures its own baseline in the same run and prints ratios against it, so the
figures compare like with like even when the machine's speed drifts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main(names: list[str]) -> int:
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    chosen = [m for m in modules if not names or any(n in m for n in names)]
    failed = []
    for module in chosen:
        print(f"\n=== {module} ===", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", f"bench.{module}"], cwd=HERE.parent)
        print(f"--- {module}: {time.perf_counter() - started:.1f} s, exit {result.returncode}")
        if result.returncode:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
