"""Table rows as gzip'd JSON lines: the same file restores into SQLite or PostgreSQL.

The first line of a table file names its columns and how each value is written; every other
line is one row as a JSON array. Values are read through the models' column types, so they are
what the code sees on either backend (aware UTC datetimes, parsed JSON, booleans) and are written
back through the same types. Enum columns are read and written as their stored strings, so a
value this version does not know (an old status) still round-trips instead of failing the backup.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from sqlalchemy import JSON, Column, ColumnElement, Enum, String, Table, TypeDecorator, type_coerce
from sqlalchemy.sql.type_api import TypeEngine

from batchops_core.attendance import models as _attendance_models  # noqa: F401
from batchops_core.backup.errors import BackupError
from batchops_core.models import Base
from batchops_core.sources import models as _sources_models  # noqa: F401

NOT_BACKED_UP = frozenset({"worker_heartbeats"})
"""Runtime state of the processes alive now, not data: a restored heartbeat would show a worker
that does not exist."""


def backed_up_tables() -> list[Table]:
    """Every table of the schema, parents before children (the order a restore inserts in)."""
    return [t for t in Base.metadata.sorted_tables if t.name not in NOT_BACKED_UP]


def model_table(name: str) -> Table | None:
    return Base.metadata.tables.get(name)


class Kind(StrEnum):
    PLAIN = "plain"
    DATETIME = "datetime"
    DATE = "date"
    TIME = "time"
    INTERVAL = "interval"
    DECIMAL = "decimal"
    BYTES = "bytes"


def kind_of(column: Column[Any]) -> Kind:
    type_: TypeEngine[Any] = column.type
    while isinstance(type_, TypeDecorator):  # UTCDateTime: a DateTime underneath
        type_ = type_.impl_instance
    if isinstance(type_, Enum | JSON):
        return Kind.PLAIN
    try:
        python = type_.python_type
    except NotImplementedError:
        return Kind.PLAIN
    for cls, kind in (
        (datetime, Kind.DATETIME),  # before date: datetime is a date
        (date, Kind.DATE),
        (time, Kind.TIME),
        (timedelta, Kind.INTERVAL),
        (Decimal, Kind.DECIMAL),
        (bytes, Kind.BYTES),
    ):
        if issubclass(python, cls):
            return kind
    return Kind.PLAIN


def selected(column: Column[Any]) -> ColumnElement[Any]:
    """What the dump reads of a column: its stored string for enums, its model type otherwise."""
    if isinstance(column.type, Enum):
        return type_coerce(column, String()).label(column.name)
    return column


def insert_type(column: Column[Any]) -> TypeEngine[Any]:
    """The type a restore binds a value with. A nullable JSON column keeps SQL NULL as NULL
    (SQLAlchemy would otherwise write the JSON text `null`, which `IS NULL` does not match)."""
    if isinstance(column.type, Enum):
        return String()
    if isinstance(column.type, JSON):
        return JSON(none_as_null=bool(column.nullable))
    return column.type


_ENCODE: dict[Kind, Callable[[Any], Any]] = {
    Kind.DATETIME: lambda v: v.isoformat(),
    Kind.DATE: lambda v: v.isoformat(),
    Kind.TIME: lambda v: v.isoformat(),
    Kind.INTERVAL: lambda v: v.total_seconds(),
    Kind.DECIMAL: str,
    Kind.BYTES: lambda v: base64.b64encode(v).decode("ascii"),
}
_DECODE: dict[Kind, Callable[[Any], Any]] = {
    Kind.DATETIME: datetime.fromisoformat,
    Kind.DATE: date.fromisoformat,
    Kind.TIME: time.fromisoformat,
    Kind.INTERVAL: lambda v: timedelta(seconds=v),
    Kind.DECIMAL: Decimal,
    Kind.BYTES: base64.b64decode,
}


class TableWriter:
    """Writes one table's file: the header line, then rows as they are read."""

    def __init__(self, table: Table, path: Path) -> None:
        self.table = table
        self.path = path
        self.kinds = [kind_of(c) for c in table.columns]
        self._encoders = [_ENCODE.get(k) for k in self.kinds]
        self._out: IO[str] = gzip.open(  # noqa: SIM115 - open across write() calls; close()
            path, "wt", encoding="utf-8", compresslevel=6
        )
        self.rows = 0
        header = {
            "table": table.name,
            "columns": [c.name for c in table.columns],
            "kinds": [k.value for k in self.kinds],
        }
        self._out.write(json.dumps(header) + "\n")

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        encoders = self._encoders
        lines = []
        for row in rows:
            values = [
                v if f is None or v is None else f(v) for f, v in zip(encoders, row, strict=True)
            ]
            lines.append(json.dumps(values, ensure_ascii=False, separators=(",", ":")))
        if lines:
            self._out.write("\n".join(lines) + "\n")
        self.rows += len(rows)

    def close(self) -> None:
        self._out.close()


class TableReader:
    """Reads one table's file: `header`, then `batches()` of rows as dicts of column values."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._in: IO[str] = gzip.open(path, "rt", encoding="utf-8")  # noqa: SIM115 - see close()
        try:
            self.header: dict[str, Any] = json.loads(self._in.readline())
            self.columns: list[str] = self.header["columns"]
            self._decoders = [_DECODE.get(Kind(k)) for k in self.header["kinds"]]
        except (OSError, ValueError, KeyError) as exc:
            self._in.close()
            raise BackupError(f"the table file {path.name} is damaged: {exc}.") from None

    def batches(self, size: int = 2000) -> Iterator[list[dict[str, Any]]]:
        columns, decoders = self.columns, self._decoders
        chunk: list[dict[str, Any]] = []
        for line in self._in:
            values = json.loads(line)
            chunk.append(
                {
                    name: v if f is None or v is None else f(v)
                    for name, f, v in zip(columns, decoders, values, strict=True)
                }
            )
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def close(self) -> None:
        self._in.close()

    def __enter__(self) -> TableReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
