"""The one table-driven runner for every messaging platform's real payloads.

Each ``tests/bot/channels/<channel>/payloads/*.json`` file is one scenario: a webhook
body as the platform sends it (or a broken one), how it is signed, how many times it
is delivered, and what must follow — the HTTP status, what was stored for the sender,
and whether replies reached the fake platform (once, never twice). One real server
with Telegram, Messenger and Zalo configured against a local fake platform serves
all scenarios, on each database.

File format::

    {"scenario": "...", "sender": "<platform user id>",
     "sign": "valid" | "bad" | "missing",
     "body": {...} | "raw_body": "..." | "oversized_bytes": N,
     "times": 1, "event_age_seconds": 0,
     "expect": {"status": 200, "stored": 1, "stored_text": "...",
                "replies": "some" | "none", "reply_contains": "..."}}
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer, make_settings
from platform_fakes import TELEGRAM_TOKEN, FakePlatform
from sqlalchemy import text

from bot.config import Settings
from bot.storage.crypto import Vault, pseudonymise
from bot.storage.db import create_engine

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
CHANNELS = ("telegram", "facebook", "zalo")
TELEGRAM_SECRET = "tg-secret-token"
FACEBOOK_APP_SECRET = "fb-app-secret"
FACEBOOK_VERIFY_TOKEN = "fb-verify-token"
ZALO_APP_ID = "1234567890"
ZALO_OA_SECRET = "zalo-oa-secret"
WEBHOOKS = {
    "telegram": "/webhooks/telegram/webhook",
    "facebook": "/webhooks/facebook/webhook",
    "zalo": "/webhooks/zalo/webhook",
}
SETTLE_SECONDS = 0.4  # quiet time after which no further reply is expected


def channel_env(fake: FakePlatform) -> dict[str, str]:
    """Every platform configured against the fake, with the test credentials."""
    return {
        "DONGHANH_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "DONGHANH_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "DONGHANH_TELEGRAM_BASE_URL": fake.telegram_base_url,
        "DONGHANH_FACEBOOK_APP_SECRET": FACEBOOK_APP_SECRET,
        "DONGHANH_FACEBOOK_PAGE_TOKEN": "fb-page-token",
        "DONGHANH_FACEBOOK_VERIFY_TOKEN": FACEBOOK_VERIFY_TOKEN,
        "DONGHANH_FACEBOOK_GRAPH_URL": fake.graph_url,
        "DONGHANH_ZALO_APP_ID": ZALO_APP_ID,
        "DONGHANH_ZALO_SECRET_KEY": ZALO_OA_SECRET,
        "DONGHANH_ZALO_APP_SECRET": "zalo-app-secret",
        "DONGHANH_ZALO_ACCESS_TOKEN": "zalo-access-0",
        "DONGHANH_ZALO_REFRESH_TOKEN": "zalo-refresh-0",
        "DONGHANH_ZALO_API_URL": fake.zalo_api_url,
        "DONGHANH_ZALO_OAUTH_URL": fake.zalo_oauth_url,
        "DONGHANH_OUTBOX_RETRY_BASE_SECONDS": "0.05",
    }


@dataclass(frozen=True)
class Scenario:
    channel: str
    name: str
    data: dict[str, Any]

    @property
    def expect(self) -> dict[str, Any]:
        expect: dict[str, Any] = self.data["expect"]
        return expect

    @property
    def sender(self) -> str:
        return str(self.data["sender"])


def _scenarios() -> list[Any]:
    found = []
    for channel in CHANNELS:
        for path in sorted((HERE / channel / "payloads").glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            found.append(
                pytest.param(Scenario(channel, path.stem, data), id=f"{channel}/{path.stem}")
            )
    return found


SCENARIOS = _scenarios()


def test_every_channel_has_its_payload_files() -> None:
    for channel in CHANNELS:
        files = list((HERE / channel / "payloads").glob("*.json"))
        assert len(files) >= 10, f"{channel} has only {len(files)} payload files"


# -- building the request ------------------------------------------------------------


def _body(scenario: Scenario) -> bytes:
    data = scenario.data
    if "oversized_bytes" in data:
        return b'{"padding": "' + b"a" * int(data["oversized_bytes"]) + b'"}'
    if "raw_body" in data:
        return str(data["raw_body"]).encode("utf-8")
    body = json.loads(json.dumps(data["body"]))
    if scenario.channel == "zalo" and "timestamp" in body:
        age = float(data.get("event_age_seconds", 0))
        body["timestamp"] = str(int((time.time() - age) * 1000))
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _zalo_timestamp(body: bytes) -> str:
    try:
        return str(json.loads(body).get("timestamp", ""))
    except (ValueError, AttributeError):
        return ""


def _signature(channel: str, body: bytes, good: bool) -> dict[str, str]:
    if channel == "telegram":
        return {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET if good else "not-the-secret"}
    if channel == "facebook":
        secret = FACEBOOK_APP_SECRET if good else "another-app-secret"
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}"}
    secret = ZALO_OA_SECRET if good else "another-oa-secret"
    raw = ZALO_APP_ID.encode() + body + _zalo_timestamp(body).encode() + secret.encode()
    return {"X-ZEvent-Signature": "mac=" + hashlib.sha256(raw).hexdigest()}


def headers_for(scenario: Scenario, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    sign = scenario.data.get("sign", "valid")
    if sign != "missing":
        headers.update(_signature(scenario.channel, body, good=sign == "valid"))
    return headers


# -- reading what happened --------------------------------------------------------------


async def _inbound_and_outbox(
    settings: Settings, channel: str, sender: str
) -> tuple[list[str], int]:
    pseudonym = pseudonymise(settings.pseudonym_secret, channel, sender)
    vault = Vault(settings.encryption_keys)
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            inbound = await connection.execute(
                text(
                    "SELECT m.text_enc FROM messages m JOIN conversations c"
                    " ON c.id = m.conversation_id JOIN contacts p ON p.id = c.contact_id"
                    " WHERE p.pseudonym = :p AND m.direction = 'in' ORDER BY m.id"
                ),
                {"p": pseudonym},
            )
            texts = [vault.decrypt(row[0]) for row in inbound]
            outbox = await connection.scalar(
                text(
                    "SELECT count(*) FROM outbox o JOIN contacts p ON p.id = o.contact_id"
                    " WHERE p.pseudonym = :p"
                ),
                {"p": pseudonym},
            )
            return texts, int(outbox or 0)
    finally:
        await engine.dispose()


def stored_for(server: LiveServer, channel: str, sender: str) -> tuple[list[str], int]:
    return asyncio.run(_inbound_and_outbox(server.settings, channel, sender))


def reply_text(channel: str, body: dict[str, Any]) -> str:
    if channel == "telegram":
        return str(body.get("text", ""))
    return str(body.get("message", {}).get("text", ""))


def settled_replies(fake: FakePlatform, server: LiveServer, scenario: Scenario) -> list[str]:
    """Wait for the first reply, then until the deliveries match the outbox and stay so
    (a body with two messages has two turns, recorded one after the other)."""
    channel, sender = scenario.channel, scenario.sender
    fake.wait_delivered(channel, sender, 1)
    deadline = time.monotonic() + 15
    counts = (-1, -1)
    while time.monotonic() < deadline:
        _, queued = stored_for(server, channel, sender)
        delivered = fake.delivered(channel, sender)
        if (len(delivered), queued) == counts and len(delivered) == queued:
            return [reply_text(channel, body) for body in delivered]
        counts = (len(delivered), queued)
        time.sleep(SETTLE_SECONDS if len(delivered) == queued else 0.05)
    raise AssertionError(f"{counts[0]} delivered for {counts[1]} replies for {sender}")


# -- the runner ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform(module_database_url: str) -> Iterator[FakePlatform]:
    """A fresh fake per database: the scenarios' senders are the same on each."""
    fake = FakePlatform()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    model_dir: Path,
    module_database_url: str,
    platform: FakePlatform,
) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("channels"), module_database_url, model_dir)
    live = LiveServer(settings, channel_env(platform)).start()
    yield live
    live.stop()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_payload(scenario: Scenario, server: LiveServer, platform: FakePlatform) -> None:
    body = _body(scenario)
    headers = headers_for(scenario, body)
    expect = scenario.expect
    url = server.base_url + WEBHOOKS[scenario.channel]
    for _ in range(int(scenario.data.get("times", 1))):
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == expect["status"], response.text
        if response.status_code >= 400:
            assert "Traceback" not in response.text
    if expect.get("replies") == "some":
        replies = settled_replies(platform, server, scenario)
        if "reply_contains" in expect:
            assert any(expect["reply_contains"] in reply for reply in replies), replies
    else:
        time.sleep(SETTLE_SECONDS)
        assert platform.delivered(scenario.channel, scenario.sender) == []
    texts, _ = stored_for(server, scenario.channel, scenario.sender)
    assert len(texts) == expect["stored"], texts
    if "stored_text" in expect:
        assert texts and texts[-1] == expect["stored_text"]


def test_no_payload_leaves_its_text_or_sender_in_the_log(server: LiveServer) -> None:
    log = server.log_text()
    for scenario in (param.values[0] for param in SCENARIOS):
        assert f'"{scenario.sender}"' not in log, scenario.name
        said = scenario.expect.get("stored_text", "")
        if len(said) > 5 and not said.startswith("/"):  # what a person wrote
            assert said not in log, scenario.name
    for secret in (TELEGRAM_SECRET, FACEBOOK_APP_SECRET, ZALO_OA_SECRET, "zalo-access-0"):
        assert secret not in log
