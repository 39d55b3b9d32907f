"""Encryption at rest (Fernet/MultiFernet, key rotation) and pseudonymous ids."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.errors import ConfigError
from bot.storage.crypto import DecryptionError, Vault, pseudonymise


def test_round_trip_and_ciphertext_hides_the_text() -> None:
    vault = Vault([Fernet.generate_key().decode()])
    token = vault.encrypt("Tôi bị giữ hộ chiếu, số 0912345678")
    assert "hộ chiếu" not in token and "0912345678" not in token
    assert vault.decrypt(token) == "Tôi bị giữ hộ chiếu, số 0912345678"


def test_rotation_reads_old_rows_and_writes_with_the_new_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_token = Vault([old]).encrypt("cũ")
    rotated_vault = Vault([new, old])
    assert rotated_vault.decrypt(old_token) == "cũ"
    new_token = rotated_vault.encrypt("mới")
    with pytest.raises(DecryptionError):
        Vault([old]).decrypt(new_token)
    assert Vault([new]).decrypt(rotated_vault.rotate(old_token)) == "cũ"


def test_wrong_key_is_a_clear_error() -> None:
    token = Vault([Fernet.generate_key().decode()]).encrypt("x")
    with pytest.raises(DecryptionError):
        Vault([Fernet.generate_key().decode()]).decrypt(token)


@pytest.mark.parametrize("keys", [[], ["not-a-key"], ["ÿ" * 44]])
def test_bad_keys_name_the_variable(keys: list[str]) -> None:
    with pytest.raises(ConfigError, match="DONGHANH_ENCRYPTION_KEYS"):
        Vault(keys)


def test_json_round_trip() -> None:
    vault = Vault([Fernet.generate_key().decode()])
    assert vault.decrypt_json(vault.encrypt_json({"slots": {"a": "ă"}})) == {"slots": {"a": "ă"}}


def test_pseudonym_is_stable_per_channel_and_secret() -> None:
    first = pseudonymise("s1", "telegram", "12345")
    assert first == pseudonymise("s1", "telegram", "12345")
    assert len(first) == 64 and "12345" not in first
    assert first != pseudonymise("s1", "zalo", "12345")
    assert first != pseudonymise("s2", "telegram", "12345")
    # the separator keeps ("ab", "c") and ("a", "bc") apart
    assert pseudonymise("s", "ab", "c") != pseudonymise("s", "a", "bc")
