"""Keys in order: each typed key is fully handled before the next one is delivered.

Textual's App forwards every key to the focused widget as soon as it reads it; a binding runs
only when the key has bubbled back up. Keys that arrive in one burst (a password manager's
auto-type, tmux `send-keys`, a fast typist on a slow link) were therefore all forwarded before
the first one's binding ran: `n` then "late" opened Analyze only after "late" had reached the
table underneath, and its `a` had opened Assign. This mixin follows each key up the DOM (a
callback queued behind it on each node) and delivers the next key only when the previous one
was stopped or reached the app. It also holds keys while a dialog opens (`hold_keys`, a
`Dialog` not yet mounted) and hands them to its first field (`release_keys`).

A key that is never seen again (its widget removed meanwhile) is given up after KEY_TIMEOUT.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from textual import events
from textual.app import App, ScreenStackError
from textual.dom import DOMNode
from textual.timer import Timer

KEY_TIMEOUT = 0.5
"""Seconds after which a key still travelling no longer holds back the next ones."""
HOLD_KEYS_SECONDS = 3.0
"""Keys typed while a dialog opens are held at most this long (a failed query never opens it)."""


class KeySequencer(App[Any]):
    """Mixin for the App: deliver keys one at a time, and hold them while a dialog opens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holding_keys = False
        self._held_keys: list[events.Key] = []
        self._hold_timer: Timer | None = None
        self._key_in_flight: events.Key | None = None
        self._in_flight_since = 0.0

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            if not self._keys_held(event):
                await self._deliver_key(event)
            return
        await super().on_event(event)

    # -- holding -----------------------------------------------------------------------------------

    def _opening(self) -> bool:
        try:
            screen = self.screen
        except ScreenStackError:  # starting or shutting down: nothing to deliver keys to
            return True
        return getattr(screen, "keys_ready", True) is False  # a Dialog not yet mounted

    def _keys_held(self, event: events.Key) -> bool:
        if self._key_in_flight is not None and monotonic() - self._in_flight_since > KEY_TIMEOUT:
            self._key_in_flight = None  # lost on the way: do not wait for it any longer
        if self._holding_keys or self._held_keys or self._opening() or self._key_in_flight:
            self._held_keys.append(event)
            if self._key_in_flight is not None:
                self.set_timer(KEY_TIMEOUT + 0.05, self._drain)
            return True
        return False

    def hold_keys(self) -> None:
        """A dialog is about to open (perhaps after a query): keep the keys typed meanwhile for
        its first field instead of letting them reach the screen underneath or get lost."""
        self._holding_keys = True
        if self._hold_timer is not None:
            self._hold_timer.stop()
        self._hold_timer = self.set_timer(HOLD_KEYS_SECONDS, self.release_keys, name="keys")

    async def release_keys(self) -> None:
        """The dialog has focused its first field (or never opened): deliver the held keys."""
        self._holding_keys = False
        if self._hold_timer is not None:
            self._hold_timer.stop()
            self._hold_timer = None
        await self._drain()

    # -- delivering one key at a time --------------------------------------------------------------

    async def _deliver_key(self, event: events.Key) -> None:
        self._key_in_flight = event
        self._in_flight_since = monotonic()
        await super().on_event(event)  # priority bindings, else forwarded to the focused widget
        if not event.is_forwarded:  # handled here (tab, ctrl+l …): done
            self._key_done(event)
            return
        target: DOMNode = self.focused or self.screen
        target.call_later(self._follow_key, event, target)

    def _follow_key(self, event: events.Key, node: DOMNode) -> None:
        """Runs on `node` after it handled `event`: done if stopped, else follow it upwards."""
        if self._key_in_flight is not event:
            return
        parent = node._parent
        if parent is self:
            self.call_later(self._key_done, event)  # after the app's own bindings ran
        elif parent is None or event._stop_propagation or not event.bubble:
            self._key_done(event)
        else:
            parent.call_later(self._follow_key, event, parent)

    def _key_done(self, event: events.Key) -> None:
        if self._key_in_flight is event:
            self._key_in_flight = None
            self.call_later(self._drain)

    async def _drain(self) -> None:
        if self._key_in_flight is not None and monotonic() - self._in_flight_since > KEY_TIMEOUT:
            self._key_in_flight = None
        if self._key_in_flight is not None or self._holding_keys or self._opening():
            return
        if self._held_keys:
            await self._deliver_key(self._held_keys.pop(0))
