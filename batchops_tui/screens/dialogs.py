"""Reusable modals: a yes/no confirmation and a small form with required fields.

Every state-changing action goes through one of these, so that a stray key never changes data.

Every dialog opens with focus on its first field, and the keys typed while it was opening are
delivered there (the app holds them until `Dialog.on_mount` has focused it). A form given an
`action` calls the service itself and closes only when it succeeded: a refusal keeps the dialog
open with everything typed and the sentence shown under the field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from batchops_core.errors import BatchOpsError
from batchops_tui.formatting import plain

R = TypeVar("R")


class Dialog(ModalScreen[R]):
    """A modal that focuses its first field and takes the keys typed while it opened."""

    FIRST_FIELD: ClassVar[str] = "Input, TextArea, Select, Checkbox, Button"
    """Selector of the widget that gets focus when the dialog opens."""

    keys_ready = False
    """False until the first field has focus; until then the app holds typed keys."""

    def on_mount(self) -> None:
        self.focus_first()
        self.keys_ready = True
        release = getattr(self.app, "release_keys", None)
        if release is not None:
            self.app.call_later(release)

    def focus_first(self) -> None:
        # Screen.set_focus moves focus now (Widget.focus waits for idle): the held keys that
        # are released next must find it.
        for widget in self.query(self.FIRST_FIELD):
            if widget.focusable:
                self.set_focus(widget, scroll_visible=False)
                if isinstance(widget, TextArea):
                    widget.move_cursor(widget.document.end)  # typing adds to what is recorded
                return


class ConfirmDialog(Dialog[bool]):
    """Ask before changing state; `y`/enter confirm, `n`/escape cancel."""

    FIRST_FIELD = "#confirm"
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
            yield Static(plain(self._question), classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._confirm} (y)", variant="primary", id="confirm")
                yield Button("Cancel (n)", id="cancel")

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
    words: tuple[str, ...] = ()
    """Other words an error message uses for this field (e.g. `department` for arguments)."""


def field_for_error(message: str, fields: Iterable[tuple[str, Iterable[str]]]) -> str | None:
    """The name of the field an error sentence is about: the first field one of whose words
    (its name, label, aliases) the sentence mentions; None when it names none of them."""
    text = message.lower()
    for name, words in fields:
        for word in words:
            word = word.lower().strip(" *")
            if word and re.search(rf"\b{re.escape(word)}\b", text):
                return name
    return None


def _words(f: Field) -> tuple[str, ...]:
    return (f.name, f.name.replace("_", " "), f.label, *f.words)


Action = Callable[[dict[str, str]], Awaitable[object]]


class FormDialog(Dialog[dict[str, str] | None]):
    """A titled form; returns the values by field name, or None when cancelled.

    With `action`, submitting calls it (the service call) in the dialog's own worker and the
    dialog closes only on success; a refusal is shown under the field it names.
    """

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", id="dialog.cancel"),
        Binding("ctrl+s", "submit", "Submit", id="dialog.submit"),
    ]

    def __init__(
        self,
        title: str,
        fields: Sequence[Field],
        *,
        submit: str = "Save",
        note: str = "",
        action: Action | None = None,
    ) -> None:
        super().__init__()
        self._title = title
        self._fields = fields
        self._submit = submit
        self._note = note
        self._action = action

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form-dialog"):
            yield Label(self._title, classes="dialog-title")
            if self._note:
                yield Static(plain(self._note), classes="dialog-text")
            scroll = VerticalScroll(classes="form-fields")
            scroll.can_focus = False  # focus goes to the first field, not to the container
            with scroll:
                for f in self._fields:
                    yield Label(f.label + (" *" if f.required else ""), classes="field-label")
                    yield self._widget(f)
                    yield Label("", id=f"error-{f.name}", classes="field-error")
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

    def clear_errors(self) -> None:
        for label in self.query(".field-error").results(Label):
            label.update("")
            label.remove_class("shown")
        self.query_one(".form-error", Label).update("")

    def show_error(self, message: str, field_name: str | None = None) -> None:
        """Show a refusal under its field (focused, scrolled into view) or under the form."""
        text = message[:1].upper() + message[1:]
        if field_name is None:
            field_name = field_for_error(message, ((f.name, _words(f)) for f in self._fields))
        if field_name is None:
            self.query_one(".form-error", Label).update(plain(text))
            return
        label = self.query_one(f"#error-{field_name}", Label)
        label.update(plain(text))
        label.add_class("shown")
        widget: Widget = self.query_one(f"#field-{field_name}")
        widget.focus()

    def action_submit(self) -> None:
        values = self.values()
        self.clear_errors()
        missing = [f for f in self._fields if f.required and not values[f.name]]
        if missing:
            self.show_error(
                f"Required: {', '.join(f.label for f in missing)}.",
                missing[0].name if len(missing) == 1 else None,
            )
            return
        if self._action is None:
            self.dismiss(values)
            return
        self.run_worker(self._run(values), group="write-dialog", exclusive=True)

    async def _run(self, values: dict[str, str]) -> None:
        assert self._action is not None
        button = self.query_one("#submit", Button)
        button.disabled = True
        try:
            await self._action(values)
        except BatchOpsError as exc:
            self.show_error(str(exc))
            return
        except Exception as exc:  # shown, never a traceback; the dialog keeps what was typed
            self.app.report_error(exc)  # type: ignore[attr-defined]
            return
        finally:
            button.disabled = False
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
