"""Flood control: a sender's burst, then a steady allowance; nothing stored beyond it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.channels.common import InboundRelay
from bot.domain import InboundMessage
from bot.engine.flood import MAX_SENDERS, SenderLimits
from bot.errors import TooManyRequests
from bot.storage.models import Message


def test_a_burst_then_one_message_per_interval() -> None:
    limits = SenderLimits(burst=3, per_minute=6)  # one every 10 s after the burst
    assert [limits.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limits.take("a", now=0.0) == pytest.approx(10.0)
    assert limits.take("b", now=0.0) == 0.0, "another sender has their own allowance"
    assert limits.take("a", now=10.5) == 0.0
    assert limits.take("a", now=11.0) > 0


def test_memory_stays_bounded_whatever_a_flood_sends() -> None:
    limits = SenderLimits(burst=1, per_minute=1)
    for number in range(MAX_SENDERS + 50):
        limits.take(f"s{number}", now=0.0)
    assert len(limits._buckets) == MAX_SENDERS
    assert limits.take("s0", now=0.0) == 0.0, "the oldest were forgotten, not refused"


async def _stored(services: Any) -> int:
    async with services.store.sessions() as session:
        return int(await session.scalar(select(func.count(Message.id))) or 0)


async def test_the_engine_refuses_a_flood_before_storing_it(services: Any) -> None:
    services.turns.sender_limits = SenderLimits(burst=5, per_minute=1)
    for number in range(5):
        message = InboundMessage(channel="rest", sender_id="flood", text=f"tin {number}")
        assert await services.turns.accept(message) is not None
    with pytest.raises(TooManyRequests) as refused:
        await services.turns.accept(InboundMessage(channel="rest", sender_id="flood", text="x"))
    assert refused.value.retry_after_seconds >= 1
    assert await _stored(services) == 5
    other = InboundMessage(channel="rest", sender_id="someone-else", text="xin chào")
    assert await services.turns.accept(other) is not None


async def test_a_platform_webhook_drops_the_flood_and_keeps_the_rest(services: Any) -> None:
    services.turns.sender_limits = SenderLimits(burst=2, per_minute=1)
    relay = InboundRelay("telegram")
    messages = [
        InboundMessage(
            channel="telegram", sender_id="42", text=f"tin {n}", platform_message_id=f"m{n}"
        )
        for n in range(4)
    ]
    assert await relay.take(services.turns, messages) == 2
    await asyncio.gather(*relay._running)  # the two kept are answered
    assert await _stored(services) == 4  # two messages in, two replies out
