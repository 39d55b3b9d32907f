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
