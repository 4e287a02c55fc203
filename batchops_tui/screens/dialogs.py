"""Reusable modals: a yes/no confirmation and a small form with required fields.

Every state-changing action goes through one of these, so that a stray key never changes data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea


class ConfirmDialog(ModalScreen[bool]):
    """Ask before changing state; `y`/enter confirm, `n`/escape cancel."""

    BINDINGS = [
        Binding("escape,n", "dismiss(False)", "Cancel", id="dialog.cancel"),
        Binding("y", "dismiss(True)", "Confirm", id="dialog.confirm"),
    ]

    def __init__(self, title: str, question: str, *, confirm: str = "Confirm") -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Static(self._question, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._confirm} (y)", variant="primary", id="confirm")
                yield Button("Cancel (n)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "input"
    """`input`, `password`, `text` (multi-line) or `select`."""
    required: bool = False
    value: str = ""
    options: Sequence[tuple[str, str]] = field(default=())
    """(label, value) pairs for `select`."""
    placeholder: str = ""


class FormDialog(ModalScreen[dict[str, str] | None]):
    """A titled form; returns the values by field name, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", id="dialog.cancel"),
        Binding("ctrl+s", "submit", "Submit", id="dialog.submit"),
    ]

    def __init__(
        self, title: str, fields: Sequence[Field], *, submit: str = "Save", note: str = ""
    ) -> None:
        super().__init__()
        self._title = title
        self._fields = fields
        self._submit = submit
        self._note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form-dialog"):
            yield Label(self._title, classes="dialog-title")
            if self._note:
                yield Static(self._note, classes="dialog-text")
            with VerticalScroll(classes="form-fields"):
                for f in self._fields:
                    yield Label(f.label + (" *" if f.required else ""), classes="field-label")
                    yield self._widget(f)
            yield Label("", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._submit} (ctrl+s)", variant="primary", id="submit")
                yield Button("Cancel (esc)", id="cancel")

    def _widget(self, f: Field) -> Input | TextArea | Select[str]:
        wid = f"field-{f.name}"
        if f.kind == "text":
            return TextArea(f.value, id=wid, classes="field-text")
        if f.kind == "select":
            return Select(
                list(f.options),
                id=wid,
                allow_blank=not f.value,
                value=f.value if f.value else Select.NULL,
            )
        return Input(f.value, placeholder=f.placeholder, password=f.kind == "password", id=wid)

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self._fields:
            widget = self.query_one(f"#field-{f.name}")
            if isinstance(widget, TextArea):
                out[f.name] = widget.text.strip()
            elif isinstance(widget, Select):
                out[f.name] = "" if widget.value is Select.NULL else str(widget.value)
            else:
                out[f.name] = widget.value.strip() if f.kind != "password" else widget.value  # type: ignore[union-attr]
        return out

    def action_submit(self) -> None:
        values = self.values()
        missing = [f.label for f in self._fields if f.required and not values[f.name]]
        if missing:
            self.query_one(".form-error", Label).update(f"Required: {', '.join(missing)}.")
            return
        self.dismiss(values)

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _enter(self) -> None:
        self.action_submit()
