"""`?` help: the markdown guide next to this package plus a generated table of every binding.

Both are built once per process (the screens' classes are imported for their BINDINGS the first
time only) and shown in a focused VerticalScroll, so the keyboard scrolls them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Label, Markdown, Static

from batchops_tui.catalogue import ALL_SCREENS
from batchops_tui.formatting import add_plain_row
from batchops_tui.screens.dialogs import Dialog

HELP_FILE = Path(__file__).resolve().parent.parent / "help" / "help.md"


def _key(binding: Binding) -> str:
    names = {
        "question_mark": "?",
        "slash": "/",
        "left_square_bracket": "[",
        "right_square_bracket": "]",
    }
    return ", ".join(names.get(k.strip(), k.strip()) for k in binding.key.split(","))


def _rows(bindings: list[BindingType]) -> list[tuple[str, str, str]]:
    rows = []
    for item in bindings:
        if not isinstance(item, Binding) or item.system:
            continue
        rows.append((_key(item), item.description or item.action, item.tooltip or ""))
    return rows


@functools.cache
def binding_sections() -> tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...]:
    """(title, rows) per screen, built once from the screens' own BINDINGS so it cannot drift."""
    from batchops_tui.screens.base import BaseScreen
    from batchops_tui.widgets.common.paged_table import PagedTable

    everywhere = _rows(list(BaseScreen.BINDINGS) + list(PagedTable.BINDINGS))
    everywhere += [
        ("tab, shift+tab", "Next / previous field", "also in dialogs and forms"),
        ("ctrl+p", "Palette", "every screen and action (sign out is there too)"),
        ("ctrl+l", "Lock", "lock the session"),
    ]
    sections = [("Everywhere", tuple(everywhere))]
    for spec in ALL_SCREENS:
        cls = spec.load()
        own = [b for b in cls.__dict__.get("BINDINGS", []) if b not in BaseScreen.BINDINGS]
        if own:
            sections.append((f"{spec.key} · {spec.title}", tuple(_rows(own))))
    return tuple(sections)


def bindings_markdown() -> str:
    """Every binding as markdown tables (for the docs; the screen shows `bindings_table`)."""
    parts: list[str] = []
    for title, rows in binding_sections():
        parts += ["", f"## {title}", "", "| key | action | what it does |", "| --- | --- | --- |"]
        parts += [f"| `{k}` | {a} | {t} |" for k, a, t in rows]
    return "\n".join(parts).strip()


def bindings_table() -> Group:
    """The same tables as Rich renderables: one Static instead of a widget per cell, which
    made `?` take seconds to open."""
    parts: list[Any] = []
    for title, rows in binding_sections():
        table = Table(title=title, title_justify="left", title_style="bold", expand=True)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("action")
        table.add_column("what it does", style="dim")
        for row in rows:
            add_plain_row(table, *row)
        parts += [table, Text("")]
    return Group(*parts)


@functools.cache
def guide_text() -> str:
    return HELP_FILE.read_text(encoding="utf-8")


class HelpScreen(Dialog[None]):
    """`?`: the guide and every key, scrollable with the keyboard (arrows, page keys, home/end)."""

    FIRST_FIELD = "#help-scroll"
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, origin: Screen | None = None) -> None:
        super().__init__()
        self.origin = origin

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            yield Label("Help — arrows/page keys scroll, escape closes", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Markdown(guide_text(), id="help-text")
                yield Static(bindings_table(), id="help-keys")
