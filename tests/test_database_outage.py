"""The database goes away for a while, then comes back.

A real server talks to a real PostgreSQL through a TCP relay on loopback that the test
cuts and restores, as a failover or a network fault would. While it is cut, webhooks
answer 503 (so the platform delivers again later) and never 200 for a message they could
not store; once it is back, the service recovers by itself, with no restart: the
redelivered message is stored once and answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer, make_settings, migrated_database
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.storage.db import create_engine

pytestmark = pytest.mark.slow
TELEGRAM_SECRET = "bi-mat-webhook-telegram-123"


class CuttableRelay:
    """Forwards loopback TCP connections to the database until ``cut``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.open = threading.Event()
        self.open.set()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept_forever, daemon=True).start()

    def _accept_forever(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                target.sendall(chunk)
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break every live one."""
        self.open.clear()
        with self._lock:
            live, self._sockets = self._sockets, set()
        for end in live:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database("postgresql", tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="module")
def relay(database: str) -> Iterator[CuttableRelay]:
    url = make_url(database)
    relay = CuttableRelay((url.host or "127.0.0.1", url.port or 5432))
    yield relay
    relay.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
    relay: CuttableRelay,
    model_dir: Path,
) -> Iterator[LiveServer]:
    through_relay = make_url(database).set(host="127.0.0.1", port=relay.port)
    settings = make_settings(
        tmp_path_factory.mktemp("outage"),
        through_relay.render_as_string(hide_password=False),
        model_dir,
    )
    env = {
        "DONGHANH_TELEGRAM_TOKEN": "123456:TEST-token",
        "DONGHANH_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "DONGHANH_TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",
        "DONGHANH_CONTENT_POLL_SECONDS": "1",
    }
    live = LiveServer(settings, env).start()
    yield live
    live.stop()


def query(database: str, sql: str) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_engine(database)
        try:
            async with engine.connect() as connection:
                return list(await connection.execute(text(sql)))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def telegram_update(update_id: int, chat_id: int, text_: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "A"},
            "text": text_,
        },
    }


def post_telegram(server: LiveServer, update: dict[str, Any]) -> int:
    response = httpx.post(
        f"{server.base_url}/webhooks/telegram/webhook",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        timeout=60,
    )
    return response.status_code


def post_rest(server: LiveServer, sender: str, message: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/webhooks/rest/webhook",
        json={"sender": sender, "message": message},
        timeout=60,
    )


def wait_until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("the service did not recover in time")


def test_webhooks_ask_to_retry_while_the_database_is_away_and_recover_alone(
    server: LiveServer, relay: CuttableRelay, database: str
) -> None:
    assert post_rest(server, "outage-before", "xin chào").status_code == 200
    relay.cut()
    try:
        assert httpx.get(f"{server.base_url}/health", timeout=30).status_code == 503
        during = post_rest(server, "outage-during", "tôi cần giúp đỡ")
        assert during.status_code == 503
        assert "error" in during.json()
        assert post_telegram(server, telegram_update(7001, 555001, "cứu tôi với")) == 503
    finally:
        relay.restore()

    wait_until(lambda: httpx.get(f"{server.base_url}/health", timeout=30).status_code == 200)
    # the platform delivers the same update again; it is stored once and answered
    assert post_telegram(server, telegram_update(7001, 555001, "cứu tôi với")) == 200
    assert post_telegram(server, telegram_update(7001, 555001, "cứu tôi với")) == 200
    replies = post_rest(server, "outage-during", "tôi cần giúp đỡ")
    assert replies.status_code == 200 and replies.json()

    def telegram_answered() -> bool:
        rows = query(
            database,
            "SELECT count(*), count(processed_at) FROM messages "
            "WHERE direction = 'in' AND channel = 'telegram'",
        )
        return bool(rows == [(1, 1)])

    wait_until(telegram_answered, timeout=30)
    log = server.log_text()
    assert "cứu tôi với" not in log and "555001" not in log
    webhook_lines = [line for line in log.splitlines() if "/webhook" in line]
    assert webhook_lines and not [line for line in webhook_lines if '"status": 500' in line]
