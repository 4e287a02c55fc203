"""What a setting's value may be, beyond its type: ranges, choices, time zones, and secrets.

A field says it in its annotation, `Annotated[int, Range(ge=1)]`, so the rule sits next to the
setting and its default. The loader (`config.load_settings`) checks every value of the file and the
environment against these rules and reports every broken one in one sentence, naming the key and
what it may be.

Why not pydantic: the checks run before anything else in every `batchops` command and before the
TUI's first frame, and importing pydantic and building its validators for these sections costs
~0.25 s on this machine (the TUI's whole start-up budget over bare Textual is ~0.2 s). These few
rules need no more than this module. Settings stay stdlib frozen dataclasses, so tests build and
`dataclasses.replace` them freely; only what is loaded from a file or the environment is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Secret:
    """A secret setting (SMTP password, storage keys): never shown by `str`, `repr` or a log
    line that prints the settings; `.get()` reads it where it is actually used."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "********"

    __repr__ = __str__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def of(cls, value: Secret | str) -> Secret:
        return value if isinstance(value, Secret) else cls(value)


@dataclass(frozen=True)
class Range:
    """A number's allowed range: `ge`/`le` inclusive, `gt` exclusive."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def problem(self, value: float) -> str | None:
        low_ok = (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
        if low_ok and (self.le is None or value <= self.le):
            return None
        return f"must be {self.describe()}, got {value!r}"

    def describe(self) -> str:
        if self.ge is not None and self.le is not None:
            return f"between {_num(self.ge)} and {_num(self.le)}"
        parts = []
        if self.ge is not None:
            parts.append(f"at least {_num(self.ge)}")
        if self.gt is not None:
            parts.append(f"more than {_num(self.gt)}")
        if self.le is not None:
            parts.append(f"at most {_num(self.le)}")
        return " and ".join(parts)


@dataclass(frozen=True)
class TimeZoneName:
    """An IANA time zone the system's tz database knows (checked with zoneinfo at load)."""

    def problem(self, value: str) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return (
                "must be an IANA time zone name such as UTC, Europe/Paris or Asia/Kolkata, "
                f"got {value!r}"
            )
        return None


@dataclass(frozen=True)
class NotBlank:
    def problem(self, value: str) -> str | None:
        return "must not be empty" if not value.strip() else None


def choice(enum: type[StrEnum], value: Any) -> tuple[StrEnum | None, str | None]:
    """The enum member a text names (case and surrounding blanks ignored), or the problem."""
    if isinstance(value, enum):
        return value, None
    names = ", ".join(member.value for member in enum)
    if isinstance(value, str):
        try:
            return enum(value.strip().lower()), None
        except ValueError:
            pass
    return None, f"must be one of {names}, got {value!r}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
