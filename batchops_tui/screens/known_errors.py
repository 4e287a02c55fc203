"""K · Known errors (admins): patterns that tag incidents and name a fix; add, edit,
enable/disable, delete, and `t` test a pattern against the last 50 incidents before saving it.

Patterns must run on RE2 (the service refuses backreferences and lookarounds, naming them,
beside the pattern field). The test result shows under the table: how many of the last 50
incidents match, and the first few with the known error they are tagged with today.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from batchops_core.enums import Remediation, Severity, Stage
from batchops_core.permissions import Action
from batchops_core.services.pagination import Page
from batchops_tui.formatting import clip
from batchops_tui.screens.base import EditableTableScreen
from batchops_tui.screens.dialogs import Field
from batchops_tui.widgets.common.paged_table import PagedTable

if TYPE_CHECKING:
    from batchops_core.known_errors import KnownErrorInfo
    from batchops_core.services.known_errors import PatternTest

COLUMNS = (
    ("id", "#"),
    ("name", "name"),
    ("on", "on"),
    ("stage", "stage"),
    ("severity", "severity"),
    ("pattern", "pattern"),
    ("remedy", "remediation"),
)
STAGES = (("any stage", "any"), *((s.value, s.value) for s in Stage))
SEVERITIES = tuple((s.value, s.value) for s in Severity)
REMEDIATIONS = tuple((r.value, r.value) for r in Remediation)
SHOWN_HITS = 4


def known_error_cells(row: KnownErrorInfo) -> list[object]:
    return [
        str(row.id),
        clip(row.name, 26),
        Text("on", style="green") if row.active else Text("off", style="dim"),
        row.stage.value if row.stage else "any",
        row.severity.value,
        clip(row.pattern, 34),
        row.remediation.value,
    ]


def known_error_fields(row: KnownErrorInfo | None) -> list[Field]:
    return [
        Field("name", "Name", required=True, value=row.name if row else ""),
        Field(
            "pattern",
            "Pattern (RE2 regex on 'CODE: message')",
            required=True,
            value=row.pattern if row else "",
            placeholder="^MISSING_COLUMN: required column 'student_id'",
            words=("regex",),
        ),
        Field(
            "stage",
            "Stage",
            kind="select",
            options=STAGES,
            value=(row.stage.value if row and row.stage else "any"),
        ),
        Field(
            "severity",
            "Severity",
            kind="select",
            options=SEVERITIES,
            value=row.severity.value if row else Severity.MEDIUM.value,
        ),
        Field("category", "Category", value=row.category if row else "data"),
        Field("root_cause", "Root cause", kind="text", value=row.root_cause if row else ""),
        Field("fix", "Fix", kind="text", value=row.fix if row else ""),
        Field(
            "remediation",
            "Remediation",
            kind="select",
            options=REMEDIATIONS,
            value=row.remediation.value if row else Remediation.NONE.value,
        ),
    ]


def describe_test(result: PatternTest) -> str:
    where = f" at {result.stage.value}" if result.stage else ""
    head = (
        f"/{result.pattern}/ matches {len(result.matched)} of the last {result.checked} "
        f"incident(s){where}."
    )
    lines = [head]
    for hit in result.matched[:SHOWN_HITS]:
        tagged = f" (now: {hit.known_error})" if hit.known_error else ""
        lines.append(f"  #{hit.id} {hit.error_code}: {clip(hit.message, 50)}{tagged}")
    if len(result.matched) > SHOWN_HITS:
        lines.append(f"  … and {len(result.matched) - SHOWN_HITS} more")
    return "\n".join(lines)


class KnownErrorsScreen(EditableTableScreen["KnownErrorInfo"]):
    EDIT_ACTION = Action.MANAGE_KNOWN_ERRORS
    TITLE = "Known errors"
    EVENT_PREFIXES = ("known_error", "incident")
    BINDINGS = [
        Binding("c", "create", "New", id="known_errors.create", tooltip="Add a known error"),
        Binding("e", "edit", "Edit", id="known_errors.edit", tooltip="Edit the known error"),
        Binding("space", "toggle", "On/off", id="known_errors.toggle", tooltip="Enable/disable"),
        Binding("x", "delete", "Delete", id="known_errors.delete", tooltip="Delete it"),
        Binding(
            "t",
            "test",
            "Test",
            id="known_errors.test",
            tooltip="Which of the last 50 incidents a pattern matches",
        ),
    ]
    ACTION_PERMISSIONS = {
        "create": Action.MANAGE_KNOWN_ERRORS,
        "edit": Action.MANAGE_KNOWN_ERRORS,
        "toggle": Action.MANAGE_KNOWN_ERRORS,
        "delete": Action.MANAGE_KNOWN_ERRORS,
        "test": Action.MANAGE_ISSUES,
    }

    def body(self) -> ComposeResult:
        yield PagedTable(COLUMNS, page_size=500, id="known-errors-table")
        yield Static("t: test a pattern on the last 50 incidents", id="known-errors-test")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#known-errors-test", Static).styles.height = "auto"
        self.query_one("#known-errors-test", Static).styles.max_height = 7
        self.query_one(PagedTable).table.focus()

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="known-errors", exit_on_error=False)
    async def load(self) -> None:
        from batchops_core.services.known_errors import list_known_errors

        table = self.query_one(PagedTable)
        rows = await self.call(list_known_errors)
        needle = (table.search or "").strip().lower()
        shown = [r for r in rows if not needle or needle in f"{r.name} {r.pattern}".lower()]
        self.rows = {str(r.id): r for r in shown}
        page = Page(items=list(shown), total=len(shown), offset=0, limit=max(1, len(shown)))
        table.show(page, [(str(r.id), known_error_cells(r)) for r in shown])

    def open_form(self, row: KnownErrorInfo | None) -> None:
        from batchops_core.services import known_errors as svc

        async def save(values: dict[str, str]) -> None:
            if row is None:
                made = await self.call(svc.create_known_error, **values)  # type: ignore[arg-type]
                self.notify(f"Known error {made.name} added.", markup=False)
            else:
                saved = await self.call(svc.update_known_error, ref=row.id, **values)
                self.notify(f"Known error {saved.name} saved.", markup=False)

        title = "New known error" if row is None else f"Edit {row.name}"
        self.ask(title, known_error_fields(row), save, done=self.reload)

    def action_toggle(self) -> None:
        row = self.selected()
        if row is None:
            return
        verb = "Disable" if row.active else "Enable"
        self.confirm(
            f"{verb} known error?",
            f"{verb} '{row.name}'?",
            lambda: self.set_active(row.id, not row.active),
            confirm=verb,
        )

    @work(exclusive=True, group="write-known-errors", exit_on_error=False)
    async def set_active(self, known_id: int, active: bool) -> None:
        from batchops_core.services.known_errors import set_known_error_active

        row = await self.call(set_known_error_active, ref=known_id, active=active)
        self.notify(f"{row.name} {'enabled' if active else 'disabled'}.", markup=False)
        self.reload()

    def action_delete(self) -> None:
        row = self.selected()
        if row is None:
            return
        self.confirm(
            "Delete known error?",
            f"Delete '{row.name}'? Incidents it tagged keep their text.",
            lambda: self.delete(row.id),
            confirm="Delete",
        )

    @work(exclusive=True, group="write-known-errors", exit_on_error=False)
    async def delete(self, known_id: int) -> None:
        from batchops_core.services.known_errors import delete_known_error

        row = await self.call(delete_known_error, ref=known_id)
        self.notify(f"{row.name} deleted.", markup=False)
        self.reload()

    def action_test(self) -> None:
        from batchops_core.services.known_errors import try_pattern

        row = self.selected()
        fields = [
            Field("pattern", "Pattern", required=True, value=row.pattern if row else ""),
            Field(
                "stage",
                "Stage",
                kind="select",
                options=STAGES,
                value=(row.stage.value if row and row.stage else "any"),
            ),
        ]

        async def run(values: dict[str, str]) -> None:
            result = await self.call(try_pattern, pattern=values["pattern"], stage=values["stage"])
            self.query_one("#known-errors-test", Static).update(describe_test(result))

        self.ask("Test a pattern on the last 50 incidents", fields, run, submit="Test")
