"""`manifest.json`: what one backup holds, written last so that its presence means "complete".

Keys in the manifest are relative to the backup's own folder (`tables/users.jsonl.gz`,
`objects/uploads/3f…/marks.csv`), so a backup can be moved or copied between locations whole.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from batchops_core.backup.errors import BackupError

FORMAT = "batchops-backup/1"
MANIFEST = "manifest.json"
OBJECTS = "objects/"
TABLES = "tables/"


@dataclass(frozen=True)
class TableEntry:
    name: str
    key: str
    rows: int
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    """The storage key the database names; the copy is at `objects/<key>` in the backup."""
    size: int
    sha256: str


@dataclass(frozen=True)
class MissingObject:
    key: str
    reason: str
    table: str
    column: str
    row_id: Any


@dataclass
class Manifest:
    name: str
    created_at: str
    """The database's clock at the snapshot (ISO 8601, UTC)."""
    revision: str
    """The Alembic revision of the dumped schema; a restore migrates its target to it first."""
    backend: str
    database: str
    storage: str
    tables: list[TableEntry] = field(default_factory=list)
    objects: list[ObjectEntry] = field(default_factory=list)
    missing: list[MissingObject] = field(default_factory=list)
    finished_at: str = ""
    format: str = FORMAT

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def object_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise BackupError(f"{where} is not a BatchOps backup manifest ({exc}).") from None
        found = raw.get("format") if isinstance(raw, dict) else None
        if found != FORMAT:
            raise BackupError(_foreign(where, found, raw))
        try:
            return cls(
                **{k: v for k, v in raw.items() if k not in ("tables", "objects", "missing")},
                tables=[TableEntry(**t) for t in raw["tables"]],
                objects=[ObjectEntry(**o) for o in raw["objects"]],
                missing=[MissingObject(**m) for m in raw["missing"]],
            )
        except (KeyError, TypeError) as exc:
            raise BackupError(f"{where} is damaged: {exc}.") from None


def _foreign(where: str, found: object, raw: object) -> str:
    if isinstance(raw, dict) and "database" in raw and "files" in raw:
        return (
            f"{where} is a backup of an older BatchOps (a database file copy without the stored "
            "files), which `batchops restore` does not read: copy its batchops.db back, or "
            "pg_restore its batchops.pgdump, by hand."
        )
    return f"{where} has format {found!r}; this BatchOps reads {FORMAT} only."
