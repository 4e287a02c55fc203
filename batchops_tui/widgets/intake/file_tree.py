"""Intake's file tree: no dot-files, and a way out of the folder it starts in."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.binding import Binding
from textual.widgets import DirectoryTree


class IntakeTree(DirectoryTree):
    """A DirectoryTree that hides dot-files (`.cache`, `.ssh` … filled `~`) and goes up a
    folder with backspace; a folder typed in Intake's path field re-roots it."""

    BINDINGS = [
        Binding(
            "backspace",
            "parent",
            "Up a folder",
            id="intake.parent",
            tooltip="Show the folder above this one",
        ),
    ]

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".")]

    def action_parent(self) -> None:
        current = Path(self.path).expanduser().resolve()
        if current.parent != current:
            self.path = current.parent

    def go_to(self, folder: Path) -> None:
        self.path = folder.expanduser().resolve()
