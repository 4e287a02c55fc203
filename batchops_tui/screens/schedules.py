"""6 · Schedules: cron jobs with next firing, last result and state; create/edit (admins),
enable/disable (admins), run now (everyone)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from batchops_core.enums import RunStatus
from batchops_core.permissions import Action
from batchops_tui.formatting import clip, plain, short_when
from batchops_tui.screens.base import EditableTableScreen
from batchops_tui.widgets.common.paged_table import PagedTable

if TYPE_CHECKING:
    from batchops_core.services.schedules import ScheduleRow

COLUMNS = (
    ("id", "#", 1, 4),
    ("name", "name", 1, 22),
    ("task", "task", 4, 18),
    ("cron", "cron", 3, 13),
    ("tz", "tz", 5, 14),
    ("next", "next", 2, 11),
    ("last", "last result", 2, 20),
    ("on", "on", 1, 3),
)
"""(key, label, priority, width): at 80 columns #, name, next, last result and on; task, cron
and time zone are in the line under the table."""
LAST_STYLE = {RunStatus.SUCCEEDED: "green", RunStatus.FAILED: "bold red"}


def next_text(row: ScheduleRow, now: datetime) -> Text | str:
    """The next firing; one already past is shown as overdue (nothing fired it), never
    replaced by a fresh computation."""
    if not row.enabled:
        return "—"
    if row.next_run_at is not None and row.next_run_at < now:
        return Text(f"overdue {short_when(row.next_run_at)}", style="bold yellow")
    return short_when(row.next_run_at)


def schedule_cells(row: ScheduleRow, now: datetime) -> list[object]:
    last: Text | str = "—"
    if row.last_status is not None:
        last = Text(
            f"{row.last_status.value} {short_when(row.last_run_at)}",
            style=LAST_STYLE.get(row.last_status, ""),
        )
    return [
        str(row.id),
        clip(row.name, 22),
        clip(row.task, 18),
        row.cron,
        clip(row.timezone, 14),
        next_text(row, now),
        last,
        Text("on", style="green") if row.enabled else Text("off", style="dim"),
    ]


def schedule_line(row: ScheduleRow) -> str:
    """Everything about the highlighted schedule, for the line under the table."""
    args = ", ".join(f"{k}={v}" for k, v in (row.arguments or {}).items()) or "no arguments"
    text = f"#{row.id} {row.name}: {row.task} at '{row.cron}' {row.timezone}; {args}"
    return text + (f" — {row.description}" if row.description else "")


class SchedulesScreen(EditableTableScreen["ScheduleRow"]):
    EDIT_ACTION = Action.EDIT_SCHEDULES
    TITLE = "Schedules"
    EVENT_PREFIXES = ("schedule", "run")
    BINDINGS = [
        Binding("c", "create", "New", id="schedules.create", tooltip="Create a schedule"),
        Binding("e", "edit", "Edit", id="schedules.edit", tooltip="Edit the schedule"),
        Binding("space", "toggle", "On/off", id="schedules.toggle", tooltip="Enable or disable"),
        Binding("g", "run_now", "Run now", id="schedules.run_now", tooltip="Fire the schedule now"),
        Binding(
            "x",
            "delete",
            "Delete",
            show=False,
            id="schedules.delete",
            tooltip="Delete the schedule (its past runs are kept)",
        ),
    ]
    ACTION_PERMISSIONS = {
        "delete": Action.EDIT_SCHEDULES,
        "create": Action.EDIT_SCHEDULES,
        "edit": Action.EDIT_SCHEDULES,
        "toggle": Action.EDIT_SCHEDULES,
        "run_now": Action.RUN_SCHEDULES,
    }

    def body(self) -> ComposeResult:
        yield PagedTable(COLUMNS, page_size=self.app.settings.tui.page_size, id="schedules-table")  # type: ignore[attr-defined]
        yield Static("", id="schedule-line")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(PagedTable).table.focus()

    @on(PagedTable.Highlighted)
    def _highlighted(self) -> None:
        row = self.selected()
        self.query_one("#schedule-line", Static).update(plain(schedule_line(row) if row else ""))

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="schedules", exit_on_error=False)
    async def load(self) -> None:
        from batchops_core.services.schedules import list_schedules

        table = self.query_one(PagedTable)
        page = await self.page_of(list_schedules)
        self.rows = {str(r.id): r for r in page.items}
        now = self.bo.clock()
        table.show(page, [(str(r.id), schedule_cells(r, now)) for r in page.items])
        self._highlighted()

    def open_form(self, row: ScheduleRow | None) -> None:
        from batchops_core.worker.automation.registry import schedulable_task_names
        from batchops_tui.screens.schedule_form import ScheduleDialog

        def saved(values: dict[str, Any] | None) -> None:
            if values is not None:
                self.reload()

        job_id = row.id if row else None
        dialog = ScheduleDialog(schedulable_task_names(), row, save=lambda v: self.save(job_id, v))
        self.app.push_screen(dialog, saved)

    async def save(self, job_id: int | None, values: dict[str, Any]) -> None:
        """The dialog's action: a refusal (unknown department, bad cron) stays in the dialog."""
        from batchops_core.services import schedules

        if job_id is None:
            row = await self.call(schedules.create_schedule, **values)
        else:
            row = await self.call(schedules.update_schedule, job_id=job_id, **values)
        self.notify(
            f"Schedule {row.name} saved; next firing {short_when(row.next_run_at)}.",
            title="Schedules",
            markup=False,
        )

    def action_toggle(self) -> None:
        row = self.selected()
        if row is None:
            return
        verb = "Disable" if row.enabled else "Enable"
        self.confirm(
            f"{verb} schedule?",
            f"{verb} '{row.name}' ({row.cron} {row.timezone})?",
            lambda: self.set_enabled(row.id, not row.enabled),
            confirm=verb,
        )

    @work(exclusive=True, group="write-schedules", exit_on_error=False)
    async def set_enabled(self, job_id: int, enabled: bool) -> None:
        from batchops_core.services import schedules

        row = await self.call(schedules.set_schedule_enabled, job_id=job_id, enabled=enabled)
        self.notify(f"Schedule {row.name} {'enabled' if enabled else 'disabled'}.", markup=False)
        self.reload()

    def action_run_now(self) -> None:
        row = self.selected()
        if row is None:
            return
        self.confirm(
            "Run now?",
            f"Fire '{row.name}' ({row.task}) now, outside its schedule?",
            lambda: self.run_now(row.id, row.name),
            confirm="Run now",
        )

    @work(exclusive=True, group="write-schedules", exit_on_error=False)
    async def run_now(self, job_id: int, name: str) -> None:
        from batchops_core.services.schedules import run_now

        await run_now(
            self.bo.db, await self.bo.get_dispatcher(), actor=self.bo.actor, job_id=job_id
        )
        self.notify(f"'{name}' queued.", title="Run now", markup=False)
        self.reload()

    def action_delete(self) -> None:
        row = self.selected()
        if row is None:
            return
        self.confirm(
            "Delete schedule?",
            f"Delete '{row.name}' ({row.task} {row.cron})? Its past runs are kept.",
            lambda: self.delete(row.id),
            confirm="Delete",
        )

    @work(exclusive=True, group="write-schedules", exit_on_error=False)
    async def delete(self, job_id: int) -> None:
        from batchops_core.services.actions import delete_schedule

        name = await self.call(delete_schedule, ref=job_id)
        self.notify(f"Schedule {name} deleted.", markup=False)
        self.reload()
