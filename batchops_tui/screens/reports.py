"""5 · Reports: published reports, searchable; summary, CSV head as a table, PDF text; export.

Previews read files, so they run in thread workers (pdfplumber takes ~0.15 s a page) and are
bounded to the first rows and pages.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from batchops_core.permissions import Action
from batchops_tui.formatting import add_plain_row, clip, clip_lines, number, readable, short_when
from batchops_tui.screens.base import ListDetailScreen
from batchops_tui.screens.dialogs import Field
from batchops_tui.widgets.common.paged_table import PagedTable

if TYPE_CHECKING:
    from batchops_core.services.reports import ReportDetail, ReportRow

COLUMNS = (
    ("id", "#", 1, 5),
    ("file", "file", 1, 30),
    ("dept", "dept", 3, 14),
    ("status", "status", 2, 9),
    ("rows", "rows", 2, 7),
    ("quar", "quarantined", 4, 11),
    ("published", "published", 3, 11),
)
"""(key, label, priority, width): the columns that fit by priority; all of it is in the detail."""


def report_cells(row: ReportRow) -> list[object]:
    return [
        str(row.upload_id),
        clip(row.filename, 30),
        clip(row.department, 14),
        Text(row.status.value, style="green" if row.status.value == "published" else "yellow"),
        number(row.rows_out),
        number(row.rows_quarantined),
        short_when(row.published_at),
    ]


STAT_COLUMNS = ("count", "missing", "mean", "std", "min", "median", "max")


def _stat(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return "—" if value is None else str(value)


def numeric_table(numeric: dict[str, dict[str, object]]) -> Table:
    """The summary statistics of the numeric columns, one row per column."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("column")
    for name in STAT_COLUMNS:
        table.add_column(name, justify="right")
    for column, stats in numeric.items():
        add_plain_row(table, clip(column, 18), *(_stat(stats.get(k)) for k in STAT_COLUMNS))
    return table


def stored(key: str | None) -> str:
    """A stored file as it sits in storage (`exports/12/marks.csv`), the same on every host."""
    return key or "—"


def render_summary(detail: ReportDetail) -> Group:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim")
    grid.add_column()
    row = detail.row
    add_plain_row(grid, "upload", f"#{row.upload_id} {row.filename}")
    add_plain_row(grid, "CSV", stored(row.report_csv))
    add_plain_row(grid, "PDF", stored(row.report_pdf))
    if detail.fixlist_csv:
        add_plain_row(grid, "fix-list", stored(detail.fixlist_csv))
    nested: dict[str, object] = {}
    for key, value in detail.summary.items():
        if isinstance(value, dict | list):
            nested[key] = value
        else:
            add_plain_row(grid, str(key), str(value))
    parts: list[object] = [grid]
    numeric = nested.pop("numeric", None)
    if isinstance(numeric, dict) and numeric:
        parts += [Text("\nnumeric columns", style="bold"), numeric_table(numeric)]
    for key, value in nested.items():
        title = str(key).replace("_", " ")
        parts += [Text(f"\n{title}", style="bold"), Text(clip_lines(readable(value), 40))]
    return Group(*parts)


class ReportsScreen(ListDetailScreen):
    DETAIL_PANE = "#report-detail"
    FOLLOW_CURSOR = False
    TITLE = "Reports"
    EVENT_PREFIXES = ("upload",)
    BINDINGS = [
        Binding(
            "p", "next_tab", "Preview", id="reports.tab", tooltip="Summary, CSV, PDF, fix-list"
        ),
        Binding("e", "export", "Export", id="reports.export", tooltip="Copy the report to a path"),
        Binding(
            "d",
            "deliver",
            "Download",
            id="reports.deliver",
            tooltip="Send the file to your browser",
        ),
        Binding(
            "m",
            "send_to",
            "Send to",
            show=False,
            id="reports.send",
            tooltip="Mail the CSV/PDF to the department's contact and staff",
        ),
        Binding(
            "a",
            "process_again",
            "Again",
            show=False,
            id="reports.again",
            tooltip="Process the file again with another plan",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.detail: ReportDetail | None = None

    def body(self) -> ComposeResult:
        with Horizontal(classes="split"):
            yield PagedTable(
                COLUMNS,
                page_size=self.app.settings.tui.page_size,  # type: ignore[attr-defined]
                placeholder="search file or department (enter)",
                id="reports-table",
            )
            with Vertical(classes="detail", id="report-detail"), TabbedContent(id="report-preview"):
                with TabPane("Summary", id="tab-summary"), VerticalScroll():
                    yield Static("", id="report-summary")
                with TabPane("CSV", id="tab-csv"):
                    yield DataTable(id="csv-preview", zebra_stripes=True)
                with TabPane("PDF", id="tab-pdf"), VerticalScroll():
                    yield Static("", id="pdf-preview")
                with TabPane("Fix-list", id="tab-fixlist"):
                    yield Static("", id="fixlist-note")
                    yield DataTable(id="fixlist-preview", zebra_stripes=True)

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="reports", exit_on_error=False)
    async def load(self) -> None:
        from batchops_core.services.reports import list_reports

        table = self.query_one(PagedTable)
        page = await self.page_of(list_reports)
        table.show(page, [(str(r.upload_id), report_cells(r)) for r in page.items])

    @work(exclusive=True, group="reports-detail", exit_on_error=False)
    async def load_detail(self, upload_id: int) -> None:
        from batchops_core.services.reports import get_report

        self.detail = await self.call(get_report, upload_id=upload_id)
        self.query_one("#report-summary", Static).update(render_summary(self.detail))
        self.query_one("#csv-preview", DataTable).clear(columns=True)
        self.query_one("#fixlist-preview", DataTable).clear(columns=True)
        self.query_one("#pdf-preview", Static).update("loading…")
        self.show_detail()
        self.preview_csv(self.detail)
        self.preview_pdf(self.detail)
        self.preview_fixlist(self.detail)

    @work(exclusive=True, group="reports-csv", exit_on_error=False)
    async def preview_csv(self, detail: ReportDetail) -> None:
        from batchops_core.services.reports import ReportFormat, csv_head, report_file

        path = await report_file(self.app.settings, detail, ReportFormat.CSV)  # type: ignore[attr-defined]
        header, rows = await asyncio.to_thread(csv_head, path, 100)
        self._show_csv(header, rows)

    @work(exclusive=True, group="reports-fixlist", exit_on_error=False)
    async def preview_fixlist(self, detail: ReportDetail) -> None:
        from batchops_core.services.reports import ReportFormat, csv_head, report_file

        note = self.query_one("#fixlist-note", Static)
        if not detail.fixlist_csv:
            note.update("No fix-list: every row passed validation.")
            return
        path = await report_file(self.app.settings, detail, ReportFormat.FIXLIST)  # type: ignore[attr-defined]
        header, rows = await asyncio.to_thread(csv_head, path, 100)
        note.update(f"Rows to fix (first {len(rows)}); e exports the whole fix-list.")
        self._show_csv(header, rows, "#fixlist-preview")

    def _show_csv(
        self, header: list[str], rows: list[list[str]], selector: str = "#csv-preview"
    ) -> None:
        table = self.query_one(selector, DataTable)
        table.clear(columns=True)
        table.add_columns(*header)
        for row in rows:
            add_plain_row(table, *(row + [""] * (len(header) - len(row)))[: len(header)])

    @work(exclusive=True, group="reports-pdf", exit_on_error=False)
    async def preview_pdf(self, detail: ReportDetail) -> None:
        from batchops_core.services.reports import ReportFormat, pdf_text, report_file

        path = await report_file(self.app.settings, detail, ReportFormat.PDF)  # type: ignore[attr-defined]
        text = await asyncio.to_thread(pdf_text, path, 3)
        self.query_one("#pdf-preview", Static).update(Text(text))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "process_again":
            return self.detail is not None
        if action == "send_to":
            return self.detail is not None and self.can(Action.SEND_REPORTS)
        if action in ("export", "next_tab"):
            return True if self.detail is not None else None
        if action == "deliver":
            return (self.detail is not None) if self.app.is_web else False
        return super().check_action(action, parameters)

    def action_next_tab(self) -> None:
        tabs = self.query_one("#report-preview", TabbedContent)
        order = ["tab-summary", "tab-csv", "tab-pdf", "tab-fixlist"]
        tabs.active = (
            order[(order.index(tabs.active) + 1) % len(order)] if tabs.active in order else order[0]
        )

    def action_export(self) -> None:
        detail = self.detail
        if detail is None:
            return
        formats = [("CSV report", "csv"), ("PDF report", "pdf")]
        if detail.fixlist_csv:
            formats.append(("Fix-list (CSV)", "fixlist"))
        folder = self.app.settings.export_path  # type: ignore[attr-defined]
        self.ask(
            f"Export report of upload #{detail.row.upload_id}",
            [
                Field("format", "Format", kind="select", value="csv", options=formats),
                Field(
                    "path",
                    f"File or folder inside {folder} (empty: the folder itself)",
                    placeholder="e.g. fees/march.csv",
                    words=("folder", "directory", "file", "exists", "link", "data directory"),
                ),
                Field(
                    "force",
                    "If the file exists",
                    kind="select",
                    value="keep",
                    options=[("refuse (keep it)", "keep"), ("replace it", "replace")],
                ),
            ],
            lambda v: self.export(detail.row.upload_id, v),
            submit="Export",
        )

    async def export(self, upload_id: int, values: dict[str, str]) -> None:
        """The export form's action: a refusal (outside the export folder, a file that
        exists) stays in the form with what was typed."""
        from batchops_core.services.reports import export_report

        done = await self.call(
            export_report,
            upload_id=upload_id,
            fmt=values["format"],
            destination=values["path"] or None,
            force=values["force"] == "replace",
        )
        verb = "Replaced" if done.replaced else "Saved"
        self.notify(f"{verb} {done.path}.", title="Exported", markup=False)

    async def action_deliver(self) -> None:
        from batchops_core.services.reports import ReportFormat, report_file

        if self.detail is None:
            return
        fmt = ReportFormat.PDF if self.detail.row.report_pdf else ReportFormat.CSV
        path = await report_file(self.app.settings, self.detail, fmt)  # type: ignore[attr-defined]
        self.app.deliver_binary(path, save_filename=path.name)

    # -- send to, process again ------------------------------------------------------------------

    @work(exclusive=True, group="reports-send", exit_on_error=False)
    async def action_send_to(self) -> None:
        from batchops_core.services.distribute import report_recipients, send_report

        detail = self.detail
        if detail is None:
            return
        upload_id = detail.row.upload_id
        default = await self.call(report_recipients, upload_id=upload_id)

        async def send(values: dict[str, str]) -> None:
            formats = {"both": ("csv", "pdf"), "csv": ("csv",), "pdf": ("pdf",)}[values["files"]]
            sent = await send_report(
                self.bo.db,
                actor=self.bo.actor,
                upload_id=upload_id,
                to=[values["to"]],
                formats=formats,
            )
            self.notify(f"Sent to {', '.join(sent.recipients)}.", title="Report", markup=False)

        fields = [
            Field(
                "to",
                "To (comma-separated)",
                required=True,
                value=", ".join(default),
                words=("address", "email", "recipient", "contact"),
            ),
            Field(
                "files",
                "Attach",
                kind="select",
                value="both",
                options=[("CSV and PDF", "both"), ("CSV only", "csv"), ("PDF only", "pdf")],
            ),
        ]
        note = "" if default else "The department has no contact or staff on record."
        self.ask(f"Send report of upload #{upload_id}", fields, send, submit="Send", note=note)

    def action_process_again(self) -> None:
        from batchops_core.enums import ProcessMode

        detail = self.detail
        if detail is None:
            return
        upload_id = detail.row.upload_id

        async def again(values: dict[str, str]) -> None:
            import json

            from batchops_core.errors import ValidationFailed
            from batchops_core.services.actions import process_again

            try:
                config = json.loads(values["config"]) if values["config"] else {}
            except json.JSONDecodeError as exc:
                raise ValidationFailed(f"the plan config is not JSON ({exc.msg}).") from None
            if not isinstance(config, dict):
                raise ValidationFailed('the plan config must be a JSON object, e.g. {"a": 1}.')
            info = await process_again(
                self.bo.db,
                await self.bo.get_dispatcher(),
                actor=self.bo.actor,
                upload_id=upload_id,
                plan_mode=values["plan"],
                plan_config=config,
            )
            self.bo.my_uploads.add(info.id)
            self.notify(f"Submitted again as upload #{info.id}.", title="Report", markup=False)

        fields = [
            Field(
                "plan",
                "Plan",
                kind="select",
                value=ProcessMode.TRANSFORM.value,
                options=[(m.value, m.value) for m in ProcessMode],
            ),
            Field(
                "config",
                "Plan config (JSON)",
                placeholder='{"group_by": "class"}',
                words=("plan", "config", "json"),
            ),
        ]
        self.ask(
            f"Process upload #{upload_id} again",
            fields,
            again,
            submit="Process",
            note="Processed even if the same file was published before.",
        )
