"""A DataTable over a server-side paginated listing, with a `/` filter box and a pager line.

The widget holds no data access: it posts `PagedTable.QueryChanged` when the filter text or the
page changes, the screen runs its load worker and hands back a `Page` with `show()`.

Columns are chosen by priority for the width the table has: a column is `(key, label)` (always
shown) or `(key, label, priority, width)`; the most important columns that fit are shown, in
their declared order, and the rest stay in the screen's detail. At 80 columns Runs keeps its
duration and rows, Schedules its `on` and last result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Label
from textual.widgets.data_table import RowDoesNotExist

from batchops_core.services.pagination import Page
from batchops_tui.formatting import page_label, plain

Row = tuple[str, Sequence[object]]
"""A row key (the object's id) and its cells (one per declared column)."""
Column = tuple[str, str] | tuple[str, str, int, int]
"""(key, label) or (key, label, priority — 1 first, width of its usual content)."""
CELL_PADDING = 2
SCROLLBAR = 2

FILTER_DEBOUNCE = 0.3


class PagedTable(Vertical):
    """A filterable, paginated table; `offset` and `search` are the current query."""

    BINDINGS = [
        Binding(
            "left_square_bracket",
            "page(-1)",
            "Prev page",
            show=False,
            id="table.prev",
            tooltip="Previous page",
        ),
        Binding(
            "right_square_bracket",
            "page(1)",
            "Next page",
            show=False,
            id="table.next",
            tooltip="Next page",
        ),
    ]

    @dataclass
    class QueryChanged(Message):
        """The filter text or the page changed: the screen loads again."""

        table: PagedTable

        @property
        def control(self) -> PagedTable:
            return self.table

    @dataclass
    class Chosen(Message):
        """A row was selected with enter or a click."""

        table: PagedTable
        key: str

        @property
        def control(self) -> PagedTable:
            return self.table

    @dataclass
    class Highlighted(Message):
        table: PagedTable
        key: str

        @property
        def control(self) -> PagedTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        page_size: int = 50,
        placeholder: str = "filter (enter to apply, esc to close)",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="paged-table")
        self.columns = columns
        self.page_size = page_size
        self.page_offset = 0
        self.search = ""
        self.total = 0
        self._placeholder = placeholder
        self._debounce: Timer | None = None
        self._rows: list[Row] = []
        self._pager = "loading…"
        self.shown_columns: tuple[int, ...] = tuple(range(len(columns)))
        """Indices of the declared columns on screen."""

    def compose(self) -> ComposeResult:
        yield Input(placeholder=self._placeholder, classes="table-filter")
        table: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=True)
        width = self.app.size.width if self.app is not None else 0
        self.shown_columns = self.fitting(width)
        for i in self.shown_columns:
            table.add_column(self.columns[i][1], key=self.columns[i][0])
        yield table
        yield Label("loading…", classes="pager")

    def fitting(self, width: int) -> tuple[int, ...]:
        """The columns to show in `width` cells: by priority, then in declared order."""
        if width <= 0:
            return tuple(range(len(self.columns)))
        order = sorted(
            range(len(self.columns)),
            key=lambda i: self.columns[i][2] if len(self.columns[i]) > 2 else 0,  # type: ignore[misc]
        )
        chosen: list[int] = []
        used = SCROLLBAR
        for i in order:
            column = self.columns[i]
            need = (column[3] if len(column) > 3 else len(column[1])) + CELL_PADDING  # type: ignore[misc]
            if len(column) > 2 and used + need > width:
                continue
            chosen.append(i)
            used += need
        return tuple(sorted(chosen))

    def on_resize(self) -> None:
        visible = self.fitting(self.size.width)
        if visible == self.shown_columns:
            return
        self.shown_columns = visible
        table = self.table
        keep = self.selected_key()
        table.clear(columns=True)
        for i in visible:
            table.add_column(self.columns[i][1], key=self.columns[i][0])
        self._fill(keep)

    @property
    def table(self) -> DataTable[object]:
        return self.query_one(DataTable)

    @property
    def filter_input(self) -> Input:
        return self.query_one(".table-filter", Input)

    def open_filter(self) -> None:
        self.add_class("filtering")
        self.filter_input.focus()

    def close_filter(self) -> None:
        self.remove_class("filtering")
        self.table.focus()

    @property
    def filtering(self) -> bool:
        return self.has_class("filtering")

    def show(self, page: Page[object], rows: Sequence[Row]) -> None:
        """Replace the rows, keeping the cursor on the same object when it is still listed."""
        keep = self.selected_key()
        self._rows = list(rows)
        self.total = page.total
        self.page_offset = page.offset
        pages = "  [ ] pages" if page.total > page.limit else ""
        self._pager = page_label(page.offset, len(rows), page.total) + pages
        self._show_pager()
        self._fill(keep)

    def _fill(self, keep: str | None) -> None:
        table = self.table
        table.clear()
        for key, cells in self._rows:
            table.add_row(*(plain(cells[i]) for i in self.shown_columns if i < len(cells)), key=key)
        if keep is not None:
            # The row may be gone (filtered, archived): then the cursor stays at the top.
            with contextlib.suppress(RowDoesNotExist):
                table.move_cursor(row=table.get_row_index(keep))

    def _show_pager(self) -> None:
        """The page line; an applied `/` filter stays visible there after its box closes."""
        label = self.query_one(".pager", Label)
        if self.search:
            label.update(
                Text.assemble(
                    ("filter ", "bold"),
                    (f"“{self.search}”", "bold yellow"),
                    "  (/ to change)  ",
                    self._pager,
                )
            )
        else:
            label.update(self._pager)

    def selected_key(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def action_page(self, step: int) -> None:
        new = self.page_offset + step * self.page_size
        if new < 0 or new >= max(self.total, 1):
            return
        self.page_offset = new
        self.post_message(self.QueryChanged(self))

    @on(Input.Changed, ".table-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(FILTER_DEBOUNCE, lambda: self._apply(event.value))

    @on(Input.Submitted, ".table-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._apply(event.value)
        self.table.focus()

    def _apply(self, text: str) -> None:
        if text.strip() == self.search:
            return
        self.search = text.strip()
        self.page_offset = 0
        self._show_pager()
        self.post_message(self.QueryChanged(self))

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(self, str(event.row_key.value)))

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(self.Highlighted(self, str(event.row_key.value)))
