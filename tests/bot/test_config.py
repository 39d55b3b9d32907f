"""Settings: environment, config file, instance secrets (mode 600), clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from bot.config import SECRETS_FILE_NAME, load_settings
from bot.errors import ConfigError


def test_defaults_put_everything_in_the_instance_folder(tmp_path: Path) -> None:
    settings = load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path / "inst")}, create_secrets=True)
    assert stat.S_IMODE((tmp_path / "inst").stat().st_mode) == 0o700
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'inst' / 'donghanh.sqlite3'}"
    assert settings.model_dir == tmp_path / "inst" / "nlu-model"
    assert settings.port == 8000 and settings.workers == 1


def test_first_run_generates_private_secrets_once(tmp_path: Path) -> None:
    env = {"DONGHANH_INSTANCE_DIR": str(tmp_path)}
    first = load_settings(env, create_secrets=True)
    secrets_file = tmp_path / SECRETS_FILE_NAME
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert first.encryption_keys and first.pseudonym_secret
    second = load_settings(env, create_secrets=True)
    assert second.encryption_keys == first.encryption_keys
    assert second.pseudonym_secret == first.pseudonym_secret


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    settings = load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path)}, create_secrets=True)
    assert settings.pseudonym_secret not in repr(settings)
    assert settings.encryption_keys[0] not in repr(settings)


def test_missing_secrets_name_the_variable(tmp_path: Path) -> None:
    settings = load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="DONGHANH_ENCRYPTION_KEYS"):
        settings.require_secrets()


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"port": 9000, "workers": 2, "log_level": "DEBUG"}))
    env = {
        "DONGHANH_INSTANCE_DIR": str(tmp_path),
        "DONGHANH_CONFIG_FILE": str(config),
        "DONGHANH_PORT": "9100",
        "DONGHANH_ENCRYPTION_KEYS": "k1, k2",
    }
    settings = load_settings(env)
    assert settings.port == 9100 and settings.workers == 2 and settings.log_level == "DEBUG"
    assert settings.encryption_keys == ("k1", "k2")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DONGHANH_PORT": "eighty"}, "DONGHANH_PORT"),
        ({"DONGHANH_WORKERS": "0"}, "DONGHANH_WORKERS"),
        ({"DONGHANH_NLU_THRESHOLD": "high"}, "DONGHANH_NLU_THRESHOLD"),
        ({"DONGHANH_CONFIG_FILE": "/nonexistent/config.yml"}, "DONGHANH_CONFIG_FILE"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path), **env})


def test_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("prot: 80\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path), "DONGHANH_CONFIG_FILE": str(config)})


def test_an_unsupported_database_url_is_a_clear_error() -> None:
    from bot.storage.db import create_engine

    with pytest.raises(ConfigError, match="DONGHANH_DATABASE_URL"):
        create_engine("mysql://localhost/x")


# -- the messaging channels' settings ------------------------------------------------------

CHANNEL_SECRETS = {
    "DONGHANH_TELEGRAM_TOKEN": "123456:tg-bot-token-value",
    "DONGHANH_TELEGRAM_SECRET_TOKEN": "tg-secret-token-value",
    "DONGHANH_FACEBOOK_APP_SECRET": "fb-app-secret-value",
    "DONGHANH_FACEBOOK_PAGE_TOKEN": "fb-page-token-value",
    "DONGHANH_FACEBOOK_VERIFY_TOKEN": "fb-verify-token-value",
    "DONGHANH_ZALO_SECRET_KEY": "zalo-oa-secret-value",
    "DONGHANH_ZALO_ACCESS_TOKEN": "zalo-access-token-value",
    "DONGHANH_ZALO_REFRESH_TOKEN": "zalo-refresh-token-value",
    "DONGHANH_ZALO_APP_SECRET": "zalo-app-secret-value",
}


def test_channel_settings_default_to_off(tmp_path: Path) -> None:
    settings = load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path)})
    assert settings.telegram_polling is False
    assert settings.webhook_max_age_seconds == 900
    assert settings.telegram_token == "" and settings.zalo_refresh_token == ""


@pytest.mark.parametrize(
    ("raw", "polling"),
    [("1", True), ("true", True), ("Yes", True), (" on ", True), ("0", False), ("off", False)],
)
def test_telegram_polling_is_read_as_a_yes_or_no(tmp_path: Path, raw: str, polling: bool) -> None:
    env = {"DONGHANH_INSTANCE_DIR": str(tmp_path), "DONGHANH_TELEGRAM_POLLING": raw}
    assert load_settings(env).telegram_polling is polling


def test_webhook_max_age_is_read_as_seconds(tmp_path: Path) -> None:
    env = {"DONGHANH_INSTANCE_DIR": str(tmp_path), "DONGHANH_WEBHOOK_MAX_AGE_SECONDS": "600"}
    assert load_settings(env).webhook_max_age_seconds == 600


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("DONGHANH_TELEGRAM_POLLING", "maybe"),
        ("DONGHANH_TELEGRAM_POLLING", "2"),
        ("DONGHANH_WEBHOOK_MAX_AGE_SECONDS", "ten minutes"),
        ("DONGHANH_WEBHOOK_MAX_AGE_SECONDS", "1.5"),
    ],
)
def test_a_bad_channel_setting_names_the_variable(tmp_path: Path, variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path), variable: raw})


def test_channel_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    env = {
        "DONGHANH_INSTANCE_DIR": str(tmp_path),
        "DONGHANH_ZALO_APP_ID": "1234567890",
        **CHANNEL_SECRETS,
    }
    settings = load_settings(env)
    assert settings.telegram_token == CHANNEL_SECRETS["DONGHANH_TELEGRAM_TOKEN"]
    assert settings.zalo_app_secret == CHANNEL_SECRETS["DONGHANH_ZALO_APP_SECRET"]
    shown = repr(settings)
    assert "1234567890" in shown  # the app id is not a secret: repr does show settings
    for variable, secret in CHANNEL_SECRETS.items():
        assert secret not in shown, variable
        assert secret not in str(settings), variable


def test_store_instance_secret_keeps_the_other_secrets_private(tmp_path: Path) -> None:
    from bot.config import store_instance_secret

    env = {"DONGHANH_INSTANCE_DIR": str(tmp_path)}
    first = load_settings(env, create_secrets=True)
    path = store_instance_secret(tmp_path, "telegram_secret_token", "stored-secret-token")
    assert path == tmp_path / SECRETS_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert stored["telegram_secret_token"] == "stored-secret-token"
    assert tuple(stored["encryption_keys"]) == first.encryption_keys
    assert stored["pseudonym_secret"] == first.pseudonym_secret
    assert [p.name for p in tmp_path.iterdir()] == [SECRETS_FILE_NAME]  # no temporary file left
    second = load_settings(env)
    assert second.telegram_secret_token == "stored-secret-token"
    assert second.encryption_keys == first.encryption_keys
    assert second.pseudonym_secret == first.pseudonym_secret
    overridden = load_settings({**env, "DONGHANH_TELEGRAM_SECRET_TOKEN": "from-the-environment"})
    assert overridden.telegram_secret_token == "from-the-environment"
    store_instance_secret(tmp_path, "telegram_secret_token", "rotated")
    assert load_settings(env).telegram_secret_token == "rotated"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_store_instance_secret_creates_a_missing_file(tmp_path: Path) -> None:
    from bot.config import store_instance_secret

    instance = tmp_path / "new-instance"
    path = store_instance_secret(instance, "telegram_secret_token", "fresh")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert stored["telegram_secret_token"] == "fresh"
    assert stored["encryption_keys"] and stored["pseudonym_secret"]  # a first run's own
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    settings = load_settings({"DONGHANH_INSTANCE_DIR": str(instance)})
    assert settings.telegram_secret_token == "fresh"


def test_first_run_after_set_webhook_still_generates_the_instance_secrets(
    tmp_path: Path,
) -> None:
    from bot.config import store_instance_secret

    store_instance_secret(tmp_path, "telegram_secret_token", "set-before-first-run")
    settings = load_settings({"DONGHANH_INSTANCE_DIR": str(tmp_path)}, create_secrets=True)
    assert settings.telegram_secret_token == "set-before-first-run"
    settings.require_secrets()
    assert settings.encryption_keys and settings.pseudonym_secret
