"""The size limits a parse runs under, and the memory cap of the process running it.

A file can only fail itself: whatever it declares is checked against these limits before a
parser allocates for it (XLSX cells from the sheet XML, PDF pages, CSV field sizes), and the
process that parses it runs under an address-space cap (`RLIMIT_AS`), so a file that still gets
past the checks fails its own process, never the daemon.

The limits travel with each task to the pool process (`pool.run_in_pool(..., limits=...)`), which
makes them current for the length of the task; loaders read `current()`. That keeps them out of
every loader's signature and lets tests call loaders directly under the defaults.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchops_core.infra.config import PipelineSettings

# Codes of the failures these limits produce (UPPER_SNAKE like pipeline/errors.py; stable).
XLSX_TOO_LARGE = "XLSX_TOO_LARGE"
PDF_TOO_MANY_PAGES = "PDF_TOO_MANY_PAGES"
PARSE_CRASHED = "PARSE_CRASHED"

MB = 1024 * 1024


@dataclass(frozen=True)
class ParseLimits:
    """Limits of one parse; the defaults are those of `PipelineSettings` (config.toml)."""

    memory_mb: int = 6144
    """Address-space cap of the pool process during a stage; 0 means no cap."""
    xlsx_max_cells: int = 20_000_000
    """Largest rows × columns a sheet may span (what calamine allocates, 32 bytes a cell)."""
    pdf_max_pages: int = 2_000
    csv_max_field_kb: int = 1024

    @classmethod
    def of(cls, pipeline: PipelineSettings) -> ParseLimits:
        return cls(
            memory_mb=pipeline.parse_memory_mb,
            xlsx_max_cells=pipeline.xlsx_max_cells,
            pdf_max_pages=pipeline.pdf_max_pages,
            csv_max_field_kb=pipeline.csv_max_field_kb,
        )


_current = ParseLimits()


def current() -> ParseLimits:
    """The limits of the task this process is running (the defaults outside a pool task)."""
    return _current


@contextlib.contextmanager
def applied(limits: ParseLimits | None) -> Iterator[ParseLimits]:
    """Make `limits` current and cap this process's address space while the block runs.

    Only the soft limit moves (the hard one stays), so the cap can be lifted again afterwards and
    the next task may run with another. Child processes started meanwhile (the PDF page workers)
    inherit the cap.
    """
    global _current
    limits = limits or ParseLimits()
    before = _current
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = limits.memory_mb * MB if limits.memory_mb > 0 else resource.RLIM_INFINITY
    if hard != resource.RLIM_INFINITY and (cap == resource.RLIM_INFINITY or cap > hard):
        cap = hard
    _current = limits
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield limits
    finally:
        _current = before
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
