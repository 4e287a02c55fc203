"""Schema migrations (Alembic) run on our own async connection, plus the schema-version check.

`batchops migrate` and `batchops init` call `upgrade`; every other entry point calls
`ensure_current` so that a database from a newer BatchOps is refused with one sentence instead of
being written to by code that does not know its shape.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from batchops_core.errors import BatchOpsError, SchemaTooNew
from batchops_core.infra.db import Database

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"


class SchemaMissing(BatchOpsError):
    """The database has no BatchOps schema yet."""


class SchemaOutdated(BatchOpsError):
    """The database needs `batchops migrate`."""


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade to `revision`; return (revision before, revision after). Idempotent."""
    before = await current_revision(db)
    if before is not None and before not in known_revisions():
        raise SchemaTooNew(_too_new(db, before))

    def run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
    return before, head_revision()


def _too_new(db: Database, revision: str) -> str:
    return (
        f"the database {db.display_url} has schema revision {revision}, which this BatchOps does "
        "not know: it was migrated by a newer version. Upgrade BatchOps before using this database."
    )


async def ensure_current(db: Database) -> None:
    """Raise a BatchOpsError unless the schema is exactly this code's head.

    A missing SQLite file is reported without creating it, so a check changes nothing.
    """
    if db.is_sqlite and db.url.database and not Path(db.url.database).exists():
        raise SchemaMissing(f"there is no database at {db.url.database} yet: run `batchops init`.")
    await db.check()
    revision = await current_revision(db)
    if revision is None:
        raise SchemaMissing(
            f"the database {db.display_url} has no BatchOps schema yet: run `batchops init`."
        )
    if revision == head_revision():
        return
    if revision not in known_revisions():
        raise SchemaTooNew(_too_new(db, revision))
    raise SchemaOutdated(
        f"the database {db.display_url} is at schema {revision}; run `batchops migrate`."
    )
