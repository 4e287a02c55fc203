"""8 · Attendance: the employee × day grid of a department and month coloured by status, with
totals; the day detail (punches, the rule that gave the status, the figures); manual punch entry
and the approval queue; shifts and holidays for admins.

The screen renders and calls the attendance services through `call()`; it never builds SQL.
Every `attendance.*` event reloads what is shown. Keys: `g` grid, `v` approvals, `s` shifts,
`h` holidays; `[` `]` month, `d` department, `enter` day detail, `m` manual punch, `p` process
the month; `y`/`n` approve or reject; `a` add, `e` edit, `x` remove in the editors.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, DataTable, Static

from batchops_core.permissions import Action
from batchops_tui.formatting import clip
from batchops_tui.screens.attendance_editors import CalendarEditors
from batchops_tui.screens.base import BaseScreen
from batchops_tui.screens.dialogs import Field

STATUS_STYLE = {
    "P": "green",
    "A": "bold red",
    "HD": "yellow",
    "WO": "dim",
    "PH": "cyan",
    "MP": "bold magenta",
    "": "dim",
}
TOTALS = ("P", "A", "HD", "WO", "PH", "MP")


def cell(status: str) -> Text:
    return Text(f"{status or '·':>2}", style=STATUS_STYLE.get(status, ""))


def day_detail(day: Any, punches: list[Any]) -> str:
    """The day as text: status and the rule that gave it, the figures, the punches, the pairs."""
    if day is None:
        return "not processed yet: press p to process the month."
    when = lambda t: f"{t:%H:%M}" if t else "--:--"  # noqa: E731
    lines = [
        f"{day.employee} {day.name} · {day.date:%a %d %b} · {day.status}"
        + (f" (rules: {day.computed_status})" if day.status != day.computed_status else "")
        + f" — {day.rule}",
        f"in {when(day.in_time)} out {when(day.out_time)} · work {day.work_minutes} min · late "
        f"{day.late_minutes} · early {day.early_exit_minutes} · overtime {day.overtime_minutes}"
        + (f" · flags {', '.join(day.flags)}" if day.flags else ""),
    ]
    if punches:
        lines.append(
            "punches: "
            + ", ".join(
                f"{p.at:%H:%M} {p.direction.value}"
                + (f" manual/{p.approval.value}" if p.manual else "")
                for p in sorted(punches, key=lambda p: p.at)
            )
        )
    if day.pairs:
        pairs = " ".join(f"{a}-{b}" for a, b, _ in day.pairs)
        lines.append(f"pairs: {pairs} · {day.pair_minutes} min paid")
    return "\n".join(lines)


class AttendanceScreen(CalendarEditors, BaseScreen):
    TITLE = "Attendance"
    CSS_PATH = "attendance.tcss"
    EVENT_PREFIXES = ("attendance",)
    BINDINGS = [
        Binding("g", "pane('grid')", "Grid", id="attendance.grid", tooltip="Employee × day grid"),
        Binding("v", "pane('queue')", "Approvals", id="attendance.queue", tooltip="Manual punches"),
        Binding("s", "pane('shifts')", "Shifts", id="attendance.shifts", tooltip="Shifts"),
        Binding("h", "pane('holidays')", "Holidays", id="attendance.holidays", tooltip="Holidays"),
        Binding(
            "left_square_bracket",
            "month(-1)",
            "Prev",
            id="attendance.prev",
            tooltip="Previous month",
        ),
        Binding(
            "right_square_bracket", "month(1)", "Next", id="attendance.next", tooltip="Next month"
        ),
        Binding("d", "department", "Dept", id="attendance.dept", tooltip="Choose a department"),
        Binding("m", "manual", "Punch", id="attendance.manual", tooltip="Request a manual punch"),
        Binding("p", "process", "Process", id="attendance.process", tooltip="Recompute the month"),
        Binding("y", "decide(True)", "Approve", id="attendance.approve", tooltip="Approve"),
        Binding("n", "decide(False)", "Reject", id="attendance.reject", tooltip="Reject"),
        Binding("a", "add", "Add", id="attendance.add", tooltip="Add a shift or holiday"),
        Binding("e", "edit", "Edit", id="attendance.edit", tooltip="Edit the shift"),
        Binding("x", "remove", "Remove", id="attendance.remove", tooltip="Remove"),
    ]
    ACTION_PERMISSIONS = {
        "manual": Action.REQUEST_PUNCH,
        "process": Action.CORRECT_ATTENDANCE,
        "decide": Action.APPROVE_PUNCHES,
        "add": Action.MANAGE_ATTENDANCE,
        "edit": Action.MANAGE_ATTENDANCE,
        "remove": Action.MANAGE_ATTENDANCE,
    }
    PANE_ACTIONS = {
        "month": {"grid"},
        "department": {"grid"},
        "manual": {"grid"},
        "process": {"grid"},
        "decide": {"queue"},
        "add": {"shifts", "holidays"},
        "edit": {"shifts"},
        "remove": {"shifts", "holidays"},
    }

    def __init__(self) -> None:
        super().__init__()
        self.month = date.today().replace(day=1)
        self.department: str | None = None
        self.codes: list[str] = []
        self.pending: dict[str, Any] = {}
        self.shifts: dict[str, Any] = {}

    def body(self) -> ComposeResult:
        with ContentSwitcher(initial="grid", id="attendance-switcher"):
            with Vertical(id="grid"):
                yield Static("", id="grid-title", markup=False)
                yield DataTable(id="att-grid", cursor_type="cell", zebra_stripes=True)
                yield Static("", id="day-detail", markup=False)
            with Vertical(id="queue"):
                yield DataTable(id="queue-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="queue-detail", markup=False)
            with Vertical(id="shifts"):
                yield DataTable(id="shift-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="holidays"):
                yield DataTable(id="holiday-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.month = self.bo.clock().date().replace(day=1)
        self.query_one("#queue-table", DataTable).add_columns(
            "id", "employee", "at", "dir", "by", "reason"
        )
        self.query_one("#shift-table", DataTable).add_columns(
            "name", "start", "end", "grace", "half/full", "lunch", "ot", "off"
        )
        self.query_one("#holiday-table", DataTable).add_columns("date", "day", "type", "name")
        self.query_one("#att-grid", DataTable).focus()

    @property
    def pane(self) -> str:
        return str(self.query_one(ContentSwitcher).current)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        panes = self.PANE_ACTIONS.get(action)
        if panes is not None and self.pane not in panes:
            return False
        return super().check_action(action, parameters)

    def action_pane(self, name: str) -> None:
        self.query_one(ContentSwitcher).current = name
        tables = {
            "grid": "#att-grid",
            "queue": "#queue-table",
            "shifts": "#shift-table",
            "holidays": "#holiday-table",
        }
        self.query_one(tables[name]).focus()
        self.refresh_bindings()
        self.reload()

    def reload(self) -> None:
        loaders = {
            "grid": self.load_grid,
            "queue": self.load_queue,
            "shifts": self.load_shifts,
            "holidays": self.load_holidays,
        }
        loaders[self.pane]()

    # -- the grid ------------------------------------------------------------------------------

    @work(exclusive=True, group="attendance-grid", exit_on_error=False)
    async def load_grid(self) -> None:
        from batchops_core.attendance.register import month_register

        reg = await self.call(month_register, month=self.month, department=self.department)
        table = self.query_one("#att-grid", DataTable)
        keep = table.cursor_coordinate
        table.clear(columns=True)
        table.cell_padding = 0  # 3 columns a day: 24 days in view at 80 columns
        table.add_column(" code", key="code", width=7)
        for day in range(1, reg.days + 1):
            table.add_column(f"{day:>2}", key=str(day), width=3)
        for status in ("P", "A"):
            table.add_column(f" {status}", key=f"t-{status}", width=4)
        self.codes = [r.code for r in reg.rows]
        for r in reg.rows:
            table.add_row(
                " " + clip(r.code, 6),
                *(cell(s) for s in r.statuses),
                f"{r.count('P'):>3}",
                Text(f"{r.count('A'):>3}", style="red" if r.count("A") else ""),
                key=r.code,
            )
        totals = {s: sum(r.count(s) for r in reg.rows) for s in TOTALS}
        where = self.department or "all departments"
        self.query_one("#grid-title", Static).update(
            f"{self.month:%B %Y} · {where} · {len(reg.rows)} employees · "
            + " ".join(f"{k} {v}" for k, v in totals.items())
            + " · late "
            + str(sum(r.late_days for r in reg.rows))
        )
        if reg.rows:
            table.move_cursor(
                row=min(keep.row, len(reg.rows) - 1), column=max(1, min(keep.column, reg.days))
            )
        else:
            self.query_one("#day-detail", Static).update(
                "no processed days for this month: press p to process it, [ ] to change month."
            )

    def selected_day(self) -> tuple[str, date] | None:
        table = self.query_one("#att-grid", DataTable)
        if not table.row_count:
            return None
        row, column = table.cursor_coordinate
        day = max(1, column)
        if day > 31 or row >= len(self.codes):
            return None
        try:
            return self.codes[row], self.month.replace(day=day)
        except ValueError:
            return None

    @on(DataTable.CellHighlighted, "#att-grid")
    def _cell_moved(self, event: DataTable.CellHighlighted) -> None:
        chosen = self.selected_day()
        if chosen is not None:
            self.load_detail(*chosen)

    @work(exclusive=True, group="attendance-detail", exit_on_error=False)
    async def load_detail(self, code: str, day: date) -> None:
        from batchops_core.attendance.days import show_days
        from batchops_core.attendance.punches import punches_of_day

        rows = await self.call(show_days, employee=code, date_from=day, date_to=day)
        punches = await self.call(punches_of_day, employee=code, day=day)
        self.query_one("#day-detail", Static).update(day_detail(rows[0] if rows else None, punches))

    def action_month(self, step: int) -> None:
        shifted = self.month + timedelta(days=32 if step > 0 else -1)
        self.month = shifted.replace(day=1)
        self.load_grid()

    def action_department(self) -> None:
        async def chosen(values: dict[str, str]) -> None:
            self.department = values.get("department", "").strip() or None
            self.load_grid()

        self.run_worker(self._ask_department(chosen), group="attendance-dept", exclusive=True)

    async def _ask_department(self, then: Any) -> None:
        from batchops_core.attendance.employees import list_departments

        names = await self.call(list_departments)
        options = [("all departments", "")] + [(n, n) for n in names]
        self.ask(
            "Department",
            [
                Field(
                    "department",
                    "Department",
                    kind="select",
                    options=options,
                    value=self.department or "",
                )
            ],
            then,
            submit="Show",
        )

    def action_manual(self) -> None:
        chosen = self.selected_day()
        if chosen is None:
            return
        code, day = chosen

        async def send(values: dict[str, str]) -> None:
            from batchops_core.attendance.punches import request_punch

            info = await self.call(
                request_punch,
                code=code,
                at=f"{day} {values['time'].strip()}",
                direction=values["direction"],
                reason=values["reason"],
            )
            self.notify(f"manual punch #{info.id} is pending approval.", markup=False)

        self.ask(
            f"Manual punch for {code} on {day}",
            [
                Field("time", "Time (HH:MM)", required=True, placeholder="09:04"),
                Field(
                    "direction",
                    "Direction",
                    kind="select",
                    value="IN",
                    options=[("IN", "IN"), ("OUT", "OUT"), ("BOTH", "BOTH")],
                ),
                Field("reason", "Reason", required=True),
            ],
            send,
            submit="Request",
            done=self.reload,
        )

    def action_process(self) -> None:
        self.process_month()

    @work(exclusive=True, group="attendance-process", exit_on_error=False)
    async def process_month(self) -> None:
        from batchops_core.attendance.days import process_attendance

        last = (self.month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        result = await self.call(process_attendance, date_from=self.month, date_to=last)
        self.notify(f"processed {result.days} days: {result.changed} rows written.", markup=False)
        self.load_grid()

    # -- approvals -----------------------------------------------------------------------------

    @work(exclusive=True, group="attendance-queue", exit_on_error=False)
    async def load_queue(self) -> None:
        from batchops_core.attendance.punches import list_punches

        rows = await self.call(list_punches, approval="pending")
        self.pending = {str(p.id): p for p in rows}
        table = self.query_one("#queue-table", DataTable)
        table.clear()
        for p in rows:
            table.add_row(
                str(p.id),
                clip(f"{p.employee} {p.employee_name}", 20),
                f"{p.at:%m-%d %H:%M}",
                p.direction.value,
                clip(p.requested_by, 10),
                clip(p.reason, 24),
                key=str(p.id),
            )
        self.query_one("#queue-detail", Static).update(
            f"{len(rows)} pending · y approve · n reject" if rows else "nothing waiting."
        )

    def action_decide(self, approve: bool) -> None:
        table = self.query_one("#queue-table", DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self.decide(int(str(key)), approve)

    @work(exclusive=True, group="attendance-decide", exit_on_error=False)
    async def decide(self, punch_id: int, approve: bool) -> None:
        from batchops_core.attendance.punches import decide_punch

        info = await self.call(decide_punch, punch_id=punch_id, approve=approve)
        self.notify(f"manual punch #{info.id} {info.approval.value}.", markup=False)
        self.load_queue()
