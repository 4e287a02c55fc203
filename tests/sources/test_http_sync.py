"""HTTP sources against a local HTTP server: per-day jobs, most-rows choice with its reason,
idempotent days, --force replacing a day, retries with backoff, a rate limit, and bad days
(404, a list that is not JSON, a file failing for good, a file failing the pipeline)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest_asyncio
from sqlalchemy import func, select

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.sources.models import JobStatus, SourceRecord, SourceUpload
from batchops_core.sources.service import add_source
from batchops_core.sources.sync import sync_source
from batchops_core.worker.dispatcher import Dispatcher
from tests.sources.conftest import FileServer

Users = dict[Role, UserInfo]
DAY = date(2026, 12, 1)


def csv_body(rows: int, offset: int = 0) -> bytes:
    lines = ["Student ID,Name,Present Days"]
    lines += [f"S{offset + i:04d},Student {i},{(i % 20) + 1}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest_asyncio.fixture
async def dispatcher(db: Database, db_settings: Settings) -> AsyncIterator[Dispatcher]:
    worker = Dispatcher(db, db_settings)
    yield worker
    await worker.close()


async def _add(db: Database, users: Users, server: FileServer, **extra: Any) -> None:
    config = {
        "list_url": server.url + "/list/{date}/{pos}.json",
        "partitions": {"pos": [1, 2]},
        "parser": {"key": "student_id"},
        "retries": 3,
        "backoff_seconds": 0.01,
        **extra,
    }
    async with db.unit() as uow:
        await add_source(
            uow,
            actor=users[Role.ADMIN].actor,
            name="Branch files",
            kind="http",
            department="Attendance",
            config=config,
        )


def serve_day(server: FileServer, day: date, small: int = 2, big: int = 3) -> None:
    d = day.isoformat()
    server.routes[f"/list/{d}/1.json"] = (
        200,
        [
            {"url": f"/files/{d}/1/a.csv", "type": "csv", "rows": small},
            {"url": f"/files/{d}/1/b.csv", "type": "csv", "rows": big},
        ],
    )
    server.routes[f"/files/{d}/1/a.csv"] = (200, csv_body(small))
    server.routes[f"/files/{d}/1/b.csv"] = (200, csv_body(big))
    # pos 2 lists no row counts: both files are downloaded and counted
    server.routes[f"/list/{d}/2.json"] = (
        200,
        [{"url": f"/files/{d}/2/x.csv"}, {"url": f"/files/{d}/2/y.csv"}],
    )
    server.routes[f"/files/{d}/2/x.csv"] = (200, csv_body(4, 100))
    server.routes[f"/files/{d}/2/y.csv"] = (200, csv_body(1, 200))


async def _records(db: Database, day: date) -> dict[str, list[str]]:
    async with db.unit() as uow:
        rows = (
            await uow.execute(
                select(SourceRecord.partition, SourceRecord.key)
                .where(SourceRecord.day == day)
                .order_by(SourceRecord.partition, SourceRecord.key)
            )
        ).all()
    out: dict[str, list[str]] = {}
    for partition, key in rows:
        out.setdefault(partition, []).append(key)
    return out


async def test_a_day_per_partition_most_rows_idempotent_and_forced(
    db: Database,
    db_settings: Settings,
    users: Users,
    file_server: FileServer,
    dispatcher: Dispatcher,
) -> None:
    await _add(db, users, file_server)
    serve_day(file_server, DAY)
    admin = users[Role.ADMIN].actor
    report = await sync_source(
        db, db_settings, actor=admin, name="Branch files", days=[DAY], dispatcher=dispatcher
    )
    assert report.ok, report
    jobs = {j.partition: j for j in report.jobs}
    assert set(jobs) == {"pos=1", "pos=2"}
    assert all(j.status is JobStatus.SUCCEEDED and j.attempts == 1 for j in jobs.values())
    assert jobs["pos=1"].chosen[0]["name"] == "b.csv"
    assert jobs["pos=1"].chosen[0]["reason"] == "most rows of type csv: b.csv 3 > a.csv 2"
    assert jobs["pos=2"].chosen[0]["reason"] == "most rows of type csv: x.csv 4 > y.csv 1"
    assert len(jobs["pos=1"].files) == 2 and set(jobs["pos=1"].checksums) == {"b.csv"}
    assert jobs["pos=1"].processor_version and jobs["pos=2"].rows == 4
    assert await _records(db, DAY) == {
        "pos=1": ["S0000", "S0001", "S0002"],
        "pos=2": ["S0100", "S0101", "S0102", "S0103"],
    }

    hits = dict(file_server.hits)
    again = await sync_source(
        db, db_settings, actor=admin, name="Branch files", days=[DAY], dispatcher=dispatcher
    )
    assert again.jobs == [] and len(again.skipped) == 2 and "already succeeded" in again.skipped[0]
    assert file_server.hits == hits  # nothing fetched

    serve_day(file_server, DAY, small=1, big=2)  # the day's files changed at the branch
    forced = await sync_source(
        db,
        db_settings,
        actor=admin,
        name="Branch files",
        days=[DAY],
        force=True,
        dispatcher=dispatcher,
    )
    assert forced.ok and {j.partition: j.attempts for j in forced.jobs} == {"pos=1": 2, "pos=2": 2}
    assert await _records(db, DAY) == {
        "pos=1": ["S0000", "S0001"],
        "pos=2": ["S0100", "S0101", "S0102", "S0103"],
    }
    async with db.unit() as uow:
        links = await uow.scalar(select(func.count()).select_from(SourceUpload))
    assert links == 2  # the forced day's earlier uploads are unlinked, not added to


async def test_bad_days_fail_alone_in_one_sentence(
    db: Database,
    db_settings: Settings,
    users: Users,
    file_server: FileServer,
    dispatcher: Dispatcher,
) -> None:
    await _add(db, users, file_server, partitions={"pos": [1]}, alert_after_failures=10)
    d = ["2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05", "2026-12-07"]
    # 12-02: no list (404); 12-03: not JSON; 12-04: the file answers 500 for good;
    # 12-05: a file that fails parsing; 12-07: a flaky file (503 once, then fine)
    file_server.routes[f"/list/{d[1]}/1.json"] = (200, b"<html>maintenance</html>")
    for day, name in ((d[2], "dead.csv"), (d[3], "bin.csv"), (d[4], "flaky.csv")):
        file_server.routes[f"/list/{day}/1.json"] = (200, [{"url": f"/f/{name}", "rows": 2}])
    file_server.routes["/f/dead.csv"] = (500, b"boom")
    file_server.routes["/f/bin.csv"] = (200, b"\x00\x01\x02\x03" * 64)
    file_server.routes["/f/flaky.csv"] = [(503, b"busy"), (200, csv_body(2))]
    report = await sync_source(
        db,
        db_settings,
        actor=users[Role.ADMIN].actor,
        name="Branch files",
        days=[date.fromisoformat(x) for x in d],
        dispatcher=dispatcher,
    )
    jobs = {j.day.isoformat(): j for j in report.jobs}
    assert not report.ok
    assert "answered HTTP 404" in jobs[d[0]].error
    assert "is not JSON" in jobs[d[1]].error
    assert "HTTP 500" in jobs[d[2]].error and "gave up after 3 tries" in jobs[d[2]].error
    assert file_server.hits["/f/dead.csv"] == 3
    assert "failed in the pipeline" in jobs[d[3]].error
    assert jobs[d[4]].status is JobStatus.SUCCEEDED and file_server.hits["/f/flaky.csv"] == 2
    for day in d[:4]:
        assert jobs[day].status is JobStatus.FAILED and "\n" not in jobs[day].error
    assert await _records(db, date.fromisoformat(d[4])) == {"pos=1": ["S0000", "S0001"]}
    for day in d[:4]:
        assert await _records(db, date.fromisoformat(day)) == {}


async def test_the_rate_limit_spaces_requests(
    db: Database,
    db_settings: Settings,
    users: Users,
    file_server: FileServer,
    dispatcher: Dispatcher,
) -> None:
    await _add(db, users, file_server, rate_per_second=20, concurrency=4)
    days = [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    for day in days:
        serve_day(file_server, day)
    report = await sync_source(
        db,
        db_settings,
        actor=users[Role.ADMIN].actor,
        name="Branch files",
        days=days,
        dispatcher=dispatcher,
    )
    assert report.ok and len(report.jobs) == 6
    gaps = [b - a for a, b in zip(file_server.times, file_server.times[1:], strict=False)]
    # per day: pos 1 = list + the chosen file, pos 2 = list + both files (counted)
    assert len(file_server.times) == 5 * 3
    # 20/s: one request start per 50 ms (the server sees arrivals, so allow scheduling jitter)
    assert file_server.times[-1] - file_server.times[0] >= 14 * 0.05 * 0.8
    assert sorted(gaps)[len(gaps) // 2] >= 0.04  # the median gap, robust to one late thread


async def test_without_waiting_the_upload_hook_completes_the_job(
    db: Database,
    db_settings: Settings,
    users: Users,
    file_server: FileServer,
    dispatcher: Dispatcher,
) -> None:
    from batchops_core.sources.completion import on_upload_finished
    from batchops_core.sources.health import settle_processing

    await _add(db, users, file_server)
    serve_day(file_server, DAY)
    report = await sync_source(
        db,
        db_settings,
        actor=users[Role.ADMIN].actor,
        name="Branch files",
        days=[DAY],
        wait=False,
        dispatcher=dispatcher,
    )
    assert {j.status for j in report.jobs} == {JobStatus.PROCESSING}
    await dispatcher.wait_idle()  # the pipeline ran, and the worker's upload hook after it
    assert len((await _records(db, DAY))["pos=2"]) == 4
    async with db.unit() as uow:
        first = await uow.scalar(select(SourceUpload.upload_id).order_by(SourceUpload.upload_id))
    assert await on_upload_finished(db, db_settings, first) is JobStatus.SUCCEEDED  # idempotent
    assert await on_upload_finished(db, db_settings, 10_000) is None  # not a source's upload
    assert await settle_processing(db, db_settings) == {}, "nothing was left for the safety net"
    assert len((await _records(db, DAY))["pos=2"]) == 4
