"""Admin tests: files to upload, waiting with a deadline, the real SMTP server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.mailserver import MailServer, mailserver, smtp_settings
from tests.tui.conftest import (  # noqa: F401 - fixtures for the Pilot tests
    _no_blink,
    make_app,
    queued_dispatcher,
    seeded,
    tui_db,
    tui_settings,
)

__all__ = ["MailServer", "mailserver", "put", "smtp_settings", "wait_for"]

LIBRARY = "student_id,book_id,borrowed_on,returned\n" + "".join(
    f"S{1000 + i % 7:05d},B{i:05d},2026-09-{1 + i % 28:02d},{'yes' if i % 3 else 'no'}\n"
    for i in range(30)
)
GRADEBOOK = "Student ID,class,maths,english\n" + "".join(
    f"S{i:03d},9{'AB'[i % 2]},{40 + i},{60 + i % 30}\n" for i in range(1, 41)
)


def put(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / "outside" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


async def wait_for(
    condition: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, every: float = 0.05
) -> Any:
    """Poll an async condition until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(every)
