"""SMTP delivery through aiosmtplib with the `[smtp]` settings.

Every failure becomes a `MailError` with one sentence a person can act on (mail not configured,
server unreachable, credentials refused, address refused); the cause is logged for the operator.
Messages are multipart plain text + HTML and always name the product in the subject.
"""

from __future__ import annotations

import html as html_lib
import logging
import mimetypes
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib

from batchops_core.errors import BatchOpsError
from batchops_core.infra.config import Settings, SmtpSecurity, SmtpSettings

PRODUCT = "BatchOps"
log = logging.getLogger(__name__)


class MailError(BatchOpsError):
    """A message could not be handed to the SMTP server."""


class RecipientRefused(MailError):
    """The server refused a recipient address (the server itself works)."""


def _security(smtp: SmtpSettings) -> SmtpSecurity:
    try:
        return SmtpSecurity(smtp.security.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in SmtpSecurity)
        raise MailError(
            f"[smtp] security is '{smtp.security}'; it must be one of {choices}."
        ) from None


def _connection_kwargs(smtp: SmtpSettings) -> dict[str, Any]:
    if not smtp.host:
        raise MailError(
            "mail is not configured: set [smtp] host (or BATCHOPS_SMTP_HOST) so BatchOps can send "
            "email."
        )
    security = _security(smtp)
    kwargs: dict[str, Any] = {
        "hostname": smtp.host,
        "port": smtp.port,
        "timeout": smtp.timeout,
        "use_tls": security is SmtpSecurity.TLS,
        "start_tls": security is SmtpSecurity.STARTTLS,
    }
    if smtp.username:
        kwargs["username"] = smtp.username
        kwargs["password"] = smtp.password.get()
    return kwargs


def _describe(smtp: SmtpSettings, exc: BaseException) -> str:
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return (
            f"the mail server {where} rejected the SMTP username or password; check [smtp] "
            "username and password."
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = ", ".join(r.recipient for r in exc.recipients)
        return f"the mail server {where} refused the address {refused}."
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return (
            f"the mail server {where} refused the sender {exc.sender}; check [smtp] from_address."
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return f"the mail server {where} did not answer in time; try again later."
    if isinstance(exc, aiosmtplib.SMTPException) and "AUTH" in str(exc):
        return (
            f"the mail server {where} does not accept the SMTP login; check [smtp] security, "
            "username and password."
        )
    if "STARTTLS" in str(exc):
        return (
            f"the mail server {where} does not offer STARTTLS; set [smtp] security to match the "
            "server (none, starttls or tls)."
        )
    if isinstance(exc, ssl.SSLError) or "SSL" in str(exc) or "certificate" in str(exc):
        return (
            f"no TLS session could be opened with the mail server {where}; check [smtp] security "
            "(tls is usually port 465, starttls port 587) and the server's certificate."
        )
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected | OSError):
        return f"cannot reach the mail server {where}; check [smtp] host and port, or try later."
    return f"the mail server {where} refused the message ({exc}); try again later."


def check_configured(settings: Settings) -> None:
    """Raise MailError unless the [smtp] settings are complete enough to try a delivery."""
    _connection_kwargs(settings.smtp)


def build_message(
    settings: Settings,
    *,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> EmailMessage:
    """A plain-text + HTML message from the configured sender, subject prefixed with the product;
    `attachments` are (file name, bytes) pairs, typed by the name's extension."""
    message = EmailMessage()
    message["From"] = settings.smtp.from_address
    message["To"] = ", ".join(to)
    message["Subject"] = subject if subject.startswith(PRODUCT) else f"{PRODUCT}: {subject}"
    message["Date"] = formatdate(localtime=False)
    domain = settings.smtp.from_address.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    if html is None:
        html = f"<pre>{html_lib.escape(text)}</pre>"
    message.add_alternative(
        f'<!doctype html><html><body style="font-family:sans-serif">{html}'
        f'<p style="color:#666">&mdash; {PRODUCT}</p></body></html>',
        subtype="html",
    )
    for name, data in attachments:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        maintype, _, subtype = kind.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


async def send_mail(
    settings: Settings,
    *,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Hand one message to the SMTP server or raise MailError saying why not."""
    if not to:
        raise MailError("the message has no recipient.")
    kwargs = _connection_kwargs(settings.smtp)
    message = build_message(
        settings, to=to, subject=subject, text=text, html=html, attachments=attachments
    )
    try:
        await aiosmtplib.send(message, **kwargs)
    except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
        sentence = _describe(settings.smtp, exc)
        log.warning("mail to %s not sent: %s (%r)", ", ".join(to), sentence, exc)
        kind = RecipientRefused if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) else MailError
        raise kind(sentence) from None


async def probe(settings: Settings) -> None:
    """Connect, greet and log in as `send_mail` would, send nothing; raise MailError on failure.

    Lets code that decides not to send (e.g. an unknown account) fail exactly when a real
    delivery would have failed, so its answer does not reveal the decision.
    """
    kwargs = _connection_kwargs(settings.smtp)
    username, password = kwargs.pop("username", None), kwargs.pop("password", None)
    client = aiosmtplib.SMTP(**kwargs)
    try:
        async with client:
            if username is not None:
                await client.login(username, password or "")
    except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
        sentence = _describe(settings.smtp, exc)
        log.warning("mail server check failed: %s (%r)", sentence, exc)
        raise MailError(sentence) from None
