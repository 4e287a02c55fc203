"""Records: what arrived from a source, stored once, replaced per day on force, paged by keyset.

* Database rows are inserted with their external id under UNIQUE (source, external id), in the
  same transaction that advances the source's `last_synced_id` (see `database.py`).
* A fetched file's rows come from its upload's *published* CSV (`store_published_records`), so
  they have passed the pipeline with the source's parser settings. Storing is idempotent: the
  upload's earlier records are deleted first, and so are records of that (source, partition,
  day) left by uploads no longer linked to the job (a forced day replaces, never adds).
* `query_records` pages by keyset on (source, day, key, id), which the index
  `ix_source_records_source_day_key` serves: page 10,000 costs what page 1 costs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import UploadStatus
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra.config import Settings
from batchops_core.models import Upload
from batchops_core.sources.models import Source, SourceJob, SourceRecord, SourceUpload
from batchops_core.storage import open_store

INSERT_CHUNK = 2_000
MAX_QUERY_PAGE = 5_000
ROW_COLUMN = "__row__"


@dataclass(frozen=True)
class RecordRow:
    id: int
    source: str
    date: date
    partition: str
    key: str
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "date": self.date.isoformat(),
            "partition": self.partition,
            "key": self.key,
            "data": self.data,
        }


@dataclass(frozen=True)
class RecordPage:
    items: list[RecordRow]
    after: tuple[int, str, str, int] | None
    """The keyset cursor of the next page (source id, day, key, id), or None at the end."""


COPY_COLUMNS = ("source_id", "day", "partition", "key", "data", "external_id", "upload_id")


async def insert_records(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Bulk insert in the session's transaction: COPY on PostgreSQL (asyncpg's binary copy,
    ~5× an executemany), Core executemany in chunks elsewhere (~10× the ORM's bulk path)."""
    if not rows:
        return 0
    if session.bind.dialect.name == "postgresql":
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        if driver is not None and hasattr(driver, "copy_records_to_table"):
            await driver.copy_records_to_table(
                SourceRecord.__tablename__,
                columns=COPY_COLUMNS,
                records=[
                    (
                        r["source_id"],
                        r["day"],
                        r["partition"],
                        r["key"],
                        json.dumps(r["data"], default=str),
                        r["external_id"],
                        r["upload_id"],
                    )
                    for r in rows
                ],
            )
            return len(rows)
    table = SourceRecord.__table__
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.execute(insert(table), rows[start : start + INSERT_CHUNK])
    return len(rows)


def _read_published(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        yield from csv.DictReader(handle)


async def store_published_records(uow: AsyncSession, *, upload_id: int, settings: Settings) -> int:
    """Store the rows of a source upload's published CSV as records of its job's day.

    Call it after the upload publishes (status published or partial). Uploads that did not come
    from a source return 0. Safe to call twice: the upload's records are replaced.
    """
    link = await uow.get(SourceUpload, upload_id)
    if link is None:
        return 0
    upload = await uow.get(Upload, upload_id)
    if upload is not None and upload.status is UploadStatus.DUPLICATE and upload.duplicate_of_id:
        upload = await uow.get(Upload, upload.duplicate_of_id)  # the same file, published before
    if upload is None or not upload.report_csv:
        raise NotFound(f"upload #{upload_id} has no published CSV to store records from.")
    job = await uow.get(SourceJob, link.job_id)
    source = await uow.get(Source, job.source_id) if job else None
    if job is None or source is None:
        return 0
    key_column = (source.config.get("parser") or {}).get("key") or source.config.get("key")
    linked = select(SourceUpload.upload_id).where(SourceUpload.job_id == job.id)
    await uow.execute(
        delete(SourceRecord).where(
            SourceRecord.source_id == source.id,
            SourceRecord.day == job.day,
            SourceRecord.partition == job.partition,
            or_(
                SourceRecord.upload_id.is_(None),
                SourceRecord.upload_id.not_in(linked),
                SourceRecord.upload_id == upload_id,
            ),
        )
    )
    path = await open_store(settings).local_copy(
        upload.report_csv, settings.scratch_path / "records"
    )
    rows = []
    for number, row in enumerate(_read_published(path), start=1):
        key = str(row.get(key_column, "") if key_column else number)[:255]
        rows.append(
            {
                "source_id": source.id,
                "day": job.day,
                "partition": job.partition,
                "key": key,
                "data": row,
                "external_id": None,
                "upload_id": upload_id,
            }
        )
    if path.is_relative_to(settings.scratch_path):
        path.unlink(missing_ok=True)  # a copy fetched from the object store
    if source.config.get("target") == "punches":
        await _to_punches(uow, source.name, rows)
    else:
        await insert_records(uow, rows)
    link.records_stored = True
    return len(rows)


async def _to_punches(uow: AsyncSession, source: str, rows: list[dict[str, Any]]) -> None:
    try:
        from batchops_core.attendance import add_punches  # type: ignore[attr-defined]
    except ImportError:
        raise ValidationFailed(
            f"source {source} targets punches, but this BatchOps has no attendance punches yet "
            "(batchops_core.attendance.add_punches); set its target to records."
        ) from None
    await add_punches(uow, rows=[r["data"] for r in rows], source=source)


# ------------------------------------------------------------------------------------ query


def _where_clause(column: str, value: str) -> Any:
    if column == "key":
        return SourceRecord.key == value
    if column == "partition":
        return SourceRecord.partition == value
    return SourceRecord.data[column].as_string() == value


def parse_where(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise ValidationFailed(f"--where '{item}' must look like COLUMN=VALUE.")
        pairs.append((column.strip(), value))
    return pairs


async def query_page(
    session: AsyncSession,
    *,
    source_filter: Any,
    start: date | None,
    end: date | None,
    where: list[tuple[str, str]],
    after: tuple[int, str, str, int] | None,
    limit: int,
) -> RecordPage:
    """One page in (source, day, key, id) order after the cursor `after`, in one statement
    (the source's name comes with each row, its id from a subquery the index can use)."""
    limit = max(1, min(limit, MAX_QUERY_PAGE))
    conditions: list[Any] = [source_filter]
    if start is not None:
        conditions.append(SourceRecord.day >= start)
    if end is not None:
        conditions.append(SourceRecord.day <= end)
    conditions += [_where_clause(c, v) for c, v in where]
    if after is not None:
        sid, day, key, rid = after
        conditions.append(
            tuple_(SourceRecord.source_id, SourceRecord.day, SourceRecord.key, SourceRecord.id)
            > tuple_(sid, date.fromisoformat(day), key, rid)
        )
    rows = (
        await session.execute(
            select(
                SourceRecord.id,
                SourceRecord.source_id,
                Source.name,
                SourceRecord.day,
                SourceRecord.partition,
                SourceRecord.key,
                SourceRecord.data,
            )
            .join(Source, Source.id == SourceRecord.source_id)
            .where(and_(*conditions))
            .order_by(SourceRecord.source_id, SourceRecord.day, SourceRecord.key, SourceRecord.id)
            .limit(limit)
        )
    ).all()
    items = [RecordRow(r.id, r.name, r.day, r.partition, r.key, r.data) for r in rows]
    cursor = None
    if len(rows) == limit:
        last = rows[-1]
        cursor = (last.source_id, last.day.isoformat(), last.key, last.id)
    return RecordPage(items, cursor)


async def query_records(
    uow: AsyncSession,
    *,
    actor: Any,
    source: str | None = None,
    start: date | None = None,
    end: date | None = None,
    where: list[tuple[str, str]] | None = None,
    after: tuple[int, str, str, int] | None = None,
    limit: int = 1000,
) -> RecordPage:
    """One page of records (VIEW_SOURCES); pass the page's `after` to get the next one."""
    from sqlalchemy import func

    from batchops_core.permissions import Action, require

    require(actor, Action.VIEW_SOURCES)
    if start and end and end < start:
        raise ValidationFailed(f"--to {end} is before --from {start}.")
    source_filter: Any = SourceRecord.source_id.is_not(None)
    if source:
        text = source.strip()
        match = (
            Source.id == int(text) if text.isdigit() else func.lower(Source.name) == text.lower()
        )
        source_filter = SourceRecord.source_id == select(Source.id).where(match).scalar_subquery()
    page = await query_page(
        uow,
        source_filter=source_filter,
        start=start,
        end=end,
        where=where or [],
        after=after,
        limit=limit,
    )
    if source and not page.items and after is None:
        text = source.strip()
        match = (
            Source.id == int(text) if text.isdigit() else func.lower(Source.name) == text.lower()
        )
        if await uow.scalar(select(Source.id).where(match)) is None:
            raise NotFound(f"there is no source named {source!r}.")
    return page
