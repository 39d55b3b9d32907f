"""A platform's send API stalled for one person: nobody else waits for it.

A real server configured for Telegram against a fake Bot API that holds every
``sendMessage`` to one chat for several seconds. While that send is still held, other
people's Telegram replies go out and the REST channel answers: the dispatcher sends each
person's replies in a task of its own, and the event loop is never blocked. The held
reply is delivered once when the platform answers.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer, make_settings, sqlite_only
from platform_fakes import TELEGRAM_TOKEN, FakePlatform

from bot.channels.telegram.handler import WEBHOOK_PATH

pytestmark = pytest.mark.slow

SECRET = "tg-secret-token-slow-platform"
STALL_SECONDS = 8.0  # under the sender's 10 s read timeout: held, not failed
STALLED_CHAT = 7391900001
OTHER_CHATS = (7391900002, 7391900003, 7391900004)
_update_ids = itertools.count(915240001)


@pytest.fixture(scope="module")
def telegram_against_fake(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[tuple[LiveServer, FakePlatform]]:
    """A server whose Telegram channel talks to a fake Bot API."""
    fake = FakePlatform()
    env = {
        "DONGHANH_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "DONGHANH_TELEGRAM_SECRET_TOKEN": SECRET,
        "DONGHANH_TELEGRAM_BASE_URL": fake.telegram_base_url,
    }
    with sqlite_only(tmp_path_factory) as url:
        instance = tmp_path_factory.mktemp("slow-platform")
        live = LiveServer(make_settings(instance, url, model_dir), env).start()
        try:
            yield live, fake
        finally:
            live.stop()
            fake.close()


def say(server: LiveServer, chat: int, words: str) -> None:
    update: dict[str, Any] = {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_update_ids) % 100000,
            "from": {"id": chat, "is_bot": False, "first_name": "Lan", "language_code": "vi"},
            "chat": {"id": chat, "first_name": "Lan", "type": "private"},
            "date": int(time.time()),
            "text": words,
        },
    }
    response = httpx.post(
        server.base_url + WEBHOOK_PATH,
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def wait_until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_stalled_send_to_one_person_holds_up_nobody_else(
    telegram_against_fake: tuple[LiveServer, FakePlatform],
) -> None:
    server, fake = telegram_against_fake
    stalled = str(STALLED_CHAT)
    fake.stall(stalled, STALL_SECONDS)
    say(server, STALLED_CHAT, "xin chào")
    wait_until(lambda: stalled in fake.arrived, timeout=20)  # its send is now held
    held_since = time.monotonic()

    for chat in OTHER_CHATS:
        say(server, chat, "xin chào")
    rest = httpx.post(
        f"{server.base_url}/webhooks/rest/webhook",
        json={"sender": "nguoi-khac", "message": "xin chào"},
        timeout=10,
    )
    assert rest.status_code == 200 and rest.json(), rest.text
    for chat in OTHER_CHATS:
        fake.wait_delivered("telegram", str(chat), 1, timeout=STALL_SECONDS)
    assert time.monotonic() - held_since < STALL_SECONDS, "the others waited for the stall"
    assert fake.delivered("telegram", stalled) == [], "the stalled send was still held"

    fake.wait_delivered("telegram", stalled, 1, timeout=STALL_SECONDS + 10)
    time.sleep(1.0)  # nothing more comes: the held reply was not sent a second time
    assert len(fake.delivered("telegram", stalled)) == 1
    assert len([r for r in fake.arrived if r == stalled]) == 1
