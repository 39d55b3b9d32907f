"""Staff passwords: argon2id hashes, and the rules a new password must meet."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.errors import BadInput

MIN_PASSWORD_CHARS = 12
_hasher = PasswordHasher()


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise BadInput(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    if password.strip() != password:
        raise BadInput("password must not start or end with spaces")


def hash_password(password: str) -> str:
    check_new_password(password)
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(15)
