"""6 · Schedules: cron jobs with next firing, last result and state; create/edit (admins),
enable/disable (admins), run now (everyone)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding

from batchops_core.enums import RunStatus
from batchops_core.permissions import Action
from batchops_tui.formatting import clip, short_when
from batchops_tui.screens.base import BaseScreen
from batchops_tui.widgets.common.paged_table import PagedTable

if TYPE_CHECKING:
    from batchops_core.services.schedules import ScheduleRow

COLUMNS = (
    ("id", "#"),
    ("name", "name"),
    ("task", "task"),
    ("cron", "cron"),
    ("tz", "tz"),
    ("next", "next"),
    ("last", "last result"),
    ("on", "on"),
)
LAST_STYLE = {RunStatus.SUCCEEDED: "green", RunStatus.FAILED: "bold red"}


def schedule_cells(row: ScheduleRow) -> list[object]:
    last = "—"
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
        short_when(row.next_run_at) if row.enabled else "—",
        last,
        Text("on", style="green") if row.enabled else Text("off", style="dim"),
    ]


class SchedulesScreen(BaseScreen):
    TITLE = "Schedules"
    EVENT_PREFIXES = ("schedule", "run")
    BINDINGS = [
        Binding("c", "create", "New", id="schedules.create", tooltip="Create a schedule"),
        Binding("e", "edit", "Edit", id="schedules.edit", tooltip="Edit the schedule"),
        Binding("space", "toggle", "On/off", id="schedules.toggle", tooltip="Enable or disable"),
        Binding("g", "run_now", "Run now", id="schedules.run_now", tooltip="Fire the schedule now"),
    ]
    ACTION_PERMISSIONS = {
        "create": Action.EDIT_SCHEDULES,
        "edit": Action.EDIT_SCHEDULES,
        "toggle": Action.EDIT_SCHEDULES,
        "run_now": Action.RUN_SCHEDULES,
    }

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, ScheduleRow] = {}

    def body(self) -> ComposeResult:
        yield PagedTable(COLUMNS, page_size=self.app.settings.tui.page_size, id="schedules-table")  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(PagedTable).table.focus()

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="schedules", exit_on_error=False)
    async def load(self) -> None:
        from batchops_core.services.schedules import list_schedules

        table = self.query_one(PagedTable)
        page = await self.page_of(list_schedules)
        self.rows = {str(r.id): r for r in page.items}
        table.show(page, [(str(r.id), schedule_cells(r)) for r in page.items])

    @on(PagedTable.QueryChanged)
    def _query(self) -> None:
        self.load()

    @on(PagedTable.Chosen)
    def _chosen(self) -> None:
        if self.can(Action.EDIT_SCHEDULES):
            self.action_edit()

    def selected(self) -> ScheduleRow | None:
        key = self.query_one(PagedTable).selected_key()
        return self.rows.get(key) if key else None

    def action_create(self) -> None:
        self.open_form(None)

    def action_edit(self) -> None:
        row = self.selected()
        if row is not None:
            self.open_form(row)

    def open_form(self, row: ScheduleRow | None) -> None:
        from batchops_core.worker.automation.registry import schedulable_task_names
        from batchops_tui.screens.schedule_form import ScheduleDialog

        def saved(values: dict[str, Any] | None) -> None:
            if values is not None:
                self.save(row.id if row else None, values)

        self.app.push_screen(ScheduleDialog(schedulable_task_names(), row), saved)

    @work(exclusive=True, group="write-schedules", exit_on_error=False)
    async def save(self, job_id: int | None, values: dict[str, Any]) -> None:
        from batchops_core.services import schedules

        if job_id is None:
            row = await self.call(schedules.create_schedule, **values)
        else:
            row = await self.call(schedules.update_schedule, job_id=job_id, **values)
        self.notify(
            f"Schedule {row.name} saved; next firing {short_when(row.next_run_at)}.", markup=False
        )
        self.reload()

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
