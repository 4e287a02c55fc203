"""3 · Runs: the run history (server-side pages and filters), stage-by-stage detail, rerun."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Select, Static

from batchops_core.enums import RunKind, RunStatus
from batchops_core.errors import ValidationFailed
from batchops_core.permissions import Action
from batchops_tui.formatting import add_plain_row, clip, duration, number, short_when, when
from batchops_tui.screens.base import ListDetailScreen
from batchops_tui.widgets.common.paged_table import PagedTable

if TYPE_CHECKING:
    from batchops_core.services.runs import RunDetail, RunRow

STATUS_STYLE = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.RUNNING: "yellow",
    RunStatus.QUEUED: "cyan",
    RunStatus.CANCELLED: "dim",
    RunStatus.SKIPPED: "dim",
}
COLUMNS = (
    ("id", "#", 1, 6),
    ("status", "status", 1, 9),
    ("kind", "kind", 3, 10),
    ("title", "file / schedule", 1, 28),
    ("dept", "dept", 4, 12),
    ("created", "created", 3, 11),
    ("took", "took", 2, 7),
    ("rows", "rows in→out", 2, 13),
)
"""(key, label, priority, width): at 80 columns #, status, file, took and rows; the rest (kind,
department, times) are in the detail pane."""


def status_text(status: Any) -> Text:
    return Text(str(status.value), style=STATUS_STYLE.get(status, ""))


def run_cells(run: RunRow) -> list[object]:
    rows = f"{number(run.rows_in)}→{number(run.rows_out)}" if run.rows_in is not None else "—"
    return [
        str(run.id),
        status_text(run.status),
        run.kind.value,
        clip(run.title, 28),
        clip(run.department or "", 12),
        short_when(run.created_at),
        duration(run.duration_seconds),
        rows,
    ]


def parse_day(text: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValidationFailed(f"'{text}' is not a date; write it as YYYY-MM-DD.") from None


def render_run(detail: RunDetail) -> Table:
    run = detail.run
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim")
    grid.add_column()
    add_plain_row(
        grid,
        "run",
        Text.assemble(f"#{run.id} ", status_text(run.status), f" attempt {run.attempt}"),
    )
    add_plain_row(grid, "what", f"{run.kind.value}: {run.title}")
    if run.department:
        add_plain_row(grid, "department", run.department)
    add_plain_row(grid, "created", when(run.created_at))
    add_plain_row(grid, "worker", run.worker or "—")
    add_plain_row(grid, "started", when(run.started_at))
    add_plain_row(grid, "finished", when(run.finished_at))
    if run.error_code:
        add_plain_row(
            grid, "error", Text(f"{run.error_code}: {run.error_message or ''}", style="red")
        )
    if detail.incident_ids:
        add_plain_row(grid, "incidents", ", ".join(f"#{i}" for i in detail.incident_ids))
    outer = Table.grid()
    add_plain_row(outer, grid)
    if detail.steps:
        steps = Table(box=None, pad_edge=False, header_style="bold", expand=False)
        for name in ("stage", "status", "took", "in", "out"):
            steps.add_column(name)
        for step in detail.steps:
            add_plain_row(
                steps,
                step.stage.value,
                Text(
                    step.status.value,
                    style=STATUS_STYLE.get(RunStatus(step.status.value), "")
                    if step.status.value in RunStatus._value2member_map_
                    else "",
                ),
                duration(step.duration_ms, ms=True),
                number(step.rows_in),
                number(step.rows_out),
            )
        add_plain_row(outer, Text(""))
        add_plain_row(outer, steps)
    lines = list(detail.log)
    for step in detail.steps:
        lines += [f"[{step.stage.value}] {line}" for line in step.log]
    if lines:
        add_plain_row(outer, Text("\nlog", style="bold"))
        add_plain_row(outer, Text("\n".join(lines[-200:])))
    return outer


class RunsScreen(ListDetailScreen):
    DETAIL_PANE = "#run-detail"
    TITLE = "Runs"
    EVENT_PREFIXES = ("run", "upload")
    BINDINGS = [
        Binding(
            "f",
            "rerun",
            "Rerun failed stage",
            id="runs.rerun",
            tooltip="Run again from the failed stage",
        ),
        Binding(
            "enter",
            "open",
            "Details",
            show=False,
            id="runs.open",
            tooltip="Show the stages and log",
        ),
        Binding(
            "x",
            "cancel_run",
            "Cancel run",
            show=False,
            id="runs.cancel",
            tooltip="Stop the queued or running run shown in the detail",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.detail: RunDetail | None = None
        self._filters_loaded = False

    def body(self) -> ComposeResult:
        with Horizontal(classes="filters"):
            yield Select([(s.value, s) for s in RunStatus], prompt="status", id="f-status")
            yield Select([(k.value, k) for k in RunKind], prompt="kind", id="f-kind")
            yield Select([], prompt="dept", id="f-dept")
            yield Select([], prompt="schedule", id="f-job")
            yield Input(placeholder="since", id="f-since", tooltip="YYYY-MM-DD, then enter")
        with Horizontal(classes="split"):
            yield PagedTable(COLUMNS, page_size=self.app.settings.tui.page_size, id="runs-table")  # type: ignore[attr-defined]
            with VerticalScroll(classes="detail", id="run-detail"):
                yield Static("", id="run-body")

    def reload(self) -> None:
        self.load()
        if self.detail is not None:
            self.load_detail(self.detail.run.id)
        if not self._filters_loaded:
            self.load_filters()

    def _filters(self) -> dict[str, Any]:
        value = self.select_value
        return {
            "status": value("#f-status"),
            "kind": value("#f-kind"),
            "job_id": value("#f-job"),
            "department_id": value("#f-dept"),
            "since": parse_day(self.query_one("#f-since", Input).value),
        }

    @work(exclusive=True, group="runs", exit_on_error=False)
    async def load(self) -> None:
        from batchops_core.services.runs import list_runs

        table = self.query_one(PagedTable)
        page = await self.page_of(list_runs, **self._filters())
        table.show(page, [(str(r.id), run_cells(r)) for r in page.items])

    @work(exclusive=True, group="runs-filters", exit_on_error=False)
    async def load_filters(self) -> None:
        from batchops_core.services.schedules import list_schedules
        from batchops_core.services.uploads import list_departments

        page = await self.call(list_schedules, limit=500)
        self.query_one("#f-job", Select).set_options([(s.name, s.id) for s in page.items])
        departments = await self.call(list_departments)
        self.query_one("#f-dept", Select).set_options([(d.name, d.id) for d in departments])
        self._filters_loaded = True

    @work(exclusive=True, group="runs-detail", exit_on_error=False)
    async def load_detail(self, run_id: int) -> None:
        from batchops_core.services.runs import get_run

        self.detail = await self.call(get_run, run_id=run_id)
        self.query_one("#run-body", Static).update(render_run(self.detail))
        self.show_detail()

    @on(Input.Submitted, "#f-since")
    def _since_changed(self) -> None:
        self.filters_changed()

    def action_open(self) -> None:
        key = self.query_one(PagedTable).selected_key()
        if key:
            self.load_detail(int(key))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run":  # offered only while the open run can still be stopped
            detail = self.detail
            live = (RunStatus.QUEUED, RunStatus.RUNNING)
            return detail is not None and detail.run.status in live
        if action == "rerun":
            detail = self.detail
            if detail is None:
                return None
            if detail.run.kind is RunKind.PIPELINE and not self.can(Action.MANAGE_ISSUES):
                return False
            if not self.can(Action.RUN_SCHEDULES):
                return False
            return detail.can_rerun or None
        return super().check_action(action, parameters)

    def action_rerun(self) -> None:
        detail = self.detail
        if detail is None or not detail.can_rerun:
            return
        stage = detail.failed_stage
        where = f" from the {stage.value} stage" if stage else ""
        self.confirm(
            "Rerun this run?",
            f"Run #{detail.run.id} ({detail.run.title}) will be queued again{where}.",
            lambda: self.rerun(detail.run.id),
            confirm="Rerun",
        )

    @work(exclusive=True, group="write-runs", exit_on_error=False)
    async def rerun(self, run_id: int) -> None:
        from batchops_core.services.runs import rerun_from_failed_stage

        await rerun_from_failed_stage(
            self.bo.db, await self.bo.get_dispatcher(), actor=self.bo.actor, run_id=run_id
        )
        self.notify(f"Run #{run_id} queued again.", title="Rerun", markup=False)
        self.reload()

    def action_cancel_run(self) -> None:
        detail = self.detail
        if detail is None:
            return
        self.confirm(
            "Cancel this run?",
            f"Stop run #{detail.run.id} ({detail.run.title})? It is recorded as cancelled; an "
            "upload stops at its next stage and is not published.",
            lambda: self.cancel_run(detail.run.id),
            confirm="Cancel run",
        )

    @work(exclusive=True, group="write-runs", exit_on_error=False)
    async def cancel_run(self, run_id: int) -> None:
        from batchops_core.services.actions import cancel_run

        done = await self.call(cancel_run, run_id=run_id)
        self.notify(f"Run #{run_id} cancelled (it was {done.was}).", markup=False)
        self.reload()
