"""What every main screen shares: header and footer, navigation keys, filter, refresh, back.

Screens load data in `@work` workers through `call()` (one session per call, the acting user
passed in); a failed worker becomes a toast through the app's `report_error`. A screen that is
not visible when data changes is marked stale and reloads when it is shown again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Select
from textual.worker import Worker, WorkerState

from batchops_core.infra.events import Event
from batchops_core.permissions import Action
from batchops_tui.catalogue import ADMIN_SCREENS, SCREENS
from batchops_tui.screens.dialogs import Field
from batchops_tui.widgets.common.paged_table import PagedTable

if TYPE_CHECKING:
    from batchops_tui.app import BatchOpsApp

T = TypeVar("T")
HIDDEN_REFRESH_SECONDS = 1.0
"""A hidden screen reloads at most this often after data changed (events or the poll)."""

NAV_BINDINGS = [
    Binding(
        s.key,
        f"app.goto('{s.mode}')",
        s.title,
        show=False,
        id=f"nav.{s.mode}",
        tooltip=f"Go to {s.title}: {s.help}",
    )
    for s in SCREENS + ADMIN_SCREENS
]


RowT = TypeVar("RowT")


class BaseScreen(Screen[None]):
    """A main screen: subclasses compose `body()` and implement `reload()`."""

    BINDINGS = [
        *NAV_BINDINGS,
        Binding("question_mark", "app.help", "Help", id="app.help", tooltip="Every key binding"),
        Binding(
            "slash", "filter", "Filter", show=False, id="screen.filter", tooltip="Filter the table"
        ),
        Binding(
            "r", "refresh_data", "Refresh", show=False, id="screen.refresh", tooltip="Load again"
        ),
        Binding("escape", "back", "Back", show=False, id="screen.back", tooltip="Close or go back"),
        Binding("q", "app.request_quit", "Quit", id="app.quit", tooltip="Quit (asks if busy)"),
    ]
    EVENT_PREFIXES: tuple[str, ...] = ()
    """Event types (prefixes) that make this screen look again."""

    def __init__(self) -> None:
        super().__init__()
        self.stale = True
        self._hidden_refresh: Timer | None = None
        # Textual re-parses the whole stylesheet the first time any new screen is shown (its CSS
        # counter starts at -1), ~130 ms per screen here. Our screens add no CSS of their own
        # (app.tcss is loaded once, widget CSS is registered by App.prewarm_styles), so start in
        # step with the app. Measured in bench/bench_tui.py; private, re-check on upgrades.
        if self.app is not None:
            self._css_update_count = self.app._css_update_count

    @property
    def bo(self) -> BatchOpsApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(icon="▣")
        yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.bo.data_changed.subscribe(self, self._data_changed)

    def on_screen_resume(self) -> None:
        if self.stale:
            self.stale = False
            self.reload()

    def _data_changed(self, event: Event) -> None:
        if event.type != "poll" and not event.type.startswith(self.EVENT_PREFIXES or ("",)):
            return
        if self.is_current:
            self.reload()
            return
        # Hidden: look again in the background (at most every HIDDEN_REFRESH_SECONDS), so that
        # switching here shows current data at once instead of waiting for a query.
        self.stale = True
        if self._hidden_refresh is None:
            self._hidden_refresh = self.set_timer(HIDDEN_REFRESH_SECONDS, self._refresh_hidden)

    def _refresh_hidden(self) -> None:
        self._hidden_refresh = None
        if self.stale and not self.is_current and self.bo.session is not None:
            self.stale = False
            self.reload()

    def reload(self) -> None:
        """Start the load worker(s); subclasses override."""

    def can(self, action: Action) -> bool:
        return self.bo.can(action)

    async def call(self, fn: Callable[..., Awaitable[T]], /, **kwargs: Any) -> T:
        """Call a core service in its own transaction, as the signed-in user."""
        async with self.bo.db.unit() as session:
            return await fn(session, actor=self.bo.actor, **kwargs)

    async def page_of(
        self, fn: Callable[..., Awaitable[T]], /, table: PagedTable | None = None, **filters: Any
    ) -> T:
        """One page of a listing service for a table: its search text, offset and page size."""
        table = table or self.query_one(PagedTable)
        return await self.call(
            fn,
            search=table.search or None,
            offset=table.page_offset,
            limit=table.page_size,
            **filters,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.app.call_later(self.bo.release_keys)  # a dialog that was loading never opens
            self.bo.report_error(event.worker.error)

    def focused_table(self) -> PagedTable | None:
        node = self.focused
        while node is not None and not isinstance(node, PagedTable):
            node = node.parent  # type: ignore[assignment]
        if node is not None:
            return node
        tables = self.query(PagedTable)
        return tables.first() if tables else None

    def action_filter(self) -> None:
        table = self.focused_table()
        if table is not None:
            table.open_filter()

    def action_refresh_data(self) -> None:
        self.reload()

    def action_back(self) -> None:
        table = self.focused_table()
        if table is not None and table.filtering:
            table.close_filter()
            return
        if self.close_detail():
            return
        if self.bo.current_mode != "home":
            self.run_worker(self.bo.action_goto("home"), group="nav", exclusive=True)

    def close_detail(self) -> bool:
        """Close an open detail pane; return True when something was closed."""
        return False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        needed = self.ACTION_PERMISSIONS.get(action)
        return needed is None or self.can(needed)

    ACTION_PERMISSIONS: dict[str, Action] = {}
    """Actions hidden (footer, palette) and refused for roles that may not take them."""

    # -- confirmations -------------------------------------------------------------------------

    def confirm(
        self, title: str, question: str, then: Callable[[], object], *, confirm: str = "Confirm"
    ) -> None:
        """Ask first; run `then` only on yes."""
        from batchops_tui.screens.dialogs import ConfirmDialog

        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmDialog(title, question, confirm=confirm), answered)

    def ask(
        self,
        title: str,
        fields: Sequence[Field],
        then: Callable[[dict[str, str]], Awaitable[object]],
        *,
        submit: str = "Save",
        note: str = "",
        done: Callable[[], object] | None = None,
    ) -> None:
        """Show a form whose submit awaits `then(values)` (the service call): the form stays
        open with the refusal beside its field until the call succeeds; then `done()` runs
        (reload, toast) on this screen."""
        from batchops_tui.screens.dialogs import FormDialog

        def answered(values: dict[str, str] | None) -> None:
            if values is not None and done is not None:
                done()

        self.app.push_screen(
            FormDialog(title, fields, submit=submit, note=note, action=then), answered
        )


class ListDetailScreen(BaseScreen):
    """A paged listing whose chosen row opens a detail pane (Runs, Issues, Reports).

    Subclasses name the pane in `DETAIL_PANE` and define the `load()` and `load_detail(key)`
    workers; filters, searching, choosing, following the cursor and closing live here once.
    """

    DETAIL_PANE: ClassVar[str] = ""
    """CSS selector of the detail pane, shown while it has the class `open`."""
    FOLLOW_CURSOR: ClassVar[bool] = True
    """Whether an open pane follows the highlighted row."""

    def __init__(self) -> None:
        super().__init__()
        self.detail: Any = None

    def load(self) -> Any:
        raise NotImplementedError

    def load_detail(self, key: int) -> Any:
        raise NotImplementedError

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(PagedTable).table.focus()

    def select_value(self, selector: str) -> Any:
        """A filter's chosen value, or None while it shows its prompt."""
        value = self.query_one(selector, Select).value
        return None if value is Select.NULL else value

    def show_detail(self) -> None:
        self.query_one(self.DETAIL_PANE).add_class("open")
        self.refresh_bindings()

    @on(Select.Changed)
    def filters_changed(self) -> None:
        self.query_one(PagedTable).page_offset = 0
        self.load()

    @on(PagedTable.QueryChanged)
    def _query(self) -> None:
        self.load()

    @on(PagedTable.Chosen)
    def _chosen(self, event: PagedTable.Chosen) -> None:
        self.load_detail(int(event.key))

    @on(PagedTable.Highlighted)
    def _follow(self, event: PagedTable.Highlighted) -> None:
        if self.FOLLOW_CURSOR and self.detail is not None:
            self.load_detail(int(event.key))

    def close_detail(self) -> bool:
        if self.detail is None:
            return False
        pane = self.query_one(self.DETAIL_PANE)
        had_focus = self.focused is not None and (
            self.focused is pane or pane in self.focused.ancestors
        )
        self.detail = None
        pane.remove_class("open")
        if had_focus or self.focused is None:
            self.query_one(PagedTable).table.focus()  # never left on the hidden pane
        self.refresh_bindings()
        return True

    def selected_key(self) -> int | None:
        """The row the operator sees highlighted (the open detail may still be loading)."""
        key = self.query_one(PagedTable).selected_key()
        if key:
            return int(key)
        return None


class EditableTableScreen(BaseScreen, Generic[RowT]):
    """A table of rows an admin creates and edits in a form (Schedules, Departments, Known
    errors): the chosen row opens its form when the role may edit, `n` / `e` open it empty or
    filled. Subclasses fill `rows` when they load and say what `open_form` shows."""

    EDIT_ACTION: ClassVar[Action]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rows: dict[str, RowT] = {}

    def open_form(self, row: RowT | None) -> None:
        raise NotImplementedError

    def load(self) -> None:
        raise NotImplementedError

    @on(PagedTable.QueryChanged)
    def _query(self) -> None:
        self.load()

    @on(PagedTable.Chosen)
    def _chosen(self) -> None:
        if self.can(self.EDIT_ACTION):
            self.action_edit()

    def selected(self) -> RowT | None:
        key = self.query_one(PagedTable).selected_key()
        return self.rows.get(key) if key else None

    def action_create(self) -> None:
        self.open_form(None)

    def action_edit(self) -> None:
        row = self.selected()
        if row is not None:
            self.open_form(row)
