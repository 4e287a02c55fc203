"""D · Departments (admins): the feeds, their contact and validation profile; create, edit,
activate/deactivate. What used to need SQL: whether a department's files are gradebooks, its key
column, required columns and header aliases.

The screen only renders `services/departments.py` and calls it; forms stay open with a refusal
beside its field (FormDialog). No CSS of its own: a table and the shared dialogs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from batchops_core.permissions import Action
from batchops_core.services.pagination import Page
from batchops_tui.formatting import clip
from batchops_tui.screens.base import EditableTableScreen
from batchops_tui.screens.dialogs import Field
from batchops_tui.widgets.common.paged_table import PagedTable

if TYPE_CHECKING:
    from batchops_core.services.departments import DepartmentRow

COLUMNS = (
    ("name", "name"),
    ("on", "on"),
    ("grade", "gradebook"),
    ("key", "key"),
    ("required", "required"),
    ("contact", "contact"),
    ("staff", "staff"),
)
YES_NO = (("yes", "yes"), ("no", "no"))


def department_cells(row: DepartmentRow) -> list[object]:
    return [
        clip(row.name, 20),
        Text("on", style="green") if row.active else Text("off", style="dim"),
        "yes" if row.gradebook else "no",
        clip(row.key_column or "—", 12),
        clip(", ".join(row.required_columns) or "—", 24),
        clip(row.contact_email or "—", 26),
        str(row.members),
    ]


def department_fields(row: DepartmentRow | None) -> list[Field]:
    aliases = ", ".join(f"{k}={v}" for k, v in (row.aliases if row else {}).items())
    return [
        Field("name", "Name", required=True, value=row.name if row else ""),
        Field("contact_email", "Contact email", value=row.contact_email if row else ""),
        Field(
            "gradebook",
            "Gradebook (an identifier and a numeric score)",
            kind="select",
            options=YES_NO,
            value="yes" if row and row.gradebook else "no",
        ),
        Field(
            "key_column",
            "Key column (or none)",
            value=(row.key_column or "none") if row else "student_id",
            words=("key",),
        ),
        Field(
            "required_columns",
            "Required columns",
            value=", ".join(row.required_columns) if row else "",
            placeholder="student_id, class",
            words=("required column",),
        ),
        Field(
            "aliases",
            "Header aliases",
            value=aliases,
            placeholder="Roll No=student_id, Adm=student_id",
            words=("alias",),
        ),
        Field("description", "Description", kind="text", value=row.description if row else ""),
    ]


class DepartmentsScreen(EditableTableScreen["DepartmentRow"]):
    EDIT_ACTION = Action.MANAGE_DEPARTMENTS
    TITLE = "Departments"
    EVENT_PREFIXES = ("department",)
    BINDINGS = [
        Binding("c", "create", "New", id="departments.create", tooltip="Create a department"),
        Binding("e", "edit", "Edit", id="departments.edit", tooltip="Edit the department"),
        Binding(
            "space",
            "toggle",
            "On/off",
            id="departments.toggle",
            tooltip="Activate or deactivate the department",
        ),
    ]
    ACTION_PERMISSIONS = {
        "create": Action.MANAGE_DEPARTMENTS,
        "edit": Action.MANAGE_DEPARTMENTS,
        "toggle": Action.MANAGE_DEPARTMENTS,
    }

    def body(self) -> ComposeResult:
        yield PagedTable(COLUMNS, page_size=500, id="departments-table")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(PagedTable).table.focus()

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="departments", exit_on_error=False)
    async def load(self) -> None:
        from batchops_core.services.departments import list_departments

        table = self.query_one(PagedTable)
        rows = await self.call(list_departments)
        needle = (table.search or "").strip().lower()
        shown = [r for r in rows if not needle or needle in r.name.lower()]
        self.rows = {str(r.id): r for r in shown}
        page = Page(items=list(shown), total=len(shown), offset=0, limit=max(1, len(shown)))
        table.show(page, [(str(r.id), department_cells(r)) for r in shown])

    def open_form(self, row: DepartmentRow | None) -> None:
        from batchops_core.services import departments as svc

        async def save(values: dict[str, str]) -> None:
            data: dict[str, object] = dict(values)
            data["gradebook"] = values["gradebook"] == "yes"
            if row is None:
                made = await self.call(svc.create_department, **data)  # type: ignore[arg-type]
                self.notify(f"Department {made.name} created.", markup=False)
            else:
                saved = await self.call(svc.update_department, ref=row.id, **data)
                self.notify(f"Department {saved.name} saved.", markup=False)

        title = "New department" if row is None else f"Edit {row.name}"
        self.ask(title, department_fields(row), save, done=self.reload)

    def action_toggle(self) -> None:
        row = self.selected()
        if row is None:
            return
        verb = "Deactivate" if row.active else "Activate"
        note = " It takes no new files until activated again." if row.active else ""
        self.confirm(
            f"{verb} department?",
            f"{verb} {row.name}?{note}",
            lambda: self.set_active(row.id, not row.active),
            confirm=verb,
        )

    @work(exclusive=True, group="write-departments", exit_on_error=False)
    async def set_active(self, department_id: int, active: bool) -> None:
        from batchops_core.services.departments import set_department_active

        row = await self.call(set_department_active, ref=department_id, active=active)
        self.notify(f"{row.name} {'activated' if active else 'deactivated'}.", markup=False)
        self.reload()
