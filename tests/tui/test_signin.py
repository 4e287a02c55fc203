"""Sign-in: a good password opens Home with who and role in the header; bad ones say why."""

from __future__ import annotations

from textual.widgets import Label

from batchops_core.enums import Role
from tests.tui.conftest import settle, sign_in, signed_in, wait_for


def _error(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one("#signin-error", Label).render())


async def test_good_password_opens_home_with_user_and_role(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        assert app.screen.__class__.__name__ == "HomeScreen"
        assert app.sub_title == "mona · moderator"
        assert app.session is not None and app.session.user.role is Role.MODERATOR


async def test_wrong_password_is_refused_and_stays_on_sign_in(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, Role.ADMIN, password="not-the-password")
        await wait_for(pilot, lambda: "wrong username or password" in _error(app).lower(), "error")
        assert app.session is None
        assert app.screen.__class__.__name__ == "SignInScreen"


async def test_unverified_account_is_told_to_verify(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await sign_in(pilot, "newbie")
        await wait_for(pilot, lambda: "verif" in _error(app).lower(), "unverified message")
        assert app.session is None


async def test_verify_email_flow_opens_from_sign_in(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "AccountCodeDialog"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "SignInScreen"


async def test_idle_session_locks_and_unlocks_with_password(make_app, tui_db) -> None:
    from datetime import timedelta

    from textual.widgets import Input

    from tests.tui.seed import PASSWORD

    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await signed_in(pilot, Role.USER)
        assert app.session is not None
        app.session.last_activity -= timedelta(minutes=app.settings.security.idle_lock_minutes + 1)
        assert app.check_idle_lock() is True
        await pilot.pause()
        assert app.screen.__class__.__name__ == "LockScreen"
        await pilot.press("1")  # navigation is blocked while locked
        assert app.screen.__class__.__name__ == "LockScreen"
        app.screen.query_one(Input).value = PASSWORD
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.session.locked, "unlock")
        assert app.screen.__class__.__name__ == "HomeScreen"


async def test_quit_asks_first_only_when_work_is_in_flight(make_app, tui_db) -> None:
    import asyncio

    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await signed_in(pilot, Role.USER)
        blocker = asyncio.Event()
        worker = app.run_worker(blocker.wait(), group="write-test")
        await pilot.press("q")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "ConfirmDialog"
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and app.screen.__class__.__name__ == "HomeScreen"
        blocker.set()
        await worker.wait()
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_code == 0


async def test_session_ends_when_an_admin_disables_the_account(make_app, tui_db, seeded) -> None:
    from batchops_core import accounts
    from batchops_core.permissions import SYSTEM

    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await signed_in(pilot, Role.USER)
        assert await app.verify_session().wait() is True
        async with tui_db.unit() as session:
            await accounts.set_active(session, actor=SYSTEM, username="uma", active=False)
        await app.verify_session().wait()
        await wait_for(pilot, lambda: not app.is_running, "the app to end the session")
    assert app.return_code == 1


async def test_missing_database_is_one_sentence(tmp_path) -> None:
    from textual.widgets import Input

    from batchops_core.infra.config import RedisSettings, Settings, SmtpSettings
    from batchops_tui.app import BatchOpsApp

    settings = Settings(
        data_dir=str(tmp_path / "nowhere"), redis=RedisSettings(url=""), smtp=SmtpSettings(host="")
    )
    app = BatchOpsApp(settings, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.query_one("#username", Input).value = "ada"
        app.screen.query_one("#password", Input).value = "whatever-password"
        await pilot.click("#signin")
        await wait_for(pilot, lambda: "batchops init" in _error(app), "the schema message")
    assert not (tmp_path / "nowhere" / "batchops.db").exists()
