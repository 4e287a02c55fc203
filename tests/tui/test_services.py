"""The TUI's own core services (dashboard, reports, session) on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from batchops_core.enums import Role, Severity
from batchops_core.errors import AuthenticationFailed, NotFound, PermissionDenied, ValidationFailed
from batchops_core.infra.db import open_database
from batchops_core.permissions import Actor
from batchops_core.services import dashboard, reports
from batchops_core.signin import sign_in, still_current, unlock
from tests.conftest import TEST_PASSWORD
from tests.tui.seed import NOW, seed_activity


async def test_dashboard_figures(db, db_settings, users) -> None:
    await seed_activity(db, db_settings, users)
    async with db.unit() as session:
        dash = await dashboard.get_dashboard(
            session, db_settings, actor=users[Role.MODERATOR].actor, now=NOW
        )
    assert dash.uploads_today == 6 and dash.uploads_week == 6
    assert dash.success_rate == pytest.approx(3 / 4)  # 2 published + 1 partial, 1 failed
    assert dash.rows_processed == 8 + 16 + 32
    assert dash.open_incidents == 4
    assert dash.open_by_severity[Severity.CRITICAL] == 1
    assert dash.mtta == timedelta(hours=1)
    assert dash.workers.alive == 1 and dash.workers.stale == 1 and dash.workers.queue_depth == 1
    assert len(dash.next_firings) == 5 and dash.next_firings[0].at == NOW + timedelta(hours=1)
    assert sum(b.succeeded for b in dash.runs_per_hour) == 9
    assert sum(b.failed for b in dash.runs_per_hour) == 3
    assert [c.title for c in dash.cards] == ["To triage"]
    assert dict(dash.cards[0].lines)["assigned to me"] == "1"


async def test_role_cards_and_my_notices(db, db_settings, users) -> None:
    await seed_activity(db, db_settings, users)
    async with db.unit() as session:
        admin = await dashboard.get_dashboard(
            session, db_settings, actor=users[Role.ADMIN].actor, now=NOW
        )
        user = await dashboard.get_dashboard(
            session, db_settings, actor=users[Role.USER].actor, now=NOW
        )
        notices = await dashboard.my_notices(
            session, actor=users[Role.USER].actor, since=NOW - timedelta(hours=3, minutes=30)
        )
    assert [c.title for c in admin.cards] == ["Users", "Schedules"]
    assert user.cards[0].title == "My uploads" and len(user.cards[0].lines) == 4
    assert {n.id for n in notices.uploads} == {1, 2, 3}  # finished within the window
    assert notices.incidents == ()


async def test_reports_listing_preview_and_export(db, db_settings, users, tmp_path: Path) -> None:
    await seed_activity(db, db_settings, users)
    actor = users[Role.USER].actor
    async with db.unit() as session:
        page = await reports.list_reports(session, actor=actor, limit=2)
        assert page.total == 3 and [r.upload_id for r in page.items] == [1, 2]
        assert (await reports.list_reports(session, actor=actor, search="grades-04")).total == 1
        detail = await reports.get_report(session, actor=actor, upload_id=4)
        with pytest.raises(NotFound):
            await reports.get_report(session, actor=actor, upload_id=3)  # failed: no report
    csv_file = await reports.report_file(db_settings, detail, reports.ReportFormat.CSV)
    header, rows = reports.csv_head(csv_file, rows=3)
    assert header == ["student_id", "name", "score"] and len(rows) == 3
    pdf_file = await reports.report_file(db_settings, detail, reports.ReportFormat.PDF)
    assert "upload 4" in reports.pdf_text(pdf_file)
    # Exports go only into the export folder (tests/accounts/test_exports_and_search.py).
    exporting = open_database(
        dataclasses.replace(db_settings, export_dir=str(tmp_path / "exports"))
    )
    try:
        async with exporting.unit() as uow:
            done = await reports.export_report(uow, actor=actor, upload_id=4, fmt="pdf")
        assert done.path == tmp_path / "exports" / "upload-4.pdf" and done.path.stat().st_size > 0
        with pytest.raises(ValidationFailed):
            async with exporting.unit() as uow:
                await reports.export_report(
                    uow, actor=actor, upload_id=4, fmt="csv", destination="missing/x.csv"
                )
    finally:
        await exporting.dispose()


async def test_reports_need_a_signed_in_role(db) -> None:
    nobody = Actor(id=999, username="ghost", role="guest")  # type: ignore[arg-type]
    async with db.unit() as session:
        with pytest.raises((PermissionDenied, KeyError)):
            await reports.list_reports(session, actor=nobody)


async def test_session_sign_in_unlock_and_end(db, db_settings, users) -> None:
    from batchops_core import accounts
    from batchops_core.permissions import SYSTEM

    with pytest.raises(AuthenticationFailed):
        await sign_in(db, db_settings, username="user1", password="wrong-password!")
    current = await sign_in(db, db_settings, username="user1", password=TEST_PASSWORD)
    assert current.actor.role is Role.USER and await still_current(db, current)
    current.last_activity -= timedelta(minutes=db_settings.security.idle_lock_minutes)
    assert current.should_lock()
    current.lock()
    with pytest.raises(AuthenticationFailed):
        await unlock(db, db_settings, current, "wrong-password!")
    await unlock(db, db_settings, current, TEST_PASSWORD)
    assert not current.locked
    async with db.unit() as session:
        await accounts.set_active(session, actor=SYSTEM, username="user1", active=False)
    assert not await still_current(db, current)
