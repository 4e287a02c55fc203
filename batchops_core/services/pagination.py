"""A page of results shared by every paginated listing service, and the one text search.

A search is a substring match taken literally: `%`, `_` and `\\` are escaped (they used to match
everything), and a search longer than `MAX_SEARCH` characters is refused with a sentence (60,000
characters made SQLite raise "LIKE or GLOB pattern too complex" as a traceback).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, func, or_

from batchops_core.errors import ValidationFailed

T = TypeVar("T")
MAX_PAGE = 500
"""No listing returns more rows than this per page, whatever the caller asks."""


def page_window(offset: int, limit: int, maximum: int = MAX_PAGE) -> tuple[int, int]:
    """Clamp a requested window to something a screen can show and a database can serve fast."""
    return max(0, offset), max(1, min(limit, maximum))


MAX_SEARCH = 200
"""Longest search text, in characters."""
LIKE_ESCAPE = "\\"


def like_pattern(search: str | None) -> str | None:
    """`%text%` for LIKE with `ESCAPE '\\'`, lower-cased; None when there is no search."""
    if not search or not search.strip():
        return None
    text = search.strip()
    if len(text) > MAX_SEARCH:
        raise ValidationFailed(
            f"a search may be at most {MAX_SEARCH} characters long (this one has {len(text):,}); "
            "shorten it."
        )
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_search(search: str | None, *columns: Any) -> ColumnElement[bool] | None:
    """Case-insensitive, literal substring match on any of the columns; None without a search."""
    needle = like_pattern(search)
    if needle is None:
        return None
    return or_(
        *(
            func.lower(func.coalesce(column, "")).like(needle, escape=LIKE_ESCAPE)
            for column in columns
        )
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a server-side paginated listing.

    ``total`` is the number of matching rows across all pages; ``offset`` and ``limit``
    echo the request so the UI can render "41-60 of 1,204" and page buttons.
    """

    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        """Whether another page follows this one."""
        return self.offset + len(self.items) < self.total

    @property
    def has_previous(self) -> bool:
        """Whether a page precedes this one."""
        return self.offset > 0
