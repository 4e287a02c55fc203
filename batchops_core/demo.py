"""Demo data for `batchops init --demo` and `make run`: one account per role, ready to sign in."""

from __future__ import annotations

from sqlalchemy import select

from batchops_core.accounts import create_user
from batchops_core.config import Settings
from batchops_core.db import Database
from batchops_core.enums import Role
from batchops_core.models import User
from batchops_core.permissions import SYSTEM

DEMO_PASSWORD = "batchops-demo"
DEMO_USERS = {
    "admin": Role.ADMIN,
    "moderator": Role.MODERATOR,
    "operator": Role.USER,
}


async def seed_demo(db: Database, settings: Settings) -> list[str]:
    """Create the demo accounts that do not exist yet; return one line per account."""
    lines = []
    async with db.session() as session:
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
