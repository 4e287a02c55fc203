"""What every CLI command shares: settings, the database, output, and exit codes.

Commands are `async def handler(args, cli) -> int`; any BatchOpsError they raise becomes one line
on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Any, TextIO

from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.infra.migrate import ensure_current
from batchops_core.permissions import Actor

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass
class Cli:
    """The command's environment; built once per invocation by `main`."""

    settings: Settings
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _db: Database | None = None

    async def database(self, *, check_schema: bool = True) -> Database:
        """The configured database, checked to be reachable and at this code's schema."""
        if self._db is None:
            self._db = open_database(self.settings)
        if check_schema:
            await ensure_current(self._db)
        return self._db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.dispose()

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def print_json(self, value: Any) -> None:
        print(json.dumps(value, indent=2, default=json_value), file=self.out)

    def error(self, text: str) -> None:
        print(f"batchops: {text}", file=self.err)


Handler = Callable[[Any, Cli], Awaitable[int]]


def json_value(value: Any) -> Any:
    """What `--json` prints for a value JSON has no type for: timestamps in ISO 8601 with `T` and
    an offset (the database keeps UTC, so a naive one is UTC), dates ISO, enums by value."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return str(value)


def shell_operator() -> Actor:
    """Whoever runs the CLI without `--as`: an admin named after the OS login (`cli:<login>`).

    The CLI is an administrator's tool: whoever can read the configuration can reach the database
    directly, so the CLI trusts them as an admin and the audit trail names their login.
    """
    import getpass

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Actor(id=None, username=f"cli:{login}"[:64], role=Role.ADMIN)


async def signed_in_actor(cli: Cli, username: str | None, *, password_stdin: bool) -> Actor:
    """`--as USER` signs in like the TUI (audit, lockout) and acts with that account's role."""
    import os

    from batchops_core.accounts import authenticate
    from batchops_core.errors import AuthenticationFailed

    if not username:
        return shell_operator()
    password = (
        sys.stdin.readline().rstrip("\r\n")
        if password_stdin
        else os.environ.get("BATCHOPS_PASSWORD", "")
    )
    if not password:
        raise AuthenticationFailed(
            f"--as {username} needs a password: use --password-stdin or set BATCHOPS_PASSWORD."
        )
    db = await cli.database()
    async with db.sessions() as session:
        try:
            user = await authenticate(
                session, username=username, password=password, policy=cli.settings.security
            )
        finally:
            await session.commit()  # failures and lockouts are recorded too
    return user.actor


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain aligned text table for terminals and scripts."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def read_password(prompt: str, *, stdin: bool) -> str:
    """One password from stdin (scripts) or a hidden prompt asked twice (people)."""
    import getpass

    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Repeat the password: ") != first:
        from batchops_core.errors import ValidationFailed

        raise ValidationFailed("the two passwords differ.")
    return first
