"""Schedule services on SQLite and PostgreSQL: permissions, validation, due/advance, run now."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from arq.jobs import Job as ArqJob
from sqlalchemy import func, select, update

from batchops_core.accounts import UserInfo
from batchops_core.cron import firing_job_id, next_runs
from batchops_core.enums import Role, RunStatus
from batchops_core.errors import NotFound, PermissionDenied, ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.models import AuditLog, Job
from batchops_core.services.schedules import (
    create_schedule,
    find_schedule,
    get_schedule,
    list_schedules,
    run_now,
    set_schedule_enabled,
    update_schedule,
)
from batchops_core.worker.dispatcher import Dispatcher
from batchops_core.worker.scheduler import advance_job, due_jobs, record_firing_result

Users = dict[Role, UserInfo]


async def _create(db: Database, users: Users, **overrides: object) -> int:
    fields: dict[object, object] = {
        "name": "Ingest Fees nightly",
        "task": "ingest_department",
        "cron": "15 1 * * *",
        "timezone": "Asia/Kolkata",
        "arguments": {"department": "fees"},
    }
    fields.update(overrides)
    async with db.unit() as session:
        row = await create_schedule(session, actor=users[Role.ADMIN].actor, **fields)  # type: ignore[arg-type]
    return row.id


async def test_admin_creates_a_schedule_with_next_run_and_audit(db: Database, users: Users) -> None:
    before = utcnow()
    job_id = await _create(db, users)
    async with db.unit() as session:
        row = await get_schedule(session, actor=users[Role.USER].actor, job_id=job_id)
        audit = await session.scalar(select(AuditLog).where(AuditLog.action == "schedule.create"))
    assert row.arguments == {"department": "Fees"}  # normalized to the department's real name
    assert row.owner == "admin1" and row.enabled
    assert row.next_run_at == next_runs("15 1 * * *", "Asia/Kolkata", before, n=1)[0]
    assert audit is not None and audit.target_id == job_id and audit.actor_name == "admin1"


@pytest.mark.parametrize("role", [Role.MODERATOR, Role.USER])
async def test_only_admins_create_edit_enable_disable(
    db: Database, users: Users, role: Role
) -> None:
    job_id = await _create(db, users)
    actor = users[role].actor
    async with db.unit() as session:
        with pytest.raises(PermissionDenied, match="create or edit schedules"):
            await create_schedule(
                session, actor=actor, name="x", task="run_daily_backup", cron="0 2 * * *"
            )
        with pytest.raises(PermissionDenied):
            await update_schedule(session, actor=actor, job_id=job_id, cron="0 3 * * *")
        with pytest.raises(PermissionDenied):
            await set_schedule_enabled(session, actor=actor, job_id=job_id, enabled=False)
        page = await list_schedules(session, actor=actor, search="fees nightly")
    assert [r.id for r in page.items] == [job_id]


BAD_INPUT: list[tuple[dict[str, object], str]] = [
    ({"cron": "0 6 * *"}, "has 4 field(s)"),
    ({"cron": "0 0 6 * * *"}, "has 6 field(s)"),
    ({"cron": "0 6 * * 9"}, "day-of-week field '9'"),
    ({"timezone": "Europe/Atlantis"}, "not a known timezone"),
    ({"task": "make_coffee"}, "'make_coffee' is not a schedulable task"),
    ({"task": "process_upload"}, "is not a schedulable task"),
    ({"arguments": {}}, "needs the argument 'department'"),
    ({"arguments": {"department": "Astronomy"}}, "no department named 'Astronomy'"),
    ({"arguments": {"department": 7}}, "must be text"),
    ({"arguments": {"department": "Fees", "force": True}}, "does not take argument(s) force"),
    ({"task": "run_daily_backup", "arguments": {"copies": 3}}, "(it takes keep)"),
    (
        {"task": "run_daily_backup", "arguments": {"keep": "3"}},
        "'keep' of run_daily_backup must be a whole number",
    ),
    ({"task": "purge_old_records", "arguments": {"days": 0}}, "must be at least 1"),
    ({"task": "ingest_all_departments", "arguments": {"x": 1}}, "(it takes no arguments)"),
    ({"task": "fetch_url", "arguments": {"url": "ftp://x/y.csv"}}, "not an http(s) URL"),
    ({"task": "fetch_url", "arguments": {"url": "https://x/y.csv", "department": "Zoo"}}, "Zoo"),
    ({"name": "  "}, "name is empty"),
]


async def test_create_refuses_bad_input(db: Database, users: Users) -> None:
    """One database per backend for all cases: each refusal names its problem, adds nothing."""
    for overrides, message in BAD_INPUT:
        with pytest.raises(ValidationFailed) as info:
            await _create(db, users, **overrides)
        assert message in str(info.value), overrides
    async with db.unit() as session:
        assert await session.scalar(select(func.count(Job.id))) == 17  # the seeded ones only


async def test_optional_arguments_match_the_task_bodies(db: Database, users: Users) -> None:
    backup = await _create(
        db, users, name="Backup keep 3", task="run_daily_backup", arguments={"keep": 3}
    )
    fetch = await _create(
        db,
        users,
        name="Fetch fees",
        task="fetch_url",
        arguments={"url": " https://fees.example/export.csv ", "department": "FEES"},
    )
    async with db.unit() as session:
        rows = {
            r.id: r.arguments
            for r in (await list_schedules(session, actor=users[Role.USER].actor, limit=50)).items
        }
    assert rows[backup] == {"keep": 3}
    assert rows[fetch] == {"url": "https://fees.example/export.csv", "department": "Fees"}


async def test_duplicate_names_are_refused_case_insensitively(db: Database, users: Users) -> None:
    await _create(db, users)
    with pytest.raises(ValidationFailed, match="already exists"):
        await _create(db, users, name="INGEST fees NIGHTLY")


async def test_edit_recomputes_next_run_and_disable_enable(db: Database, users: Users) -> None:
    job_id = await _create(db, users)
    admin = users[Role.ADMIN].actor
    async with db.unit() as session:
        row = await update_schedule(
            session, actor=admin, job_id=job_id, cron="0 */2 * * *", timezone="UTC"
        )
        assert row.next_run_at == next_runs("0 */2 * * *", "UTC", utcnow(), n=1)[0]
        with pytest.raises(ValidationFailed, match="cannot change owner_id"):
            await update_schedule(session, actor=admin, job_id=job_id, owner_id=1)
        with pytest.raises(ValidationFailed, match="hour field"):
            await update_schedule(session, actor=admin, job_id=job_id, cron="0 99 * * *")
    async with db.unit() as session:
        off = await set_schedule_enabled(session, actor=admin, job_id=job_id, enabled=False)
        assert not off.enabled and off.next_run_at is None
        on = await set_schedule_enabled(session, actor=admin, job_id=job_id, enabled=True)
        assert on.enabled and on.next_run_at is not None and on.next_run_at > utcnow()
        changed = await update_schedule(
            session, actor=admin, job_id=job_id, task="ingest_all_departments"
        )
        assert changed.task == "ingest_all_departments" and changed.arguments == {}
        with pytest.raises(NotFound):
            await update_schedule(session, actor=admin, job_id=999_999, cron="0 1 * * *")
        found = await find_schedule(session, actor=admin, ref="ingest fees nightly")
        assert found.id == job_id
        assert (await find_schedule(session, actor=admin, ref=str(job_id))).id == job_id


async def test_list_paginates_by_name(db: Database, users: Users) -> None:
    async with db.unit() as session:
        first = await list_schedules(session, actor=users[Role.USER].actor, limit=4)
        second = await list_schedules(session, actor=users[Role.USER].actor, offset=4, limit=4)
        everything = await list_schedules(session, actor=users[Role.USER].actor, limit=500)
    assert first.total == second.total == len(everything.items) == 17  # the seeded schedules
    names = [r.name for r in everything.items]
    assert names == sorted(names)
    assert [r.name for r in first.items + second.items] == names[:8]


async def _force_next_run(db: Database, job_id: int, when: object) -> None:
    async with db.unit() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(next_run_at=when))


async def test_after_downtime_a_missed_firing_runs_once_with_its_lateness(
    db: Database, users: Users
) -> None:
    job_id = await _create(db, users, cron="*/5 * * * *", timezone="UTC")
    now = utcnow()
    missed = (now - timedelta(hours=3)).replace(second=0, microsecond=0)
    missed = missed - timedelta(minutes=missed.minute % 5)
    await _force_next_run(db, job_id, missed)  # the daemon was down for three hours

    async with db.unit() as session:
        due = [f for f in await due_jobs(session, now) if f.job_id == job_id]
    assert len(due) == 1, "36 missed firings must collapse to one"
    firing = due[0]
    assert firing.scheduled_for == missed
    assert firing.task == "ingest_department" and firing.arguments == {"department": "Fees"}
    assert firing.lateness_seconds == pytest.approx((now - missed).total_seconds())
    assert firing.lateness_seconds > 3 * 3600 - 1

    async with db.unit() as session:
        assert await advance_job(session, job_id=job_id, fired_for=missed, now=now)
    async with db.unit() as session:
        job = await session.get(Job, job_id)
        assert job is not None and job.next_run_at is not None
        assert now < job.next_run_at <= now + timedelta(minutes=5)
        assert not [f for f in await due_jobs(session, now) if f.job_id == job_id]
        # A second daemon holding the same stale firing cannot advance (or fire) it again.
        assert not await advance_job(session, job_id=job_id, fired_for=missed, now=now)


async def test_two_daemons_racing_advance_exactly_once(db_settings: Settings, users: Users) -> None:
    first, second = open_database(db_settings), open_database(db_settings)
    try:
        job_id = await _create(first, users, cron="* * * * *", timezone="UTC")
        fired_for = (utcnow() - timedelta(minutes=2)).replace(second=0, microsecond=0)
        await _force_next_run(first, job_id, fired_for)

        async def daemon(db: Database) -> bool:
            async with db.unit() as session:
                due = [f for f in await due_jobs(session, utcnow()) if f.job_id == job_id]
                if not due:
                    return False
                return await advance_job(
                    session, job_id=job_id, fired_for=due[0].scheduled_for, now=utcnow()
                )

        results = await asyncio.gather(daemon(first), daemon(second), daemon(first))
        assert sorted(results) == [False, False, True]
    finally:
        await first.dispose()
        await second.dispose()


async def test_disabled_schedules_are_never_due(db: Database, users: Users) -> None:
    job_id = await _create(db, users)
    await _force_next_run(db, job_id, utcnow() - timedelta(minutes=1))
    async with db.unit() as session:
        await set_schedule_enabled(
            session, actor=users[Role.ADMIN].actor, job_id=job_id, enabled=False
        )
    async with db.unit() as session:
        assert job_id not in [f.job_id for f in await due_jobs(session, utcnow())]


async def test_firing_result_is_shown_in_the_listing(db: Database, users: Users) -> None:
    job_id = await _create(db, users)
    finished = utcnow()
    async with db.unit() as session:
        await record_firing_result(
            session, job_id=job_id, status=RunStatus.FAILED, finished_at=finished
        )
    async with db.unit() as session:
        row = await get_schedule(session, actor=users[Role.USER].actor, job_id=job_id)
    assert row.last_status is RunStatus.FAILED and row.last_run_at == finished


async def test_run_now_enqueues_one_deterministic_firing(
    redis_settings: Settings, users: Users
) -> None:
    db = open_database(redis_settings)
    dispatcher = await Dispatcher.connect(db, redis_settings)
    try:
        job_id = await _create(db, users, cron="0 3 * * *")
        arq_id = await run_now(db, dispatcher, actor=users[Role.USER].actor, job_id=job_id)
        prefix = f"{redis_settings.redis.prefix}:schedule:{job_id}:"
        assert arq_id.startswith(prefix)
        assert dispatcher.pool is not None
        info = await ArqJob(arq_id, dispatcher.pool).info()
        assert info is not None and info.function == "run_schedule"
        assert info.args[0] == job_id
        fired_for = info.args[1]
        assert (
            firing_job_id(
                job_id,
                datetime.fromisoformat(fired_for),
                prefix=redis_settings.redis.prefix,
            )
            == arq_id
        )
        # Enqueueing the same firing again is a no-op in arq.
        again = await dispatcher.enqueue("run_schedule", job_id, fired_for, job_id=arq_id)
        assert again is None
        async with db.unit() as session:
            job = await session.get(Job, job_id)
            assert job is not None and job.next_run_at is not None  # run now leaves the plan
        with pytest.raises(NotFound):
            await run_now(db, dispatcher, actor=users[Role.USER].actor, job_id=999_999)
    finally:
        await dispatcher.close()
        await db.dispose()
