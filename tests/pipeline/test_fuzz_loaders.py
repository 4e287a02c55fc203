"""Fuzzing the loaders: any bytes either load or fail with the pipeline's typed StageError.

Each example is loaded in a pool process under a memory cap, as uploads are: a loader that crashes
natively (calamine aborting, a C extension segfaulting) surfaces as `WorkerDied` and fails the
test with the example, instead of killing pytest. Bounded: a few dozen examples per format, with
a deadline, so the suite stays fast on a shared 2-core machine.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchops_core.pipeline.limits import ParseLimits
from batchops_core.pipeline.pool import run_in_pool
from tests.pipeline.test_isolation import csv, xlsx_bytes

FUZZ = settings(
    max_examples=30,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
LIMITS = ParseLimits(memory_mb=3072, xlsx_max_cells=2_000_000, pdf_max_pages=50)
EXPECTED = "StageError"


def load_verdict(path: str) -> str:
    """Load one file in this (pool) process: "ok", "StageError <code>", or what else escaped."""
    from batchops_core.pipeline.errors import StageError
    from batchops_core.pipeline.standardize import standardize

    try:
        standardize(Path(path), max_bytes=10 * 1024 * 1024)
    except StageError as err:
        return f"{EXPECTED} {err.code}"
    except Exception as exc:  # the finding: anything but StageError
        return f"UNEXPECTED {type(exc).__name__}: {str(exc)[:300]}"
    return "ok"


def verdict(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    result = asyncio.run(run_in_pool(load_verdict, str(path), limits=LIMITS, label="fuzz"))
    assert result == "ok" or result.startswith(EXPECTED), f"{name} {content[:200]!r}: {result}"
    return result


def splice(base: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (position, bytes to delete, bytes to insert) edits to `base`."""
    data = bytearray(base)
    for pos, cut, insert in edits:
        at = pos % (len(data) + 1)
        data[at : at + cut] = insert
    return bytes(data)


EDITS = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 8), st.binary(max_size=8)), max_size=6
)
SUFFIX = st.sampled_from([".csv", ".xlsx", ".pdf", ".txt", ".xls"])


def small_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=9)
    pdf.add_page()
    for r in range(6):
        for v in (f"S{r:03d}", str(40 + r), str(60 + r)):
            pdf.cell(30, 5, v)
        pdf.ln()
    return bytes(pdf.output())


PDF = small_pdf()
XLSX = xlsx_bytes(
    "".join(
        f'<row r="{r}">'
        + "".join(
            f'<c r="{c}{r}" t="inlineStr"><is><t>{c}{r}</t></is></c>'
            if r == 1
            else f'<c r="{c}{r}"><v>{r * 3}</v></c>'
            for c in "ABC"
        )
        + "</row>"
        for r in range(1, 8)
    ),
    "A1:C7",
)
SHEET_BITS = st.sampled_from(
    [
        '<row r="1"><c r="A1"><v>1</v></c></row>',
        '<row r="2"><c r="B2" t="s"><v>99</v></c></row>',
        '<row r="3"><c r="XFD3"><v>1</v></c></row>',
        '<row r="1048576"><c r="A1048576"><v>2</v></c></row>',
        '<row r="4"><c r="C4" t="inlineStr"><is><t>x</t></is></c></row>',
        '<c r="ZZ9"><f>SUM(A1)</f></c>',
        "<row>",
        "</row>",
        '<c r="A',
        '<row r="-1"><c r="A0"><v>x</v></c></row>',
    ]
)


@FUZZ
@given(content=st.binary(max_size=3000), suffix=SUFFIX)
def test_random_bytes_load_or_fail_typed(tmp_path: Path, content: bytes, suffix: str) -> None:
    verdict(tmp_path, f"random{suffix}", content)


@FUZZ
@given(edits=EDITS, n=st.integers(0, 50))
def test_mutated_csv_loads_or_fails_typed(tmp_path: Path, edits: list, n: int) -> None:
    verdict(tmp_path, "mutated.csv", splice(csv(n).encode(), edits))


@FUZZ
@given(edits=EDITS)
def test_mutated_xlsx_bytes_load_or_fail_typed(tmp_path: Path, edits: list) -> None:
    verdict(tmp_path, "mutated.xlsx", splice(XLSX, edits))


@FUZZ
@given(bits=st.lists(SHEET_BITS | st.text(max_size=12), max_size=8), dim=st.text(max_size=16))
def test_xlsx_with_random_sheet_xml_loads_or_fails_typed(
    tmp_path: Path, bits: list[str], dim: str
) -> None:
    content = xlsx_bytes("".join(bits), dim.replace('"', ""))
    verdict(tmp_path, "sheet.xlsx", content)


@FUZZ
@given(edits=EDITS)
def test_mutated_pdf_loads_or_fails_typed(tmp_path: Path, edits: list) -> None:
    verdict(tmp_path, "mutated.pdf", splice(PDF, edits))


def test_the_fuzz_harness_tells_a_load_from_a_typed_failure(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,2\n")
    ok = asyncio.run(run_in_pool(load_verdict, str(path), limits=LIMITS))
    assert ok == "ok"
    missing = asyncio.run(run_in_pool(load_verdict, str(tmp_path), limits=LIMITS))
    assert missing == f"{EXPECTED} BAD_PATH"  # a directory
