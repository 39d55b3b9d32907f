"""Several workers on one PostgreSQL database: every message answered exactly once and
in order, and live console events crossing workers.

Real processes, a real PostgreSQL (CI starts one from Debian's packages). Two servers on
two ports share one database, as two machines would: each message of a person goes to
the other server than the one before, and a person's messages are sent without waiting
for the replies, so turns of one conversation really race across workers. A third run
uses ``donghanh serve --workers 2`` (Sanic's own worker processes behind one port).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer, create_staff, make_settings, migrated_database
from console_client import Counsellor
from sqlalchemy import text

from bot.config import Settings
from bot.storage.db import create_engine

pytestmark = pytest.mark.slow
PEOPLE = 200
MESSAGES_EACH = 2
PASSWORD = "mat-khau-du-dai-1"
FULL = '/handoff_consent{"consent": "full"}'
SAYINGS = (
    "xin chào",
    "làm sao để đi xuất khẩu lao động an toàn",
    "cong ty moi gioi doi tien phi cao qua",
    "asdkjh qwe",
    "tôi bị giữ hộ chiếu",
    "cảm ơn",
)


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, pg_url: str, model_dir: Path) -> Settings:
    return make_settings(tmp_path_factory.mktemp("scaling"), pg_url, model_dir)


ENV = {
    "DONGHANH_SERVICE_HOURS": "mon-sun 00:00-24:00",
    "DONGHANH_LOGIN_ATTEMPTS_PER_WINDOW": "1000",
    "DONGHANH_CONTENT_POLL_SECONDS": "3600",
}


@pytest.fixture(scope="module")
def two_servers(settings: Settings) -> Iterator[tuple[LiveServer, LiveServer]]:
    first = LiveServer(settings, ENV).start()
    try:
        second = LiveServer(settings, ENV).start()
    except Exception:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


async def _query(settings: Settings, sql: str) -> list[Any]:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(text(sql)))
    finally:
        await engine.dispose()


def query(settings: Settings, sql: str) -> list[Any]:
    return asyncio.run(_query(settings, sql))


async def _say(client: httpx.AsyncClient, url: str, sender: str, message: str) -> int:
    response = await client.post(url, json={"sender": sender, "message": message}, timeout=120)
    return response.status_code


async def _one_person(
    client: httpx.AsyncClient, urls: list[str], number: int, statuses: list[int]
) -> None:
    """A person's messages, alternating servers, each sent before the last is answered."""
    sender = f"scale-{number}-{uuid.uuid4().hex[:6]}"
    sends = []
    for index in range(MESSAGES_EACH):
        url = urls[(number + index) % len(urls)]
        message = SAYINGS[(number + index) % len(SAYINGS)]
        sends.append(asyncio.create_task(_say(client, url, sender, message)))
        await asyncio.sleep(0.002)  # sent in this order, answered whenever
    statuses.extend(await asyncio.gather(*sends))


async def _crowd(urls: list[str]) -> list[int]:
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120, pool=None)) as client:
        await asyncio.gather(*(_one_person(client, urls, n, statuses) for n in range(PEOPLE)))
    return statuses


def _check_every_message_answered_once_in_order(settings: Settings, people: int) -> None:
    inbound = query(
        settings,
        "SELECT m.id, c.contact_id, m.processed_at FROM messages m "
        "JOIN conversations c ON c.id = m.conversation_id WHERE m.direction = 'in'",
    )
    assert len(inbound) == people * MESSAGES_EACH
    assert all(row[2] is not None for row in inbound), "every message answered"
    replies = query(
        settings,
        "SELECT m.reply_to_id, m.id, o.status FROM messages m JOIN outbox o ON o.message_id = m.id "
        "WHERE m.direction = 'out'",
    )
    replies_to: dict[int, list[int]] = defaultdict(list)
    for reply_to, reply_id, status in replies:
        assert status == "sent"
        replies_to[reply_to].append(reply_id)
    by_person: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    for message_id, contact_id, processed_at in inbound:
        assert replies_to[message_id], f"message {message_id} has no reply"
        by_person[contact_id].append((message_id, processed_at))
    assert len(by_person) == people
    for messages in by_person.values():
        messages.sort()
        answered_at = [processed_at for _, processed_at in messages]
        assert answered_at == sorted(answered_at), "answered in the order they came"
        for (earlier, _), (later, _) in itertools.pairwise(messages):
            assert max(replies_to[earlier]) < min(replies_to[later]), "replies in order"
    turns = query(
        settings,
        "SELECT count(*) FROM conversation_events WHERE type = 'user_intent'",
    )
    assert turns == [(people * MESSAGES_EACH,)], "one recorded turn per message, no more"


def test_two_workers_answer_200_interleaved_conversations_once_and_in_order(
    settings: Settings, two_servers: tuple[LiveServer, LiveServer]
) -> None:
    urls = [f"{server.base_url}/webhooks/rest/webhook" for server in two_servers]
    statuses = asyncio.run(_crowd(urls))
    assert statuses.count(200) == PEOPLE * MESSAGES_EACH, sorted(set(statuses))
    _check_every_message_answered_once_in_order(settings, PEOPLE)
    for server in two_servers:
        log = server.log_text()
        assert "Traceback" not in log
        assert "làm sao để đi xuất khẩu" not in log and "giữ hộ chiếu" not in log


def test_a_console_on_one_worker_sees_a_message_that_came_to_the_other(
    settings: Settings, two_servers: tuple[LiveServer, LiveServer]
) -> None:
    console_side, person_side = two_servers
    asyncio.run(create_staff(settings, [("tvv-scale", "counsellor")], PASSWORD))
    counsellor = Counsellor(console_side, "tvv-scale", PASSWORD)
    try:
        assert counsellor.post("/me/availability", {"available": True}).status_code == 200
        events = counsellor.events()
        webhook = f"{person_side.base_url}/webhooks/rest/webhook"
        sender = f"cross-{uuid.uuid4().hex[:8]}"

        def say(message: str) -> list[dict[str, Any]]:
            response = httpx.post(webhook, json={"sender": sender, "message": message}, timeout=30)
            assert response.status_code == 200, response.text
            replies: list[dict[str, Any]] = response.json()
            return replies

        say("tôi muốn nói chuyện với tư vấn viên")
        say(FULL)
        events.next(lambda e: e["type"] == "queue")  # queued at the other worker
        waiting = counsellor.queue()["waiting"]
        assert len(waiting) == 1
        accepted = counsellor.post(f"/conversations/{waiting[0]['id']}/accept")
        assert accepted.status_code == 200, accepted.text

        say("em đang ở Lào Cai, có người giữ giấy tờ của em")
        event = events.next(
            lambda e: e["type"] == "message" and e["message"]["author"] == "user", timeout=10
        )
        assert event["conversation_id"] == waiting[0]["id"]
        assert event["message"]["text"] == "em đang ở Lào Cai, có người giữ giấy tờ của em"
        events.close()
    finally:
        counsellor.close()


def test_sanic_workers_behind_one_port_answer_every_message_once(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> None:
    with migrated_database("postgresql", tmp_path_factory.mktemp("db2")) as url:
        settings = make_settings(tmp_path_factory.mktemp("workers"), url, model_dir)
        server = LiveServer(settings, {**ENV, "DONGHANH_WORKERS": "2"}).start()
        try:
            # /health answers once one worker is up: wait for both, or the first takes all
            _wait_for(lambda: len(_pids(server, "worker_ready")) == 2, "both workers ready")
            people = 20
            urls = [f"{server.base_url}/webhooks/rest/webhook"]

            async def crowd() -> list[int]:
                statuses: list[int] = []
                async with httpx.AsyncClient(timeout=httpx.Timeout(120, pool=None)) as client:
                    await asyncio.gather(
                        *(_one_person(client, urls, n, statuses) for n in range(people))
                    )
                return statuses

            statuses = asyncio.run(crowd())
            assert statuses.count(200) == people * MESSAGES_EACH
            _check_every_message_answered_once_in_order(settings, people)
            assert len(_pids(server, "turn")) == 2, "both worker processes took turns"
        finally:
            server.stop()


def _pids(server: LiveServer, event: str) -> set[str]:
    """The worker pids that logged ``event``."""
    lines = [line for line in server.log_text().splitlines() if f'"event": "{event}"' in line]
    return {line.split('"pid": ')[1].split(",")[0] for line in lines}


def _wait_for(condition: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
