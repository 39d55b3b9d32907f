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


class SlowPlatform:
    """A callback receiver that notes each reply on arrival, then takes ``delay``
    seconds to answer: a kill in that time leaves replies the platform has but the
    outbox does not know were sent."""

    def __init__(self, delay: float) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.delay = delay
        self.received: list[tuple[str, str]] = []  # (idempotency key, recipient)
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                platform.received.append((key, body["recipient_id"]))
                time.sleep(platform.delay)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_sigkill_while_sending_loses_no_reply_and_repeats_only_what_was_in_flight(
    settings: Settings,
) -> None:
    platform = SlowPlatform(delay=30.0)
    env = {"DONGHANH_CALLBACK_URL": platform.url, "DONGHANH_OUTBOX_LEASE_SECONDS": "2"}
    sending = LiveServer(settings, env).start()
    senders = [f"send-crash-{i}" for i in range(4)]
    for sender in senders:
        response = httpx.post(
            f"{sending.base_url}/webhooks/callback/webhook",
            json={"sender": sender, "message": "xin chào"},
            timeout=30,
        )
        assert response.status_code == 200
    wait_for(lambda: len(platform.received) == len(senders), timeout=60)
    sending.kill()  # every reply is at the platform, none is marked sent
    in_flight = {key for key, _ in platform.received}
    assert query(settings, "SELECT count(*) FROM outbox WHERE status = 'sent'") == [(0,)]

    platform.delay = 0.0
    restarted = LiveServer(settings, env).start()
    try:
        for sender in senders:  # a second message each, after the restart
            httpx.post(
                f"{restarted.base_url}/webhooks/callback/webhook",
                json={"sender": sender, "message": "cảm ơn"},
                timeout=30,
            )
        all_sent = "SELECT count(*), count(sent_at) FROM outbox WHERE status = 'sent'"
        every = 2 * len(senders)
        wait_for(lambda: query(settings, all_sent) == [(every, every)], timeout=60)
    finally:
        restarted.stop()
        platform.close()

    outbox_keys = {f"donghanh-{row[0]}" for row in query(settings, "SELECT id FROM outbox")}
    delivered = [key for key, _ in platform.received]
    assert set(delivered) == outbox_keys, "no reply lost"
    repeated = {key for key in delivered if delivered.count(key) > 1}
    assert repeated <= in_flight, "only a reply in flight at the kill is sent again"
    assert all(delivered.count(key) <= 2 for key in delivered)
    assert len(outbox_keys) == 2 * len(senders)
