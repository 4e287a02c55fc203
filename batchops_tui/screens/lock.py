"""The idle lock: covers every screen until the signed-in person types their password again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static
from textual.worker import Worker, WorkerState

from batchops_core.errors import BatchOpsError
from batchops_tui.formatting import plain

if TYPE_CHECKING:
    from batchops_tui.app import BatchOpsApp


class LockScreen(ModalScreen[None]):
    BINDINGS = [Binding("ctrl+q", "app.exit", "Quit", id="lock.quit")]

    @property
    def bo(self) -> BatchOpsApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        user = self.bo.session.user.username if self.bo.session else ""
        with Vertical(classes="dialog", id="lock-box"):
            yield Label("🔒 Session locked", classes="dialog-title")
            yield Static(f"This terminal is locked. Enter the password of {user} to continue.")
            yield Input(placeholder="password", password=True, id="unlock-password")
            yield Label("", classes="form-error", id="unlock-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        self.unlock(event.value)

    @work(exclusive=True, group="unlock", exit_on_error=False)
    async def unlock(self, password: str) -> None:
        from batchops_core.signin import unlock

        assert self.bo.session is not None
        await unlock(self.bo.db, self.bo.settings, self.bo.session, password)
        self.dismiss(None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            self.query_one(Input).value = ""
            if isinstance(error, BatchOpsError):
                self.query_one("#unlock-error", Label).update(plain(str(error)))
            else:
                self.bo.report_error(error)
