"""A file can only fail itself: real uploads through the real runner and its process pool.

The far-cell workbook (4.7 KB, one cell at XFD1048576) once aborted a shared pool process and
failed every upload on the daemon; a killed or timed-out parse kept running or broke the pool.
Each test here asserts on the other uploads as much as on the bad one. SQLite only: the subject
is the process pool, not the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Incident
from batchops_core.permissions import Actor
from batchops_core.pipeline.limits import PARSE_CRASHED, XLSX_TOO_LARGE
from batchops_core.pipeline.pool import get_pool
from batchops_core.pipeline.runner import RunOutcome, run_upload
from batchops_core.services.uploads import intake_file

ROOT = Path(__file__).resolve().parents[2]


def csv(n: int) -> str:
    """A good gradebook CSV, different for every `n` (identical bytes would be a duplicate)."""
    return "Student ID,class,maths,english\n" + "".join(
        f"S{i:03d},9A,{40 + (i + n) % 60},{60 + i % 30}\n" for i in range(1, 31)
    )


_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def xlsx_bytes(sheet_data: str, dimension: str) -> bytes:
    """A minimal workbook: one sheet with `sheet_data` inside `<sheetData>`."""
    import io

    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": _XML
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
        "</Types>",
        "_rels/.rels": _XML + f'<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
        f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": _XML + f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
        '<sheet name="Marks" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": _XML + f'<Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>",
        "xl/worksheets/sheet1.xml": _XML + f'<worksheet xmlns="{_MAIN}">'
        f'<dimension ref="{dimension}"/><sheetData>{sheet_data}</sheetData></worksheet>',
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts.items():
            zf.writestr(name, text)
    return out.getvalue()


def far_cell_xlsx() -> bytes:
    header = '<row r="1"><c r="A1" t="inlineStr"><is><t>student_id</t></is></c></row>'
    far = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    return xlsx_bytes(header + far, "A1:XFD1048576")


def slow_pdf(pages: int = 150) -> bytes:
    """A table PDF that takes pdfplumber several seconds (~13 pages/s here)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=9)
    for p in range(pages):
        pdf.add_page()
        for r in range(50):
            for v in (f"S{p * 50 + r:05d}", str(40 + r % 50), str(60 + r % 30), "9A"):
                pdf.cell(40, 5, v)
            pdf.ln()
    return bytes(pdf.output())


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def actor() -> Actor:
    return Actor(id=None, username="cli", role=Role.USER)


@pytest.fixture
def submit(db: Database, db_settings: Settings, actor: Actor, tmp_path: Path) -> Callable[..., Any]:
    async def put(name: str, content: str | bytes, settings: Settings | None = None) -> int:
        path = tmp_path / "outside" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        info = await intake_file(db, settings or db_settings, actor, path, source="Exams")
        return info.id

    return put


def with_pipeline(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, pipeline=dataclasses.replace(settings.pipeline, **changes))


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> set[int]:
    """Every live process under `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (parent := _ppid(int(entry.name))) is not None:
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)
    return value


async def test_far_cell_workbook_fails_alone_among_four_good_csvs(
    db: Database, db_settings: Settings, submit: Callable[..., Any]
) -> None:
    ids = [await submit(f"class {i}.csv", csv(i)) for i in range(2)]
    bad = await submit("far.xlsx", far_cell_xlsx())
    ids += [await submit(f"class {i}.csv", csv(i)) for i in range(2, 4)]
    outcomes: list[RunOutcome] = await asyncio.gather(
        *(run_upload(db, db_settings, u, worker="w") for u in [*ids, bad])
    )
    by_id = {o.upload_id: o for o in outcomes}
    assert [by_id[u].status for u in ids] == ["published"] * 4
    failed = by_id[bad]
    assert (failed.status, failed.stage, failed.error_code) == (
        "failed",
        "standardize",
        XLSX_TOO_LARGE,
    )
    assert "declares a sheet of 16,384 × 1,048,576 cells (A1:XFD1048576)" in str(
        failed.error_message
    )
    assert "512 GiB" in str(failed.error_message)
    async with db.unit() as session:
        incident = await session.get(Incident, failed.incident_id)
    assert incident is not None and incident.upload_id == bad


async def test_a_parse_that_aborts_its_process_fails_only_its_upload(
    db: Database, db_settings: Settings, submit: Callable[..., Any]
) -> None:
    """Past the XML check (limit raised), calamine asks for 512 GiB under the memory cap and
    aborts its process: that upload fails PARSE_CRASHED, the CSVs beside it publish."""
    settings = with_pipeline(db_settings, xlsx_max_cells=10**12, parse_memory_mb=4096)
    bad = await submit("far.xlsx", far_cell_xlsx(), settings)
    ids = [await submit(f"class {i}.csv", csv(i), settings) for i in range(4)]
    outcomes = await asyncio.gather(*(run_upload(db, settings, u, worker="w") for u in [bad, *ids]))
    assert [o.status for o in outcomes[1:]] == ["published"] * 4
    crashed = outcomes[0]
    assert (crashed.status, crashed.error_code) == ("failed", PARSE_CRASHED)
    assert "far.xlsx during standardize aborted (SIGABRT" in str(crashed.error_message)
    assert "memory cap 4,096 MB" in str(crashed.error_message)
    after = await run_upload(db, settings, await submit("next.csv", csv(99), settings), worker="w")
    assert after.status == "published"


async def test_a_pool_process_killed_mid_parse_fails_only_its_upload(
    db: Database, db_settings: Settings, submit: Callable[..., Any]
) -> None:
    pdf = await submit("long report.pdf", slow_pdf())
    beside = await submit("beside.csv", csv(98))
    running_pdf = asyncio.create_task(run_upload(db, db_settings, pdf, worker="w"))
    label = f"upload {pdf} standardize"
    pid = await wait_until(
        lambda: next((p for p, lb in get_pool().busy().items() if lb == label), None),
        60,
        "the PDF's parse to start",
    )
    page_workers = await wait_until(lambda: descendants(pid), 30, "the page processes to start")
    beside_outcome = asyncio.create_task(run_upload(db, db_settings, beside, worker="w"))
    os.kill(pid, signal.SIGKILL)
    outcome = await asyncio.wait_for(running_pdf, 30)
    assert (outcome.status, outcome.error_code) == ("failed", PARSE_CRASHED)
    assert "was killed (SIGKILL" in str(outcome.error_message)
    assert (await asyncio.wait_for(beside_outcome, 60)).status == "published"
    await wait_until(
        lambda: not any(running(p) for p in page_workers), 15, "the page processes to end"
    )
    after = await run_upload(db, db_settings, await submit("next.csv", csv(99)), worker="w")
    assert after.status == "published"


async def test_an_upload_over_its_job_timeout_is_stopped_within_seconds(
    db: Database, db_settings: Settings, submit: Callable[..., Any]
) -> None:
    from batchops_core.worker.dispatcher import Dispatcher

    settings = dataclasses.replace(
        db_settings, worker=dataclasses.replace(db_settings.worker, job_timeout=3)
    )
    # 150 pages parse in ~2.5 s on a quiet machine, inside the 3 s timeout: 600 never do
    pdf = await submit("long report.pdf", slow_pdf(600), settings)
    await get_pool().warm_up()
    dispatcher = Dispatcher(db, settings)
    seen: dict[str, int] = {}

    def note_pid() -> bool:
        for p, lb in get_pool().busy().items():
            if lb == f"upload {pdf} standardize":
                seen["pid"] = p
        return False

    watcher = asyncio.create_task(wait_until(note_pid, 60, "never"))
    started = time.monotonic()
    try:
        result = await dispatcher.process_upload_now(pdf)
    finally:
        watcher.cancel()
        await dispatcher.close()
    elapsed = time.monotonic() - started
    assert result["error_code"] == "JOB_TIMEOUT", result
    assert elapsed < 3 + 3, f"JOB_TIMEOUT after {elapsed:.1f} s"
    assert "pid" in seen, "the stage never ran in the pool"
    await wait_until(lambda: not running(seen["pid"]), 5, "the timed-out process to end")
    after = await run_upload(db, db_settings, await submit("next.csv", csv(99)), worker="w")
    assert after.status == "published"


_DAEMON = """
import asyncio, json, sys, time
from batchops_core.pipeline.pool import get_pool, run_in_pool

async def main():
    await get_pool(2).warm_up()
    asyncio.get_running_loop().create_task(run_in_pool(time.sleep, 120))
    await asyncio.sleep(0.3)
    print(json.dumps(get_pool().pids()), flush=True)
    await asyncio.sleep(120)

if __name__ == "__main__":
    asyncio.run(main())
"""


async def test_pool_processes_die_with_a_sigkilled_daemon(tmp_path: Path) -> None:
    script = tmp_path / "daemon.py"
    script.write_text(_DAEMON)
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)  # type: ignore[union-attr]
        import json

        pids = json.loads(line)
        assert len(pids) == 2 and all(running(p) for p in pids)
        everything = descendants(proc.pid)
        assert set(pids) <= everything
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await wait_until(
            lambda: not any(running(p) for p in everything), 10, "the pool to die with its daemon"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
