"""Admin user administration (`u` from any screen, or the palette): create, role, disable/enable,
unlock, force a password reset; and the audit log (`l`), filterable and paginated."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import TabbedContent, TabPane

from batchops_core import accounts
from batchops_core.enums import Role
from batchops_core.permissions import Action
from batchops_core.services.pagination import Page
from batchops_tui.formatting import clip, short_when
from batchops_tui.screens.base import BaseScreen
from batchops_tui.screens.dialogs import Field
from batchops_tui.widgets.common.paged_table import PagedTable

if TYPE_CHECKING:
    from batchops_core.accounts import UserInfo

USER_COLUMNS = (
    ("name", "username"),
    ("role", "role"),
    ("email", "email"),
    ("state", "state"),
    ("last", "last sign-in"),
)
AUDIT_COLUMNS = (
    ("at", "when"),
    ("actor", "actor"),
    ("action", "action"),
    ("target", "target"),
    ("detail", "detail"),
    ("from", "from"),
)
ROLE_OPTIONS = [(r.value, r.value) for r in Role]


def user_state(user: UserInfo, now: Any) -> Text:
    if not user.active:
        return Text("disabled", style="red")
    if user.locked_until is not None and user.locked_until > now:
        return Text("locked", style="bold red")
    if not user.email_verified:
        return Text("unverified", style="yellow")
    return Text("active", style="green")


class UsersScreen(BaseScreen):
    TITLE = "Users"
    EVENT_PREFIXES = ("user",)
    BINDINGS = [
        Binding("c", "create", "New user", id="users.create", tooltip="Create an account"),
        Binding("o", "role", "Role", id="users.role", tooltip="Change the role"),
        Binding(
            "d", "toggle_active", "Disable/enable", id="users.toggle", tooltip="Disable or enable"
        ),
        Binding("k", "unlock", "Unlock", id="users.unlock", tooltip="Lift a sign-in lockout"),
        Binding(
            "p", "force_reset", "Force reset", id="users.reset", tooltip="Require a new password"
        ),
        Binding("l", "audit", "Audit log", id="users.audit", tooltip="Show the audit log"),
        Binding(
            "m",
            "department",
            "Department",
            show=False,
            id="users.department",
            tooltip="The department the user belongs to (its reports are mailed to them)",
        ),
    ]
    ACTION_PERMISSIONS = {
        a: Action.MANAGE_USERS
        for a in ("create", "role", "toggle_active", "unlock", "force_reset", "department")
    } | {"audit": Action.VIEW_AUDIT}

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, UserInfo] = {}

    def body(self) -> ComposeResult:
        with TabbedContent(id="users-tabs"):
            with TabPane("Accounts", id="tab-users"):
                yield PagedTable(USER_COLUMNS, page_size=200, id="users-table")
            with TabPane("Audit log", id="tab-audit"):
                yield PagedTable(
                    AUDIT_COLUMNS,
                    page_size=self.app.settings.tui.page_size,  # type: ignore[attr-defined]
                    placeholder="filter by action (user, auth.failure …) and enter",
                    id="audit-table",
                )

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#users-table", PagedTable).table.focus()

    def reload(self) -> None:
        if not self.can(Action.MANAGE_USERS):
            return
        self.load_users()
        self.load_audit()

    @work(exclusive=True, group="users", exit_on_error=False)
    async def load_users(self) -> None:
        from batchops_core.accounts import list_users

        table = self.query_one("#users-table", PagedTable)
        users = await self.call(list_users)
        if table.search:
            users = [u for u in users if table.search.lower() in f"{u.username} {u.email} {u.role}"]
        self.users = {u.username: u for u in users}
        now = self.bo.clock()
        rows = [
            (
                u.username,
                [
                    u.username,
                    u.role.value,
                    clip(u.email, 28),
                    user_state(u, now),
                    short_when(u.last_login_at),
                ],
            )
            for u in users
        ]
        table.show(Page(items=users, total=len(users), offset=0, limit=max(len(users), 1)), rows)

    @work(exclusive=True, group="audit", exit_on_error=False)
    async def load_audit(self) -> None:
        from batchops_core.audit import list_audit

        table = self.query_one("#audit-table", PagedTable)
        page = await self.call(
            list_audit, action=table.search or None, offset=table.page_offset, limit=table.page_size
        )
        table.show(
            page,
            [
                (
                    str(r.id),
                    [
                        short_when(r.created_at),
                        r.actor_name,
                        r.action,
                        clip(r.target_name, 16),
                        clip(r.detail, 40),
                        r.client_addr or "",
                    ],
                )
                for r in page.items
            ],
        )

    @on(PagedTable.QueryChanged, "#users-table")
    def _users_query(self) -> None:
        self.load_users()

    @on(PagedTable.QueryChanged, "#audit-table")
    def _audit_query(self) -> None:
        self.load_audit()

    def selected(self) -> UserInfo | None:
        key = self.query_one("#users-table", PagedTable).selected_key()
        return self.users.get(key) if key else None

    def action_audit(self) -> None:
        self.query_one(TabbedContent).active = "tab-audit"
        self.query_one("#audit-table", PagedTable).table.focus()

    def action_create(self) -> None:
        self.ask(
            "New account",
            [
                Field("username", "Username", required=True),
                Field("email", "Email", required=True),
                Field(
                    "role", "Role", kind="select", required=True, value="user", options=ROLE_OPTIONS
                ),
                Field("password", "Initial password", kind="password", required=True),
            ],
            self.create,
            submit="Create",
            note="Non-admin accounts get a verification code by email right away.",
            done=self.reload,
        )

    async def create(self, values: dict[str, str]) -> None:
        """The form's action: a refusal (bad email, taken name) stays in the form."""
        from batchops_core.services.users import create_account

        user = await create_account(
            self.bo.db,
            self.bo.settings,
            actor=self.bo.actor,
            username=values["username"],
            email=values["email"],
            role=Role(values["role"]),
            password=values["password"],
        )
        self.notify(f"Account {user.username} created.", title="Users", markup=False)

    def action_role(self) -> None:
        user = self.selected()
        if user is None:
            return
        self.ask(
            f"Role of {user.username}",
            [
                Field(
                    "role",
                    "Role",
                    kind="select",
                    required=True,
                    value=user.role.value,
                    options=ROLE_OPTIONS,
                )
            ],
            lambda v: self.apply(accounts.set_role, user.username, role=Role(v["role"])),
            submit="Change role",
            done=self.reload,
        )

    @work(exclusive=True, group="users-department", exit_on_error=False)
    async def action_department(self) -> None:
        from batchops_core.services.departments import list_departments, set_user_department

        user = self.selected()
        if user is None:
            return
        departments = await self.call(list_departments, include_inactive=False)
        options = [("no department", "none"), *((d.name, d.name) for d in departments)]

        async def save(values: dict[str, str]) -> None:
            name = await self.call(
                set_user_department, username=user.username, department=values["department"]
            )
            self.notify(f"{user.username}: {name or 'no department'}.", markup=False)

        field = Field("department", "Department", kind="select", value="none", options=options)
        self.ask(f"Department of {user.username}", [field], save, done=self.reload)

    def action_toggle_active(self) -> None:
        user = self.selected()
        if user is None:
            return
        verb = "Disable" if user.active else "Enable"
        self.confirm(
            f"{verb} {user.username}?",
            f"{verb} the account {user.username}?"
            + (" Its open sessions end." if user.active else ""),
            lambda: self.write(accounts.set_active, user.username, active=not user.active),
            confirm=verb,
        )

    def action_unlock(self) -> None:
        user = self.selected()
        if user is not None:
            self.confirm(
                "Unlock?",
                f"Lift the sign-in lockout of {user.username}?",
                lambda: self.write(accounts.unlock_user, user.username),
                confirm="Unlock",
            )

    def action_force_reset(self) -> None:
        user = self.selected()
        if user is not None:
            self.confirm(
                "Force a password reset?",
                f"{user.username} must choose a new password: sign-in is refused until then, open "
                "sessions end, and a reset code is emailed.",
                lambda: self.force_reset(user.username),
                confirm="Force reset",
            )

    async def apply(
        self, service: Callable[..., Awaitable[object]], username: str, **kwargs: Any
    ) -> None:
        """A form's service call: raises (the form shows why) or tells what was done."""
        await self.call(service, username=username, **kwargs)
        done = service.__name__.replace("_", " ")
        self.notify(f"{username}: {done} done.", title="Users", markup=False)

    @work(exclusive=True, group="write-users", exit_on_error=False)
    async def write(
        self, service: Callable[..., Awaitable[object]], username: str, **kwargs: Any
    ) -> None:
        await self.call(service, username=username, **kwargs)
        done = service.__name__.replace("_", " ")
        self.notify(f"{username}: {done} done.", title="Users", markup=False)
        self.reload()

    @work(exclusive=True, group="write-users", exit_on_error=False)
    async def force_reset(self, username: str) -> None:
        from batchops_core.accounts import force_password_reset

        await force_password_reset(
            self.bo.db, self.bo.settings, actor=self.bo.actor, username=username
        )
        self.notify(f"{username} must reset the password.", title="Users", markup=False)
        self.reload()
