"""Small text helpers shared by the screens (no Textual imports; unit-testable)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from batchops_core.enums import STAGES, Stage

BAR_FULL = "█"
BAR_EMPTY = "░"


def when(value: datetime | None) -> str:
    """A compact UTC timestamp; absolute so that screenshots and logs agree."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def short_when(value: datetime | None) -> str:
    return value.strftime("%m-%d %H:%M") if value else "—"


def duration(value: timedelta | float | None, *, ms: bool = False) -> str:
    """`1h 02m`, `3m 05s`, `1.2s`, `340ms` — for MTTA/MTTR and step durations."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else value / (1000 if ms else 1)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def stage_bar(stage: Stage | str | None, *, done: bool = False, width: int = 5) -> str:
    """A five-step text progress bar: one block per pipeline stage reached."""
    if done:
        filled = len(STAGES)
    elif stage is None:
        filled = 0
    else:
        filled = STAGES.index(Stage(stage))
    filled = round(filled * width / len(STAGES))
    return BAR_FULL * filled + BAR_EMPTY * (width - filled)


def clip(text: str | None, width: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def page_label(offset: int, count: int, total: int) -> str:
    if total == 0:
        return "no rows"
    return f"{offset + 1:,}–{offset + count:,} of {total:,}"


def plain(value: Any) -> Any:
    """A string as literal text: file names, messages and notes may hold `[...]`, never markup.

    Rich and Textual read a bare `str` cell as console markup, so a message mentioning
    `[pipeline.column_aliases]` lost its words and one holding `[/x]` crashed the screen.
    """
    return Text(value) if isinstance(value, str) else value


def add_plain_row(table: Table, *cells: Any) -> None:
    """`table.add_row` with every string cell taken literally."""
    table.add_row(*(plain(cell) for cell in cells))


def readable(value: Any, indent: int = 0, limit: int = 60) -> str:
    """Nested summary data (dicts, lists) as indented `key: value` lines a person reads,
    instead of raw JSON; long lists are cut to `limit` items with a count of the rest."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in list(value.items())[:limit]:
            label = str(key).replace("_", " ")
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{label}:")
                lines.append(readable(item, indent + 1, limit))
            else:
                lines.append(f"{pad}{label}: {_scalar(item)}")
        if len(value) > limit:
            lines.append(f"{pad}… {len(value) - limit} more")
        return "\n".join(lines)
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            shown = ", ".join(_scalar(v) for v in value[:limit])
            more = f", … {len(value) - limit} more" if len(value) > limit else ""
            return f"{pad}{shown}{more}"
        lines = []
        for item in value[:limit]:
            if isinstance(item, dict):
                lines.append(f"{pad}- " + "; ".join(f"{k}: {_scalar(v)}" for k, v in item.items()))
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        if len(value) > limit:
            lines.append(f"{pad}… {len(value) - limit} more")
        return "\n".join(lines)
    return f"{pad}{_scalar(value)}"


def _scalar(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dict | list):
        return (
            ", ".join(f"{k}={_scalar(v)}" for k, v in value.items())
            if isinstance(value, dict)
            else ", ".join(_scalar(v) for v in value)
        )
    return str(value)


def clip_lines(text: str, lines: int) -> str:
    parts = text.splitlines()
    if len(parts) <= lines:
        return text
    return "\n".join(parts[:lines] + [f"… {len(parts) - lines} more lines"])
