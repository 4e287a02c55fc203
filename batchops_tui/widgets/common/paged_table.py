"""A DataTable over a server-side paginated listing, with a `/` filter box and a pager line.

The widget holds no data access: it posts `PagedTable.QueryChanged` when the filter text or the
page changes, the screen runs its load worker and hands back a `Page` with `show()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

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
"""A row key (the object's id) and its cells."""

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
        columns: Sequence[tuple[str, str]],
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

    def compose(self) -> ComposeResult:
        yield Input(placeholder=self._placeholder, classes="table-filter")
        table: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=True)
        for key, label in self.columns:
            table.add_column(label, key=key)
        yield table
        yield Label("loading…", classes="pager")

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
        table = self.table
        keep = self.selected_key()
        table.clear()
        for key, cells in rows:
            table.add_row(*(plain(cell) for cell in cells), key=key)
        self.total = page.total
        self.page_offset = page.offset
        pages = "  [ ] pages" if page.total > page.limit else ""
        self.query_one(".pager", Label).update(
            page_label(page.offset, len(rows), page.total) + pages
        )
        if keep is not None:
            # The row may be gone (filtered, archived): then the cursor stays at the top.
            with contextlib.suppress(RowDoesNotExist):
                table.move_cursor(row=table.get_row_index(keep))

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
