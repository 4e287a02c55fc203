"""Sign-in: username and password, plus the "Verify email" and "Forgot password" flows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static
from textual.worker import Worker, WorkerState

from batchops_core.enums import CodePurpose
from batchops_core.errors import BatchOpsError
from batchops_tui.formatting import plain

if TYPE_CHECKING:
    from batchops_tui.app import BatchOpsApp


class SignInScreen(Screen[None]):
    """The first screen; nothing else is reachable before a successful sign-in."""

    BINDINGS = [
        Binding(
            "f2",
            "flow('verify')",
            "Verify email",
            id="signin.verify",
            tooltip="Get a code to verify your email",
        ),
        Binding(
            "f3",
            "flow('reset')",
            "Forgot password",
            id="signin.reset",
            tooltip="Reset your password with an emailed code",
        ),
        Binding("ctrl+q", "app.exit", "Quit", id="signin.quit"),
        # Enter in the username field moves on at once, on the app's queue (see the app's tab
        # binding): `user<Enter>pass<Enter>` typed in one burst still reaches both fields.
        Binding("enter", "next_field", "Next", show=False, priority=True, system=True),
    ]

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="signin-box", classes="dialog"):
            yield Label("▣ BatchOps", classes="dialog-title")
            yield Static("Sign in to the batch-operations control room.", classes="dialog-text")
            yield Input(placeholder="username", id="username")
            yield Input(placeholder="password", password=True, id="password")
            yield Label("", id="signin-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Sign in", variant="primary", id="signin")
            with Horizontal(classes="dialog-buttons links"):
                yield Button("Verify email (F2)", id="verify", classes="link")
                yield Button("Forgot password (F3)", id="reset", classes="link")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#username", Input).focus()

    def action_next_field(self) -> None:
        if self.focused is not self.query_one("#username", Input):
            raise SkipAction()  # enter does what it does elsewhere (submit, press a button)
        # Screen.set_focus moves focus now; Widget.focus() would wait for the next idle.
        self.set_focus(self.query_one("#password", Input))

    @on(Input.Submitted, "#password")
    @on(Button.Pressed, "#signin")
    def _submit(self) -> None:
        username = self.query_one("#username", Input).value.strip()
        password = self.query_one("#password", Input).value
        if not username or not password:
            self.show_error("Enter your username and password.")
            return
        self.query_one("#signin", Button).disabled = True
        self.sign_in(username, password)

    @on(Button.Pressed, "#verify")
    def _verify(self) -> None:
        self.action_flow("verify")

    @on(Button.Pressed, "#reset")
    def _reset(self) -> None:
        self.action_flow("reset")

    def action_flow(self, purpose: str) -> None:
        from batchops_tui.screens.account_flows import AccountCodeDialog

        username = self.query_one("#username", Input).value.strip()
        self.app.push_screen(AccountCodeDialog(CodePurpose(purpose), username=username))

    def show_error(self, text: str) -> None:
        self.query_one("#signin-error", Label).update(plain(text))

    @work(exclusive=True, group="signin", exit_on_error=False)
    async def sign_in(self, username: str, password: str) -> None:
        from batchops_core.signin import sign_in

        app: BatchOpsApp = self.app  # type: ignore[assignment]
        await app.ready()
        session = await sign_in(app.db, app.settings, username=username, password=password)
        app.signed_in(session)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.query_one("#signin", Button).disabled = False
            error = event.worker.error
            if isinstance(error, BatchOpsError):
                text = str(error)
                self.show_error(text[:1].upper() + text[1:])
                self.query_one("#password", Input).value = ""
                self.query_one("#password", Input).focus()
            else:
                self.app.report_error(error)  # type: ignore[attr-defined]
