"""Live events for the counsellor console: who is listening, and what they are told.

Each open console holds a ``Subscription``; ``publish`` hands an event to every
subscriber it is for (``to``: one member of staff, or everyone). Events about a
conversation's messages go only to the counsellor holding it: a supervisor reads a
conversation by opening it (which is audited), never by listening in.

Each worker has its own hub. With several workers (PostgreSQL), a hub is given a relay
(``bot.storage.notify``): what it publishes also goes to the other workers, and what
they publish arrives through ``receive``. A message's text never travels between
workers: the receiving hub reads it from the database (``load_text``), and only when
the counsellor it is for has a console open on this worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger("donghanh.events")
QUEUE_LIMIT = 500  # events a slow console may fall behind before it must reload


@dataclass(eq=False)
class Subscription:
    staff_id: int
    events: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    overflowed: bool = False

    def offer(self, event: dict[str, Any]) -> None:
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True  # the socket closes; the console reconnects and reloads


class EventRelay(Protocol):
    """Carries events to the hubs of the other workers."""

    def send(self, event: dict[str, Any]) -> None: ...


TextLoader = Callable[[int], Awaitable[str | None]]


class EventHub:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._relay: EventRelay | None = None
        self._load_text: TextLoader | None = None

    def relay_through(self, relay: EventRelay, load_text: TextLoader) -> None:
        """Share events with other workers; ``load_text`` reads a message's text."""
        self._relay, self._load_text = relay, load_text

    @contextlib.contextmanager
    def subscribe(self, staff_id: int) -> Iterator[Subscription]:
        subscription = Subscription(staff_id)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def is_present(self, staff_id: int) -> bool:
        return any(s.staff_id == staff_id for s in self._subscriptions)

    @property
    def present_staff(self) -> set[int]:
        return {s.staff_id for s in self._subscriptions}

    def publish(self, event: dict[str, Any], *, to: int | None = None) -> None:
        self._deliver(event, to)
        if self._relay is not None:
            self._relay.send({"to": to, "event": without_text(event)})

    async def receive(self, wire: dict[str, Any]) -> None:
        """An event another worker published: delivered to the consoles open here."""
        event, to = wire.get("event"), wire.get("to")
        if not isinstance(event, dict) or not (to is None or isinstance(to, int)):
            return
        if to is not None and not self.is_present(to):
            return
        if event.get("type") == "message":
            filled = await self._with_text(event)
            if filled is None:
                return
            event = filled
        self._deliver(event, to)

    def tell_everyone_to_reload(self) -> None:
        """Events from other workers may have been lost: consoles reload the queue."""
        self._deliver({"type": "queue", "urgent": False}, None)

    async def _with_text(self, event: dict[str, Any]) -> dict[str, Any] | None:
        message = event.get("message")
        if self._load_text is None or not isinstance(message, dict):
            return None
        message_id = message.get("id")
        if not isinstance(message_id, int):
            return None
        text = await self._load_text(message_id)
        if text is None:  # erased meanwhile
            return None
        return {**event, "message": {**message, "text": text}}

    def _deliver(self, event: dict[str, Any], to: int | None) -> None:
        for subscription in list(self._subscriptions):
            if to is None or subscription.staff_id == to:
                subscription.offer(event)
        logger.debug("event", extra={"event": "console_event", "type": event.get("type")})


def without_text(event: dict[str, Any]) -> dict[str, Any]:
    """What may travel between workers: a message event without its text."""
    message = event.get("message")
    if event.get("type") != "message" or not isinstance(message, dict):
        return event
    return {**event, "message": {k: v for k, v in message.items() if k != "text"}}


def message_event(
    conversation_id: int, message_id: int, author: str, text: str, at: str, counsellor: str | None
) -> dict[str, Any]:
    return {
        "type": "message",
        "conversation_id": conversation_id,
        "message": {
            "id": message_id,
            "author": author,
            "text": text,
            "at": at,
            "counsellor": counsellor,
        },
    }
