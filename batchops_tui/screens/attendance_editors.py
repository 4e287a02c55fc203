"""The shift and holiday editors of the Attendance screen (admins): tables, forms, removal.

A mixin over `BaseScreen` so the screen module stays about the grid and the approvals; it only
calls the attendance calendar services through `call()` and renders their rows.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.widgets import DataTable

from batchops_tui.formatting import clip
from batchops_tui.screens.dialogs import Field

SHIFT_FIELDS = (
    ("start", "Start (HH:MM)"),
    ("end", "End (HH:MM)"),
    ("grace_in", "Grace in (min)"),
    ("grace_out", "Grace out (min)"),
    ("half_day_hours", "Half-day hours"),
    ("full_day_hours", "Full-day hours"),
    ("overtime_after", "Overtime after (min)"),
    ("lunch_minutes", "Lunch (min)"),
    ("week_off", "Week off (sat,sun)"),
)


class CalendarEditors:
    """Shifts (`s`) and holidays (`h`) panes: `a` add, `e` edit a shift, `x` remove."""

    shifts: dict[str, Any]
    pane: str
    call: Any
    ask: Any
    confirm: Any
    query_one: Any
    run_worker: Any

    @work(exclusive=True, group="attendance-shifts", exit_on_error=False)
    async def load_shifts(self) -> None:
        from batchops_core.attendance.calendar import list_shifts

        rows = await self.call(list_shifts)
        self.shifts = {s.name: s for s in rows}
        table = self.query_one("#shift-table", DataTable)
        table.clear()
        for s in rows:
            table.add_row(
                clip(s.name, 12),
                s.start,
                s.end,
                f"{s.grace_in}/{s.grace_out}",
                f"{s.half_day_hours:g}/{s.full_day_hours:g}",
                str(s.lunch_minutes),
                str(s.overtime_after),
                s.week_off or "—",
                key=s.name,
            )

    @work(exclusive=True, group="attendance-holidays", exit_on_error=False)
    async def load_holidays(self) -> None:
        from batchops_core.attendance.calendar import list_holidays

        rows = await self.call(list_holidays)
        table = self.query_one("#holiday-table", DataTable)
        table.clear()
        for h in rows:
            table.add_row(str(h.day), f"{h.day:%a}", h.type.value, clip(h.name, 40), key=str(h.day))

    def _selected(self, selector: str) -> str | None:
        table = self.query_one(selector, DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_add(self) -> None:
        if self.pane == "holidays":
            self._holiday_form()
        else:
            self._shift_form(None)

    def action_edit(self) -> None:
        name = self._selected("#shift-table")
        if name is not None:
            self._shift_form(self.shifts.get(name))

    def _shift_form(self, shift: Any) -> None:
        from batchops_core.attendance.calendar import add_shift, edit_shift

        fields = [Field("name", "Name", required=True, value=shift.name if shift else "")]
        fields += [
            Field(
                key,
                label,
                required=key in ("start", "end"),
                value=str(getattr(shift, key)) if shift else "",
            )
            for key, label in SHIFT_FIELDS
        ]

        async def save(values: dict[str, str]) -> None:
            given = {k: v.strip() for k, v in values.items() if v.strip()}
            if shift is None:
                await self.call(add_shift, **given)
            else:
                await self.call(edit_shift, shift=shift.name, **given)

        title = f"Edit shift {shift.name}" if shift else "New shift"
        self.ask(title, fields, save, done=self.load_shifts)

    def _holiday_form(self) -> None:
        from batchops_core.attendance.calendar import add_holiday

        async def save(values: dict[str, str]) -> None:
            await self.call(
                add_holiday, day=values["day"], name=values["name"], type=values["type"]
            )

        self.ask(
            "New holiday",
            [
                Field("day", "Date (YYYY-MM-DD)", required=True),
                Field("name", "Name", required=True),
                Field(
                    "type",
                    "Type",
                    kind="select",
                    value="public",
                    options=[("public", "public"), ("school", "school"), ("festival", "festival")],
                ),
            ],
            save,
            done=self.load_holidays,
        )

    def action_remove(self) -> None:
        from batchops_core.attendance.calendar import remove_holiday, remove_shift

        if self.pane == "holidays":
            key = self._selected("#holiday-table")
            call, kwargs, done = remove_holiday, {"day": key}, self.load_holidays
        else:
            key = self._selected("#shift-table")
            call, kwargs, done = remove_shift, {"shift": key}, self.load_shifts
        if key is None:
            return

        async def remove() -> None:
            await self.call(call, **kwargs)  # type: ignore[arg-type]
            done()

        self.confirm(
            "Remove", f"Remove {key}?", lambda: self.run_worker(remove()), confirm="Remove"
        )
