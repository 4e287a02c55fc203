"""7 · Sources: external systems with last sync, lag and health; a source's jobs (files, chosen
files and why, errors); sync now, force a day, test-parse a file; the missing-data grid
(sources × days) whose cells are marked and run; and a Records view with filters and export.

The screen renders and calls services only: listings through `call()` in its own unit of work,
syncs and test-parses through the sources services with the app's database and dispatcher. Jobs
update live: every `source.*` and `upload.*` event reloads what is shown.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, DataTable, Input, Static

from batchops_core.permissions import Action
from batchops_tui.formatting import clip, short_when
from batchops_tui.screens.base import BaseScreen
from batchops_tui.screens.dialogs import Field

if TYPE_CHECKING:
    from batchops_core.sources.service import JobInfo, SourceInfo

HEALTH_STYLE = {"ok": "green", "failing": "bold red", "disabled": "dim", "never synced": "yellow"}
CELL = {
    "ok": ("■", "green"),
    "missing": ("✗", "bold red"),
    "failed": ("!", "bold red"),
    "processing": ("…", "yellow"),
    "running": ("…", "yellow"),
    "queued": ("…", "yellow"),
    "-": ("·", "dim"),
}
GRID_DAYS = 10
RECORDS_PAGE = 200


def lag(row: SourceInfo, now: datetime) -> str:
    """How long since data last arrived, in the largest sensible unit."""
    if row.last_success_at is None:
        return "—"
    seconds = (now - row.last_success_at).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return "now"


def job_detail(job: JobInfo) -> str:
    lines = [
        f"{job.source} {job.day} {job.partition or ''} — {job.status.value}, try {job.attempts}"
    ]
    for pick in job.chosen:
        lines.append(f"chosen {pick.get('name')}: {pick.get('reason', '')}")
    if job.files:
        lines.append("listed: " + ", ".join(str(f.get("name")) for f in job.files))
    if job.error:
        lines.append(f"error: {job.error}")
    return "\n".join(lines)


class SourcesScreen(BaseScreen):
    TITLE = "Sources"
    CSS_PATH = "sources.tcss"
    EVENT_PREFIXES = ("source", "upload", "calendar")
    BINDINGS = [
        Binding("l", "pane('sources')", "Sources", id="sources.list", tooltip="Sources and jobs"),
        Binding(
            "m", "pane('missing')", "Missing", id="sources.missing", tooltip="Missing-data grid"
        ),
        Binding("v", "pane('records')", "Records", id="sources.records", tooltip="Query records"),
        Binding("s", "sync", "Sync now", id="sources.sync", tooltip="Sync the source now"),
        Binding("f", "force", "Force day", id="sources.force", tooltip="Fetch a day again"),
        Binding("t", "test_parse", "Test", id="sources.test", tooltip="Test-parse a sample file"),
        Binding("space", "mark", "Mark", id="sources.mark", tooltip="Mark a missing cell"),
        Binding("x", "run_marked", "Run", id="sources.run", tooltip="Run the marked cells"),
        Binding("o", "export", "Export", id="sources.export", tooltip="Export records as CSV"),
    ]
    ACTION_PERMISSIONS = {
        "sync": Action.RUN_SOURCES,
        "force": Action.RUN_SOURCES,
        "run_marked": Action.RUN_SOURCES,
        "mark": Action.RUN_SOURCES,
    }
    PANE_ACTIONS = {
        "sync": "sources",
        "force": "sources",
        "test_parse": "sources",
        "mark": "missing",
        "run_marked": "missing",
        "export": "records",
    }

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[str, SourceInfo] = {}
        self.jobs: dict[str, JobInfo] = {}
        self.grid_days: list[date] = []
        self.grid_rows: list[tuple[str, str]] = []
        self.marked: set[tuple[int, int]] = set()
        self.records_after: Any = None

    def body(self) -> ComposeResult:
        with ContentSwitcher(initial="sources", id="sources-switcher"):
            with Vertical(id="sources"):
                yield DataTable(id="sources-table", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="jobs-table", cursor_type="row")
                yield Static("", id="job-detail", markup=False)
            with Vertical(id="missing"):
                yield Static("", id="grid-legend", markup=False)
                yield DataTable(id="grid-table", cursor_type="cell")
            with Vertical(id="records"):
                yield Input(
                    placeholder="source  from  to  col=value …  (Enter)", id="records-filter"
                )
                yield DataTable(id="records-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="records-status", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        sources = self.query_one("#sources-table", DataTable)
        sources.add_columns("name", "kind", "department", "health", "last sync", "lag")
        self.query_one("#jobs-table", DataTable).add_columns(
            "date", "partition", "status", "tries", "rows", "error"
        )
        self.query_one("#records-table", DataTable).add_columns(
            "source", "date", "part", "key", "data"
        )
        sources.focus()

    @property
    def pane(self) -> str:
        return str(self.query_one(ContentSwitcher).current)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        wanted = self.PANE_ACTIONS.get(action)
        if wanted is not None and wanted != self.pane:
            return False
        return super().check_action(action, parameters)

    def action_pane(self, name: str) -> None:
        self.query_one(ContentSwitcher).current = name
        focus = {
            "sources": "#sources-table",
            "missing": "#grid-table",
            "records": "#records-filter",
        }
        self.query_one(focus[name]).focus()
        self.refresh_bindings()
        self.reload()

    def reload(self) -> None:
        if self.pane == "sources":
            self.load_sources()
        elif self.pane == "missing":
            self.load_grid()

    # -- sources and jobs ----------------------------------------------------------------------

    def selected_source(self) -> SourceInfo | None:
        table = self.query_one("#sources-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.sources.get(str(key))

    @work(exclusive=True, group="sources", exit_on_error=False)
    async def load_sources(self) -> None:
        from batchops_core.sources.service import list_sources

        rows = await self.call(list_sources)
        self.sources = {r.name: r for r in rows}
        table = self.query_one("#sources-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for r in rows:
            table.add_row(
                clip(r.name, 18),
                r.kind.value,
                clip(r.department or "—", 12),
                Text(r.health, style=HEALTH_STYLE.get(r.health, "")),
                short_when(r.last_sync_at),
                lag(r, self.bo.clock()),
                key=r.name,
            )
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1))
            self.load_jobs(self.selected_source().name)  # type: ignore[union-attr]

    @on(DataTable.RowHighlighted, "#sources-table")
    def _source_moved(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self.load_jobs(str(event.row_key.value))

    @work(exclusive=True, group="jobs", exit_on_error=False)
    async def load_jobs(self, name: str) -> None:
        from batchops_core.sources.service import list_jobs

        jobs = await self.call(list_jobs, name=name, limit=30)
        self.jobs = {str(j.id): j for j in jobs}
        table = self.query_one("#jobs-table", DataTable)
        table.clear()
        for j in jobs:
            style = {"succeeded": "green", "failed": "bold red"}.get(j.status.value, "yellow")
            table.add_row(
                j.day.isoformat(),
                clip(j.partition or "—", 10),
                Text(j.status.value, style=style),
                str(j.attempts),
                f"{j.rows:,}",
                clip(j.error or "", 30),
                key=str(j.id),
            )
        detail = self.query_one("#job-detail", Static)
        detail.update(job_detail(jobs[0]) if jobs else "no jobs yet: press s to sync.")

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _job_moved(self, event: DataTable.RowHighlighted) -> None:
        job = self.jobs.get(str(event.row_key.value))
        if job is not None:
            self.query_one("#job-detail", Static).update(job_detail(job))

    def action_sync(self) -> None:
        row = self.selected_source()
        if row is not None:
            self.run_sync(row.name, None, False)

    def action_force(self) -> None:
        row = self.selected_source()
        if row is None:
            return
        self.ask(
            f"Force a day of {row.name}",
            [Field("day", "Date (YYYY-MM-DD)", required=True, placeholder="2026-12-01")],
            lambda values: self.run_sync(
                row.name, [date.fromisoformat(values["day"].strip())], True
            ),
            submit="Fetch again",
        )

    @work(exclusive=False, group="sync", exit_on_error=False)
    async def run_sync(self, name: str, days: list[date] | None, force: bool) -> None:
        from batchops_core.sources.sync import sync_source

        self.notify(f"Syncing {name} …", markup=False)
        report = await sync_source(
            self.bo.db,
            self.bo.settings,
            actor=self.bo.actor,
            name=name,
            days=days,
            force=force,
            wait=True,
            dispatcher=await self.bo.get_dispatcher(),
        )
        if report.error:
            self.notify(f"{name}: {report.error}", severity="error", markup=False)
        else:
            self.notify(f"{name}: {report.rows:,} rows, {len(report.jobs)} job(s).", markup=False)
        self.reload()

    def action_test_parse(self) -> None:
        row = self.selected_source()
        if row is None:
            return
        self.ask(
            f"Test {row.name}",
            [
                Field(
                    "file", "Sample file (empty: connect or list)", placeholder="/path/to/file.csv"
                )
            ],
            lambda values: self.run_test(row.name, values.get("file", "").strip() or None),
            submit="Test",
        )

    @work(exclusive=True, group="test", exit_on_error=False)
    async def run_test(self, name: str, file: str | None) -> None:
        from batchops_core.sources.testing import test_source

        report = await test_source(
            self.bo.db, self.bo.settings, actor=self.bo.actor, name=name, file=file
        )
        text = "\n".join(report.lines()[:12])
        self.query_one("#job-detail", Static).update(text)
        self.notify(report.message, severity="information" if report.ok else "error", markup=False)

    # -- missing-data grid ---------------------------------------------------------------------

    @work(exclusive=True, group="grid", exit_on_error=False)
    async def load_grid(self) -> None:
        from batchops_core.sources.missing import missing_grid

        yesterday = self.bo.clock().date() - timedelta(days=1)
        days, rows = await self.call(
            missing_grid, settings=self.bo.settings, days=GRID_DAYS, end=yesterday
        )
        self.grid_days = days
        self.grid_rows = [(r.source, r.partition) for r in rows]
        table = self.query_one("#grid-table", DataTable)
        table.clear(columns=True)
        table.add_column("source", width=18)
        for day in days:
            table.add_column(day.strftime("%d"), width=3)
        for y, r in enumerate(rows):
            cells: list[object] = [clip(f"{r.source} {r.partition}".strip(), 18)]
            for x, day in enumerate(days, start=1):
                mark, style = CELL.get(r.cells[day], ("?", ""))
                if (y, x) in self.marked:
                    style += " reverse"
                cells.append(Text(mark, style=style))
            table.add_row(*cells)
        missing = sum(v in ("missing", "failed") for r in rows for v in r.cells.values())
        self.query_one("#grid-legend", Static).update(
            f"{days[0]:%d %b} – {days[-1]:%d %b}: {missing} missing · ■ ok ✗ missing ! failed "
            "… running · not expected · space mark, x run"
        )

    def action_mark(self) -> None:
        table = self.query_one("#grid-table", DataTable)
        y, x = table.cursor_coordinate.row, table.cursor_coordinate.column
        if x == 0 or y >= len(self.grid_rows):
            return
        self.marked ^= {(y, x)}
        self.load_grid()

    def action_run_marked(self) -> None:
        table = self.query_one("#grid-table", DataTable)
        cells = self.marked or {(table.cursor_coordinate.row, table.cursor_coordinate.column)}
        wanted: dict[str, list[date]] = {}
        for y, x in sorted(cells):
            if x == 0 or y >= len(self.grid_rows):
                continue
            wanted.setdefault(self.grid_rows[y][0], []).append(self.grid_days[x - 1])
        self.marked = set()
        for name, days in wanted.items():
            self.run_sync(name, sorted(set(days)), False)

    # -- records -------------------------------------------------------------------------------

    def _filters(self) -> dict[str, Any]:
        from batchops_core.sources.records import parse_where

        words = self.query_one("#records-filter", Input).value.split()
        where = [w for w in words if "=" in w]
        dates = [date.fromisoformat(w) for w in words if "=" not in w and w[:2].isdigit()]
        names = [w for w in words if "=" not in w and not w[:2].isdigit()]
        return {
            "source": " ".join(names) or None,
            "start": dates[0] if dates else None,
            "end": dates[1] if len(dates) > 1 else (dates[0] if dates else None),
            "where": parse_where(where),
        }

    @on(Input.Submitted, "#records-filter")
    def _query_records(self) -> None:
        self.records_after = None
        self.load_records()

    @work(exclusive=True, group="records", exit_on_error=False)
    async def load_records(self) -> None:
        import json

        from batchops_core.sources.records import query_records

        page = await self.call(query_records, limit=RECORDS_PAGE, **self._filters())
        table = self.query_one("#records-table", DataTable)
        table.clear()
        for r in page.items:
            table.add_row(
                clip(r.source, 12),
                r.date.isoformat(),
                clip(r.partition, 6),
                clip(r.key, 10),
                clip(json.dumps(r.data, default=str), 60),
            )
        more = " (more: o exports all)" if page.after else ""
        self.query_one("#records-status", Static).update(f"{len(page.items)} record(s) shown{more}")
        table.focus()

    def action_export(self) -> None:
        self.export_records()

    @work(exclusive=True, group="export", exit_on_error=False)
    async def export_records(self) -> None:
        import csv
        import json

        from batchops_core.infra.clock import utcnow
        from batchops_core.sources.records import query_records

        folder = self.bo.settings.export_path
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"records-{utcnow():%Y%m%dT%H%M%S}.csv"
        filters, after, count = self._filters(), None, 0
        with target.open("w", encoding="utf-8", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["source", "date", "partition", "key", "data"])
            while True:
                page = await self.call(query_records, limit=1000, after=after, **filters)
                for r in page.items:
                    out.writerow(
                        [r.source, r.date.isoformat(), r.partition, r.key, json.dumps(r.data)]
                    )
                count += len(page.items)
                if page.after is None:
                    break
                after = page.after
        self.notify(f"{count:,} record(s) exported to {target}.", markup=False)
