"""Settings: the only place configuration and secrets are read.

Values come from, in rising order of precedence: built-in defaults, an optional YAML
file (``DONGHANH_CONFIG_FILE``), and ``DONGHANH_*`` environment variables. The instance
secrets (encryption keys, pseudonymisation secret) live in ``<instance>/secrets.yml``
with file mode 600, generated on first run; environment variables override them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from cryptography.fernet import Fernet

from bot.datafiles import load_yaml
from bot.errors import ConfigError

ENV_PREFIX = "DONGHANH_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRETS_FILE_NAME = "secrets.yml"


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with. Secrets are kept out of repr."""

    instance_dir: Path = Path("instance")
    database_url: str = ""
    data_dir: Path = PROJECT_ROOT / "data"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    encryption_keys: tuple[str, ...] = field(default=(), repr=False)
    pseudonym_secret: str = field(default="", repr=False)
    nlu_threshold: float = 0.25
    max_message_chars: int = 4000
    request_max_bytes: int = 256 * 1024
    outbox_max_attempts: int = 8
    outbox_retry_base_seconds: float = 1.0
    # messages one sender may send at once, then per minute, per worker (beyond: 429)
    inbound_burst: int = 30
    inbound_per_minute: float = 30.0
    # a send not settled within this (the worker died mid-send) is claimed again
    outbox_lease_seconds: float = 60.0
    recovery_interval_seconds: float = 5.0
    fault_turn_delay_ms: int = 0
    cookie_secure: bool = False  # True behind TLS: staff session cookies only over HTTPS
    login_attempts_per_window: int = 10  # per address, every 5 minutes, all workers
    login_lock_after_failures: int = 5  # failures in a row that lock an account
    login_lock_minutes: int = 15
    callback_url: str = ""  # where the callback channel POSTs replies; empty: not mounted
    action_endpoint: str = ""  # a Rasa action server's /webhook; empty: run actions in process
    # when counsellors are on duty, Vietnam time ("mon-fri 08:00-20:00; sat 08:00-12:00")
    service_hours: str = "mon-sun 07:30-21:30"
    handoff_update_minutes: float = 10.0  # tell a waiting person after this long
    handoff_max_updates: int = 2  # at most this many "still waiting" messages per request
    facebook_human_agent: bool = False  # Messenger's HUMAN_AGENT tag is approved for the page
    # Channels: each is mounted only when its credentials are set (README: "Channels").
    telegram_token: str = field(default="", repr=False)
    telegram_secret_token: str = field(default="", repr=False)  # X-Telegram-Bot-Api-Secret-Token
    telegram_base_url: str = "https://api.telegram.org/bot"  # or a local Bot API server
    facebook_app_secret: str = field(default="", repr=False)
    facebook_page_token: str = field(default="", repr=False)
    facebook_verify_token: str = field(default="", repr=False)
    facebook_graph_url: str = "https://graph.facebook.com/v21.0"
    zalo_app_id: str = ""
    zalo_secret_key: str = field(default="", repr=False)  # the OA secret key (webhooks)
    zalo_app_secret: str = field(default="", repr=False)  # the app's secret (token refresh)
    zalo_access_token: str = field(default="", repr=False)
    zalo_refresh_token: str = field(default="", repr=False)
    zalo_api_url: str = "https://openapi.zalo.me"
    zalo_oauth_url: str = "https://oauth.zaloapp.com"
    webhook_max_age_seconds: int = 900  # older signed events are refused (replays)
    telegram_polling: bool = False  # `donghanh serve --telegram-polling`
    # Content editing (the admin pages)
    content_poll_seconds: float = 2.0  # how often a worker looks for newly published content
    faq_review_max_days: int = 183  # an answer reviewed longer ago is flagged for review
    service_verify_max_days: int = 183  # a service verified longer ago is flagged
    # a retrained model is refused if its held-out accuracy drops more than this
    retrain_max_accuracy_drop: float = 0.02
    retrain_delay_seconds: float = 10.0  # retrain once the examples were still this long
    missed_review_below: float = 0.5  # understood below this confidence: the editors see it
    missed_retention_days: int = 90  # missed messages (masked) are deleted after this
    # Retention (bot/storage/retention.py, `donghanh purge`, run daily by the service)
    retention_days: int = 180  # a conversation idle this long loses its content
    outbox_retention_days: int = 30  # delivery records (sent or failed) are deleted after this
    audit_retention_days: int = 730  # audit log entries are deleted after this

    @property
    def model_dir(self) -> Path:
        return self.instance_dir / "nlu-model"

    @property
    def nlu_data_dir(self) -> Path:
        return self.data_dir / "nlu"

    @property
    def cue_rules_file(self) -> Path:
        return self.nlu_data_dir / "risk_cues.yml"

    @property
    def questionnaire_file(self) -> Path:
        return self.data_dir / "screening" / "questionnaire.yml"

    @property
    def safety_file(self) -> Path:
        return self.data_dir / "safety.yml"

    @property
    def faq_dir(self) -> Path:
        return self.data_dir / "faq"

    @property
    def canned_replies_file(self) -> Path:
        return self.data_dir / "canned_replies.yml"

    @property
    def responses_file(self) -> Path:
        return self.data_dir / "responses.yml"

    def require_secrets(self) -> None:
        if not self.encryption_keys:
            raise ConfigError(
                "DONGHANH_ENCRYPTION_KEYS is not set and no instance secrets file exists "
                f"at {self.instance_dir / SECRETS_FILE_NAME}"
            )
        if not self.pseudonym_secret:
            raise ConfigError(
                "DONGHANH_PSEUDONYM_SECRET is not set and no instance secrets file exists "
                f"at {self.instance_dir / SECRETS_FILE_NAME}"
            )


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, not {raw!r}")


def _parse_keys(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, (list, tuple)):
        return tuple(str(key).strip() for key in raw if str(key).strip())
    return tuple(key.strip() for key in str(raw).split(",") if key.strip())


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "instance_dir": lambda raw: Path(str(raw)),
    "data_dir": lambda raw: Path(str(raw)),
    "port": int,
    "workers": int,
    "nlu_threshold": float,
    "max_message_chars": int,
    "request_max_bytes": int,
    "outbox_max_attempts": int,
    "outbox_retry_base_seconds": float,
    "outbox_lease_seconds": float,
    "inbound_burst": int,
    "inbound_per_minute": float,
    "recovery_interval_seconds": float,
    "fault_turn_delay_ms": int,
    "encryption_keys": _parse_keys,
    "cookie_secure": lambda raw: _parse_bool(raw),
    "login_attempts_per_window": int,
    "login_lock_after_failures": int,
    "login_lock_minutes": int,
    "handoff_update_minutes": float,
    "handoff_max_updates": int,
    "facebook_human_agent": lambda raw: _parse_bool(raw),
    "webhook_max_age_seconds": int,
    "telegram_polling": lambda raw: _parse_bool(raw),
    "content_poll_seconds": float,
    "faq_review_max_days": int,
    "service_verify_max_days": int,
    "retrain_max_accuracy_drop": float,
    "retrain_delay_seconds": float,
    "missed_review_below": float,
    "missed_retention_days": int,
    "retention_days": int,
    "outbox_retention_days": int,
    "audit_retention_days": int,
}


def _convert(name: str, raw: Any, origin: str) -> Any:
    converter = _CONVERTERS.get(name, str)
    try:
        return converter(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin} has an invalid value: {exc}") from exc


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"DONGHANH_CONFIG_FILE ({path}) cannot be read: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"DONGHANH_CONFIG_FILE ({path}) must hold a mapping of settings")
    return loaded


def _known_names() -> set[str]:
    return {f.name for f in fields(Settings)}


def _collect_values(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    config_file = env.get(f"{ENV_PREFIX}CONFIG_FILE")
    if config_file:
        for key, raw in _read_config_file(Path(config_file)).items():
            if key not in _known_names():
                raise ConfigError(f"DONGHANH_CONFIG_FILE ({config_file}): unknown setting {key!r}")
            values[key] = _convert(key, raw, f"{config_file}: {key}")
    for name in _known_names():
        variable = f"{ENV_PREFIX}{name.upper()}"
        if variable in env:
            values[name] = _convert(name, env[variable], variable)
    return values


def _read_secrets_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    loaded = load_yaml(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping of secrets")
    return loaded


def generate_secrets() -> dict[str, Any]:
    return {
        "encryption_keys": [Fernet.generate_key().decode("ascii")],
        "pseudonym_secret": secrets.token_urlsafe(48),
    }


def write_private_yaml(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` readable by the owner only (mode 600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(dict(data), handle, allow_unicode=True)
    tmp.chmod(0o600)
    tmp.replace(path)


def store_instance_secret(instance_dir: Path, name: str, value: str) -> Path:
    """Add or replace one secret in ``<instance>/secrets.yml`` (mode 600), creating the
    instance's own secrets first if it has none yet."""
    ensure_instance_secrets(instance_dir)
    path = instance_dir / SECRETS_FILE_NAME
    stored = _read_secrets_file(path)
    stored[name] = value
    write_private_yaml(path, stored)
    return path


def ensure_instance_secrets(instance_dir: Path) -> bool:
    """Create the instance folder (owner-only) and the secrets it lacks (encryption
    keys, pseudonymisation secret), keeping any others in the file.

    Returns True if secrets were created.
    """
    if not instance_dir.exists():
        instance_dir.mkdir(parents=True, mode=0o700)
        instance_dir.chmod(0o700)
    path = instance_dir / SECRETS_FILE_NAME
    stored = _read_secrets_file(path)
    missing = {k: v for k, v in generate_secrets().items() if not stored.get(k)}
    if not missing:
        return False
    write_private_yaml(path, {**stored, **missing})
    return True


def load_settings(
    env: Mapping[str, str] | None = None, *, create_secrets: bool = False
) -> Settings:
    """Build Settings from the environment (and the optional config file).

    With ``create_secrets`` the instance secrets are generated when missing, as
    ``make run`` and ``donghanh serve`` need on first run.
    """
    env = os.environ if env is None else env
    values = _collect_values(env)
    instance_dir = Path(values.get("instance_dir", Settings.instance_dir)).resolve()
    values["instance_dir"] = instance_dir
    if create_secrets and not (env.get(f"{ENV_PREFIX}ENCRYPTION_KEYS")):
        ensure_instance_secrets(instance_dir)
    stored = _read_secrets_file(instance_dir / SECRETS_FILE_NAME)
    values.setdefault("encryption_keys", _parse_keys(stored.get("encryption_keys", ())))
    values.setdefault("pseudonym_secret", str(stored.get("pseudonym_secret", "")))
    if stored.get("telegram_secret_token"):  # written by `donghanh telegram set-webhook`
        values.setdefault("telegram_secret_token", str(stored["telegram_secret_token"]))
    if not values.get("database_url"):
        values["database_url"] = f"sqlite+aiosqlite:///{instance_dir / 'donghanh.sqlite3'}"
    if values.get("workers", 1) < 1:
        raise ConfigError("DONGHANH_WORKERS must be at least 1")
    if values.get("webhook_max_age_seconds", 1) < 1:
        raise ConfigError("DONGHANH_WEBHOOK_MAX_AGE_SECONDS must be at least 1")
    for name in (
        "content_poll_seconds",
        "faq_review_max_days",
        "service_verify_max_days",
        "retention_days",
        "outbox_retention_days",
        "audit_retention_days",
    ):
        if values.get(name, 1) <= 0:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be above 0")
    return Settings(**values)
