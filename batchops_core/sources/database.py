"""Database sources: read an external log table incrementally by `last_synced_id`.

Each batch is read (`id > last_synced_id ORDER BY id LIMIT batch_size`) outside our transaction,
then written in ONE transaction with the advance of `last_synced_id`, fenced by its old value
(`UPDATE sources SET last_synced_id = :new WHERE id = :id AND last_synced_id = :old`). So:

* a crash (even SIGKILL) mid-batch rolls the batch back with its advance: the next sync reads the
  same rows again, nothing lost, nothing doubled;
* two syncs of one source at once cannot both store a batch: the second's fence fails and it
  stops; UNIQUE (source, external id) backs this up.

The external URL may name any SQLAlchemy backend; it is opened with an async driver
(`postgresql` → asyncpg, `sqlite` → aiosqlite, `mysql` → aiomysql, `mssql` → aioodbc) when the
driver is installed, else one sentence says which package is missing. Values become JSON
(timestamps as ISO 8601, decimals as numbers) so a record's `data` is portable.
"""

from __future__ import annotations

import asyncio
import base64
import decimal
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from batchops_core.errors import BatchOpsError
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import Database
from batchops_core.sources import secrets
from batchops_core.sources.jobstate import PROCESSOR_VERSION, ensure_job
from batchops_core.sources.models import JobStatus, Source, SourceJob
from batchops_core.sources.records import insert_records

ASYNC_DRIVERS = {
    "postgresql": ("asyncpg", "asyncpg"),
    "sqlite": ("aiosqlite", "aiosqlite"),
    "mysql": ("aiomysql", "aiomysql"),
    "mariadb": ("aiomysql", "aiomysql"),
    "mssql": ("aioodbc", "aioodbc"),
}


class SourceUnavailable(BatchOpsError):
    """The external system cannot be reached or read; the sentence says why."""


class SyncConflict(BatchOpsError):
    """Another sync of the same source advanced `last_synced_id` first."""


@dataclass(frozen=True)
class DatabaseSyncResult:
    rows: int
    batches: int
    last_synced_id: int
    days: dict[str, int]


# ------------------------------------------------------------------------------- connecting


def external_url(config: dict[str, Any], secret: str | None) -> URL:
    url = make_url(config["url"])
    backend = url.get_backend_name()
    driver, module = ASYNC_DRIVERS.get(backend, (url.get_driver_name(), ""))
    if module:
        try:
            __import__(module)
        except ImportError:
            raise SourceUnavailable(
                f"reading a {backend} source needs the Python package {module}, "
                "which is not installed."
            ) from None
        url = url.set(drivername=f"{backend}+{driver}")
    password = secrets.password_for(config, secret)
    return url.set(password=password) if password is not None else url


def display(config: dict[str, Any]) -> str:
    return make_url(config["url"]).render_as_string(hide_password=True)


def open_external(config: dict[str, Any], secret: str | None) -> AsyncEngine:
    url = external_url(config, secret)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"timeout": 10}
    try:
        return create_async_engine(url, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise SourceUnavailable(f"no driver for {display(config)}: {exc}.") from None


def describe(config: dict[str, Any], exc: BaseException) -> str:
    reason = getattr(exc, "orig", None) or exc
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    where = config.get("table") or "the query"
    return f"cannot read {where} from {display(config)}: {text}."


# ---------------------------------------------------------------------------------- reading


def _source_columns(config: dict[str, Any]) -> list[str]:
    wanted = [config["id_column"], config["timestamp_column"], *config.get("columns", {}).values()]
    return list(dict.fromkeys(wanted))


async def _probe_columns(conn: AsyncConnection, config: dict[str, Any]) -> list[str]:
    probe = (
        f"SELECT * FROM {config['table']} WHERE 1=0"
        if config.get("table")
        else f"SELECT * FROM ({config['query']}) AS src WHERE 1=0"
    )
    result = await conn.execute(sa.text(probe))
    keys = list(result.keys())
    result.close()
    return keys


def check_columns(config: dict[str, Any], present: list[str]) -> list[str]:
    """The columns to read, or one sentence naming the configured column that is not there."""
    where = config.get("table") or "the query"
    have = ", ".join(present)
    for key in ("id_column", "timestamp_column"):
        if config[key] not in present:
            raise SourceUnavailable(
                f"{where} has no column {config[key]} (config.{key}); it has: {have}."
            )
    for target, column in (config.get("columns") or {}).items():
        if column not in present:
            raise SourceUnavailable(
                f"config.columns.{target} names {column}, which {where} does not have; "
                f"it has: {have}."
            )
    return _source_columns(config) if config.get("columns") else present


async def read_columns(engine: AsyncEngine, config: dict[str, Any]) -> list[str]:
    try:
        async with engine.connect() as conn:
            return check_columns(config, await _probe_columns(conn, config))
    except (DBAPIError, SQLAlchemyError, OSError, TimeoutError) as exc:
        raise SourceUnavailable(describe(config, exc)) from None


def _selectable(config: dict[str, Any], columns: list[str]) -> Any:
    cols = [sa.column(c) for c in columns]
    if config.get("table"):
        schema, _, name = config["table"].rpartition(".")
        return sa.table(name, *cols, schema=schema or None)
    return sa.text(config["query"]).columns(*cols).subquery("src")


def read_statement(config: dict[str, Any], columns: list[str], after: int, limit: int) -> Any:
    src = _selectable(config, columns)
    ident = src.c[config["id_column"]]
    return select(*[src.c[c] for c in columns]).where(ident > after).order_by(ident).limit(limit)


def jsonable(value: Any) -> Any:
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return value


def day_of(value: Any, column: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()
        except ValueError:
            pass
    raise SourceUnavailable(
        f"the timestamp column {column} holds {value!r}, which is not a date or timestamp."
    )


def map_row(config: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    mapping = config.get("columns") or {c: c for c in row}
    return {target: jsonable(row.get(src)) for target, src in mapping.items()}


def external_id(value: Any, column: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
        try:
            return int(str(value))
        except ValueError:
            raise SourceUnavailable(
                f"the id column {column} holds {value!r}; it must be an increasing integer."
            ) from None
    return int(value)


async def read_batch(
    engine: AsyncEngine, config: dict[str, Any], columns: list[str], after: int, limit: int
) -> list[dict[str, Any]]:
    try:
        async with engine.connect() as conn:
            result = await conn.execute(read_statement(config, columns, after, limit))
            return [dict(r._mapping) for r in result]
    except (DBAPIError, SQLAlchemyError, OSError, TimeoutError) as exc:
        raise SourceUnavailable(describe(config, exc)) from None


# ---------------------------------------------------------------------------------- writing


def _records(
    source: Source, config: dict[str, Any], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Rows → record dicts; the per-row work is kept to lookups (1M rows pass through here)."""
    id_col, ts_col = config["id_column"], config["timestamp_column"]
    mapping = list((config.get("columns") or {c: c for c in (rows[0] if rows else {})}).items())
    out = []
    for row in rows:
        raw_id, stamp = row[id_col], row[ts_col]
        ext = raw_id if type(raw_id) is int else external_id(raw_id, id_col)
        out.append(
            {
                "source_id": source.id,
                "day": stamp.date() if type(stamp) is datetime else day_of(stamp, ts_col),
                "partition": "",
                "key": str(ext),
                "data": {target: jsonable(row[col]) for target, col in mapping},
                "external_id": ext,
                "upload_id": None,
            }
        )
    return out


async def _count_days(session: Any, source_id: int, days: Counter[date]) -> None:
    now = utcnow()
    for day, count in days.items():
        job_id = await ensure_job(session, source_id, "", day)
        await session.execute(
            update(SourceJob)
            .where(SourceJob.id == job_id)
            .values(
                status=JobStatus.SUCCEEDED,
                rows=SourceJob.rows + count,
                attempts=sa.case((SourceJob.attempts < 1, 1), else_=SourceJob.attempts),
                processor_version=PROCESSOR_VERSION,
                finished_at=now,
                error=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )


async def store_batch(
    db: Database, source_id: int, expected_last: int, rows: list[dict[str, Any]]
) -> tuple[int, Counter[date]]:
    """Store one batch and advance `last_synced_id` in one transaction; return the new id."""
    async with db.unit() as session:
        source = await session.get(Source, source_id)
        if source is None:
            raise SyncConflict("the source was removed during the sync.")
        config = source.config
        records = _records(source, config, rows)
        new_last = max(r["external_id"] for r in records)
        fenced = await session.execute(
            update(Source)
            .where(Source.id == source_id, Source.last_synced_id == expected_last)
            .values(last_synced_id=new_last)
            .execution_options(synchronize_session=False)
        )
        if not fenced.rowcount:
            raise SyncConflict(
                f"another sync of {source.name} moved last_synced_id first; this one stops."
            )
        if config.get("target") == "punches":
            from batchops_core.sources.records import _to_punches

            await _to_punches(session, source.name, records)
        else:
            await insert_records(session, records)
        days: Counter[date] = Counter(r["day"] for r in records)
        await _count_days(session, source_id, days)
        session.emit(events.Event(type="source.updated", id=source_id, status="syncing"))
    return new_last, days


async def sync_database(db: Database, source_id: int) -> DatabaseSyncResult:
    """Read everything newer than `last_synced_id` batch by batch; each batch commits alone."""
    async with db.unit() as session:
        source = await session.get(Source, source_id)
        if source is None:
            raise SyncConflict(f"source #{source_id} does not exist.")
        config, secret, last = dict(source.config), source.secret, source.last_synced_id
    batch_size = int(config.get("batch_size", 5000))
    engine = open_external(config, secret)
    total, batches = 0, 0
    days: Counter[date] = Counter()
    ahead: asyncio.Task[list[dict[str, Any]]] | None = None
    try:
        columns = await read_columns(engine, config)
        rows = await read_batch(engine, config, columns, last, batch_size)
        while rows:
            if len(rows) == batch_size:  # read the next batch while this one is stored
                next_after = external_id(rows[-1][config["id_column"]], config["id_column"])
                ahead = asyncio.create_task(
                    read_batch(engine, config, columns, next_after, batch_size)
                )
            last, batch_days = await store_batch(db, source_id, last, rows)
            days.update(batch_days)
            total += len(rows)
            batches += 1
            rows, ahead = (await ahead if ahead is not None else []), None
    finally:
        if ahead is not None:  # a failed store: the batch read ahead is dropped, unread
            ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)
        await engine.dispose()
    return DatabaseSyncResult(
        total, batches, last, {d.isoformat(): n for d, n in sorted(days.items())}
    )


async def sample_database(config: dict[str, Any], secret: str | None, n: int = 5) -> dict[str, Any]:
    """The first `n` rows after id 0, raw and mapped: what `source test` shows. Writes nothing."""
    engine = open_external(config, secret)
    try:
        rows = await read_batch(engine, config, await read_columns(engine, config), -(2**62), n)
    finally:
        await engine.dispose()
    id_col, ts_col = config["id_column"], config["timestamp_column"]
    mapped = [
        {
            "id": external_id(r[id_col], id_col),
            "date": day_of(r[ts_col], ts_col).isoformat(),
            "data": map_row(config, r),
        }
        for r in rows
    ]
    return {"columns": list(rows[0].keys()) if rows else [], "rows": mapped}
