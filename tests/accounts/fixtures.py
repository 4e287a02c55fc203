"""Fixtures shared by the account tests and the user CLI tests."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from batchops_core import passwords

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def fast_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: the hash cost is not under test, and 0.4 s a hash adds up."""
    monkeypatch.setattr(passwords, "_hasher", FAST_HASHER)
