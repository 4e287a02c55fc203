"""Arrows only point down, statically (import-linter and grimp read the source; no imports run).

The contracts live in pyproject.toml: the core imports neither Textual, the TUI nor the daemon;
the TUI and the daemon touch no models and no SQLAlchemy of their own (services are the door);
the pipeline and the infrastructure sit below the services, the worker and the domain packages.
On top, no two core modules may import each other, directly or round a longer circle, counting
imports inside functions too (only `if TYPE_CHECKING:` imports are left out).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def test_import_contracts_are_kept() -> None:
    # A process of its own: import-linter configures logging in-process, which would silence the
    # loggers of every later test in this session.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_no_import_circles_among_core_modules() -> None:
    graph = grimp.build_graph("batchops_core", exclude_type_checking_imports=True, cache_dir=None)
    modules = {m for m in graph.modules if ".migrations" not in m}
    circles = set()
    for module in sorted(modules):
        for imported in graph.find_modules_directly_imported_by(module) & modules:
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                circles.add(" -> ".join((module, *back)))
    assert sorted(circles) == []
