"""Nothing stored is lost: SIGKILL the server in the middle of a turn, restart, check.

Real processes, real database. The server is started with a fault-injection delay
(``DONGHANH_FAULT_TURN_DELAY_MS``) inside the turn, after the message is stored and
before its replies are recorded, so the kill lands exactly there.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import httpx
import pytest
from conftest import LiveServer
from sqlalchemy import text

from bot.config import Settings
from bot.storage.db import create_engine

pytestmark = pytest.mark.slow


async def _query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql))]
    finally:
        await engine.dispose()


def query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    return asyncio.run(_query(settings, sql))


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def post_in_background(url: str, body: dict[str, str]) -> threading.Thread:
    def post() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server is killed under this request
            httpx.post(url, json=body, timeout=30)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def test_sigkill_mid_turn_loses_nothing_and_answers_once(settings: Settings) -> None:
    slow = LiveServer(settings, {"DONGHANH_FAULT_TURN_DELAY_MS": "5000"}).start()
    webhook = f"{slow.base_url}/webhooks/rest/webhook"
    senders = [f"crash-{i}" for i in range(3)]
    threads = [post_in_background(webhook, {"sender": s, "message": "xin chào"}) for s in senders]
    wait_for(
        lambda: query(settings, "SELECT count(*) FROM messages WHERE direction = 'in'") == [(3,)]
    )
    slow.kill()
    for thread in threads:
        thread.join(timeout=10)

    unprocessed = "SELECT count(*) FROM messages WHERE direction = 'in' AND processed_at IS NULL"
    assert query(settings, unprocessed) == [(3,)], "the kill must land mid-turn"
    assert query(settings, "SELECT count(*) FROM outbox") == [(0,)]

    restarted = LiveServer(settings).start()
    try:
        wait_for(lambda: query(settings, unprocessed) == [(0,)], timeout=90)
        for sender in senders:
            replies = httpx.post(
                f"{restarted.base_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": "tạm biệt"},
                timeout=30,
            ).json()
            texts = [reply["text"] for reply in replies]
            assert len(texts) == 2, texts
            assert texts[0].startswith("Xin chào")  # the answer the crash held back comes first
            assert texts[1].startswith("Tạm biệt")
    finally:
        restarted.stop()

    per_message = query(
        settings,
        "SELECT count(*) FROM outbox GROUP BY contact_id ORDER BY contact_id",
    )
    assert per_message == [(2,), (2,), (2,)]
    assert query(settings, "SELECT DISTINCT status FROM outbox") == [("sent",)]
