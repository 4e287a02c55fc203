"""A department's validation profile: what its files must hold, as plain picklable values.

The department row is the source (`batchops department edit`, the Departments screen): whether
its files are gradebooks (held to "an identifier and at least one numeric score"), which column
identifies a row (None: rows are not unique by any column, e.g. library loans), which columns
must be present, and the header aliases of its exports. The runner reads the row into a profile
when it claims an upload; `validate.requirements` applies it. Kept apart from `validate.py` so
that the runner and the services read it without importing pandas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_KEY = "student_id"


@dataclass(frozen=True)
class ValidationProfile:
    gradebook: bool = False
    key_column: str | None = DEFAULT_KEY
    required_columns: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, department: Any) -> ValidationProfile:
        """The profile of a `Department` row (any object with its attributes)."""
        return cls(
            gradebook=bool(department.gradebook),
            key_column=department.key_column or None,
            required_columns=tuple(str(c) for c in (department.required_columns or [])),
            aliases={str(k): str(v) for k, v in (department.aliases or {}).items()},
        )

    def describe(self) -> str:
        """One line for screens and the CLI."""
        kind = "gradebook (key + a numeric score)" if self.gradebook else "not a gradebook"
        key = f"key {self.key_column}" if self.key_column else "no key column"
        cols = ", ".join(self.required_columns) or "none"
        return f"{kind}; {key}; required columns: {cols}"
