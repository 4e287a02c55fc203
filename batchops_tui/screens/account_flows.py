"""The emailed-code flows of the sign-in screen: verify an email, reset a forgotten password.

Step one asks for the username or email and sends a code (the answer is the same whether or not
the account exists); step two takes the code (and for a reset, the new password twice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState

from batchops_core.enums import CodePurpose
from batchops_core.errors import BatchOpsError
from batchops_tui.formatting import plain
from batchops_tui.screens.dialogs import Dialog

if TYPE_CHECKING:
    from batchops_tui.app import BatchOpsApp

TITLES = {CodePurpose.VERIFY: "Verify your email", CodePurpose.RESET: "Reset your password"}


class AccountCodeDialog(Dialog[bool]):
    FIRST_FIELD = "#who"
    BINDINGS = [Binding("escape", "dismiss(False)", "Close", id="flow.close")]

    def __init__(self, purpose: CodePurpose, *, username: str = "") -> None:
        super().__init__()
        self.purpose = purpose
        self._username = username

    @property
    def bo(self) -> BatchOpsApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        reset = self.purpose is CodePurpose.RESET
        # Two fields a row: the reset form fits 80×24 (it was 30 rows tall, one field a row).
        with Vertical(classes="dialog form-dialog", id="flow-box"):
            yield Label(TITLES[self.purpose], classes="dialog-title")
            yield Static(
                "1. Your username or email, then Send code. 2. The 6-digit code from the email"
                + (" and a new password." if reset else "."),
                classes="dialog-text",
            )
            with Horizontal(classes="flow-row"):
                yield Input(self._username, placeholder="username or email", id="who")
                yield Button("Send code", id="send")
            with Horizontal(classes="flow-row"):
                yield Input(placeholder="username", id="code-user")
                yield Input(placeholder="6-digit code", id="code", max_length=6)
            if reset:
                with Horizontal(classes="flow-row"):
                    yield Input(placeholder="new password", password=True, id="new-password")
                    yield Input(placeholder="repeat it", password=True, id="new-password2")
            yield Label("", classes="form-error", id="flow-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    "Reset password" if reset else "Verify", variant="primary", id="finish"
                )
                yield Button("Close (esc)", id="close")

    def say(self, text: str) -> None:
        self.query_one("#flow-message", Label).update(plain(text))

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#send")
    @on(Input.Submitted, "#who")
    def _send(self) -> None:
        who = self.query_one("#who", Input).value.strip()
        if not who:
            self.say("Enter your username or email first.")
            return
        if "@" not in who and not self.query_one("#code-user", Input).value:
            self.query_one("#code-user", Input).value = who
        self.send_code(who)

    @on(Button.Pressed, "#finish")
    def _finish(self) -> None:
        username = self.query_one("#code-user", Input).value.strip()
        code = self.query_one("#code", Input).value.strip()
        if not username or not code:
            self.say("Enter your username and the code from the email.")
            return
        password = ""
        if self.purpose is CodePurpose.RESET:
            password = self.query_one("#new-password", Input).value
            if password != self.query_one("#new-password2", Input).value:
                self.say("The two passwords differ.")
                return
        self.finish(username, code, password)

    @work(exclusive=True, group="flow", exit_on_error=False)
    async def send_code(self, who: str) -> None:
        from batchops_core.codes import request_code

        await self.bo.ready()
        await request_code(
            self.bo.db, self.bo.settings, username_or_email=who, purpose=self.purpose
        )
        self.say(
            "If that account exists, a code is on its way; it expires in "
            f"{self.bo.settings.security.code_ttl_minutes} minutes."
        )
        self.query_one("#code", Input).focus()

    @work(exclusive=True, group="flow", exit_on_error=False)
    async def finish(self, username: str, code: str, password: str) -> None:
        from batchops_core import codes

        await self.bo.ready()
        if self.purpose is CodePurpose.VERIFY:
            await codes.verify_email(self.bo.db, self.bo.settings, username=username, code=code)
            self.bo.notify("Email verified; you can sign in now.", title="Verified", markup=False)
        else:
            await codes.reset_password(
                self.bo.db, self.bo.settings, username=username, code=code, new_password=password
            )
            self.bo.notify(
                "Password changed; sign in with the new one.", title="Password reset", markup=False
            )
        self.dismiss(True)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            if isinstance(error, BatchOpsError):
                text = str(error)
                self.say(text[:1].upper() + text[1:])
            else:
                self.bo.report_error(error)
