"""Source passwords: from the environment variable the config names, or stored encrypted.

Encryption uses Fernet with the key in `BATCHOPS_SOURCES_KEY` (generate one with
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`):
the database holds only ciphertext, and a stolen database without the key reveals nothing.
Neither path ever prints the password; errors name the variable, not the value.
"""

from __future__ import annotations

import os
from typing import Any

from batchops_core.errors import ValidationFailed

KEY_ENV = "BATCHOPS_SOURCES_KEY"


def _fernet() -> Any:
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise ValidationFailed(
            f"storing a source password needs an encryption key in {KEY_ENV}; "
            "or name an environment variable holding the password in config.password_env."
        )
    try:
        from cryptography.fernet import Fernet
    except ImportError:
        raise ValidationFailed(
            "the cryptography package is not installed; use config.password_env instead."
        ) from None
    try:
        return Fernet(key.encode())
    except ValueError:
        raise ValidationFailed(
            f"{KEY_ENV} is not a valid Fernet key (32 url-safe base64 bytes)."
        ) from None


def encrypt(password: str) -> str:
    return str(_fernet().encrypt(password.encode()).decode())


def password_for(config: dict[str, Any], secret: str | None) -> str | None:
    """The password to connect with, or None when the source needs none."""
    env = config.get("password_env")
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ValidationFailed(
                f"the environment variable {env} (config.password_env) is not set."
            )
        return value
    if secret:
        from cryptography.fernet import InvalidToken

        try:
            return str(_fernet().decrypt(secret.encode()).decode())
        except InvalidToken:
            raise ValidationFailed(
                f"the stored password cannot be decrypted with {KEY_ENV}; store it again."
            ) from None
    return None
