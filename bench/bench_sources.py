"""Sources: sync 1,000,000 rows from an external PostgreSQL table; `records query` of one day
among 10,000,000 records (goal < 100 ms).

Scenarios, on a private pair of PostgreSQL databases created and dropped by the run:

* `sync`      — `database.sync_database` reads `punch_log` by `id > last_synced_id` in batches
  of 10,000 and stores each batch as records with its high-water mark in one transaction.
* `baseline`  — the same rows read bare in the same run: one `SELECT … ORDER BY id` through the
  same driver (asyncpg), and `COPY (SELECT …) TO STDOUT`. The sync's ratio against both is printed.
* `query`     — 10M records built server-side (`INSERT … SELECT generate_series`, index rebuilt
  after), then `records.query_records` for one day: the first page (what a screen shows) and
  every page of the day by keyset; baseline a bare indexed SELECT of that day.

    python -m bench.bench_sources      # BENCH_SYNC_ROWS=1000000 BENCH_RECORDS=10000000
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import date, timedelta

import asyncpg

SYNC_ROWS = int(os.environ.get("BENCH_SYNC_ROWS", "1000000"))
RECORDS = int(os.environ.get("BENCH_RECORDS", "10000000"))
RECORD_DAYS = 1000
PG = os.environ.get("BATCHOPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG = PG.replace("postgresql+asyncpg://", "postgresql://")
QUERY_GOAL_MS = 100.0


def _url(name: str) -> str:
    return PG.rsplit("/", 1)[0] + f"/{name}"


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(PG)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _external(name: str) -> None:
    conn = await asyncpg.connect(_url(name))
    try:
        await conn.execute(
            "CREATE TABLE punch_log (id BIGINT PRIMARY KEY, emp_no TEXT NOT NULL, "
            "punched_at TIMESTAMP NOT NULL, device TEXT)"
        )
        await conn.execute(
            "INSERT INTO punch_log SELECT g, 'E' || lpad((g % 2000)::text, 4, '0'), "
            "timestamp '2026-09-01 07:00' + (g / 5000) * interval '1 day' + (g % 5000) * "
            f"interval '1 second', 'gate-' || (g % 4) FROM generate_series(1, {SYNC_ROWS}) g"
        )
        await conn.execute("ANALYZE punch_log")
    finally:
        await conn.close()


async def _baselines(name: str) -> tuple[float, float]:
    """Seconds for a bare SELECT (fetched through SQLAlchemy + asyncpg) and a COPY."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(_url(name).replace("postgresql://", "postgresql+asyncpg://"))
    started = time.perf_counter()
    async with engine.connect() as conn:
        result = await conn.stream(
            text("SELECT id, emp_no, punched_at, device FROM punch_log ORDER BY id")
        )
        rows = 0
        async for partition in result.partitions(10_000):
            rows += len(partition)
    select_s = time.perf_counter() - started
    await engine.dispose()
    assert rows == SYNC_ROWS
    conn = await asyncpg.connect(_url(name))
    sink = bytearray()
    try:
        started = time.perf_counter()
        await conn.copy_from_query(
            "SELECT id, emp_no, punched_at, device FROM punch_log ORDER BY id",
            output=lambda chunk: sink.extend(chunk) or asyncio.sleep(0),
        )
        copy_s = time.perf_counter() - started
    finally:
        await conn.close()
    return select_s, copy_s


async def _target(name: str) -> object:
    from batchops_core.infra.config import RedisSettings, Settings, SmtpSettings
    from batchops_core.infra.db import open_database
    from batchops_core.infra.migrate import upgrade

    settings = Settings(
        data_dir=f"/tmp/{name}", redis=RedisSettings(url=""), smtp=SmtpSettings(host="")
    )
    db = open_database(settings, _url(name).replace("postgresql://", "postgresql+asyncpg://"))
    await upgrade(db)
    return db


async def _sync(db: object, external: str) -> tuple[float, int]:
    from batchops_core.permissions import SYSTEM
    from batchops_core.sources.database import sync_database
    from batchops_core.sources.service import add_source

    async with db.unit() as uow:  # type: ignore[attr-defined]
        source = await add_source(
            uow,
            actor=SYSTEM,
            name="Bench gate",
            kind="database",
            department="Attendance",
            config={
                "url": _url(external),
                "table": "punch_log",
                "id_column": "id",
                "timestamp_column": "punched_at",
                "batch_size": 10_000,
                "columns": {"employee": "emp_no", "at": "punched_at", "device": "device"},
            },
        )
    started = time.perf_counter()
    result = await sync_database(db, source.id)  # type: ignore[arg-type]
    return time.perf_counter() - started, result.rows


async def _build_records(name: str, source_id: int) -> float:
    """RECORDS rows for one source over RECORD_DAYS days, built by the server; index after."""
    conn = await asyncpg.connect(_url(name))
    started = time.perf_counter()
    try:
        await conn.execute("DROP INDEX ix_source_records_source_day_key")
        await conn.execute("ALTER TABLE source_records DROP CONSTRAINT uq_source_records_external")
        await conn.execute(
            "INSERT INTO source_records (source_id, day, partition, key, data, external_id) "
            f"SELECT {source_id}, date '2024-01-01' + (g % {RECORD_DAYS}), '', "
            "lpad((g / " + str(RECORD_DAYS) + ")::text, 8, '0'), "
            "json_build_object('employee', 'E' || (g % 2000), 'minutes', g % 600), NULL "
            f"FROM generate_series(1, {RECORDS}) g"
        )
        await conn.execute(
            "CREATE INDEX ix_source_records_source_day_key ON source_records "
            "(source_id, day, key, id)"
        )
        await conn.execute(
            "ALTER TABLE source_records ADD CONSTRAINT uq_source_records_external "
            "UNIQUE (source_id, external_id)"
        )
        await conn.execute("ANALYZE source_records")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _query(db: object, name: str, day: date, runs: int = 7) -> dict[str, float]:
    from batchops_core.permissions import SYSTEM
    from batchops_core.sources.records import query_records

    first, whole, count = [], [], 0
    for i in range(runs):
        target = day + timedelta(days=i)
        started = time.perf_counter()
        after, pages, count = None, 0, 0
        while True:
            async with db.unit() as uow:  # type: ignore[attr-defined]
                page = await query_records(
                    uow,
                    actor=SYSTEM,
                    source="Bench records",
                    start=target,
                    end=target,
                    after=after,
                    limit=1000,
                )
            count += len(page.items)
            pages += 1
            if pages == 1:
                first.append(time.perf_counter() - started)
            if page.after is None:
                break
            after = page.after
        whole.append(time.perf_counter() - started)
    conn = await asyncpg.connect(_url(name))
    bare = []
    try:
        for i in range(runs):
            started = time.perf_counter()
            await conn.fetch(
                "SELECT id, key, data FROM source_records WHERE source_id = "
                "(SELECT id FROM sources WHERE name = 'Bench records') AND day = $1 "
                "ORDER BY key, id LIMIT 1000",
                day + timedelta(days=i),
            )
            bare.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return {
        "first_ms": statistics.median(first) * 1000,
        "day_ms": statistics.median(whole) * 1000,
        "bare_ms": statistics.median(bare) * 1000,
        "rows": count,
    }


async def main() -> int:
    run = uuid.uuid4().hex[:8]
    external, target = f"bo_bench_ext_{run}", f"bo_bench_tgt_{run}"
    await _admin(f'CREATE DATABASE "{external}"', f'CREATE DATABASE "{target}"')
    db = None
    try:
        started = time.perf_counter()
        await _external(external)
        print(f"external table: {SYNC_ROWS:,} rows built in {time.perf_counter() - started:.1f} s")
        select_s, copy_s = await _baselines(external)
        db = await _target(target)
        sync_s, rows = await _sync(db, external)
        assert rows == SYNC_ROWS, rows
        print(f"sync      {rows:,} rows in {sync_s:.1f} s = {rows / sync_s:,.0f} rows/s")
        print(
            f"baseline  bare SELECT {select_s:.2f} s ({rows / select_s:,.0f} rows/s), "
            f"COPY {copy_s:.2f} s ({rows / copy_s:,.0f} rows/s)"
        )
        print(
            f"ratio     sync / SELECT = {sync_s / select_s:.1f}×, "
            f"sync / COPY = {sync_s / copy_s:.1f}×"
        )

        from batchops_core.permissions import SYSTEM
        from batchops_core.sources.service import add_source

        async with db.unit() as uow:
            source = await add_source(
                uow,
                actor=SYSTEM,
                name="Bench records",
                kind="folder",
                department="Attendance",
                config={"path": "/nonexistent", "glob": "*.csv"},
            )
        build_s = await _build_records(target, source.id)
        print(f"records   {RECORDS:,} built server-side (with index) in {build_s:.1f} s")
        figures = await _query(db, target, date(2024, 6, 3))
        verdict = "meets" if figures["first_ms"] < QUERY_GOAL_MS else "MISSES"
        print(
            f"query     one day ({figures['rows']:,} records): "
            f"first page {figures['first_ms']:.1f} ms "
            f"({verdict} the {QUERY_GOAL_MS:.0f} ms goal), whole day by keyset "
            f"{figures['day_ms']:.1f} ms; bare indexed SELECT of a page "
            f"{figures['bare_ms']:.1f} ms "
            f"(ratio {figures['first_ms'] / figures['bare_ms']:.1f}×)"
        )
        return 0 if figures["first_ms"] < QUERY_GOAL_MS else 1
    finally:
        if db is not None:
            await db.dispose()  # type: ignore[attr-defined]
        await _admin(
            f'DROP DATABASE IF EXISTS "{external}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)',
        )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
