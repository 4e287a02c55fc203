"""Arrows only point down: the core never imports Textual, the TUI or the daemon."""

import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "batchops_core"
MODULES = sorted(
    "batchops_core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
    for p in CORE.rglob("*.py")
    if p.name != "__init__.py" and "migrations" not in p.parts
)


@pytest.mark.parametrize("module", MODULES)
def test_core_module_is_headless(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('textual', 'batchops_tui', 'batchops_daemon') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"{module} pulls in {result.stdout.strip()}"
