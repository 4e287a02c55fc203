"""The sign-in screen comes first; the database layer loads behind it and sign-in can use it."""

from __future__ import annotations

from pathlib import Path

from textual import events

from batchops_core.infra.config import Settings
from batchops_tui import app as app_module
from batchops_tui.app import BatchOpsApp


async def test_database_layer_loads_behind_the_sign_in_screen(db_settings: Settings) -> None:
    app = BatchOpsApp(db_settings, live=False)
    async with app.run_test(size=(80, 24)):
        assert type(app.screen).__name__ == "SignInScreen"
        await app.workers.wait_for_complete()
        await app.ready()  # raises if `prepare` failed (e.g. an import of a moved module)
        assert app._db is not None
        assert [w.group for w in app.workers if w.group == "prepare"] == []


async def test_without_a_first_frame_the_database_layer_loads_anyway(
    db_settings: Settings,
) -> None:
    """`prepare` waits for the first frame (Ready), but not for ever (FIRST_FRAME_WAIT)."""

    class NoReadyYet(BatchOpsApp):
        CSS_PATH = str(Path(app_module.__file__).parent / BatchOpsApp.CSS_PATH)  # type: ignore[operator]

        def on_ready(self, event: events.Ready) -> None:
            event.prevent_default()  # BatchOpsApp.on_ready does not run

    app = NoReadyYet(db_settings, live=False)
    async with app.run_test(size=(80, 24)):
        assert app._db is None
        await app.ready()
        assert app._db is not None
