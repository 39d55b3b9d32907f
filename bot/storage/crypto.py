"""Encryption at rest and pseudonymous ids.

``Vault`` encrypts message text, notes and platform user ids with MultiFernet: the
first configured key encrypts, every key decrypts, so keys can be rotated by putting a
new key first. ``pseudonymise`` turns a channel's user id into a stable HMAC-SHA256 id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.errors import ConfigError, DonghanhError


class DecryptionError(DonghanhError):
    """A stored value cannot be decrypted with any configured key."""


class Vault:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigError("DONGHANH_ENCRYPTION_KEYS: at least one key is required")
        try:
            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError) as exc:
            raise ConfigError(
                "DONGHANH_ENCRYPTION_KEYS: each key must be a url-safe base64 Fernet key"
            ) from exc

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise DecryptionError(
                "stored value cannot be decrypted with the configured keys"
            ) from exc

    def encrypt_json(self, value: Any) -> str:
        return self.encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def decrypt_json(self, token: str) -> Any:
        return json.loads(self.decrypt(token))

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the first (newest) key."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")


def pseudonymise(secret: str, channel: str, platform_user_id: str) -> str:
    """Stable pseudonymous id of a person on a channel: HMAC-SHA256, hex."""
    message = f"{channel}\x1f{platform_user_id}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
