"""Through a real arq worker: transient failures retried with backoff up to max_tries, data
failures and timeouts become incidents at once, and the owner is mailed only after the last try."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role, RunStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Incident, Job, JobRun
from batchops_core.worker import tasks
from batchops_core.worker.automation import registry
from batchops_core.worker.automation.frame import AutomationFailed, AutomationRun, Outcome
from batchops_core.worker.dispatcher import Dispatcher
from batchops_daemon.service import Daemon
from tests.daemon.conftest import MailServer, fast_worker, smtp_settings

CALLS: dict[str, int] = {}


async def flaky(run: AutomationRun) -> Outcome:
    """Fails transiently on the first two tries."""
    CALLS["flaky"] = CALLS.get("flaky", 0) + 1
    if CALLS["flaky"] < 3:
        raise tasks.TransientError("the database connection was lost")
    return Outcome(RunStatus.SUCCEEDED, "third time lucky")


async def always_down(run: AutomationRun) -> Outcome:
    CALLS["always_down"] = CALLS.get("always_down", 0) + 1
    raise ConnectionError("connection refused")


async def bad_data(run: AutomationRun) -> Outcome:
    CALLS["bad_data"] = CALLS.get("bad_data", 0) + 1
    raise AutomationFailed("the feed has no header row.")


async def too_slow(run: AutomationRun) -> Outcome:
    await asyncio.sleep(30)
    return Outcome(RunStatus.SUCCEEDED, "never")


@pytest.fixture(autouse=True)
def _test_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    CALLS.clear()
    for body in (flaky, always_down, bad_data, too_slow):
        monkeypatch.setitem(
            registry.AUTOMATIONS, body.__name__, registry.TaskSpec(body.__name__, "test", (), body)
        )
        monkeypatch.setitem(tasks.TASKS, body.__name__, tasks._automation_task(body.__name__))


async def _drain(settings: Settings, db: Database, *enqueue: tuple[Any, ...]) -> None:
    producer = await Dispatcher.connect(db, settings)
    try:
        for task, *args in enqueue:
            await producer.enqueue(task, *args)
    finally:
        await producer.close()
    daemon = Daemon(settings, db, retry_backoff=0.05, metrics_port=-1)
    assert await daemon.run_arq(burst=True, poll_delay=0.01) == 0


async def _runs(db: Database, task: str) -> list[JobRun]:
    async with db.unit() as session:
        return list(
            await session.scalars(select(JobRun).where(JobRun.task == task).order_by(JobRun.id))
        )


async def test_transient_failure_is_retried_until_it_succeeds(
    redis_settings: Settings, db: Database
) -> None:
    settings = fast_worker(redis_settings, max_tries=3)
    await _drain(settings, db, ("flaky",))
    runs = await _runs(db, "flaky")
    assert [(r.attempt, r.status, r.error_code) for r in runs] == [
        (1, RunStatus.FAILED, "TRANSIENT"),
        (2, RunStatus.FAILED, "TRANSIENT"),
        (3, RunStatus.SUCCEEDED, None),
    ]
    async with db.unit() as session:
        assert await session.scalar(select(Incident.id)) is None


async def test_data_failure_and_timeout_are_incidents_without_retry(
    redis_settings: Settings, db: Database
) -> None:
    settings = fast_worker(redis_settings, max_tries=3, job_timeout=1)
    await _drain(settings, db, ("bad_data",), ("too_slow",))
    assert CALLS["bad_data"] == 1
    bad, slow = (await _runs(db, "bad_data")), (await _runs(db, "too_slow"))
    assert [r.error_code for r in bad] == ["TASK_FAILED"]
    assert [r.error_code for r in slow] == ["TASK_TIMEOUT"]
    async with db.unit() as session:
        codes = sorted(await session.scalars(select(Incident.error_code)))
    assert codes == ["TASK_FAILED", "TASK_TIMEOUT"]


async def test_owner_is_mailed_once_after_the_final_try(
    redis_settings: Settings,
    db: Database,
    users: dict[Role, UserInfo],
    mailserver: MailServer,
) -> None:
    settings = fast_worker(smtp_settings(redis_settings, mailserver), max_tries=3)
    async with db.unit() as session:
        job = Job(
            name="nightly-feed",
            task="always_down",
            cron="0 2 * * *",
            timezone="UTC",
            owner_id=users[Role.MODERATOR].id,
            next_run_at=None,
        )
        session.add(job)
        await session.flush()
        job_id = job.id
    await _drain(settings, db, ("run_schedule", job_id, utcnow().isoformat()))
    runs = await _runs(db, "always_down")
    assert [r.attempt for r in runs] == [1, 2, 3]
    assert runs[-1].error_code == "TRANSIENT_EXHAUSTED"
    assert len(mailserver.messages) == 1, "no mail for the attempts that were retried"
    mail = mailserver.messages[0]
    assert mail.recipients == [users[Role.MODERATOR].email]
    assert "always_down" in mail.subject and "3 attempt" in mail.text
    async with db.unit() as session:
        job_row = await session.get(Job, job_id)
        assert job_row is not None and job_row.last_status is RunStatus.FAILED
