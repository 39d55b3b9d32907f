"""Events between workers through PostgreSQL LISTEN/NOTIFY (``bot.storage.notify``),
and the hub's side of it (``bot.engine.events``): what crosses, what never does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import migrated_database

from bot.engine.events import EventHub, message_event, without_text
from bot.storage.notify import MAX_PAYLOAD_BYTES, PgNotifyRelay, asyncpg_dsn


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path) as url:
        yield url


class Worker:
    """One worker's hub and relay."""

    def __init__(self, url: str, texts: dict[int, str]) -> None:
        self.hub = EventHub()
        self.reloads = 0
        self.texts = texts

        async def reload() -> None:
            self.reloads += 1
            self.hub.tell_everyone_to_reload()

        async def load_text(message_id: int) -> str | None:
            return self.texts.get(message_id)

        self.relay = PgNotifyRelay(url, self.hub.receive, reload)
        self.hub.relay_through(self.relay, load_text)


@pytest.fixture
async def two_workers(pg_url: str) -> AsyncIterator[tuple[Worker, Worker]]:
    texts = {7: "em đang ở Lào Cai"}
    first, second = Worker(pg_url, texts), Worker(pg_url, texts)
    await first.relay.start()
    await second.relay.start()
    yield first, second
    await first.relay.stop()
    await second.relay.stop()


async def next_event(queue: asyncio.Queue[dict[str, Any]], within: float = 5.0) -> dict[str, Any]:
    return await asyncio.wait_for(queue.get(), within)


async def test_an_event_reaches_the_other_worker_once(two_workers: tuple[Worker, Worker]) -> None:
    first, second = two_workers
    with first.hub.subscribe(1) as mine, second.hub.subscribe(2) as theirs:
        first.hub.publish({"type": "queue", "urgent": True})
        assert await next_event(mine.events) == {"type": "queue", "urgent": True}
        assert await next_event(theirs.events) == {"type": "queue", "urgent": True}
        await asyncio.sleep(0.3)  # its own notification comes back to the sender: ignored
        assert mine.events.empty() and theirs.events.empty()


async def test_a_message_crosses_without_its_text_and_only_to_its_counsellor(
    two_workers: tuple[Worker, Worker],
) -> None:
    first, second = two_workers
    event = message_event(3, 7, "user", "em đang ở Lào Cai", "2026-11-23T10:00:00", None)
    assert "text" not in without_text(event)["message"]
    with second.hub.subscribe(5) as holder, second.hub.subscribe(6) as colleague:
        first.hub.publish(event, to=5)
        received = await next_event(holder.events)
        assert received["message"]["text"] == "em đang ở Lào Cai"  # read from the database
        assert received["message"]["id"] == 7
        await asyncio.sleep(0.3)
        assert colleague.events.empty()


async def test_a_message_erased_meanwhile_is_not_shown(two_workers: tuple[Worker, Worker]) -> None:
    first, second = two_workers
    with second.hub.subscribe(5) as holder:
        first.hub.publish(message_event(3, 99, "user", "đã xoá", "", None), to=5)
        first.hub.publish({"type": "queue", "urgent": False})
        assert (await next_event(holder.events))["type"] == "queue"


async def test_what_travels_is_small_and_has_no_text_even_for_a_long_message(
    two_workers: tuple[Worker, Worker], pg_url: str
) -> None:
    first, _ = two_workers
    listener = await asyncpg.connect(asyncpg_dsn(pg_url))
    seen: list[str] = []
    await listener.add_listener("donghanh_events", lambda *args: seen.append(args[3]))
    try:
        long_text = "giữ hộ chiếu " * 2000
        first.hub.publish(message_event(3, 7, "user", long_text, "", None), to=5)
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.1)
        assert seen and "hộ chiếu" not in seen[0]
        assert len(seen[0].encode()) < MAX_PAYLOAD_BYTES
    finally:
        await listener.close()


async def test_a_lost_connection_comes_back_and_consoles_reload(
    two_workers: tuple[Worker, Worker], pg_url: str
) -> None:
    first, second = two_workers
    admin = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    with second.hub.subscribe(2) as console:
        reload = await next_event(console.events, within=15)
        assert reload == {"type": "queue", "urgent": False}
        assert second.reloads >= 1
        for _ in range(100):  # the other side is back too
            first.hub.publish({"type": "conversation", "conversation_id": 1})
            try:
                event = await next_event(console.events, within=0.2)
            except TimeoutError:
                continue
            if event["type"] == "conversation":
                break
        else:
            raise AssertionError("events did not cross again after the reconnection")
