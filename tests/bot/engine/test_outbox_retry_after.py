"""The outbox honours a platform's Retry-After, and gives up at once on a refusal.

A ``DeliveryError(retry_after=30)`` (a 429) puts the next attempt at least 30 s away even
though the base backoff is tiny; a non-retryable ``DeliveryError`` marks the item failed
on the first attempt with its reason; an ordinary retryable error keeps the tiny backoff.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from bot.domain import Delivery, DeliveryError, InboundMessage, Reply
from bot.engine.outbox import OutboxDispatcher
from bot.storage.crypto import Vault
from bot.storage.db import create_engine, session_factory
from bot.storage.models import utcnow
from bot.storage.repository import Store, TurnOutcome

CHANNEL = "push"
TINY_BACKOFF = 0.01


class ScriptedSender:
    """Raises the scripted errors in turn, then delivers."""

    def __init__(self, errors: list[DeliveryError]) -> None:
        self.errors = list(errors)
        self.calls: list[int] = []
        self.delivered: list[int] = []

    async def send(self, delivery: Delivery) -> None:
        self.calls.append(delivery.outbox_id)
        if self.errors:
            raise self.errors.pop(0)
        self.delivered.append(delivery.outbox_id)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    yield Store(session_factory(engine), Vault([Fernet.generate_key().decode()]), "secret")
    await engine.dispose()


async def queue_one_reply(store: Store, sender: str) -> int:
    """One answered message with one reply waiting in the outbox; returns its id."""
    stored = await store.do_store_inbound(
        InboundMessage(channel=CHANNEL, sender_id=sender, text="xin chào")
    )
    assert stored is not None
    turn = await store.get_turn_input(stored.message_id)
    recorded = await store.do_record_turn(turn, TurnOutcome([Reply("Xin chào")], {}, "greet"))
    assert len(recorded) == 1
    return recorded[0].outbox_id


async def outbox_row(store: Store, outbox_id: int) -> tuple[Any, ...]:
    async with store.sessions() as session:
        result = await session.execute(
            text("SELECT status, attempts, last_error FROM outbox WHERE id = :id"),
            {"id": outbox_id},
        )
        return tuple(result.one())


def dispatcher(store: Store, sender: ScriptedSender, attempts: int = 5) -> OutboxDispatcher:
    return OutboxDispatcher(
        store,
        {CHANNEL: sender},
        max_attempts=attempts,
        retry_base_seconds=TINY_BACKOFF,
    )


async def test_retry_after_is_waited_for_even_with_a_tiny_backoff(store: Store) -> None:
    outbox_id = await queue_one_reply(store, "limited")
    sender = ScriptedSender([DeliveryError("push answered 429", retry_after=30)])
    outbox = dispatcher(store, sender)
    before = utcnow()
    assert await outbox.drain() == 0
    next_attempt = await store.get_next_attempt_at(outbox_id)
    assert next_attempt is not None
    assert next_attempt - before >= timedelta(seconds=30)
    assert next_attempt - utcnow() <= timedelta(seconds=31)  # not much more either
    assert await outbox_row(store, outbox_id) == ("pending", 1, "push answered 429")
    assert await outbox.drain() == 0  # not due yet: the platform is not asked again
    assert sender.calls == [outbox_id]


async def test_without_retry_after_the_base_backoff_applies(store: Store) -> None:
    outbox_id = await queue_one_reply(store, "plain")
    sender = ScriptedSender([DeliveryError("push answered 503")])
    outbox = dispatcher(store, sender)
    before = utcnow()
    assert await outbox.drain() == 0
    next_attempt = await store.get_next_attempt_at(outbox_id)
    assert next_attempt is not None
    assert next_attempt - before < timedelta(seconds=5)
    await store.do_defer(outbox_id, utcnow())  # due now: skip the tiny wait
    assert await outbox.drain() == 1
    assert sender.delivered == [outbox_id]
    assert await outbox_row(store, outbox_id) == ("sent", 2, "push answered 503")


async def test_a_non_retryable_error_fails_at_once_with_its_reason(store: Store) -> None:
    outbox_id = await queue_one_reply(store, "blocked")
    reason = "push answered 403 (bot was blocked by the user)"
    sender = ScriptedSender([DeliveryError(reason, retryable=False, retry_after=30)])
    outbox = dispatcher(store, sender, attempts=8)
    assert await outbox.drain() == 0
    assert await outbox_row(store, outbox_id) == ("failed", 1, reason)
    assert await outbox.drain() == 0  # a failed item is never claimed again
    assert sender.calls == [outbox_id]
