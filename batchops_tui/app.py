"""BatchOpsApp: sign-in, the six screens as modes, live refresh, idle lock, and quitting safely.

Dependencies are injected (settings, database, dispatcher, clock) so that tests build the app on
a fresh test database. The screens never open connections: they call core services through
`BaseScreen.call`, always from `@work` workers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rich.markup import escape
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.timer import Timer
from textual.worker import WorkerState, get_current_worker

from batchops_core.enums import UploadStatus
from batchops_core.errors import BatchOpsError
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.permissions import Action, Actor, allowed
from batchops_tui.catalogue import ADMIN_SCREENS, ALL_SCREENS, BY_MODE, SCREENS
from batchops_tui.keys import KeySequencer

if TYPE_CHECKING:
    from batchops_core.infra.db import Database
    from batchops_core.infra.events import Event
    from batchops_core.signin import SignedInSession
    from batchops_core.worker.dispatcher import Dispatcher

log = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 5.0
FIRST_FRAME_WAIT = 2.0
"""Longest `prepare` waits for the first frame before loading anyway (a headless run may never
draw one)."""
SIGNED_OUT = "signed-out"
"""The mode shown after a sign-out (Textual's start mode cannot be switched back to)."""
PREBUILD_PAUSE = 0.02
"""Seconds between building two screens in the background."""
SESSION_CHECK_SECONDS = 30.0
SESSION_ENDED = (
    "Your BatchOps session was ended (account disabled or password reset); sign in again."
)
WARM_MODULES = (
    *(f"batchops_tui.screens.{s.module}" for s in ALL_SCREENS),
    "batchops_tui.screens.dialogs",
    "batchops_core.services.runs",
    "batchops_core.services.incidents",
    "batchops_core.services.schedules",
    "batchops_core.services.reports",
    "batchops_core.services.uploads",
)
"""Not the pipeline (pandas): importing it holds the GIL ~0.7 s; Intake imports it on submit."""


def _factory(mode: str) -> Callable[[], Screen]:
    return lambda: BY_MODE[mode].load()()


class BatchOpsApp(KeySequencer, App[int]):
    """The terminal UI of BatchOps."""

    CSS_PATH = "styles/app.tcss"
    TITLE = "BatchOps"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("ctrl+l", "lock", "Lock", show=False, id="app.lock", tooltip="Lock the session"),
        # Focus moves on the app's own queue, before the next key is forwarded: a password
        # manager's `user<Tab>pass<Enter>` arrives in one burst, and a Tab left to the focused
        # Input would move focus only after "pass" had already been forwarded to it.
        Binding("tab", "focus_next", "Next field", show=False, priority=True, system=True),
        Binding(
            "shift+tab", "focus_previous", "Previous field", show=False, priority=True, system=True
        ),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        db: Database | None = None,
        dispatcher: Dispatcher | None = None,
        clock: Callable[[], datetime] = utcnow,
        live: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self._db = db
        self._owns_db = db is None
        self._schema_checked = False
        self.dispatcher = dispatcher
        self._owns_dispatcher = dispatcher is None
        self.clock = clock
        self.live = live
        self.session: SignedInSession | None = None
        self.my_uploads: set[int] = set()
        self._first_frame = threading.Event()
        self.warmed_up = False
        """Set once the other screens are imported and their widget styles registered."""
        self.screens_ready = False
        """Set once every screen the signed-in person may open is built (`prebuild_screens`)."""
        self._notified: set[tuple[str, int, str]] = set()
        self._notice_since: datetime | None = None
        self.data_changed: Signal[Event] = Signal(self, "data-changed")
        self._session_timers: list[Timer] = []
        for spec in ALL_SCREENS:
            self.add_mode(spec.mode, _factory(spec.mode))

    @property
    def db(self) -> Database:
        if self._db is None:
            raise BatchOpsError("the database is not open yet.")
        return self._db

    @work(exclusive=True, group="prepare", exit_on_error=False, thread=True)
    def prepare(self) -> None:
        """Import the database layer and open the engine while the sign-in screen is shown.

        SQLAlchemy, the models, argon2 and Redis cost ~0.5 s to import: paying it here, off the
        UI thread and after the first frame (`on_ready`), is what lets the sign-in screen appear
        about as fast as an empty Textual app. The worker starts on mount but waits for that
        frame: its imports hold the GIL and delayed the frame by ~50 ms.
        """
        self._first_frame.wait(timeout=FIRST_FRAME_WAIT)
        from batchops_core import accounts, signin  # noqa: F401 - imported for sign-in
        from batchops_core.infra import events, migrate  # noqa: F401
        from batchops_core.infra.db import open_database

        if self._db is None:
            self._db = open_database(self.settings)

    async def ready(self) -> None:
        """Wait until `prepare` has opened the database, then check once that it is reachable and
        at this code's schema (a missing or outdated database is one sentence, not a traceback)."""
        workers = [w for w in self.workers if w.group == "prepare"]
        if self._db is None and not workers:  # asked before the first frame, or prepare failed
            workers = [self.prepare()]
        for worker in workers:
            await worker.wait()
        if not self._schema_checked:
            from batchops_core.infra.migrate import ensure_current

            await ensure_current(self.db)
            self._schema_checked = True

    # -- who is signed in --------------------------------------------------------------------------

    @property
    def actor(self) -> Actor:
        if self.session is None:
            raise BatchOpsError("nobody is signed in.")
        return self.session.actor

    def can(self, action: Action) -> bool:
        return self.session is not None and allowed(self.session.actor, action)

    def on_mount(self) -> None:
        from batchops_tui.screens.signin import SignInScreen

        self.prepare()
        self.push_screen(SignInScreen())

    def on_ready(self) -> None:
        """The sign-in screen is on the terminal: `prepare` may now load the database layer."""
        self._first_frame.set()

    def signed_in(self, session: SignedInSession) -> None:
        """Called by the sign-in screen: show who is here, go Home, start live refresh."""
        self.session = session
        self.sub_title = f"{session.user.username} · {session.user.role.value}"
        self._notice_since = self.clock()
        self.call_later(self._enter)

    async def _enter(self) -> None:
        # Runs on the app, not in the sign-in screen's worker: popping that screen cancels it.
        await self.pop_screen()
        await self.switch_mode("home")
        self._session_timers = [
            self.set_interval(IDLE_CHECK_SECONDS, self.check_idle_lock, name="idle-lock"),
            self.set_interval(SESSION_CHECK_SECONDS, self.verify_session, name="session-check"),
        ]
        if self.live:
            self.start_live()
            if not self.settings.uses_redis:
                self._session_timers.append(
                    self.set_interval(self.settings.tui.poll_interval, self.poll, name="poll")
                )
        if not self.warmed_up:
            self.warm_up()  # then builds the screens
        else:
            self.prebuild_screens()  # signed in again: the screens were removed at sign-out

    def action_sign_out(self) -> None:
        from batchops_tui.screens.dialogs import ConfirmDialog

        if self.session is None or self.session.locked:
            return
        busy = self.work_in_flight()
        question = "Sign out of BatchOps? The sign-in screen comes back for the next person."
        if busy:
            question += f" {busy} job(s) still running in this window carry on."

        def answer(yes: bool | None) -> None:
            if yes:
                self.call_later(self.sign_out)

        self.push_screen(ConfirmDialog("Sign out?", question, confirm="Sign out"), answer)

    async def sign_out(self) -> None:
        """Forget the session and every screen built for it, then show the sign-in screen."""
        from batchops_tui.screens.signin import SignInScreen

        for timer in self._session_timers:
            timer.stop()
        self._session_timers = []
        self.screens_ready = False
        self.workers.cancel_group(self, "prebuild")
        self.workers.cancel_group(self, "live")
        self.workers.cancel_group(self, "notices")
        self.session = None
        self.sub_title = ""
        self.my_uploads.clear()
        self._notified.clear()
        if SIGNED_OUT not in self._modes:
            self.add_mode(SIGNED_OUT, Screen)  # a blank base for the sign-in screen to sit on
        await self.switch_mode(SIGNED_OUT)
        for spec in ALL_SCREENS:
            await self.remove_mode(spec.mode)
            self.add_mode(spec.mode, _factory(spec.mode))
        await self.push_screen(SignInScreen())

    @work(exclusive=True, group="warm-up", exit_on_error=False, thread=True)
    def warm_up(self) -> None:
        """Import the other screens and their services while the operator reads Home, so that
        the first press of 2–6 only composes and queries."""
        import importlib

        for module in WARM_MODULES:
            if get_current_worker().is_cancelled:
                return
            importlib.import_module(module)
        self.call_from_thread(self.prewarm_styles)
        self.warmed_up = True
        self.call_from_thread(self.prebuild_screens)

    @work(exclusive=True, group="prebuild", exit_on_error=False)
    async def prebuild_screens(self) -> None:
        """Build every screen this person may open, one at a time while Home is shown, so that
        the first press of a screen key is a switch to a composed screen with its data already
        loaded (a first visit composing ~140 widgets took 0.3–1 s; the goal is ≤ 100 ms).

        Uses Textual's private `App._init_mode` (what `switch_mode` does on a first visit,
        without showing the screen); measured in bench/bench_tui.py, re-check on upgrades.
        """
        import asyncio

        specs = SCREENS + (ADMIN_SCREENS if self.can(Action.MANAGE_USERS) else ())
        for spec in specs:
            if self.session is None:
                return
            if spec.mode not in self._screen_stacks:
                await self._init_mode(spec.mode)
            await asyncio.sleep(PREBUILD_PAUSE)  # keys typed meanwhile are handled between
        self.screens_ready = True

    async def prewarm_styles(self) -> None:
        """Register the default CSS of every widget type the screens use, once, while Home is
        idle: otherwise the first visit of each screen re-parses the whole stylesheet (~130 ms)."""
        from textual.containers import Container
        from textual.widgets import (
            Button,
            Checkbox,
            DataTable,
            DirectoryTree,
            Input,
            Select,
            TabbedContent,
            TextArea,
        )

        holder = Container(
            DataTable(),
            Select([("x", "x")]),
            Input(),
            Button(),
            Checkbox(),
            TextArea(),
            DirectoryTree("/nonexistent-batchops-prewarm"),
            TabbedContent(),
            id="prewarm",
        )
        holder.display = False
        if self.screen.is_mounted:
            await self.screen.mount(holder)
            await holder.remove()

    # -- navigation and global actions -------------------------------------------------------------

    async def action_goto(self, mode: str) -> None:
        if self.session is None or self.session.locked:
            return
        if mode in {s.mode for s in ADMIN_SCREENS} and not self.can(Action.MANAGE_USERS):
            self.notify("Only admins manage users.", severity="warning", markup=False)
            return
        await self.switch_mode(mode)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "goto" and parameters and parameters[0] in {s.mode for s in ADMIN_SCREENS}:
            return self.can(Action.MANAGE_USERS)
        if action in ("command_palette", "sign_out"):
            return self.session is not None and not self.session.locked
        return True

    def action_help(self) -> None:
        from batchops_tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.screen))

    def action_lock(self) -> None:
        from batchops_tui.screens.lock import LockScreen

        if self.session is None or self.session.locked:
            return
        self.session.lock()
        self.use_command_palette = False
        self.push_screen(LockScreen(), lambda _: setattr(self, "use_command_palette", True))

    def work_in_flight(self) -> int:
        """Uploads this window is processing (embedded worker) plus running writes."""
        embedded = self.dispatcher.running if self.dispatcher else 0
        writes = sum(
            1
            for w in self.workers
            if w.group.startswith("write") and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
        )
        return embedded + writes

    async def action_request_quit(self) -> None:
        from batchops_tui.screens.dialogs import ConfirmDialog

        busy = self.work_in_flight()
        if not busy:
            self.exit(0)
            return
        question = (
            f"{busy} job(s) are still running in this window (uploads processed here stop and "
            "are retried later). Quit anyway?"
        )

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit(0)

        self.push_screen(ConfirmDialog("Quit BatchOps?", question, confirm="Quit"), answer)

    async def action_quit(self) -> None:
        await self.action_request_quit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette offers every screen and every action the current screen allows."""
        yield from super().get_system_commands(screen)
        if self.session is None or self.session.locked:
            return
        for spec in SCREENS + (ADMIN_SCREENS if self.can(Action.MANAGE_USERS) else ()):
            yield SystemCommand(
                f"go: {spec.title}",
                escape(f"[{spec.key}] {spec.help}"),
                self._goto_callback(spec.mode),
            )
        yield SystemCommand("help: keys", escape("[?] every key binding"), self.action_help)
        yield SystemCommand(
            "session: lock", escape("[ctrl+l] lock this terminal"), self.action_lock
        )
        yield SystemCommand(
            "session: sign out",
            "end this session; the sign-in screen comes back",
            self.action_sign_out,
        )
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            # Only the screen's own actions: a focused DataTable or Input brings its cursor and
            # editing bindings (scroll_home, delete_left …), which are not operator actions.
            if active.node is not screen or not active.enabled or binding.action in seen:
                continue
            if binding.action.startswith("app.") or not binding.description:
                continue
            seen.add(binding.action)
            yield SystemCommand(
                f"{screen.title or 'screen'}: {binding.description.lower()}",
                escape(f"[{key}] {binding.tooltip or binding.description}"),
                self._action_callback(active.node, binding.action),
            )

    def _goto_callback(self, mode: str) -> Callable[[], object]:
        return lambda: self.run_worker(self.action_goto(mode), group="nav", exclusive=True)

    def _action_callback(self, node: object, action: str) -> Callable[[], object]:
        return lambda: self.run_worker(self.run_action(action, node), group="palette")  # type: ignore[arg-type]

    # -- errors ------------------------------------------------------------------------------------

    def report_error(self, error: BaseException | None) -> None:
        """One place where failures of workers become a toast; never a traceback on screen."""
        if error is None:
            return
        if isinstance(error, BatchOpsError):
            text = str(error)
            self.notify(
                text[:1].upper() + text[1:],
                title=error_title(error),
                severity="error",
                timeout=8,
                markup=False,
            )
            return
        if isinstance(error, ImportError):
            self.notify(
                f"This feature is not installed yet ({error.name or error}).",
                title="Not available",
                severity="warning",
                markup=False,
            )
            return
        log.exception("unexpected error in a worker", exc_info=error)
        self.notify(
            f"{type(error).__name__}: {error}",
            title="Unexpected error",
            severity="error",
            markup=False,
        )

    # -- idle lock ---------------------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown) and self.session is not None:
            self.session.touch()
        await super().on_event(event)  # KeySequencer: keys one at a time, held while dialogs open

    def check_idle_lock(self, now: datetime | None = None) -> bool:
        """Lock when idle for the configured time; returns whether the session is locked."""
        if self.session is None:
            return False
        if self.session.should_lock(now):
            self.action_lock()
        return self.session.locked

    @work(exclusive=True, group="session-check", exit_on_error=False)
    async def verify_session(self) -> bool:
        """End the TUI when an admin disabled the account or its sessions were ended."""
        from batchops_core.signin import still_current

        if self.session is None:
            return False
        if await still_current(self.db, self.session):
            return True
        self.exit(1, return_code=1, message=SESSION_ENDED)
        return False

    # -- live refresh ------------------------------------------------------------------------------

    async def get_dispatcher(self) -> Dispatcher:
        """arq on Redis, or the embedded worker in this process; connected on first use."""
        from batchops_core.worker.dispatcher import Dispatcher

        if self.dispatcher is None:
            self.dispatcher = await Dispatcher.connect(self.db, self.settings)
        return self.dispatcher

    @work(exclusive=True, group="live", exit_on_error=False)
    async def start_live(self) -> None:
        from batchops_core.infra import events as core_events

        await self.get_dispatcher()
        async with core_events.subscribe(self.settings) as queue:
            while True:
                self.handle_event(await queue.get())

    def handle_event(self, event: Event) -> None:
        """Tell screens to look again and toast what concerns the signed-in person."""
        self.data_changed.publish(event)
        if self.session is None or self.session.locked:
            return
        if event.type.startswith("upload") and _finished(event.status):
            if event.id in self.my_uploads or event.data.get("uploader_id") == self.session.user.id:
                self.toast_upload(int(event.id), event.status or "", "")  # type: ignore[arg-type]
            else:
                self.poll_notices()
        elif event.type.startswith("incident"):
            self.poll_notices()  # events do not carry the assignee: ask the database

    def toast_upload(self, upload_id: int, status: str, filename: str = "") -> None:
        key = ("upload", upload_id, status)
        if key in self._notified:
            return
        self._notified.add(key)
        severity = "error" if status == "failed" else "information"
        name = f" {filename}" if filename else ""
        self.notify(
            f"Upload #{upload_id}{name}: {status}.",
            title="Upload finished",
            severity=severity,
            markup=False,
        )

    def toast_incident(self, incident_id: int, title: str = "") -> None:
        key = ("incident", incident_id, "assigned")
        if key in self._notified:
            return
        self._notified.add(key)
        self.notify(
            f"Incident #{incident_id} {title}".strip(), title="Assigned to you", markup=False
        )

    def poll(self) -> None:
        """Without Redis, other processes' changes are seen by polling the database."""
        if self.session is None or self.session.locked:
            return
        from batchops_core.infra.events import Event

        self.data_changed.publish(Event(type="poll"))
        self.poll_notices()

    @work(exclusive=True, group="notices", exit_on_error=False)
    async def poll_notices(self) -> None:
        from batchops_core.services.dashboard import my_notices

        since = self._notice_since or self.clock()
        self._notice_since = self.clock()
        async with self.db.unit() as session:
            notices = await my_notices(
                session, actor=self.actor, since=since - timedelta(seconds=1)
            )
        for upload in notices.uploads:
            self.toast_upload(upload.id, upload.status, upload.filename)
        for incident in notices.incidents:
            self.toast_incident(incident.id, incident.title)

    async def on_unmount(self) -> None:
        if self.dispatcher is not None and self._owns_dispatcher:
            await self.dispatcher.close()
        if self._owns_db and self._db is not None:
            await self._db.dispose()


ERROR_TITLES = {
    "InvalidTransition": "Not possible now",
    "PermissionDenied": "Not allowed",
    "NotFound": "Not found",
    "ValidationFailed": "Check the input",
    "AuthenticationFailed": "Sign-in refused",
    "DatabaseUnavailable": "Database unreachable",
    "ConfigError": "Configuration",
    "SchemaTooNew": "Database too new",
}


def error_title(error: BaseException) -> str:
    """A toast title in words: the error's kind, never its Python class name."""
    for cls in type(error).__mro__:
        if cls.__name__ in ERROR_TITLES:
            return ERROR_TITLES[cls.__name__]
    return "Refused"


def _finished(status: str | None) -> bool:
    """True when an event's upload status is final (an unknown one is not)."""
    try:
        return UploadStatus(status or "").is_final
    except ValueError:
        return False
