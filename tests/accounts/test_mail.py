"""send_mail against a real aiosmtpd server: content, and each way delivery can fail."""

from __future__ import annotations

import dataclasses

import pytest

from batchops_core.infra.config import Settings
from batchops_core.infra.mail import MailError, probe, send_mail
from tests.mailserver import MailServer, closed_port, smtp_settings


async def test_message_is_multipart_with_product_subject(
    settings: Settings, mailserver: MailServer
) -> None:
    configured = smtp_settings(settings, mailserver)
    await send_mail(
        configured, to=["ann@school.example"], subject="Daily digest", text="3 uploads published"
    )
    (received,) = mailserver.wait_for(1)
    assert received.recipients == ["ann@school.example"]
    assert received.sender == "batchops@school.example"
    assert received.subject == "BatchOps: Daily digest"
    assert "3 uploads published" in received.text
    assert "3 uploads published" in received.html and "<html>" in received.html
    assert received.message.is_multipart()


async def test_login_with_accepted_credentials(settings: Settings) -> None:
    with MailServer(credentials=("mailer", "s3cret-pass")) as server:
        configured = smtp_settings(settings, server)
        await send_mail(configured, to=["a@school.example"], subject="BatchOps: hi", text="hi")
        await probe(configured)
        assert [m.subject for m in server.wait_for(1)] == ["BatchOps: hi"]


async def test_rejected_credentials_are_one_clear_sentence(settings: Settings) -> None:
    with MailServer(reject_auth=True) as server:
        configured = smtp_settings(settings, server, username="mailer", password="wrong")
        with pytest.raises(MailError, match="rejected the SMTP username or password"):
            await send_mail(configured, to=["a@school.example"], subject="x", text="x")
        with pytest.raises(MailError, match="rejected the SMTP username or password"):
            await probe(configured)
        assert server.messages == []


async def test_server_down(settings: Settings) -> None:
    port = closed_port()
    configured = smtp_settings(settings, port)
    with pytest.raises(MailError, match=f"cannot reach the mail server 127.0.0.1:{port}"):
        await send_mail(configured, to=["a@school.example"], subject="x", text="x")
    with pytest.raises(MailError, match="cannot reach the mail server"):
        await probe(configured)


async def test_not_configured(settings: Settings) -> None:
    with pytest.raises(MailError, match=r"mail is not configured: set \[smtp\] host"):
        await send_mail(settings, to=["a@school.example"], subject="x", text="x")


async def test_unknown_security_mode(settings: Settings, mailserver: MailServer) -> None:
    configured = smtp_settings(settings, mailserver)
    configured = dataclasses.replace(
        configured, smtp=dataclasses.replace(configured.smtp, security="ssl")
    )
    with pytest.raises(MailError, match="must be one of none, starttls, tls"):
        await send_mail(configured, to=["a@school.example"], subject="x", text="x")


@pytest.mark.parametrize(
    ("security", "username", "sentence"),
    [
        ("starttls", "", "does not offer STARTTLS; set [smtp] security to match"),
        ("tls", "", "no TLS session could be opened with the mail server"),
        ("none", "mailer", "does not accept the SMTP login"),
    ],
)
async def test_settings_that_do_not_match_the_server(
    settings: Settings, mailserver: MailServer, security: str, username: str, sentence: str
) -> None:
    configured = smtp_settings(settings, mailserver, username=username, password="pw")
    configured = dataclasses.replace(
        configured, smtp=dataclasses.replace(configured.smtp, security=security)
    )
    with pytest.raises(MailError) as failure:
        await send_mail(configured, to=["a@school.example"], subject="x", text="x")
    assert sentence in str(failure.value) and f"127.0.0.1:{mailserver.port}" in str(failure.value)
    assert mailserver.messages == []


async def test_refused_recipient(settings: Settings) -> None:
    with MailServer(refuse=("gone@school.example",)) as server:
        configured = smtp_settings(settings, server)
        with pytest.raises(MailError, match="refused the address gone@school.example"):
            await send_mail(configured, to=["gone@school.example"], subject="x", text="x")
        await send_mail(configured, to=["here@school.example"], subject="x", text="x")
        assert [m.recipients for m in server.wait_for(1)] == [["here@school.example"]]
