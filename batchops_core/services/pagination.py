"""A page of results shared by every paginated listing service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


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
