"""4 · Issues: the incident queue and the RCA workspace with its lifecycle actions.

Every action that changes an incident asks first (a confirmation or a form); resolve requires a
root cause and a corrective action. Moderators and admins see the actions; users only read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Select, Static

from batchops_core.enums import IncidentStatus, Severity
from batchops_core.permissions import Action
from batchops_core.services import incidents
from batchops_core.services.incidents import IncidentDetail
from batchops_tui.formatting import (
    add_plain_row,
    clip,
    clip_lines,
    duration,
    readable,
    short_when,
    when,
)
from batchops_tui.screens.base import ListDetailScreen
from batchops_tui.screens.dialogs import Field
from batchops_tui.widgets.common.paged_table import PagedTable

if TYPE_CHECKING:
    from batchops_core.services.incidents import IncidentRow

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "dim",
}
STATUS_STYLE = {
    IncidentStatus.OPEN: "bold",
    IncidentStatus.IN_PROGRESS: "cyan",
    IncidentStatus.RESOLVED: "green",
    IncidentStatus.ARCHIVED: "dim",
}
COLUMNS = (
    ("id", "#", 1, 5),
    ("sev", "severity", 1, 8),
    ("status", "status", 2, 11),
    ("title", "title", 1, 34),
    ("stage", "stage", 4, 9),
    ("assignee", "assignee", 3, 10),
    ("seen", "last seen", 5, 11),
    ("n", "×", 4, 3),
)
"""(key, label, priority, width): the columns that fit by priority; all of it is in the detail."""
ME = -1
"""The assignee filter value meaning "assigned to me"."""
ACTIVE = (IncidentStatus.OPEN, IncidentStatus.IN_PROGRESS)
STATE_ACTIONS: dict[str, tuple[IncidentStatus, ...]] = {
    "assign": ACTIVE,
    "analyze": ACTIVE,
    "retry": ACTIVE,
    "resolve": ACTIVE,
    "archive": (IncidentStatus.RESOLVED,),
    "reopen": (IncidentStatus.RESOLVED,),
}
"""The statuses in which each action can succeed (the core's lifecycle); in others it is not
offered."""


def incident_cells(row: IncidentRow) -> list[object]:
    return [
        str(row.id),
        Text(row.severity.value, style=SEVERITY_STYLE[row.severity]),
        Text(row.status.value, style=STATUS_STYLE[row.status]),
        clip(row.title, 34),
        row.stage.value if row.stage else "task",
        row.assignee or "—",
        short_when(row.last_seen_at),
        str(row.occurrences),
    ]


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def _head(d: IncidentDetail) -> Table:
    head = Table.grid(padding=(0, 1))
    head.add_column(style="dim")
    head.add_column()
    add_plain_row(
        head,
        "incident",
        Text.assemble(
            f"#{d.id} ",
            (d.severity.value, SEVERITY_STYLE[d.severity]),
            " ",
            (d.status.value, STATUS_STYLE[d.status]),
        ),
    )
    add_plain_row(head, "title", d.title)
    add_plain_row(head, "error", Text(f"{d.error_code}: {d.message}", style="red"))
    if d.hint:
        add_plain_row(head, "hint", d.hint)
    add_plain_row(head, "stage", d.stage.value if d.stage else "task")
    if d.upload_id:
        add_plain_row(
            head, "upload", f"#{d.upload_id} {d.upload_filename or ''} ({d.upload_status or '?'})"
        )
    if d.run_id:
        add_plain_row(head, "run", f"#{d.run_id}")
    add_plain_row(head, "assignee", d.assignee or "—")
    add_plain_row(
        head, "seen", f"{d.occurrences}× since {when(d.created_at)}, last {when(d.last_seen_at)}"
    )
    add_plain_row(head, "retries", f"{d.retry_count} manual, {d.auto_retry_count} automatic")
    add_plain_row(
        head, "TTA / TTR", f"{duration(d.time_to_acknowledge)} / {duration(d.time_to_resolve)}"
    )
    return head


def _knowledge(d: IncidentDetail) -> list[Any]:
    parts: list[Any] = []
    if d.details:
        parts += [
            _section("Validation report / pointers"),
            Text(clip_lines(readable(d.details), 80)),
        ]
    if d.known_error:
        parts += [
            _section(f"Known error: {d.known_error}"),
            Text(d.known_error_fix or "(no fix recorded)"),
        ]
        if d.remediation.value != "none":
            parts.append(Text(f"automatic remediation: {d.remediation.value}", style="dim"))
    return parts


def _analysis(d: IncidentDetail) -> list[Any]:
    parts: list[Any] = []
    rca = [
        (k, v)
        for k, v in (
            ("root cause", d.root_cause),
            ("corrective action", d.corrective_action),
            ("impact", d.impact_summary),
            ("notes", d.analysis_notes),
        )
        if v
    ]
    if rca:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim")
        grid.add_column()
        for k, v in rca:
            add_plain_row(grid, k, v)
        parts += [_section("Analysis"), grid]
    if d.ticket:
        t = d.ticket
        parts += [
            _section("Ticket"),
            Text(
                f"#{t.id} {t.title} — {t.status.value}" + (f", {t.assignee}" if t.assignee else "")
            ),
        ]
        if t.notes:
            parts.append(Text(t.notes))
    if d.timeline:
        timeline = Table.grid(padding=(0, 1))
        timeline.add_column(style="dim")
        timeline.add_column(style="bold")
        timeline.add_column()
        for e in d.timeline:
            add_plain_row(
                timeline,
                short_when(e.at),
                e.kind,
                f"{e.actor}: {e.detail}" if e.detail else e.actor,
            )
        parts += [_section("Timeline"), timeline]
    return parts


def render_incident(d: IncidentDetail) -> Group:
    """The RCA workspace: details, pointers, known error and fix, analysis, ticket, timeline."""
    return Group(_head(d), *_knowledge(d), *_analysis(d))


class IssuesScreen(ListDetailScreen):
    DETAIL_PANE = "#incident-detail"
    TITLE = "Issues"
    EVENT_PREFIXES = ("incident",)
    BINDINGS = [
        Binding("a", "assign", "Assign", id="issues.assign", tooltip="Assign the incident"),
        Binding(
            "n",
            "analyze",
            "Analyze",
            id="issues.analyze",
            tooltip="Record root cause, impact, notes",
        ),
        Binding("t", "retry", "Retry", id="issues.retry", tooltip="Retry the failed upload"),
        Binding(
            "v",
            "resolve",
            "Resolve",
            id="issues.resolve",
            tooltip="Resolve with root cause and action",
        ),
        Binding(
            "x", "archive", "Archive", id="issues.archive", tooltip="Archive a resolved incident"
        ),
        Binding("o", "reopen", "Reopen", id="issues.reopen", tooltip="Reopen a resolved incident"),
    ]
    ACTION_PERMISSIONS = {
        a: Action.MANAGE_ISSUES
        for a in ("assign", "analyze", "retry", "resolve", "archive", "reopen")
    }

    def __init__(self) -> None:
        super().__init__()
        self.detail: IncidentDetail | None = None
        self.rows: dict[int, IncidentRow] = {}
        self._filters_loaded = False

    def body(self) -> ComposeResult:
        with Horizontal(classes="filters"):
            yield Select([(s.value, s) for s in IncidentStatus], prompt="any status", id="f-status")
            yield Select([(s.value, s) for s in Severity], prompt="any severity", id="f-severity")
            yield Select([("me", ME)], prompt="anyone", id="f-assignee")
        with Horizontal(classes="split"):
            yield PagedTable(COLUMNS, page_size=self.app.settings.tui.page_size, id="issues-table")  # type: ignore[attr-defined]
            with VerticalScroll(classes="detail", id="incident-detail"):
                yield Static("", id="workspace-body")

    def reload(self) -> None:
        self.load()
        if self.detail is not None:
            self.load_detail(self.detail.id)
        if not self._filters_loaded:
            self.load_filters()

    def _filters(self) -> dict[str, Any]:
        value = self.select_value
        assignee = value("#f-assignee")
        return {
            "status": value("#f-status"),
            "severity": value("#f-severity"),
            "assignee_id": self.bo.actor.id if assignee == ME else assignee,
        }

    @work(exclusive=True, group="issues", exit_on_error=False)
    async def load(self) -> None:
        table = self.query_one(PagedTable)
        page = await self.page_of(incidents.list_incidents, **self._filters())
        self.rows = {r.id: r for r in page.items}
        table.show(page, [(str(r.id), incident_cells(r)) for r in page.items])
        self.refresh_bindings()

    @work(exclusive=True, group="issues-filters", exit_on_error=False)
    async def load_filters(self) -> None:
        if not self.can(Action.MANAGE_ISSUES):
            self._filters_loaded = True
            return
        people = await self.call(incidents.list_assignees)
        me = self.bo.actor.id
        options = [("me", ME)] + [(p.username, p.id) for p in people if p.id != me]
        self.query_one("#f-assignee", Select).set_options(options)
        self._filters_loaded = True

    @work(exclusive=True, group="issues-detail", exit_on_error=False)
    async def load_detail(self, incident_id: int) -> None:
        self.detail = await self.call(incidents.get_incident, incident_id=incident_id)
        self.query_one("#workspace-body", Static).update(render_incident(self.detail))
        self.show_detail()

    # -- actions -----------------------------------------------------------------------------------

    def selected_id(self) -> int | None:
        return self.selected_key()

    def selected_row(self) -> IncidentRow | None:
        key = self.selected_key()
        return self.rows.get(key) if key is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if not allowed or action not in STATE_ACTIONS:
            return allowed
        row = self.selected_row()
        if row is None or (action == "retry" and row.upload_id is None):
            return False
        return row.status in STATE_ACTIONS[action]

    def on_paged_table_highlighted(self) -> None:
        self.refresh_bindings()  # what the footer offers depends on the row's status

    def action_assign(self) -> None:
        incident_id = self.selected_id()
        if incident_id is not None:
            self.bo.hold_keys()
            self.pick_assignee(incident_id)

    @work(exclusive=True, group="issues-assignees", exit_on_error=False)
    async def pick_assignee(self, incident_id: int) -> None:
        people = await self.call(incidents.list_assignees)
        options = [(f"{p.username} ({p.role.value})", str(p.id)) for p in people]
        options.append(("nobody (unassign)", "none"))
        self.ask(
            f"Assign incident #{incident_id}",
            [Field("assignee", "Assignee", kind="select", required=True, options=options)],
            lambda v: self.apply(
                incidents.assign_incident,
                incident_id,
                assignee_id=None if v["assignee"] == "none" else int(v["assignee"]),
            ),
            submit="Assign",
            done=self.reload,
        )

    def action_analyze(self) -> None:
        incident_id = self.selected_id()
        if incident_id is not None:
            self.bo.hold_keys()
            self.open_form("analyze", incident_id)

    def action_resolve(self) -> None:
        incident_id = self.selected_id()
        if incident_id is not None:
            self.bo.hold_keys()
            self.open_form("resolve", incident_id)

    @work(exclusive=True, group="issues-form", exit_on_error=False)
    async def open_form(self, kind: str, incident_id: int) -> None:
        """Load the incident first, so that the form shows what is recorded even when the
        detail pane is closed (or still showing another incident)."""
        d = await self.call(incidents.get_incident, incident_id=incident_id)
        if kind == "resolve":
            self.ask(
                f"Resolve incident #{incident_id}",
                [
                    Field("root_cause", "Root cause", "text", required=True, value=d.root_cause),
                    Field(
                        "corrective_action",
                        "Corrective action",
                        "text",
                        required=True,
                        value=d.corrective_action,
                    ),
                ],
                lambda v: self.apply(incidents.resolve_incident, incident_id, **v),
                submit="Resolve",
                note=clip(d.title, 60),
                done=self.reload,
            )
            return
        self.ask(
            f"Analyze incident #{incident_id}",
            [
                Field("root_cause", "Root cause", kind="text", value=d.root_cause),
                Field(
                    "corrective_action",
                    "Corrective action",
                    kind="text",
                    value=d.corrective_action,
                ),
                Field("impact_summary", "Impact", value=d.impact_summary),
                Field("analysis_notes", "Notes", kind="text", value=d.analysis_notes),
            ],
            lambda v: self.apply(
                incidents.analyze_incident, incident_id, **{k: x or None for k, x in v.items()}
            ),
            note=clip(d.title, 60),
            done=self.reload,
        )

    def action_archive(self) -> None:
        incident_id = self.selected_id()
        if incident_id is not None:
            self.confirm(
                "Archive?",
                f"Archive incident #{incident_id}? It leaves the active queue.",
                lambda: self.write(incidents.archive_incident, incident_id),
                confirm="Archive",
            )

    def action_reopen(self) -> None:
        incident_id = self.selected_id()
        if incident_id is not None:
            self.ask(
                f"Reopen incident #{incident_id}",
                [Field("reason", "Why reopen?", required=True)],
                lambda v: self.apply(incidents.reopen_incident, incident_id, reason=v["reason"]),
                submit="Reopen",
                done=self.reload,
            )

    def action_retry(self) -> None:
        incident_id = self.selected_id()
        if incident_id is not None:
            self.confirm(
                "Retry?",
                f"Retry the failed work of incident #{incident_id} now?",
                lambda: self.retry(incident_id),
                confirm="Retry",
            )

    async def apply(
        self, service: Callable[..., Awaitable[IncidentDetail]], incident_id: int, **kwargs: Any
    ) -> None:
        """A form's service call: raises (the form shows why) or tells what was done."""
        detail = await self.call(service, incident_id=incident_id, **kwargs)
        verb = service.__name__.split("_")[0]
        self.notify(
            f"Incident #{incident_id}: {verb} done ({detail.status.value}).",
            title="Issues",
            markup=False,
        )

    @work(exclusive=True, group="write-issues", exit_on_error=False)
    async def write(
        self, service: Callable[..., Awaitable[IncidentDetail]], incident_id: int, **kwargs: Any
    ) -> None:
        detail = await self.call(service, incident_id=incident_id, **kwargs)
        verb = service.__name__.split("_")[0]
        self.notify(
            f"Incident #{incident_id}: {verb} done ({detail.status.value}).",
            title="Issues",
            markup=False,
        )
        self.reload()

    @work(exclusive=True, group="write-issues", exit_on_error=False)
    async def retry(self, incident_id: int) -> None:
        await incidents.retry_incident(
            self.bo.db, await self.bo.get_dispatcher(), actor=self.bo.actor, incident_id=incident_id
        )
        self.notify(f"Incident #{incident_id}: retry queued.", title="Issues", markup=False)
        self.reload()
