"""Schema migrations (Alembic) run on our own async connection, plus the schema-version check.

`batchops migrate` and `batchops init` call `upgrade`; every other entry point calls
`ensure_current` so that a database from a newer BatchOps is refused with one sentence instead of
being written to by code that does not know its shape.

`batchops migrate --new MESSAGE` (`new_migration`) writes the next numbered migration: Alembic's
autogenerate compares the models with a scratch SQLite database migrated to head in a temporary
directory, so it never needs (or touches) the configured database.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from batchops_core.errors import BatchOpsError, SchemaTooNew
from batchops_core.infra.db import Database

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
NUMBERED = re.compile(r"^(\d{4})_.*\.py$")


class SchemaMissing(BatchOpsError):
    """The database has no BatchOps schema yet."""


class SchemaOutdated(BatchOpsError):
    """The database needs `batchops migrate`."""


def alembic_config(versions_dir: Path | None = None) -> Config:
    """Our Alembic configuration; `versions_dir` replaces the versions folder (tests use a copy)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if versions_dir is not None:
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("version_locations", str(versions_dir))
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


def next_number(versions_dir: Path = VERSIONS_DIR) -> str:
    """`000N` after the highest numbered migration file of the folder."""
    numbers = [int(m.group(1)) for p in versions_dir.iterdir() if (m := NUMBERED.match(p.name))]
    return f"{max(numbers, default=0) + 1:04d}"


async def new_migration(message: str, *, versions_dir: Path = VERSIONS_DIR) -> tuple[Path, bool]:
    """Write the next numbered migration for what the models changed; return (its path, whether
    autogenerate found any schema change). Review the file: autogenerate misses renames, data
    moves and server defaults, and it compared against SQLite, while migrations must also run on
    PostgreSQL."""
    from batchops_core.infra.config import Settings
    from batchops_core.infra.db import open_database

    if not message.strip():
        raise BatchOpsError('say what the migration does: batchops migrate --new "add x to y".')
    rev_id = next_number(versions_dir)
    with tempfile.TemporaryDirectory(prefix="batchops-migration-") as scratch:
        db = open_database(Settings(data_dir=scratch))
        try:
            cfg = alembic_config(versions_dir)

            def generate(conn: Connection) -> Path:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                with contextlib.redirect_stdout(io.StringIO()):  # Alembic's "Generating …"
                    script = command.revision(
                        cfg, message=message.strip(), autogenerate=True, rev_id=rev_id
                    )
                assert script is not None and not isinstance(script, list)
                return Path(script.path)

            async with db.engine.begin() as conn:
                path = await conn.run_sync(generate)
        finally:
            await db.dispose()
    _format(path)
    text = path.read_text(encoding="utf-8")
    changed = "op." in text.split("def downgrade", 1)[0]
    return path, changed


def _format(path: Path) -> None:
    """Bring the generated file to the project's style with ruff, where ruff is installed."""
    ruff = Path(sys.executable).with_name("ruff")
    found = str(ruff) if ruff.exists() else shutil.which("ruff")
    if found:
        for args in (["check", "--fix", "--quiet", "--exit-zero"], ["format", "--quiet"]):
            subprocess.run([found, *args, str(path)], check=False, capture_output=True)
