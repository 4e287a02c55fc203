"""Create or edit a schedule; the cron line is validated as you type and the next five firings
previewed (pure computation, no database, so it runs on every keystroke)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from batchops_core.errors import BatchOpsError
from batchops_tui.formatting import plain, when

if TYPE_CHECKING:
    from batchops_core.services.schedules import ScheduleRow


def cron_preview(cron: str, tz: str) -> tuple[bool, str]:
    """(valid, text): the next five firings, or the validation sentence."""
    from batchops_core.services.schedules import preview_next_runs

    try:
        times = preview_next_runs(cron, tz or "UTC", 5)
    except BatchOpsError as exc:
        return False, str(exc)
    return True, "next: " + ", ".join(when(t) for t in times)


class ScheduleDialog(ModalScreen[dict[str, Any] | None]):
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", id="schedule.cancel"),
        Binding("ctrl+s", "submit", "Save", id="schedule.save"),
    ]

    def __init__(self, tasks: list[str], row: ScheduleRow | None = None) -> None:
        super().__init__()
        self.tasks = tasks
        self.row = row

    def compose(self) -> ComposeResult:
        r = self.row
        with Vertical(classes="dialog form-dialog"):
            yield Label(f"Edit schedule #{r.id}" if r else "New schedule", classes="dialog-title")
            with VerticalScroll(classes="form-fields"):
                yield Input(r.name if r else "", placeholder="name", id="s-name")
                yield Select(
                    [(t, t) for t in self.tasks],
                    prompt="task",
                    id="s-task",
                    value=r.task if r and r.task in self.tasks else Select.NULL,
                )
                yield Input(r.cron if r else "", placeholder="cron: m h dom mon dow", id="s-cron")
                yield Input(r.timezone if r else "UTC", placeholder="timezone", id="s-tz")
                yield Static("", id="cron-preview")
                yield Input(
                    json.dumps(r.arguments) if r and r.arguments else "",
                    placeholder='arguments as JSON, e.g. {"department": "Fees"}',
                    id="s-args",
                )
                yield Input(r.description if r else "", placeholder="description", id="s-desc")
                yield Checkbox("enabled", r.enabled if r else True, id="s-enabled")
            yield Label("", classes="form-error", id="s-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#s-name", Input).focus()
        self._preview()

    @on(Input.Changed, "#s-cron, #s-tz")
    def _preview(self) -> bool:
        ok, text = cron_preview(
            self.query_one("#s-cron", Input).value, self.query_one("#s-tz", Input).value
        )
        preview = self.query_one("#cron-preview", Static)
        preview.update(plain(text))
        preview.set_class(not ok, "invalid")
        return ok

    def action_submit(self) -> None:
        error = self.query_one("#s-error", Label)
        name = self.query_one("#s-name", Input).value.strip()
        task = self.query_one("#s-task", Select).value
        if not name or task is Select.NULL:
            error.update("A name and a task are required.")
            return
        if not self._preview():
            error.update("Fix the cron line or the timezone first.")
            return
        raw_args = self.query_one("#s-args", Input).value.strip()
        try:
            arguments = json.loads(raw_args) if raw_args else {}
        except json.JSONDecodeError as exc:
            error.update(f"The arguments are not valid JSON ({exc.msg}).")
            return
        if not isinstance(arguments, dict):
            error.update('The arguments must be a JSON object like {"department": "Fees"}.')
            return
        self.dismiss(
            {
                "name": name,
                "task": str(task),
                "cron": self.query_one("#s-cron", Input).value.strip(),
                "timezone": self.query_one("#s-tz", Input).value.strip() or "UTC",
                "arguments": arguments,
                "description": self.query_one("#s-desc", Input).value.strip(),
                "enabled": self.query_one("#s-enabled", Checkbox).value,
            }
        )

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
