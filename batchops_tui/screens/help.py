"""`?` help: the markdown guide next to this package plus a generated table of every binding."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Markdown

from batchops_tui.catalogue import ALL_SCREENS

HELP_FILE = Path(__file__).resolve().parent.parent / "help" / "help.md"


def _key(binding: Binding) -> str:
    names = {
        "question_mark": "?",
        "slash": "/",
        "left_square_bracket": "[",
        "right_square_bracket": "]",
    }
    return ", ".join(names.get(k.strip(), k.strip()) for k in binding.key.split(","))


def _rows(bindings: list[BindingType]) -> list[str]:
    rows = []
    for item in bindings:
        if not isinstance(item, Binding):
            continue
        rows.append(
            f"| `{_key(item)}` | {item.description or item.action} | {item.tooltip or ''} |"
        )
    return rows


def bindings_markdown() -> str:
    """One table per screen, built from the screens' own BINDINGS so it can never drift."""
    from batchops_tui.screens.base import BaseScreen
    from batchops_tui.widgets.common.paged_table import PagedTable

    parts = ["## Everywhere", "", "| key | action | what it does |", "| --- | --- | --- |"]
    parts += _rows(list(BaseScreen.BINDINGS) + list(PagedTable.BINDINGS))
    parts.append("| `ctrl+p` | Palette | every screen and action |")
    parts.append("| `ctrl+l` | Lock | lock the session |")
    for spec in ALL_SCREENS:
        cls = spec.load()
        own = [b for b in cls.__dict__.get("BINDINGS", []) if b not in BaseScreen.BINDINGS]
        if not own:
            continue
        parts += [
            "",
            f"## {spec.key} · {spec.title}",
            "",
            "| key | action | what it does |",
            "| --- | --- | --- |",
        ]
        parts += _rows(own)
    return "\n".join(parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, origin: Screen | None = None) -> None:
        super().__init__()
        self.origin = origin

    def compose(self) -> ComposeResult:
        text = HELP_FILE.read_text(encoding="utf-8") + "\n\n" + bindings_markdown()
        with Vertical(classes="dialog help-dialog"):
            yield Label("Help — escape to close", classes="dialog-title")
            yield Markdown(text, id="help-text")

    def on_mount(self) -> None:
        self.query_one(Markdown).focus()
