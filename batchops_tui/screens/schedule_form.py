"""Create or edit a schedule; the cron line is validated as you type and the next five firings
previewed (pure computation, no database, so it runs on every keystroke)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from batchops_core.errors import BatchOpsError
from batchops_tui.formatting import plain, when
from batchops_tui.screens.dialogs import Dialog, field_for_error

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


FIELD_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("s-name", ("name",)),
    ("s-task", ("task",)),
    ("s-cron", ("cron", "minute", "hour", "day", "month", "weekday")),
    ("s-tz", ("timezone", "time zone", "zone")),
    ("s-args", ("argument", "arguments", "department", "json", "source")),
    ("s-desc", ("description",)),
)
"""Which field an error sentence is about, by the words it uses."""

Save = Callable[[dict[str, Any]], Awaitable[object]]


class ScheduleDialog(Dialog[dict[str, Any] | None]):
    """With `save`, the dialog calls the service itself and closes only when it succeeded."""

    FIRST_FIELD = "#s-name"
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", id="schedule.cancel"),
        Binding("ctrl+s", "submit", "Save", id="schedule.save"),
    ]

    def __init__(
        self, tasks: list[str], row: ScheduleRow | None = None, *, save: Save | None = None
    ) -> None:
        super().__init__()
        self.tasks = tasks
        self.row = row
        self._save_action = save

    def compose(self) -> ComposeResult:
        r = self.row
        with Vertical(classes="dialog form-dialog"):
            yield Label(f"Edit schedule #{r.id}" if r else "New schedule", classes="dialog-title")
            scroll = VerticalScroll(classes="form-fields")
            scroll.can_focus = False
            with scroll:
                yield Input(r.name if r else "", placeholder="name", id="s-name")
                yield Label("", id="error-s-name", classes="field-error")
                yield Select(
                    [(t, t) for t in self.tasks],
                    prompt="task",
                    id="s-task",
                    value=r.task if r and r.task in self.tasks else Select.NULL,
                )
                yield Label("", id="error-s-task", classes="field-error")
                yield Input(r.cron if r else "", placeholder="cron: m h dom mon dow", id="s-cron")
                yield Input(r.timezone if r else "UTC", placeholder="timezone", id="s-tz")
                yield Label("", id="error-s-cron", classes="field-error")
                yield Label("", id="error-s-tz", classes="field-error")
                yield Static("", id="cron-preview")
                yield Input(
                    json.dumps(r.arguments) if r and r.arguments else "",
                    placeholder='arguments as JSON, e.g. {"department": "Fees"}',
                    id="s-args",
                )
                yield Label("", id="error-s-args", classes="field-error")
                yield Input(r.description if r else "", placeholder="description", id="s-desc")
                yield Label("", id="error-s-desc", classes="field-error")
                yield Checkbox("enabled", r.enabled if r else True, id="s-enabled")
            yield Label("", classes="form-error", id="s-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        super().on_mount()
        self._preview()

    def show_error(self, message: str, field_id: str | None = None) -> None:
        """The sentence under the field it is about (focused), or under the form."""
        text = plain(message[:1].upper() + message[1:])
        field_id = field_id or field_for_error(message, FIELD_WORDS)
        if field_id is None:
            self.query_one("#s-error", Label).update(text)
            return
        label = self.query_one(f"#error-{field_id}", Label)
        label.update(text)
        label.add_class("shown")
        widget: Widget = self.query_one(f"#{field_id}")
        widget.focus()

    def clear_errors(self) -> None:
        self.query_one("#s-error", Label).update("")
        for label in self.query(".field-error").results(Label):
            label.update("")
            label.remove_class("shown")

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
        self.clear_errors()
        name = self.query_one("#s-name", Input).value.strip()
        task = self.query_one("#s-task", Select).value
        if not name:
            self.show_error("A name is required.", "s-name")
            return
        if task is Select.NULL:
            self.show_error("Choose the task this schedule runs.", "s-task")
            return
        ok = self._preview()
        if not ok:
            self.show_error(str(self.query_one("#cron-preview", Static).content), "s-cron")
            return
        raw_args = self.query_one("#s-args", Input).value.strip()
        try:
            arguments = json.loads(raw_args) if raw_args else {}
        except json.JSONDecodeError as exc:
            self.show_error(f"The arguments are not valid JSON ({exc.msg}).", "s-args")
            return
        if not isinstance(arguments, dict):
            self.show_error(
                'The arguments must be a JSON object like {"department": "Fees"}.', "s-args"
            )
            return
        values = {
            "name": name,
            "task": str(task),
            "cron": self.query_one("#s-cron", Input).value.strip(),
            "timezone": self.query_one("#s-tz", Input).value.strip() or "UTC",
            "arguments": arguments,
            "description": self.query_one("#s-desc", Input).value.strip(),
            "enabled": self.query_one("#s-enabled", Checkbox).value,
        }
        if self._save_action is None:
            self.dismiss(values)
            return
        self.run_worker(self._run(values), group="write-dialog", exclusive=True)

    async def _run(self, values: dict[str, Any]) -> None:
        assert self._save_action is not None
        button = self.query_one("#save", Button)
        button.disabled = True
        try:
            await self._save_action(values)
        except BatchOpsError as exc:
            self.show_error(str(exc))
            return
        except Exception as exc:  # shown as a toast; the dialog keeps what was typed
            self.app.report_error(exc)  # type: ignore[attr-defined]
            return
        finally:
            button.disabled = False
        self.dismiss(values)

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
