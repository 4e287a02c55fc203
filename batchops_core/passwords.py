"""Password hashing (argon2) and the password policy, shared by accounts and one-time codes.

The policy is the configured minimum length, not the username, and not one of the most common
passwords of public breach corpora (a small list shipped in `data/common_passwords.txt`). It lives
apart from `accounts` so that `codes` can apply it without importing the account services.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from batchops_core.errors import ValidationFailed
from batchops_core.infra.config import SecuritySettings

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of passwords too common to accept, lower-cased."""
    text = files("batchops_core").joinpath("data/common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_password(password: str, username: str, policy: SecuritySettings) -> None:
    """Raise ValidationFailed with the first rule the password breaks."""
    if len(password) < policy.password_min_length:
        raise ValidationFailed(
            f"the password must be at least {policy.password_min_length} characters long."
        )
    lowered = password.strip().lower()
    if lowered == username.strip().lower():
        raise ValidationFailed("the password must not be the username.")
    if lowered in common_passwords():
        raise ValidationFailed(
            "that password is one of the most common passwords; choose a less guessable one."
        )
