"""Events between workers through PostgreSQL LISTEN/NOTIFY.

``PgNotifyRelay`` keeps one connection of its own that listens on one channel, and
sends through it too, one notification at a time, in order. Each worker tags what it
sends with its own random origin and ignores its own notifications when they come back.
A notification carries no message text (the receiving worker reads it from the
database, decrypted) and must stay under PostgreSQL's 8,000-byte limit.

If the connection drops (the database restarts), the relay reconnects with a growing
pause and then tells its owner (``on_reconnect``), since events sent meanwhile are lost:
consoles reload what they show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

logger = logging.getLogger("donghanh.notify")
CHANNEL = "donghanh_events"
MAX_PAYLOAD_BYTES = 7_900  # PostgreSQL refuses a payload of 8,000 bytes or more
SEND_QUEUE_LIMIT = 5_000
RECONNECT_MAX_SECONDS = 10.0


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style address asyncpg connects to, from the SQLAlchemy URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def supports_notify(database_url: str) -> bool:
    return database_url.startswith("postgresql")


class PgNotifyRelay:
    """Sends events to every other worker and hands theirs to ``on_event``."""

    def __init__(
        self,
        database_url: str,
        on_event: Callable[[dict[str, Any]], Awaitable[None]],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self.origin = secrets.token_hex(8)
        self._outgoing: asyncio.Queue[str] = asyncio.Queue(SEND_QUEUE_LIMIT)
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SEND_QUEUE_LIMIT)
        self._connection: asyncpg.Connection | None = None
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Connect and listen before returning, so nothing sent after start is missed."""
        await self._connect()
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._hand_over())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._close_connection()

    def send(self, event: dict[str, Any]) -> None:
        """Queue an event for the other workers (never blocks; a full queue drops it)."""
        payload = json.dumps({"o": self.origin, "e": event}, ensure_ascii=False)
        if len(payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
            logger.warning("event too large", extra={"event": "notify_dropped"})
            return
        try:
            self._outgoing.put_nowait(payload)
        except asyncio.QueueFull:
            logger.warning("notify queue full", extra={"event": "notify_dropped"})

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._dsn)
        await connection.add_listener(CHANNEL, self._received)
        connection.add_termination_listener(self._lost)
        self._connection = connection
        self._connected.set()

    def _lost(self, _connection: Any) -> None:
        self._connected.clear()

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._connected.clear()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)

    def _received(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("o") == self.origin:
            return
        event = message.get("e")
        if isinstance(event, dict):
            with contextlib.suppress(asyncio.QueueFull):
                self._incoming.put_nowait(event)

    async def _hand_over(self) -> None:
        """Give the owner other workers' events one at a time, in the order they came."""
        while True:
            event = await self._incoming.get()
            try:
                await self._on_event(event)
            except Exception as exc:
                logger.error(
                    "event handling failed",
                    extra={"event": "notify_error", "error_type": type(exc).__name__},
                )

    async def _run(self) -> None:
        """Send queued events in order; reconnect when the connection is lost."""
        while True:
            if self._connection is None or self._connection.is_closed():
                await self._reconnect()
            try:  # wake each second to notice a lost connection even when idle
                payload = await asyncio.wait_for(self._outgoing.get(), timeout=1.0)
            except TimeoutError:
                continue
            try:
                assert self._connection is not None
                await self._connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                logger.warning("notify failed", extra={"event": "notify_failed"})
                await self._close_connection()

    async def _reconnect(self) -> None:
        await self._close_connection()
        pause = 0.2
        while True:
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_MAX_SECONDS)
                continue
            logger.info("notify reconnected", extra={"event": "notify_reconnected"})
            await self._on_reconnect()
            return
