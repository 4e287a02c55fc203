"""Account tests: a real SMTP server per test and settings pointing at it."""

from __future__ import annotations

import dataclasses

import pytest

from batchops_core.infra.config import Settings
from tests.mailserver import MailServer, mailserver, smtp_settings

__all__ = ["mailserver"]


@pytest.fixture
def mail_settings(db_settings: Settings, mailserver: MailServer) -> Settings:
    """The test database plus SMTP on the running aiosmtpd server; answers are not held back
    here (`security.answer_seconds` is what test_enumeration.py measures)."""
    settings = smtp_settings(db_settings, mailserver)
    security = dataclasses.replace(settings.security, answer_seconds=0.0)
    return dataclasses.replace(settings, security=security)
