"""A staged object goes with a unit that rolls back: no object without its row."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchops_core.accounts import UserInfo
from batchops_core.enums import ProcessMode, Role
from batchops_core.infra.db import Database
from batchops_core.services.uploads import check_plan, record_upload, stage_file
from batchops_core.storage import open_store


class _Later(Exception):
    """A failure after the row was added, in the same unit."""


async def test_a_unit_that_fails_after_the_row_deletes_the_staged_object(
    db: Database, users: dict[Role, UserInfo], tmp_path: Path
) -> None:
    source = tmp_path / "marks.csv"
    source.write_text("student_id,mark\nS1,50\n")
    staged = await stage_file(db.settings, source)
    store = open_store(db.settings)
    assert await store.head(staged.key) is not None
    with pytest.raises(_Later):
        async with db.unit() as uow:
            await record_upload(
                uow,
                actor=users[Role.USER].actor,
                staged=staged,
                source="manual",
                plan=check_plan(ProcessMode.TRANSFORM, {}),
                dispatcher=None,
            )
            raise _Later
    assert await store.head(staged.key) is None
