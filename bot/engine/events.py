"""Live events for the counsellor console: who is listening, and what they are told.

Each open console holds a ``Subscription``; ``publish`` hands an event to every
subscriber it is for (``to``: one member of staff, or everyone). Events about a
conversation's messages go only to the counsellor holding it: a supervisor reads a
conversation by opening it (which is audited), never by listening in.

This hub is in one process. Several workers share events through PostgreSQL
LISTEN/NOTIFY (the scaling issue); until then run one worker when counsellors work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

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


class EventHub:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

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
        for subscription in list(self._subscriptions):
            if to is None or subscription.staff_id == to:
                subscription.offer(event)
        logger.debug("event", extra={"event": "console_event", "type": event.get("type")})


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
