"""A real SMTP server for tests: aiosmtpd on a free loopback port, collecting what it receives.

Import the fixtures into a conftest or a test module (`from tests.mailserver import mailserver`)
or use the helpers directly:

* `MailServer()` — accepts every message (`credentials=("u", "p")` to require that login);
* `MailServer(reject_auth=True)` — advertises AUTH and refuses every login;
* `MailServer(refuse=("x@y",))` — answers 550 for those recipients;
* `closed_port()` — a loopback port nobody listens on (an SMTP server that is down);
* `smtp_settings(settings, server_or_port)` — Settings pointing at it.

The server runs in aiosmtpd's own thread and event loop, so async tests can talk to it directly.
AUTH is allowed without TLS (`auth_require_tls=False`) because the loopback server has no cert.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from batchops_core.infra.config import Settings

HOST = "127.0.0.1"
CODE_RE = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class Received:
    """One message as the server got it."""

    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""

    @property
    def code(self) -> str:
        """The first 6-digit code in the plain-text part."""
        found = CODE_RE.search(self.text)
        assert found, f"no 6-digit code in message {self.subject!r}: {self.text!r}"
        return found.group(1)


class _Collector:
    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.received: list[Received] = []
        self.refuse = refuse

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=email_policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A loopback port with no listener: connecting to it is refused at once."""
    return free_port()


class MailServer:
    """An aiosmtpd server; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        reject_auth: bool = False,
        refuse: tuple[str, ...] = (),
    ) -> None:
        self.credentials = credentials
        self.reject_auth = reject_auth
        self.port = free_port()
        self._collector = _Collector(frozenset(a.lower() for a in refuse))
        kwargs: dict[str, Any] = {}
        if credentials is not None or reject_auth:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self._collector, hostname=HOST, port=self.port, **kwargs)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.reject_auth or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == self.credentials)

    @property
    def messages(self) -> list[Received]:
        return list(self._collector.received)

    def start(self) -> MailServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Received]:
        """Poll until `count` messages arrived (bounded), then return them all."""
        deadline = time.monotonic() + timeout
        while len(self._collector.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} message(s), got {len(self._collector.received)}"
                )
            time.sleep(0.01)
        return self.messages

    def last(self, to: str | None = None) -> Received:
        """The newest message (to `to`, if given)."""
        matching = [m for m in self.messages if to is None or to in m.recipients]
        assert matching, f"no message{f' to {to}' if to else ''} was received"
        return matching[-1]


def smtp_settings(
    settings: Settings, target: MailServer | int, *, username: str = "", password: str = ""
) -> Settings:
    """`settings` with [smtp] pointing at a MailServer or a bare port, short timeout."""
    port = target.port if isinstance(target, MailServer) else target
    if isinstance(target, MailServer) and target.credentials and not username:
        username, password = target.credentials
    smtp = dataclasses.replace(
        settings.smtp,
        host=HOST,
        port=port,
        security="none",
        username=username,
        password=password,
        from_address="batchops@school.example",
        timeout=5.0,
    )
    return dataclasses.replace(settings, smtp=smtp)


@pytest.fixture
def mailserver() -> Iterator[MailServer]:
    """A running SMTP server that accepts every message."""
    with MailServer() as server:
        yield server
