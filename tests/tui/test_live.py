"""Live refresh: an event makes the visible table look again; toasts for what concerns me."""

from __future__ import annotations

from sqlalchemy import insert

from batchops_core.enums import Role, Severity, Stage
from batchops_core.infra import events
from batchops_core.infra.events import Event
from batchops_core.models import Incident
from tests.tui.conftest import signed_in, wait_for
from tests.tui.seed import NOW
from tests.tui.test_screens import goto, rows


async def test_incident_event_refreshes_issues_and_toasts_the_assignee(
    make_app, tui_db, tui_settings, seeded
) -> None:
    app = make_app(tui_db, live=True)
    toasts: list[str] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        app.notify = lambda message, **kw: toasts.append(message)  # type: ignore[method-assign]
        await wait_for(pilot, lambda: len(rows(app)) == 5, "seeded incidents")
        await wait_for(pilot, lambda: any(w.group == "live" for w in app.workers), "subscription")
        async with tui_db.unit() as session:
            await session.execute(
                insert(Incident).values(
                    id=99,
                    title="fees: ENCODING at standardize",
                    source="fees",
                    stage=Stage.STANDARDIZE,
                    error_code="ENCODING",
                    message="bad bytes",
                    severity=Severity.HIGH,
                    fingerprint="fp99",
                    created_at=NOW,
                    last_seen_at=NOW + __import__("datetime").timedelta(minutes=1),
                    updated_at=NOW,
                    assignee_id=seeded[Role.MODERATOR].id,
                )
            )
        assert len(rows(app)) == 5  # nothing changes until someone says "look again"
        await events.publish(tui_settings, Event(type="incident.updated", id=99, status="open"))
        await wait_for(pilot, lambda: len(rows(app)) == 6, "the new incident in the table")
        assert rows(app)[0][0] == "99"
        await wait_for(pilot, lambda: any("#99" in t for t in toasts), "assignment toast")


async def test_my_upload_finishing_raises_a_toast(make_app, tui_db, tui_settings) -> None:
    app = make_app(tui_db, live=True)
    toasts: list[str] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.USER)
        app.notify = lambda message, **kw: toasts.append(message)  # type: ignore[method-assign]
        app.my_uploads.add(42)
        await wait_for(pilot, lambda: any(w.group == "live" for w in app.workers), "subscription")
        await events.publish(tui_settings, Event(type="upload.updated", id=42, status="processing"))
        await events.publish(tui_settings, Event(type="upload.updated", id=42, status="published"))
        await wait_for(pilot, lambda: any("#42" in t for t in toasts), "upload toast")
        assert len([t for t in toasts if "#42" in t]) == 1
