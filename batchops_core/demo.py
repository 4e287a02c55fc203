"""Demo data for `batchops init --demo` and `make run`: one account per role, and a few uploads
already through the pipeline (a clean report, a partial one with a fix-list, a failure with its
incident) so that every screen has something true to show on first start.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from sqlalchemy import func, select

from batchops_core.accounts import create_user
from batchops_core.enums import ProcessMode, Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Upload, User
from batchops_core.permissions import SYSTEM, Actor
from batchops_core.pipeline.pool import shutdown_pool
from batchops_core.services.uploads import intake_file
from batchops_core.worker.dispatcher import Dispatcher

DEMO_PASSWORD = "batchops-demo"
DEMO_USERS = {
    "admin": Role.ADMIN,
    "moderator": Role.MODERATOR,
    "operator": Role.USER,
}
CLASSES = ("9A", "9B", "10A", "10B")
SUBJECTS = ("Mathematics", "English", "Physics")


def _gradebook(rows: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = ["Student ID,Name,Class,Subject,Score,Max Score"]
    for i in range(rows):
        lines.append(
            f"S{10000 + i:05d},Student {i},{rng.choice(CLASSES)},{rng.choice(SUBJECTS)},"
            f"{rng.randint(35, 100)},100"
        )
    return "\n".join(lines) + "\n"


def _attendance_with_errors() -> str:
    rows = _gradebook(60, 7).splitlines()
    rows[0] = "Roll No,Name,Class,Subject,Present Days,Total Days"
    rows[12] = "S10011,Student 11,9A,Mathematics,twenty,22"
    rows[30] = ",Student 29,9B,English,19,22"
    return "\n".join(rows) + "\n"


DEMO_FILES: tuple[tuple[str, str, str, dict[str, object]], ...] = (
    ("exams_term1.csv", "Exams", _gradebook(240, 1), {"group_by": "class"}),
    ("attendance_week46.csv", "Attendance", _attendance_with_errors(), {}),
    ("fees_export_broken.csv", "Fees", "Ref,Amount\nA-1,1200\nA-2,900\n", {}),
)


async def seed_demo(db: Database, settings: Settings) -> list[str]:
    """Create the demo accounts and uploads that do not exist yet; return one line per item."""
    lines = await _seed_accounts(db, settings)
    lines += await _seed_uploads(db, settings)
    lines += await _seed_sources(db, settings)
    return lines


async def _seed_sources(db: Database, settings: Settings) -> list[str]:
    """The demo departments as real sources: a log database and drop folders, synced once."""
    from batchops_core.sources.demo import seed_demo_sources

    dispatcher = Dispatcher(db, settings)
    try:
        return await seed_demo_sources(db, settings, dispatcher)
    finally:
        await dispatcher.close()
        shutdown_pool()


async def _seed_accounts(db: Database, settings: Settings) -> list[str]:
    lines = []
    async with db.unit() as session:
        existing = set(await session.scalars(select(User.username)))
        for username, role in DEMO_USERS.items():
            if username in existing:
                lines.append(f"demo account {username} already exists.")
                continue
            await create_user(
                session,
                actor=SYSTEM,
                username=username,
                role=role,
                password=DEMO_PASSWORD,
                email=f"{username}@school.example",
                policy=settings.security,
                verified=True,
            )
            lines.append(f"demo account {username} ({role.value}), password {DEMO_PASSWORD}")
    return lines


async def _seed_uploads(db: Database, settings: Settings) -> list[str]:
    """Run the demo files through the real pipeline in this process (only on an empty database)."""
    async with db.unit() as session:
        if await session.scalar(select(func.count()).select_from(Upload)):
            return ["demo uploads skipped: the database already has uploads."]
        operator_id = await session.scalar(select(User.id).where(User.username == "operator"))
    actor = Actor(id=operator_id, username="operator", role=Role.USER) if operator_id else SYSTEM
    dispatcher = Dispatcher(db, settings)
    lines = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for name, department, text, plan in DEMO_FILES:
                path = Path(folder) / name
                path.write_text(text, encoding="utf-8")
                info = await intake_file(
                    db,
                    settings,
                    actor,
                    path,
                    source=department,
                    plan_mode=ProcessMode.TRANSFORM,
                    plan_config=plan,
                )
                await dispatcher.process_upload(info.id)
                lines.append(f"demo upload #{info.id} {name} ({department}) queued")
            await dispatcher.wait_idle()
    finally:
        await dispatcher.close()
        shutdown_pool()
    async with db.unit() as session:
        for upload_id, filename, status in await session.execute(
            select(Upload.id, Upload.filename, Upload.status).order_by(Upload.id)
        ):
            lines.append(f"demo upload #{upload_id} {filename}: {status.value}")
    return lines
